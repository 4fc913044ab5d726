"""The managed copies of the collector config: which namespaces want one, and what to do
about the ConfigMap each has. Pure: objects in, a plan out; :mod:`webhook.cluster.reconciler`
carries the plans out.

Pods that opt in by their own label
-----------------------------------
The webhook's second entry (``object.otel-injector.io``) injects pods labelled
``tracing=enabled`` in namespaces that are not. Their sidecar mounts the ConfigMap, so it
must exist in that namespace too, or the pod hangs in ContainerCreating (peers.md #8).

Design chosen: **the reconciler watches pods with the label selector ``tracing=enabled``**
and treats "an injected, non-terminated pod with that label that mounts our ConfigMap" as
a reason for the namespace to have a copy, exactly like the namespace label. The watch
event arrives within milliseconds of the pod's creation, long before a scheduler and a
kubelet get to mounting volumes; and the kubelet retries a missing ConfigMap volume anyway,
so even a late copy only delays the pod, never wedges it.

Why not create the ConfigMap synchronously in the admission webhook:

* admission would then depend on a write to the API server inside the API server's own
  request, adding latency and a failure mode to every pod creation, under a 10 s budget;
* every replica would write, which defeats the single-writer rule (leader election);
* the webhook would need to skip dry-run requests and still could not undo a copy for a
  pod whose creation later failed (another webhook or a quota rejecting it);
* pods injected by ``otel-injector inject`` (no webhook) would still be missed.

The price: cluster-wide ``get/list/watch`` on pods (read only, and filtered by label at
the API server, so only opted-in pods travel), and a window of a few hundred milliseconds
in which the ConfigMap may not exist yet, which the kubelet's retry covers. Without that
permission the rest of the reconciler still works (an error is logged, the pod watch is
retried) and, since no copy can then be proven unneeded, no copy is deleted.

Clean-up of such copies: when the last such pod in an unlabelled namespace is gone, the
copy is kept for ``pod_grace_seconds`` (default 60 s) so a rollout that replaces every
pod does not delete and re-create it, then deleted. A pod that appears right after the
deletion gets a new copy from its own watch event. Pods injected only because their
namespace was labelled do not keep a copy alive: removing the namespace label removes it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from webhook.cluster.objects import JSONDict, annotations_of, labels_of
from webhook.core import names
from webhook.core.settings import config_hash
from webhook.core.status import Status

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "otel-injector"
HASH_ANNOTATION = names.ANNOTATION_PREFIX + "config-hash"
SOURCE_ANNOTATION = names.ANNOTATION_PREFIX + "source"
OPTED_IN_SELECTOR = f"{names.TRACING_LABEL}={names.TRACING_ENABLED}"
EVENT_COMPONENT = "otel-injector"


@dataclass(frozen=True)
class Source:
    """The source config: the ``data`` to copy and the hash of its ``config.yaml``."""

    data: Mapping[str, str]
    hash: str


def read_source(configmap: Mapping[str, Any] | None) -> Source | None:
    """The :class:`Source` in a ConfigMap, or ``None`` if it has no ``config.yaml``."""
    if not configmap:
        return None
    data = configmap.get("data") or {}
    config = data.get(names.CONFIG_KEY) if isinstance(data, Mapping) else None
    if not isinstance(config, str):
        return None
    clean = {str(k): str(v) for k, v in data.items() if isinstance(v, str)}
    return Source(data=clean, hash=config_hash(config.encode("utf-8")))


class Ownership(enum.StrEnum):
    """Who a ConfigMap named like our copy belongs to."""

    ABSENT = "absent"
    MANAGED = "managed"  # ours: the managed-by label
    USER = "user"  # no managed-by label: someone else made it
    OPTED_OUT = "opted-out"  # annotated otel-injector.io/managed: "false"


def ownership(configmap: Mapping[str, Any] | None) -> Ownership:
    """Classify an existing ConfigMap. The ``managed: "false"`` annotation wins over the
    label, so a user can take over a copy the reconciler made."""
    if configmap is None:
        return Ownership.ABSENT
    if str(annotations_of(configmap).get(names.MANAGED_ANNOTATION, "")).strip().lower() == "false":
        return Ownership.OPTED_OUT
    if labels_of(configmap).get(MANAGED_BY_LABEL) == MANAGED_BY:
        return Ownership.MANAGED
    return Ownership.USER


def is_current(configmap: Mapping[str, Any], source: Source) -> bool:
    """Whether ``configmap`` holds exactly the source's data and is annotated with its hash."""
    return (
        dict(configmap.get("data") or {}) == dict(source.data)
        and annotations_of(configmap).get(HASH_ANNOTATION) == source.hash
        and labels_of(configmap).get(MANAGED_BY_LABEL) == MANAGED_BY
    )


def build_copy(
    source: Source,
    *,
    namespace: str,
    name: str,
    source_ref: str,
    existing: Mapping[str, Any] | None = None,
) -> JSONDict:
    """The managed copy for ``namespace``. With ``existing``, its metadata (and so its
    resourceVersion, for a compare-and-swap update) and foreign labels and annotations are
    kept; the data is replaced whole."""
    metadata: JSONDict = {"name": name, "namespace": namespace}
    if existing is not None:
        metadata = {k: v for k, v in (existing.get("metadata") or {}).items() if k != "managedFields"}
    metadata["labels"] = {**labels_of(existing), MANAGED_BY_LABEL: MANAGED_BY}
    metadata["annotations"] = {
        **annotations_of(existing),
        HASH_ANNOTATION: source.hash,
        SOURCE_ANNOTATION: source_ref,
    }
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": dict(source.data)}


class Action(enum.StrEnum):
    """What :func:`plan_copy` decided."""

    NONE = "none"
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    REFUSE = "refuse"  # wanted, but not ours to write: log and record an Event
    WAIT = "wait"  # wanted, but the source config is missing


