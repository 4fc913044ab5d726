"""The leader's view of every pod, trimmed to what the rules read
(:mod:`webhook.cluster.missing` keeps one per pod in its informer).

An untrimmed pod as the apiserver sends it (about 10 KB of JSON for the bench's typical
pod) takes about 65 KB as Python objects; this view about 2.9 KB
(``python -m bench.perf.missingpass``). It must give every rule the same answer as the
whole pod: tests/unit/cluster/test_podview.py checks that on every golden input, before
and after injection.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import TypeVar

from webhook.cluster.objects import JSONDict, annotations_of, labels_of
from webhook.core import names
from webhook.core.status import Status

#: Annotations the rules read besides ``otel-injector.io/*``; every other one is dropped.
_KEPT_ANNOTATIONS = (names.MIRROR_POD_ANNOTATION,)
_T = TypeVar("_T")


def slim_pod_for_rules(pod: JSONDict) -> JSONDict:
    """What the pod cache keeps: every field :func:`~webhook.core.decision.decide`,
    :func:`~webhook.cluster.stale.stale_reasons` and the owner lookup read, nothing else:
    labels, the ``otel-injector.io/*`` annotations, the owner references, the phase,
    container names and, for a pod not injected, the ports, volume names and
    ``hostNetwork``. An injected pod's status record is kept with only the fields the
    rules read (config hash, ConfigMap, image, mode, sidecars); the spec details are not
    kept for it, since ``decide`` answers ``already-injected`` before it looks at them.
    Repeated strings (namespace, names, label values) are interned: thousands of pods
    share a few hundred distinct ones (measured in bench/perf/missingpass.py)."""
    metadata = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    annotations = {
        _intern(k): _compact_status(v) if k == names.STATUS_ANNOTATION else v
        for k, v in annotations_of(pod).items()
        if k.startswith(names.ANNOTATION_PREFIX) or k in _KEPT_ANNOTATIONS
    }
    injected = names.STATUS_ANNOTATION in annotations
    slim: JSONDict = {
        "metadata": {
            "name": metadata.get("name"),
            "namespace": _intern(metadata.get("namespace")),
            "uid": metadata.get("uid"),
            "resourceVersion": metadata.get("resourceVersion"),
            "labels": {_intern(k): _intern(v) for k, v in labels_of(pod).items()},
            "annotations": annotations,
            "ownerReferences": [
                {k: _intern(ref.get(k)) for k in ("kind", "name", "uid", "controller")}
                for ref in metadata.get("ownerReferences") or []
                if isinstance(ref, dict)
            ],
        },
        "spec": {
            "containers": _slim_containers(spec.get("containers"), ports=not injected),
            "initContainers": _slim_containers(spec.get("initContainers"), ports=not injected),
        },
        "status": {"phase": _intern((pod.get("status") or {}).get("phase"))},
    }
    if not injected:
        slim["spec"]["volumes"] = [
            {"name": _intern(v.get("name"))} for v in spec.get("volumes") or [] if isinstance(v, dict)
        ]
        if spec.get("hostNetwork") is True:
            slim["spec"]["hostNetwork"] = True
    for key in ("generateName", "deletionTimestamp"):
        if metadata.get(key):
            slim["metadata"][key] = _intern(metadata[key])
    return slim


def _compact_status(raw: object) -> object:
    """The status record with only the fields the rules read; an unreadable one as it is."""
    status = Status.parse(raw) if isinstance(raw, str) else None
    if status is None:
        return raw
    kept = Status(config_hash=status.config_hash, config_map=status.config_map, image=status.image, mode=status.mode)
    return _intern(dataclasses.replace(kept, sidecars=status.sidecars).to_annotation())


def _intern(value: _T) -> _T:
    return sys.intern(value) if isinstance(value, str) else value  # type: ignore[return-value]


def _slim_containers(containers: object, *, ports: bool) -> list[JSONDict]:
    if not isinstance(containers, list):
        return []
    slim = []
    for c in containers:
        if isinstance(c, dict):
            kept: JSONDict = {"name": _intern(c.get("name"))}
            found = [{"containerPort": p.get("containerPort")} for p in c.get("ports") or [] if isinstance(p, dict)]
            if ports and found:
                kept["ports"] = found
            slim.append(kept)
    return slim
