"""Reading and writing Kubernetes YAML for ``otel-injector inject``, within bounds.

* libyaml's C loader and dumper (``CSafeLoader``/``CSafeDumper``) when PyYAML was built
  with it, as the wheels on PyPI are: the pure-Python ones took 66 s and 1.1 GB for a
  1.3 MB List.
* Nesting deeper than :data:`MAX_DEPTH` is refused before anything is built: the
  constructor and the representer recurse, so 3,000 levels were a RecursionError.
* Aliases are YAML's way to write one node many times. The loader shares the node, but
  the injection copies what it changes and the dumper repeats every scalar, so aliases
  came out expanded: 16 KB in, 15 MB out. A stream whose aliases expand it past
  :data:`MAX_EXPANSION` times its own size (plus :data:`EXPANSION_ALLOWANCE`) is refused,
  the way Kubernetes' own YAML decoder refuses "excessive aliasing".
* Every failure is one :class:`YamlError` line, never a traceback: a number over 4,300
  digits, an unhashable key, a tab, a NUL.

The checks are one pass over the parser's events, linear in the input, before the
objects are constructed.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any, Final

import yaml

MAX_DEPTH: Final = 100
MAX_EXPANSION: Final = 10
EXPANSION_ALLOWANCE: Final = 64 * 1024

Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
Dumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class YamlError(ValueError):
    """The input is not YAML we read; the message is one line."""


def _one_line(err: Exception) -> str:
    return " ".join(str(err).split())[:300]


def check_events(text: str) -> None:
    """Refuse ``text`` if it nests deeper than :data:`MAX_DEPTH` or its aliases expand it
    more than the bound allows. Raises :class:`YamlError`."""
    limit = MAX_EXPANSION * len(text) + EXPANSION_ALLOWANCE
    depth = 0
    weight = 0  # the size of the stream with every alias written out: nodes + scalar chars
    anchored: dict[str, int] = {}
    starts: list[tuple[str | None, int]] = []
    for event in yaml.parse(text, Loader=Loader):
        if isinstance(event, yaml.ScalarEvent):
            size = 1 + len(event.value)
            weight += size
            if event.anchor is not None:
                anchored[event.anchor] = size
        elif isinstance(event, yaml.AliasEvent):
            weight += anchored.get(event.anchor or "", 1)
        elif isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                line = event.start_mark.line + 1 if event.start_mark is not None else 0
                raise YamlError(f"YAML nested deeper than {MAX_DEPTH} levels (line {line})")
            weight += 1
            starts.append((event.anchor, weight))
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
            anchor, start = starts.pop()
            if anchor is not None:
                anchored[anchor] = weight - start + 1
        if weight > limit:
            raise YamlError(
                f"YAML aliases expand the input ({len(text):,} characters) past {limit:,}; "
                "write the repeated parts out instead"
            )


def load_documents(text: str) -> list[Any]:
    """Every document in ``text``, checked by :func:`check_events` first."""
    try:
        check_events(text)
        return list(yaml.load_all(text, Loader=Loader))
    except yaml.YAMLError as err:
        raise YamlError(f"invalid YAML: {_one_line(err)}") from None
    except ValueError as err:  # int() of a number over 4,300 digits, and the like
        if isinstance(err, YamlError):
            raise
        if "digits" in str(err):
            raise YamlError(f"a YAML number has more than {sys.get_int_max_str_digits():,} digits") from None
        raise YamlError(f"YAML value not usable: {_one_line(err)}") from None


def dump_documents(documents: Iterable[Any]) -> str:
    """The documents as one YAML stream, keys in their order, block style."""
    try:
        return yaml.dump_all(list(documents), Dumper=Dumper, sort_keys=False, default_flow_style=False, width=1 << 16)
    except (yaml.YAMLError, ValueError) as err:
        raise YamlError(f"cannot write the result as YAML: {_one_line(err)}") from None