@dataclass(frozen=True)
class Plan:
    """An action and the one-line reason for it (logged, and the Event message)."""

    action: Action
    reason: str


def plan_copy(*, wanted: bool, why: str, existing: Mapping[str, Any] | None, source: Source | None) -> Plan:
    """Decide what to do with a namespace's ConfigMap. Pure; ``why`` says why the
    namespace does or does not want a copy."""
    owner = ownership(existing)
    if owner is Ownership.ABSENT:
        if not wanted:
            return Plan(Action.NONE, f"no copy, none needed ({why})")
        if source is None:
            return Plan(Action.WAIT, "the source collector config is missing or has no config.yaml")
        return Plan(Action.CREATE, f"copy missing ({why})")
    if existing is None:  # for the type checker: ABSENT was handled above
        return Plan(Action.NONE, "no ConfigMap")
    if owner in (Ownership.USER, Ownership.OPTED_OUT):
        if not wanted or source is None or dict(existing.get("data") or {}) == dict(source.data):
            return Plan(Action.NONE, f"ConfigMap is {owner.value}; left alone")
        detail = (
            f'it is annotated {names.MANAGED_ANNOTATION}: "false"'
            if owner is Ownership.OPTED_OUT
            else f"it has no {MANAGED_BY_LABEL}={MANAGED_BY} label, so a user made it"
        )
        return Plan(Action.REFUSE, f"not overwriting the ConfigMap with the collector config {source.hash}: {detail}")
    if not wanted:
        return Plan(Action.DELETE, f"managed copy no longer needed ({why})")
    if source is None:
        return Plan(Action.NONE, "the source collector config is missing; keeping the copy as it is")
    if is_current(existing, source):
        return Plan(Action.NONE, "copy is current")
    return Plan(Action.UPDATE, f"copy is out of date (config {source.hash})")


def pod_mounts_copy(pod: Mapping[str, Any], config_map: str) -> bool:
    """Whether ``pod`` opted in by its own label, was injected, mounts ``config_map`` and
    has not terminated: such a pod keeps a copy alive in an unlabelled namespace."""
    if labels_of(pod).get(names.TRACING_LABEL) != names.TRACING_ENABLED:
        return False
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return False
    raw = annotations_of(pod).get(names.STATUS_ANNOTATION)
    if raw is None:
        return False
    status = Status.parse(raw)
    # Injected, record unreadable: assume it mounts the configured ConfigMap.
    return status is None or status.mounts(config_map)


def namespace_wants_copy(
    namespace: Mapping[str, Any],
    *,
    excluded: Iterable[str],
    opted_in_pods: int,
    pods_left_recently: bool,
) -> tuple[bool, str]:
    """Whether a namespace should have a copy, and why (pure)."""
    name = str((namespace.get("metadata") or {}).get("name") or "")
    if name in set(excluded):
        return False, f"namespace {name} is excluded from injection"
    if labels_of(namespace).get(names.TRACING_LABEL) == names.TRACING_ENABLED:
        return True, f"namespace labelled {OPTED_IN_SELECTOR}"
    if opted_in_pods:
        return True, f"{opted_in_pods} injected pod(s) labelled {OPTED_IN_SELECTOR}"
    if pods_left_recently:
        return True, f"pods labelled {OPTED_IN_SELECTOR} ran here moments ago"
    return False, f"namespace not labelled {OPTED_IN_SELECTOR} and no injected pod opted in"


def is_terminating(namespace: Mapping[str, Any]) -> bool:
    """A namespace being deleted accepts no new objects; its copies go with it."""
    return bool((namespace.get("metadata") or {}).get("deletionTimestamp")) or (
        (namespace.get("status") or {}).get("phase") == "Terminating"
    )


def refusal_event(configmap: Mapping[str, Any], message: str, *, instance: str) -> JSONDict:
    """A core/v1 Warning Event on ``configmap`` explaining why it was not overwritten."""
    metadata = configmap.get("metadata") or {}
    now = datetime.now(UTC)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{metadata.get('name')}.", "namespace": metadata.get("namespace")},
        "involvedObject": {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "namespace": metadata.get("namespace"),
            "name": metadata.get("name"),
            "uid": metadata.get("uid"),
            "resourceVersion": metadata.get("resourceVersion"),
        },
        "reason": "ConfigMapNotManaged",
        "message": message,
        "type": "Warning",
        "source": {"component": EVENT_COMPONENT},
        "reportingComponent": EVENT_COMPONENT,
        "reportingInstance": instance[:128],
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "eventTime": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "action": "Reconcile",
        "count": 1,
    }


def slim_pod(pod: JSONDict) -> JSONDict:
    """What the pod cache keeps: enough for :func:`pod_mounts_copy`."""
    metadata = pod.get("metadata") or {}
    status = annotations_of(pod).get(names.STATUS_ANNOTATION)
    slim: JSONDict = {
        "metadata": {
            "name": metadata.get("name"),
            "namespace": metadata.get("namespace"),
            "resourceVersion": metadata.get("resourceVersion"),
            "labels": dict(labels_of(pod)),
            "annotations": {} if status is None else {names.STATUS_ANNOTATION: status},
        },
        "status": {"phase": (pod.get("status") or {}).get("phase")},
    }
    # The admission's trace context, for the reconciler span's link (reconcilespans).
    admission = annotations_of(pod).get(names.ADMISSION_TRACE_ANNOTATION)
    if isinstance(admission, str) and len(admission) <= 64:
        slim["metadata"]["annotations"] = {
            **slim["metadata"]["annotations"],
            names.ADMISSION_TRACE_ANNOTATION: admission,
        }
    return slim
