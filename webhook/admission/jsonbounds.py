"""How deep a JSON body nests, found before it is decoded.

A list nested 1,000 deep decodes fine (orjson stops at 1,024 levels) and then breaks
whatever touches it recursively: ``repr`` and ``==`` raise RecursionError near Python's
limit of 1,000 frames, and orjson's encoder stops at 255. So a body that nests deeper than
:data:`MAX_DEPTH` is refused with a 400 before it is decoded, and everything after decoding
can rely on a shallow tree. A pod nests about 15 levels at most inside its review
(``request.object.spec.affinity...matchExpressions[].values[]``; ``managedFields`` adds a
few), so 100 leaves a wide margin.

The number of values a body decodes into is bounded the same way (:data:`MAX_VALUES`,
:func:`value_count`): decoding is where the memory of a large review goes.

The scan runs at C speed, with no Python loop over characters: escaped backslashes and
quotes are removed with ``bytes.replace``, every byte but ``"[]{}`` with ``bytes.translate``,
the strings (now just quote pairs) by splitting at the quotes, and the running depth of what remains
is ``itertools.accumulate``. Measured on the shared 2-core machine: about 30 ms for a
6 MiB body of 200,000 tiny containers, under a third of orjson's own decode of it, and
microseconds for a typical pod.
"""

from __future__ import annotations

import itertools
from typing import Final

MAX_DEPTH: Final = 100
#: The most JSON values (objects, arrays, strings) a body may decode into. Decoding is
#: what a large review costs in memory: about 100 bytes of Python objects a value, so
#: 6 MiB of tiny objects (1.5 million values) took 110 MiB, and 600,000 values stay near
#: the budget's 64 MiB. A pod that size is over etcd's 1.5 MiB limit anyway (the 100,000
#: tiny containers of issue 9 are 500,000 values); legitimate pods have a few thousand.
MAX_VALUES: Final = 600_000

_NOT_STRUCTURE = bytes(c for c in range(256) if c not in b'"[]{}')
_CHUNK = 64 * 1024
_STEP = [0] * 256
_STEP[ord("[")] = _STEP[ord("{")] = 1
_STEP[ord("]")] = _STEP[ord("}")] = -1


def nesting_depth(body: bytes) -> int:
    """The deepest nesting of arrays and objects in ``body`` (0 for a scalar).

    Exact for valid JSON; for invalid JSON it is some number, and the decoder then says
    what is wrong."""
    if b"[" not in body and b"{" not in body:
        return 0
    # After these two replaces every remaining quote delimits a string: an escaped
    # backslash goes first, so the quote in \\" survives and the one in \" does not.
    skeleton = body.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _NOT_STRUCTURE)
    # In chunks, so the pieces of one chunk at a time are alive (re.sub, the first version,
    # kept every piece of the body until it joined them: 70 MiB for 4 MiB of tiny objects).
    # Splitting at the quotes leaves strings and the rest alternating; which of the two a
    # chunk starts with depends on the quotes before it.
    depth = deepest = 0
    inside = False
    for start in range(0, len(skeleton), _CHUNK):
        parts = skeleton[start : start + _CHUNK].split(b'"')
        brackets = b"".join(parts[1::2] if inside else parts[0::2])
        inside ^= len(parts) % 2 == 0
        if brackets:
            peak = max(itertools.accumulate(map(_STEP.__getitem__, brackets), initial=depth))
            deepest = max(deepest, peak)
            depth += brackets.count(b"[") + brackets.count(b"{") - brackets.count(b"]") - brackets.count(b"}")
    return deepest


def nested_deeper_than(body: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether ``body`` nests deeper than ``limit``: the same answer as
    ``nesting_depth(body) > limit`` on every input, found by peeling (see
    :func:`_peeled_within`) whenever the body's structure is small enough."""
    if _peeled_within(body, limit):
        return False
    return nesting_depth(body) > limit


#: Structure left after peeling may be at most this long, so that peeling ``limit`` times
#: copies at most ``limit`` x 64 KiB (a few ms); larger structures take the exact scan.
_PEEL_BYTES = 64 * 1024
#: Bodies with more backslashes than this lose their escapes by ``replace``, not by the
#: loop over the pieces between backslashes (a Python loop, so bounded here).
_SPLIT_ESCAPES = 4096
# Every bracket becomes a square one (depth does not care which kind).
_SQUARE = bytes.maketrans(b"{}", b"[]")
_QUOTE = ord('"')


def _peeled_within(body: bytes, limit: int) -> bool:
    """True when ``body`` nests at most ``limit`` deep; False when this cannot tell cheaply
    (a large structure, a deeper one, or unbalanced brackets: invalid JSON), so that the
    exact scan must.

    Why: the scan's per-bracket ``accumulate`` and per-string ``split`` are Python-speed
    work, a third of decoding a typical or already-injected review. Peeling is ``bytes``
    methods on a small skeleton:

    1. Escapes go first, so that every quote left delimits a string. A pod has a few
       (``managedFields`` keys hold escaped quotes), and ``replace`` scans the whole body for each
       kind; splitting at the backslashes (``memchr``) and dropping each escaped quote
       and backslash costs a small fraction of that.
    2. ``translate`` keeps only quotes and brackets, all brackets made square.
    3. ``replace(b'""', b"")`` drops the empty strings (nearly all a pod's strings, now):
       removing two adjacent quotes keeps every other quote's parity, so what is inside a
       string stays inside. The few strings that hold brackets (a JSON annotation) go by
       splitting at the quotes.
    4. What is left is brackets, and each ``replace(b"[]", b"")`` removes exactly one
       level of every branch: a balanced sequence is gone after as many passes as it
       nests deep.

    Measured with thread CPU time (timeit, min of 7), shared 2-core machine under load:
    typical review 77 -> 30 us, already-injected 112 -> 49 us, large 1,658 -> 710 us."""
    if 0 < body.count(b"\\") <= _SPLIT_ESCAPES:
        pieces = body.split(b"\\")
        kept = [pieces[0]]
        index = 1
        while index < len(pieces):
            piece = pieces[index]
            if piece:  # this backslash escapes the piece's first character, which matters if a quote
                kept.append(piece[1:] if piece[0] == _QUOTE else piece)
                index += 1
            else:  # it escapes the next backslash, and the piece after that is plain text
                if index + 1 < len(pieces):
                    kept.append(pieces[index + 1])
                index += 2
        body = b"".join(kept)
    elif b"\\" in body:
        # After these two replaces every remaining quote delimits a string, as in the scan.
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    skeleton = body.translate(_SQUARE, _NOT_STRUCTURE).replace(b'""', b"")
    if len(skeleton) > _PEEL_BYTES:
        return False
    if b'"' in skeleton:
        skeleton = b"".join(skeleton.split(b'"')[0::2])
    for _ in range(limit + 1):
        if not skeleton:
            return True
        peeled = skeleton.replace(b"[]", b"")
        if len(peeled) == len(skeleton):
            return False  # unbalanced: the scan gives its number
        skeleton = peeled
    return False  # deeper than the limit


def value_count(body: bytes) -> int:
    """An upper bound of the objects, arrays and strings ``body`` decodes into (brackets
    and quotes inside strings count too, which only errs on the side of refusing), at C
    speed: three ``bytes.count`` calls, about a millisecond for 6 MiB."""
    return body.count(b"{") + body.count(b"[") + body.count(b'"') // 2
