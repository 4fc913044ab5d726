"""The workload that owns a pod, looked up through the API (and cached), for the repair and
rollout loops: its kind, name, uid (an Event's ``involvedObject``) and annotations (the
``otel-injector.io/auto-restart`` opt-in).

:func:`webhook.core.workload.infer_workload` names the owner from the pod alone, through
naming conventions; a write needs the real one. A pod's controller is a ReplicaSet for a
Deployment's pods, so the ReplicaSet is read (``get replicasets``) and its own controller
followed one step: a ReplicaSet owned by something other than a Deployment (an Argo
Rollout, say) is reported as that kind, and never rolled by us.

Lookups are cached for ``ttl`` seconds (the reconciler's resync period by default), so a
pass over thousands of out-of-date pods costs at most two GETs per workload per ``ttl``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from webhook.cluster.client import ApiError, Kube
from webhook.cluster.objects import JSONDict, annotations_of
from webhook.cluster.paths import api_path

#: Kinds the leader rolls, and their API group version and resource.
ROLLABLE: Mapping[str, tuple[str, str]] = {
    "Deployment": ("apps/v1", "deployments"),
    "StatefulSet": ("apps/v1", "statefulsets"),
    "DaemonSet": ("apps/v1", "daemonsets"),
}
_READABLE: Mapping[str, tuple[str, str]] = {**ROLLABLE, "ReplicaSet": ("apps/v1", "replicasets")}


@dataclass(frozen=True)
class Owner:
    """The top workload of a pod: a Deployment, StatefulSet, DaemonSet, a Job, another
    controller's kind, or ``Pod`` for a bare pod."""

    namespace: str
    kind: str
    name: str
    uid: str = ""
    api_version: str = "v1"
    annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def rollable(self) -> bool:
        """Whether the leader may roll it (never Jobs, bare pods or foreign controllers)."""
        return self.kind in ROLLABLE

    @property
    def path(self) -> str:
        """Its API path (rollable kinds only)."""
        group_version, resource = ROLLABLE[self.kind]
        return api_path(group_version, resource, self.namespace, self.name)

    @property
    def key(self) -> str:
        """``<namespace>/<Kind>/<name>``, the restart budget's key."""
        return f"{self.namespace}/{self.kind}/{self.name}"


def controller_ref(pod: Mapping[str, Any]) -> tuple[str, str, str] | None:
    """(kind, name, uid) of the pod's controller ownerReference, or ``None``."""
    refs = (pod.get("metadata") or {}).get("ownerReferences")
    if not isinstance(refs, list):
        return None
    for ref in refs:
        if isinstance(ref, Mapping) and ref.get("controller") and isinstance(ref.get("kind"), str):
            return str(ref["kind"]), str(ref.get("name") or ""), str(ref.get("uid") or "")
    return None


def owner_from_object(namespace: str, kind: str, obj: Mapping[str, Any]) -> Owner:
    """An :class:`Owner` from a workload object as the API returned it."""
    metadata = obj.get("metadata") or {}
    return Owner(
        namespace=namespace,
        kind=kind,
        name=str(metadata.get("name") or ""),
        uid=str(metadata.get("uid") or ""),
        api_version=str(obj.get("apiVersion") or _READABLE.get(kind, ("v1", ""))[0]),
        annotations=dict(annotations_of(obj)),
    )


class Owners:
    """Cached owner lookups. Thread-safe; ``clock`` is monotonic seconds."""

    def __init__(self, kube: Kube, *, ttl: float, clock: Callable[[], float]) -> None:
        self.kube = kube
        self.ttl = ttl
        self.clock = clock
        self._cache: dict[tuple[str, str, str], tuple[float, Owner]] = {}
        self._lock = threading.Lock()

    def of_pod(self, pod: Mapping[str, Any]) -> Owner:
        """The owner of ``pod`` (a bare pod is its own). Raises :class:`ApiError` when a
        lookup fails for another reason than 404 (a vanished owner reads as the kind the
        pod names, with no uid)."""
        metadata = pod.get("metadata") or {}
        namespace, name = str(metadata.get("namespace") or ""), str(metadata.get("name") or "")
        ref = controller_ref(pod)
        if ref is None:
            return Owner(namespace, "Pod", name, str(metadata.get("uid") or ""), "v1")
        return self.resolve(namespace, ref[0], ref[1], ref[2])

    def cached_of_pod(self, pod: Mapping[str, Any]) -> Owner | None:
        """The owner of ``pod`` if known without an API call (a bare pod, or a fresh cache
        entry); ``None`` otherwise."""
        ref = controller_ref(pod)
        if ref is None:
            return self.of_pod(pod)
        namespace = str((pod.get("metadata") or {}).get("namespace") or "")
        with self._lock:
            hit = self._cache.get((namespace, ref[0], ref[1]))
        if hit is not None and self.clock() - hit[0] < self.ttl:
            return hit[1]
        return None

    def resolve(self, namespace: str, kind: str, name: str, uid: str = "") -> Owner:
        """The top owner of the workload ``kind``/``name`` (``uid`` from the reference):
        a ReplicaSet's Deployment. Only ReplicaSets and the rollable kinds are read; any
        other kind (a Job, another controller's) is taken as the reference names it."""
        key = (namespace, kind, name)
        now = self.clock()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        owner = self._lookup(namespace, kind, name, uid)
        with self._lock:
            self._cache[key] = (now, owner)
            if len(self._cache) > 4096:  # bounded: drop the oldest half
                for old in sorted(self._cache, key=lambda k: self._cache[k][0])[:2048]:
                    del self._cache[old]
        return owner

    def refresh(self, owner: Owner) -> JSONDict | None:
        """The workload object now (uncached), or ``None`` when it is gone."""
        if not owner.rollable:
            return None
        return self.kube.get_or_none(owner.path)

    def _lookup(self, namespace: str, kind: str, name: str, uid: str) -> Owner:
        where = _READABLE.get(kind)
        if where is None:  # a Job, or another controller's kind: never rolled, so not read
            return Owner(namespace, kind, name, uid, "batch/v1" if kind == "Job" else "v1")
        obj = self._get(api_path(where[0], where[1], namespace, name))
        if obj is None:
            return Owner(namespace, kind, name, uid, where[0])
        if kind == "ReplicaSet":
            parent = controller_ref(obj)
            if parent is None:
                return owner_from_object(namespace, kind, obj)
            if parent[0] != "Deployment":
                return Owner(namespace, parent[0], parent[1], parent[2])
            deployment = self._get(api_path("apps/v1", "deployments", namespace, parent[1]))
            if deployment is None:
                return Owner(namespace, "Deployment", parent[1], parent[2], "apps/v1")
            return owner_from_object(namespace, "Deployment", deployment)
        return owner_from_object(namespace, kind, obj)

    def _get(self, path: str) -> JSONDict | None:
        try:
            return self.kube.get_or_none(path)
        except ApiError as err:
            if err.status in (401, 403):
                raise ApiError(err.status, f"{err} (grant get on it to the injector)") from err
            raise
