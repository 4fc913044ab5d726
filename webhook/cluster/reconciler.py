"""The ConfigMap reconciler: the collector config, copied into every namespace that needs it.

Source of truth: the ConfigMap ``settings.collector_source`` (key ``config.yaml``) in the
injector's namespace. The reconciler keeps a copy named ``settings.injection.config_map``
(``otel-collector-sidecar``) in

* every namespace labelled ``tracing=enabled``, and
* every other namespace that has a running pod which opted in with its own
  ``tracing=enabled`` label and was injected with that ConfigMap (see below).

Each copy it owns carries the label ``app.kubernetes.io/managed-by: otel-injector`` and the
annotation ``otel-injector.io/config-hash: <hash>``. A ConfigMap of that name without the
label (a user made it) or annotated ``otel-injector.io/managed: "false"`` is never written
or deleted; the reconciler logs why and records a Warning Event on it
(``kubectl describe configmap``, ``kubectl get events -n <ns>``). When a namespace no
longer needs a copy, the managed copy, and only a managed one, is deleted.

When the source changes, every replica (leader or not) swaps the config hash in the
injection settings, so newly injected pods record it in their status annotation and
``otel-injector stale`` can find the older ones; the leader updates the copies.

How it runs: four informers (:class:`~webhook.cluster.client.Informer`: list, then watch, re-list
with bounded backoff on errors and ``410 Gone``) over namespaces, the source ConfigMap,
the managed copies (label selector) and opted-in pods (label selector
``tracing=enabled``) turn changes into namespace names on a work queue; one worker thread
reconciles a namespace at a time, level-triggered: it compares what should exist with what
does and acts. A periodic full resync re-checks every namespace, so a missed event costs
at most one resync period. Only the leader writes (:mod:`webhook.cluster.leader`); a follower
keeps its caches warm and takes over with a full resync when it becomes leader.

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
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from webhook.cluster.client import (
    ApiError,
    Backoff,
    Informer,
    JSONDict,
    Kube,
    annotations_of,
    api_path,
    configmap_path,
    labels_of,
)
from webhook.config.settings import Settings
from webhook.core import names
from webhook.core.settings import config_hash

log = logging.getLogger("webhook.cluster.reconciler")

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "otel-injector"
HASH_ANNOTATION = names.ANNOTATION_PREFIX + "config-hash"
SOURCE_ANNOTATION = names.ANNOTATION_PREFIX + "source"
OPTED_IN_SELECTOR = f"{names.TRACING_LABEL}={names.TRACING_ENABLED}"

DEFAULT_RESYNC_SECONDS = 300.0
DEFAULT_POD_GRACE_SECONDS = 60.0
EVENT_COMPONENT = "otel-injector"


# --- Pure part: what should exist, and what to do about what does ---------------------


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
    status = annotations_of(pod).get(names.STATUS_ANNOTATION)
    if status is None:
        return False
    try:
        record = json.loads(status)
    except ValueError:
        return True  # injected, record unreadable: assume the default ConfigMap
    return not isinstance(record, dict) or record.get("configMap", config_map) == config_map


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


def _slim_pod(pod: JSONDict) -> JSONDict:
    """What the pod cache keeps: enough for :func:`pod_mounts_copy`."""
    metadata = pod.get("metadata") or {}
    status = annotations_of(pod).get(names.STATUS_ANNOTATION)
    return {
        "metadata": {
            "name": metadata.get("name"),
            "namespace": metadata.get("namespace"),
            "resourceVersion": metadata.get("resourceVersion"),
            "labels": dict(labels_of(pod)),
            "annotations": {} if status is None else {names.STATUS_ANNOTATION: status},
        },
        "status": {"phase": (pod.get("status") or {}).get("phase")},
    }


# --- The work queue ------------------------------------------------------------------


class WorkQueue:
    """Namespace names to reconcile: de-duplicated, FIFO, with delayed adds."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._ready: dict[str, None] = {}
        self._delayed: dict[str, float] = {}
        self._closed = False

    def add(self, key: str) -> None:
        """Queue ``key`` now (a no-op if it is already queued)."""
        with self._cond:
            self._ready[key] = None
            self._delayed.pop(key, None)
            self._cond.notify()

    def add_after(self, key: str, delay: float) -> None:
        """Queue ``key`` in ``delay`` seconds (the earlier of two delayed adds wins)."""
        due = time.monotonic() + delay
        with self._cond:
            if key not in self._ready and due < self._delayed.get(key, float("inf")):
                self._delayed[key] = due
            self._cond.notify()

    def get(self, timeout: float) -> str | None:
        """The next key, waiting at most ``timeout`` seconds; ``None`` if there is none."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._closed:
                now = time.monotonic()
                for key, due in list(self._delayed.items()):
                    if due <= now:
                        del self._delayed[key]
                        self._ready[key] = None
                if self._ready:
                    key = next(iter(self._ready))
                    del self._ready[key]
                    return key
                wait = min([deadline, *self._delayed.values()]) - now
                if now >= deadline:
                    return None
                self._cond.wait(max(wait, 0.01))
            return None

    def close(self) -> None:
        """Wake every waiter; :meth:`get` returns ``None`` from now on."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()


