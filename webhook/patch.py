"""The JSON patch between the pod the apiserver sent and the injected pod.

The patch is a diff of two plain dicts (``jsonpatch``), never a re-serialization through a
typed model, so fields this injector does not know (a newer API's, another webhook's)
cannot be dropped. jsonpatch matches unchanged list items, so inserting an init container
at the front yields one ``add``, not a rewrite of every container after it.
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


def _dumps(value: Any) -> str:
    # jsonpatch serializes list items to compare them; orjson does that several times faster.
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def make_patch(original: Mapping[str, Any], mutated: Mapping[str, Any]) -> Patch:
    """The operations that turn ``original`` into ``mutated``; :data:`EMPTY` when equal."""
    if original is mutated:
        return EMPTY
    ops = jsonpatch.JsonPatch.from_diff(original, mutated, dumps=_dumps).patch
    if not ops:
        return EMPTY
    return Patch(operations=ops, body=orjson.dumps(ops))


def apply_patch(document: Mapping[str, Any], patch: Patch | list[dict[str, Any]]) -> Any:
    """Apply ``patch`` to a copy of ``document`` (for the CLI and for tests)."""
    ops = patch.operations if isinstance(patch, Patch) else patch
    return jsonpatch.apply_patch(document, ops, in_place=False)
