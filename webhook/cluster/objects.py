"""Plain-JSON Kubernetes objects: the type the cluster layer passes around, and safe
accessors for the metadata every controller reads.

Objects stay the dictionaries the API server sends, never the ``kubernetes`` package's
typed models, so a field this code does not know is never dropped on a write-back (the
round-trip bug of peers.md #5). The accessors tolerate missing or mistyped metadata.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

JSONDict = dict[str, Any]


def labels_of(obj: Mapping[str, Any] | None) -> Mapping[str, str]:
    """``metadata.labels``, or an empty mapping."""
    labels = ((obj or {}).get("metadata") or {}).get("labels") or {}
    return labels if isinstance(labels, Mapping) else {}


def annotations_of(obj: Mapping[str, Any] | None) -> Mapping[str, str]:
    """``metadata.annotations``, or an empty mapping."""
    annotations = ((obj or {}).get("metadata") or {}).get("annotations") or {}
    return annotations if isinstance(annotations, Mapping) else {}


def object_key(obj: Mapping[str, Any]) -> tuple[str, str]:
    """(namespace, name) of an object; the namespace is "" for cluster-scoped ones."""
    metadata = obj.get("metadata") or {}
    return str(metadata.get("namespace") or ""), str(metadata.get("name") or "")


def resource_version_of(obj: Mapping[str, Any]) -> str:
    """``metadata.resourceVersion``, or ""."""
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")