# --- The controller ------------------------------------------------------------------


class Reconciler:
    """Keeps the copies in step with the source; see the module docstring.

    ``is_leader`` gates every write; ``on_source_hash`` is called (in every replica) with
    the hash of each new source config. Start with :meth:`start`, stop with :meth:`stop`.
    """

    def __init__(
        self,
        kube: Kube,
        settings: Settings,
        *,
        is_leader: Callable[[], bool] = lambda: True,
        on_source_hash: Callable[[str], object] | None = None,
        resync_seconds: float = DEFAULT_RESYNC_SECONDS,
        pod_grace_seconds: float = DEFAULT_POD_GRACE_SECONDS,
        instance: str = "",
    ) -> None:
        self.kube = kube
        self.namespace = settings.injection.namespace
        self.config_map = settings.injection.config_map
        self.source_name = settings.collector_source
        self.excluded = settings.injection.excluded_namespaces
        self.is_leader = is_leader
        self.on_source_hash = on_source_hash
        self.resync_seconds = resync_seconds
        self.pod_grace_seconds = pod_grace_seconds
        self.instance = instance or MANAGED_BY
        self.source: Source | None = None
        self.queue = WorkQueue()
        self._lock = threading.Lock()
        self._pods: dict[str, set[str]] = {}
        self._pods_left: dict[str, float] = {}
        self._refused: dict[str, tuple[str, str]] = {}
        self._failures: dict[str, Backoff] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.namespaces = Informer(kube, api_path("v1", "namespaces"), name="namespaces", on_change=self._on_namespace)
        self.source_informer = Informer(
            kube,
            configmap_path(self.namespace),
            name="source",
            field_selector=f"metadata.name={self.source_name}",
            on_change=self._on_source,
        )
        self.copies = Informer(
            kube,
            api_path("v1", "configmaps"),
            name="copies",
            label_selector=f"{MANAGED_BY_LABEL}={MANAGED_BY}",
            on_change=self._on_copy,
        )
        self.pods = Informer(
            kube,
            api_path("v1", "pods"),
            name="opted-in-pods",
            label_selector=OPTED_IN_SELECTOR,
            on_change=self._on_pod,
            transform=_slim_pod,
        )
        self.informers = (self.namespaces, self.source_informer, self.copies, self.pods)

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Start the informers, the worker and the resync timer (daemon threads)."""
        for informer in self.informers:
            informer.start()
        for name, target in (("reconcile-worker", self._work), ("reconcile-resync", self._resync)):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop everything; bounded by ``timeout`` per thread."""
        self._stop.set()
        self.queue.close()
        for informer in self.informers:
            informer.stop(timeout)
        for thread in self._threads:
            thread.join(timeout)

    def synced(self) -> bool:
        """Whether every informer has loaded its first list. A pod watch refused by RBAC
        does not hold the others up (see :meth:`reconcile`)."""
        required = (self.namespaces, self.source_informer, self.copies)
        return all(i.synced.is_set() for i in required) and (self.pods.synced.is_set() or self.pods.forbidden.is_set())

    def wait_synced(self, timeout: float) -> bool:
        """Wait (bounded) until :meth:`synced`."""
        deadline = time.monotonic() + timeout
        return all(i.synced.wait(max(0.0, deadline - time.monotonic())) for i in self.informers)

    def on_leadership(self, leading: bool) -> None:
        """Leader-election callback: a new leader re-checks every namespace."""
        if leading:
            log.info("leading: reconciling every namespace")
            self.enqueue_all()

    def enqueue_all(self) -> None:
        """Queue every namespace known to any cache."""
        keys = {str((n.get("metadata") or {}).get("name") or "") for n in self.namespaces.items()}
        keys |= {str((c.get("metadata") or {}).get("namespace") or "") for c in self.copies.items()}
        with self._lock:
            keys |= set(self._pods)
        for key in sorted(k for k in keys if k):
            self.queue.add(key)

    # -- change handlers (informer threads) ---------------------------------------------

    def _on_namespace(self, old: JSONDict | None, new: JSONDict | None) -> None:
        obj = new or old or {}
        self.queue.add(str((obj.get("metadata") or {}).get("name") or ""))

    def _on_source(self, old: JSONDict | None, new: JSONDict | None) -> None:
        del old
        source = read_source(new)
        if source is None:
            log.warning(
                "source collector config %s/%s is missing or has no %s; copies are kept as they are",
                self.namespace,
                self.source_name,
                names.CONFIG_KEY,
            )
            return
        previous = self.source
        self.source = source
        if previous == source:
            return
        log.info("source collector config changed", extra={"config_hash": source.hash})
        if self.on_source_hash is not None and (previous is None or previous.hash != source.hash):
            self.on_source_hash(source.hash)
        self.enqueue_all()

    def _on_copy(self, old: JSONDict | None, new: JSONDict | None) -> None:
        obj = new or old or {}
        metadata = obj.get("metadata") or {}
        if metadata.get("name") == self.config_map:
            self.queue.add(str(metadata.get("namespace") or ""))

    def _on_pod(self, old: JSONDict | None, new: JSONDict | None) -> None:
        obj = new or old or {}
        metadata = obj.get("metadata") or {}
        namespace, name = str(metadata.get("namespace") or ""), str(metadata.get("name") or "")
        needs = new is not None and pod_mounts_copy(new, self.config_map)
        with self._lock:
            pods = self._pods.setdefault(namespace, set())
            before = len(pods)
            if needs:
                pods.add(name)
            else:
                pods.discard(name)
            after = len(pods)
            if not pods:
                del self._pods[namespace]
            if before and not after:
                self._pods_left[namespace] = time.monotonic()
            elif after:
                self._pods_left.pop(namespace, None)
        if after and not before:
            self.queue.add(namespace)
        elif before and not after:
            self.queue.add_after(namespace, self.pod_grace_seconds + 0.1)

    # -- the worker ---------------------------------------------------------------------

    def _resync(self) -> None:
        while not self._stop.wait(self.resync_seconds):
            self.enqueue_all()

    def _work(self) -> None:
        while not self._stop.is_set():
            key = self.queue.get(timeout=1.0)
            if key is None or self._stop.is_set():
                continue
            if not self.is_leader():
                continue  # the leader does the writing; a new leader resyncs everything
            if not self.synced():
                self.queue.add_after(key, 0.2)
                continue
            try:
                self.reconcile(key)
                self._failures.pop(key, None)
            except ApiError as err:
                delay = self._failures.setdefault(key, Backoff(1.0, 60.0)).next()
                log.warning("reconciling namespace %s failed, retrying in %.1fs: %s", key, delay, err)
                self.queue.add_after(key, delay)
            except Exception:
                delay = self._failures.setdefault(key, Backoff(1.0, 60.0)).next()
                log.exception("reconciling namespace %s crashed, retrying in %.1fs", key, delay)
                self.queue.add_after(key, delay)

    def wanted(self, namespace: str) -> tuple[bool, str] | None:
        """Whether ``namespace`` should have a copy; ``None`` when it does not exist or is
        being deleted (nothing to do there)."""
        obj = self.namespaces.get("", namespace)
        if obj is None or is_terminating(obj) or namespace == self.namespace:
            return None
        with self._lock:
            pods = len(self._pods.get(namespace, ()))
            left = self._pods_left.get(namespace)
        recently = left is not None and time.monotonic() - left < self.pod_grace_seconds
        return namespace_wants_copy(obj, excluded=self.excluded, opted_in_pods=pods, pods_left_recently=recently)

    def reconcile(self, namespace: str) -> Plan | None:
        """Bring one namespace's copy in line; returns the plan carried out. Raises
        :class:`ApiError` for the worker to retry."""
        verdict = self.wanted(namespace)
        if verdict is None:
            return None
        wanted, why = verdict
        if not wanted and not self.pods.synced.is_set():
            # Without the pod list no copy can be proven unneeded: keep them all.
            return Plan(Action.NONE, "pods cannot be listed (RBAC?); not deleting any copy")
        source = self.source
        cached = self.copies.get(namespace, self.config_map)
        if cached is not None and source is not None and wanted and is_current(cached, source):
            return Plan(Action.NONE, "copy is current")
        if cached is None and not wanted:
            # Only managed copies are ever deleted and they are all in the cache.
            return Plan(Action.NONE, f"no managed copy, none needed ({why})")
        path = configmap_path(namespace, self.config_map)
        existing = self.kube.get_or_none(path)
        plan = plan_copy(wanted=wanted, why=why, existing=existing, source=source)
        extra = {"namespace": namespace, "action": plan.action.value, "reason": plan.reason}
        if plan.action is Action.CREATE and source is not None:
            body = build_copy(source, namespace=namespace, name=self.config_map, source_ref=self._source_ref())
            try:
                self.kube.create(configmap_path(namespace), body)
            except ApiError as err:
                if not err.conflict:
                    raise
                self.queue.add(namespace)  # someone made one meanwhile: look again
                return plan
            log.info("created %s in %s", self.config_map, namespace, extra=extra)
        elif plan.action is Action.UPDATE and source is not None and existing is not None:
            body = build_copy(
                source, namespace=namespace, name=self.config_map, source_ref=self._source_ref(), existing=existing
            )
            try:
                self.kube.replace(path, body)
            except ApiError as err:
                if not err.conflict:
                    raise
                self.queue.add(namespace)
                return plan
            log.info("updated %s in %s", self.config_map, namespace, extra=extra)
        elif plan.action is Action.DELETE and existing is not None:
            metadata = existing.get("metadata") or {}
            try:
                self.kube.delete(path, uid=metadata.get("uid"), resource_version=metadata.get("resourceVersion"))
            except ApiError as err:
                if not err.conflict:
                    raise
                self.queue.add(namespace)
                return plan
            log.info("deleted %s in %s", self.config_map, namespace, extra=extra)
        elif plan.action is Action.REFUSE and existing is not None:
            self._refuse(namespace, existing, plan)
        elif plan.action is Action.WAIT:
            log.warning("cannot copy the collector config into %s", namespace, extra=extra)
        return plan

    def _refuse(self, namespace: str, existing: JSONDict, plan: Plan) -> None:
        metadata = existing.get("metadata") or {}
        seen = (str(metadata.get("uid") or ""), str(metadata.get("resourceVersion") or ""))
        if self._refused.get(namespace) == seen:
            return  # already said so for this version of the ConfigMap
        self._refused[namespace] = seen
        log.warning(
            "%s/%s: %s", namespace, self.config_map, plan.reason, extra={"namespace": namespace, "action": "refuse"}
        )
        try:
            self.kube.create(
                api_path("v1", "events", namespace), refusal_event(existing, plan.reason, instance=self.instance)
            )
        except ApiError as err:
            log.warning("could not record an Event in %s: %s", namespace, err)

    def _source_ref(self) -> str:
        return f"{self.namespace}/{self.source_name}"
