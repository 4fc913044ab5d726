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

How it runs: four informers (:class:`~webhook.cluster.informer.Informer`: list, then watch, re-list
with bounded backoff on errors and ``410 Gone``) over namespaces, the source ConfigMap,
the managed copies (label selector) and opted-in pods (label selector
``tracing=enabled``) turn changes into namespace names on a work queue; one worker thread
reconciles a namespace at a time, level-triggered: it compares what should exist with what
does and acts. A periodic full resync re-checks every namespace, so a missed event costs
at most one resync period. Only the leader writes (:mod:`webhook.cluster.leader`); a follower
keeps its caches warm and takes over with a full resync when it becomes leader.

What a namespace wants and what to do about its ConfigMap is decided, purely, in
:mod:`webhook.cluster.copies`, which also says why pods that opt in by their own label
are watched instead of getting their ConfigMap from the admission itself.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from webhook.cluster.backoff import Backoff
from webhook.cluster.client import ApiError, Kube
from webhook.cluster.copies import (
    MANAGED_BY,
    MANAGED_BY_LABEL,
    OPTED_IN_SELECTOR,
    Action,
    Plan,
    Source,
    build_copy,
    is_current,
    is_terminating,
    namespace_wants_copy,
    plan_copy,
    pod_mounts_copy,
    read_source,
    refusal_event,
    slim_pod,
)
from webhook.cluster.informer import Informer
from webhook.cluster.objects import JSONDict
from webhook.cluster.paths import api_path, configmap_path
from webhook.cluster.reconcilespans import traced_reconcile, traced_source_change
from webhook.cluster.workqueue import WorkQueue
from webhook.config.settings import Settings
from webhook.config.timings import ClusterTimings
from webhook.core import names

log = logging.getLogger("webhook.cluster.reconciler")

_DEFAULTS = ClusterTimings()


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
        resync_seconds: float = _DEFAULTS.resync_seconds,
        pod_grace_seconds: float = _DEFAULTS.pod_grace_seconds,
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
            on_change=lambda old, new: traced_source_change(self, self._on_source, old, new),
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
            transform=slim_pod,
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
                traced_reconcile(self, key)  # self.reconcile(key), in its span
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
