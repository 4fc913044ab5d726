"""Namespace-level defaults (issue 12 §4): a Namespace's ``otel-injector.io/*`` annotations
apply to its pods; the pod's own value wins.

Every pod override annotation may be set on the Namespace
(:func:`~webhook.core.context.namespace_defaults` picks the inheritable ones). The two
config choices are one choice: ``otel-injector.io/config`` (a ConfigMap the user manages)
and ``otel-injector.io/collector-config`` (a named managed config). When the pod sets
either, the Namespace's value of both is dropped, so the more specific level decides,
whichever key it uses.

A bad value inherited from the Namespace gets the same fallback and warning as on the pod,
with "(from namespace <name>)" after the annotation, so the user knows where to fix it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from webhook.core.bounds import clip
from webhook.core.context import COLLECTOR_CONFIG_ANNOTATION
from webhook.core.overrides import CONFIG, Notice

_CONFIG_CHOICE = (CONFIG, COLLECTOR_CONFIG_ANNOTATION)


def with_namespace_defaults(
    annotations: Mapping[str, Any], namespace_annotations: Mapping[str, str]
) -> tuple[Mapping[str, Any], frozenset[str]]:
    """The pod's annotations over the Namespace's; returns them and the keys that came from
    the Namespace. Without Namespace annotations, the pod's own mapping, unchanged."""
    if not namespace_annotations:
        return annotations, frozenset()
    inherited = {key: value for key, value in namespace_annotations.items() if key not in annotations}
    if any(key in annotations for key in _CONFIG_CHOICE):
        for key in _CONFIG_CHOICE:
            inherited.pop(key, None)
    if not inherited:
        return annotations, frozenset()
    return {**inherited, **annotations}, frozenset(inherited)


def mark_inherited(notices: Iterable[Notice], inherited: frozenset[str], namespace: str) -> list[Notice]:
    """Say "(from namespace <ns>)" in each notice about an inherited annotation (the
    override notices start with the annotation's key)."""
    marked = []
    for notice in notices:
        key = notice.message.split(":", 1)[0]
        if key in inherited:
            where = f"{key} (from namespace {clip(namespace)})"
            marked.append(Notice(notice.reason, where + notice.message[len(key) :]))
        else:
            marked.append(notice)
    return marked
