"""The JSON patch between the pod the apiserver sent and the injected pod.

The patch is a diff of two plain dicts, never a re-serialization through a typed model, so
fields this injector does not know (a newer API's, another webhook's) cannot be dropped.

The diff is linear in the size of the pod. Equal subtrees are skipped with one C-level
``==`` (or an identity check, when the mutation shared them with the input). Lists are
aligned by their common prefix and suffix, and the rest by the ``name`` key that every
list the injector touches has (containers, env, volumes): inserting an init container
at the front yields one ``add``, appending env vars yields one ``add`` each, and nothing
after them is rewritten. Items without a name are paired by position. Any alignment
gives a correct patch; the names only keep it small.

Values are compared with Python's ``==``, for which ``1``, ``1.0`` and ``true`` are equal:
a change between those alone is not seen. The injector only adds, so it makes none.

Why the diff is hand-written and not ``jsonpatch.make_patch``: that diff is generic, so it
compares lists element by element and builds a JSON pointer object for every node it
visits; per admission it was most of the server's CPU (issue 8). With the bench's pods
(``bench.perf.pods.typical_pod`` and ``large_pod``), ``jsonpatch.make_patch`` took 2.39 ms
for the typical pod and 68.8 ms for the large one (hundreds of env vars), against
0.091 ms and 1.15 ms here. Re-measured with ``timeit`` (medians of 7) on the shared,
loaded 2-core machine (load average 10): 13.1 ms vs 0.185 ms typical and 203 ms vs
1.73 ms large, so 70-120x. Both give the same operations count for these pods (27, 403).

``jsonpatch`` stays in real use, as the independent RFC 6902 implementation that *applies*
our patches, the apiserver's side of the exchange: :func:`apply_patch` is how
``otel-injector inject`` (:mod:`webhook.core.manifests`) turns the webhook's patch into
the objects it prints, and how the HTTP and golden tests (``tests/support.py``), the
property test (for any pod, applying our patch gives the injected pod) and
tests/unit/core/test_patch.py check every patch. The server itself never applies its
own patch: that would copy every pod once more per admission, for what the apiserver
does anyway.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jsonpatch
import orjson


@dataclass(frozen=True)
class Patch:
    """A JSON patch (RFC 6902) and its serialized bytes, as sent to the apiserver."""

    operations: list[dict[str, Any]]
    body: bytes

    def __len__(self) -> int:
        return len(self.operations)


EMPTY = Patch(operations=[], body=b"[]")


def make_patch(original: Mapping[str, Any], mutated: Mapping[str, Any]) -> Patch:
    """The operations that turn ``original`` into ``mutated``; :data:`EMPTY` when equal."""
    if original is mutated:
        return EMPTY
    ops: list[dict[str, Any]] = []
    _diff("", original, mutated, ops)
    if not ops:
        return EMPTY
    return Patch(operations=ops, body=orjson.dumps(ops))


def _token(key: object) -> str:
    """One JSON-pointer reference token (RFC 6901)."""
    text = str(key)
    if "~" in text or "/" in text:
        text = text.replace("~", "~0").replace("/", "~1")
    return text


def _diff(path: str, old: Any, new: Any, ops: list[dict[str, Any]]) -> None:
    if old is new:
        return
    if _is_mapping(old) and _is_mapping(new):
        if old == new:
            return
        for key, value in old.items():
            if key not in new:
                ops.append({"op": "remove", "path": f"{path}/{_token(key)}"})
                continue
            other = new[key]
            if value is not other:  # shared with the input: nothing to build a path for
                _diff(f"{path}/{_token(key)}", value, other, ops)
        for key, value in new.items():
            if key not in old:
                ops.append({"op": "add", "path": f"{path}/{_token(key)}", "value": value})
        return
    if isinstance(old, list) and isinstance(new, list):
        _diff_lists(path, old, new, ops)
        return
    if type(old) is not type(new) or old != new:
        ops.append({"op": "replace", "path": path, "value": new})


def _is_mapping(value: Any) -> bool:
    # The exact-type check first: an ABC isinstance is slow, and a decoded body is all dicts.
    return type(value) is dict or isinstance(value, Mapping)


def _name(item: Any) -> str | None:
    name = item.get("name") if _is_mapping(item) else None
    return name if isinstance(name, str) else None


def _diff_lists(path: str, old: list[Any], new: list[Any], ops: list[dict[str, Any]]) -> None:
    if old == new:
        return
    n_old, n_new = len(old), len(new)
    shorter = min(n_old, n_new)
    start = 0
    while start < shorter and (old[start] is new[start] or old[start] == new[start]):
        start += 1
    tail = 0
    while tail < shorter - start and old[n_old - 1 - tail] == new[n_new - 1 - tail]:
        tail += 1
    old_mid, new_mid = old[start : n_old - tail], new[start : n_new - tail]
    old_names = {_name(item) for item in old_mid} - {None}
    new_names = {_name(item) for item in new_mid} - {None}
    # Invariant: the list at ``path`` is new[:index] + old_mid[i:] + the common tail.
    index, i, j = start, 0, 0
    while i < len(old_mid) or j < len(new_mid):
        if i == len(old_mid):
            ops.append({"op": "add", "path": f"{path}/{index}", "value": new_mid[j]})
            index, j = index + 1, j + 1
            continue
        if j == len(new_mid):
            ops.append({"op": "remove", "path": f"{path}/{index}"})
            i += 1
            continue
        old_name, new_name = _name(old_mid[i]), _name(new_mid[j])
        if old_name != new_name and new_name is not None and new_name not in old_names:
            ops.append({"op": "add", "path": f"{path}/{index}", "value": new_mid[j]})
            index, j = index + 1, j + 1
        elif old_name != new_name and old_name is not None and old_name not in new_names:
            ops.append({"op": "remove", "path": f"{path}/{index}"})
            i += 1
        else:
            _diff(f"{path}/{index}", old_mid[i], new_mid[j], ops)
            index, i, j = index + 1, i + 1, j + 1


def apply_patch(document: Mapping[str, Any], patch: Patch | list[dict[str, Any]]) -> Any:
    """Apply ``patch`` to a copy of ``document`` with jsonpatch, as the apiserver would:
    ``otel-injector inject`` (:mod:`webhook.core.manifests`) prints its result, and the
    tests check every patch with it."""
    ops = patch.operations if isinstance(patch, Patch) else patch
    return jsonpatch.apply_patch(document, ops, in_place=False)
