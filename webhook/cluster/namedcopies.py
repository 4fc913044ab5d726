"""Copies of the named collector configs (issue 12 §3), kept by the leader.

A named config ``<name>`` (a ConfigMap of the injector's namespace labelled
``otel-injector.io/collector-config=<name>``, read by
:class:`~webhook.cluster.contextcache.ContextCache`) is copied as
``otel-collector-sidecar-<name>`` into each namespace that uses it, and the copy is deleted
when nothing there does. A namespace uses ``<name>`` when:

* it is labelled ``tracing=enabled`` and annotated ``otel-injector.io/collector-config:
  <name>`` (its pods will mount the copy: it is there before the first one), or
* a pod in it, not terminated, is labelled ``otel-injector.io/collector-config=<name>``:
  the injection puts that label on every pod whose sidecar mounts the copy, so a label
  selector at the apiserver sends exactly those pods (not every pod of the cluster), or
* such a pod ran there within ``pod_grace_seconds`` (a rollout does not delete and
  re-create the copy).

It runs inside :class:`~webhook.cluster.reconciler.Reconciler`: the same work queue (one
namespace at a time), the same leader gate, the same ownership rules as the default copy
(:func:`~webhook.cluster.copies.plan_copy`: a user's ConfigMap of that name is never
written; only managed copies are deleted). Named copies carry the annotation
``otel-injector.io/collector-config: <name>``, which is how the reconciler finds the ones
no longer needed, even after their source was deleted. A copy whose source is gone is kept
while pods use it (:func:`plan_copy` keeps a wanted copy when the source is missing).

Each named copy reconciled is a span ``reconcile named collector config`` with the object,
the config, its hash, and the decision and reason; its API calls are client spans under it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from webhook.cluster.client import ApiError, Kube
from webhook.cluster.contextcache import ContextCache
from webhook.cluster.copies import (
    Action,
    Plan,
    build_copy,
    is_terminating,
    plan_copy,
    refusal_event,
)
from webhook.cluster.informer import Informer
from webhook.cluster.objects import JSONDict, annotations_of, labels_of
from webhook.cluster.paths import api_path, configmap_path
from webhook.cluster.workqueue import WorkQueue
from webhook.config.settings import Settings
from webhook.core import names
from webhook.core.context import (
    COLLECTOR_CONFIG_ANNOTATION,
    COLLECTOR_CONFIG_LABEL,
    copy_name,
    is_traced_namespace,
    valid_collector_config_name,
)
from webhook.telemetry.controllerspans import decide, work_span

log = logging.getLogger("webhook.cluster.namedcopies")
#: One span per named copy reconciled (webhook.telemetry.controllerspans).
SPAN_NAME = "reconcile named collector config"


class NamedCopies:
    """Reconciles the named copies of one namespace at a time (see the module docstring)."""

    def __init__(
        self,
        kube: Kube,
        settings: Settings,
        *,
        context: ContextCache,
        namespaces: Informer,
        copies: Informer,
        queue: WorkQueue,
        pod_grace_seconds: float,
        instance: str,
    ) -> None:
        self.kube = kube
        self.namespace = settings.injection.namespace
        self.config_map = settings.injection.config_map
        self.excluded = settings.injection.excluded_namespaces
        self.context = context
        self.namespaces = namespaces
        self.copies = copies
        self.queue = queue
        self.pod_grace_seconds = pod_grace_seconds
        self.instance = instance
        self._lock = threading.Lock()
        # namespace -> config name -> names of the pods using it
        self._pods: dict[str, dict[str, set[str]]] = {}
        self._left: dict[tuple[str, str], float] = {}
        self._refused: dict[tuple[str, str], tuple[str, str]] = {}
        self.pods = Informer(
            kube,
            api_path("v1", "pods"),
            name="named-config-pods",
            label_selector=COLLECTOR_CONFIG_LABEL,
            on_change=self._on_pod,
            transform=slim_named_pod,
        )
        context.on_sources.append(self.enqueue_all)

    def enqueue_all(self) -> None:
        """Queue every namespace that has or may want a named copy."""
        keys = {str((n.get("metadata") or {}).get("name") or "") for n in self.namespaces.items()}
        with self._lock:
            keys |= set(self._pods)
        for key in sorted(k for k in keys if k):
            self.queue.add(key)

    def on_copy(self, obj: JSONDict) -> None:
        """A managed copy changed: re-check its namespace if it is a named one."""
        if COLLECTOR_CONFIG_ANNOTATION in annotations_of(obj):
            self.queue.add(str((obj.get("metadata") or {}).get("namespace") or ""))

    def _on_pod(self, old: JSONDict | None, new: JSONDict | None) -> None:
        obj = new or old or {}
        metadata = obj.get("metadata") or {}
        namespace, pod = str(metadata.get("namespace") or ""), str(metadata.get("name") or "")
        before = _config_of(old) if old is not None else None
        after = _config_of(new) if new is not None and not _terminated(new) else None
        if before == after:
            return
        now = time.monotonic()
        with self._lock:
            by_name = self._pods.setdefault(namespace, {})
            if before is not None:
                users = by_name.get(before, set())
                users.discard(pod)
                if not users:
                    by_name.pop(before, None)
                    self._left[(namespace, before)] = now
            if after is not None:
                by_name.setdefault(after, set()).add(pod)
            if not by_name:
                del self._pods[namespace]
        # Now: a new user may need the copy; a pod that left keeps it for the grace period,
        # after which reconcile() looks again (it schedules that itself).
        self.queue.add(namespace)

    def wanted(self, namespace: str) -> dict[str, str] | None:
        """The named configs ``namespace`` uses, each with why; ``None`` when it does not
        exist, is being deleted, or is never injected (nothing to do there)."""
        obj = self.namespaces.get("", namespace)
        if obj is None or is_terminating(obj) or namespace == self.namespace or namespace in self.excluded:
            return None
        wanted: dict[str, str] = {}
        chosen = str(annotations_of(obj).get(COLLECTOR_CONFIG_ANNOTATION) or "").strip()
        if is_traced_namespace(labels_of(obj)) and valid_collector_config_name(chosen):
            wanted[chosen] = f"namespace labelled {names.TRACING_LABEL}={names.TRACING_ENABLED} chooses it"
        now = time.monotonic()
        with self._lock:
            for name, users in self._pods.get(namespace, {}).items():
                wanted.setdefault(name, f"{len(users)} pod(s) use it")
            for (ns, name), left in list(self._left.items()):
                if now - left >= self.pod_grace_seconds:
                    del self._left[(ns, name)]
                elif ns == namespace:
                    wanted.setdefault(name, "pods used it moments ago")
                    # Look again when the grace is over (the queue keeps the earliest).
                    self.queue.add_after(namespace, self.pod_grace_seconds - (now - left) + 0.1)
        return wanted

    def reconcile(self, namespace: str) -> dict[str, Plan]:
        """Bring one namespace's named copies in line; returns the plan for each name.
        Raises :class:`ApiError` for the worker to retry."""
        wanted = self.wanted(namespace)
        if wanted is None:
            return {}
        present = {
            str(annotations_of(c).get(COLLECTOR_CONFIG_ANNOTATION)): c
            for c in self.copies.items()
            if (c.get("metadata") or {}).get("namespace") == namespace
            and COLLECTOR_CONFIG_ANNOTATION in annotations_of(c)
        }
        log.debug("named copies of %s: wanted %s, present %s", namespace, wanted, sorted(present))
        plans: dict[str, Plan] = {}
        for name in sorted(set(wanted) | set(present)):
            if name not in wanted and not self.pods.synced.is_set():
                plans[name] = Plan(Action.NONE, "pods cannot be listed yet; not deleting any copy")
                self.queue.add_after(namespace, 1.0)  # look again once they can
                continue
            plans[name] = self._traced_one(namespace, name, wanted.get(name))
        return plans

    def _traced_one(self, namespace: str, name: str, why: str | None) -> Plan:
        """:meth:`_reconcile_one` in its span (its API calls are client spans under it)."""
        source = self.context.source(name)
        attributes = {
            "otel_injector.object": f"configmap/{namespace}/{copy_name(self.config_map, name)}",
            "k8s.namespace.name": namespace,
            "otel_injector.collector_config": name,
            "otel_injector.config_hash": source.hash if source is not None else "",
        }
        with work_span(self.kube.tracer, SPAN_NAME, attributes) as span:
            plan = self._reconcile_one(namespace, name, why)
            decide(span, plan.action.value, plan.reason)
            return plan

    def _reconcile_one(self, namespace: str, name: str, why: str | None) -> Plan:
        target = copy_name(self.config_map, name)
        path = configmap_path(namespace, target)
        source = self.context.source(name)
        existing = self.kube.get_or_none(path)
        plan = plan_copy(
            wanted=why is not None, why=why or "no pod or namespace uses it", existing=existing, source=source
        )
        extra = {"namespace": namespace, "collector_config": name, "action": plan.action.value, "reason": plan.reason}
        write: Callable[[], object] | None = None
        if plan.action in (Action.CREATE, Action.UPDATE) and source is not None:
            body = build_copy(
                source,
                namespace=namespace,
                name=target,
                source_ref=f"{self.namespace}/{COLLECTOR_CONFIG_LABEL}={name}",
                existing=existing,
            )
            body["metadata"]["annotations"][COLLECTOR_CONFIG_ANNOTATION] = name
            if plan.action is Action.CREATE:
                write = lambda: self.kube.create(configmap_path(namespace), body)  # noqa: E731
            else:
                write = lambda: self.kube.replace(path, body)  # noqa: E731
        elif plan.action is Action.DELETE and existing is not None:
            metadata = existing.get("metadata") or {}
            write = lambda: self.kube.delete(  # noqa: E731
                path, uid=metadata.get("uid"), resource_version=metadata.get("resourceVersion")
            )
        elif plan.action is Action.REFUSE and existing is not None:
            self._refuse(namespace, name, existing, plan)
        elif plan.action is Action.WAIT:
            log.warning("cannot copy the collector config %s into %s", name, namespace, extra=extra)
        if write is not None:
            try:
                write()
            except ApiError as err:
                if not err.conflict:
                    raise
                self.queue.add(namespace)  # someone else wrote meanwhile: look again
                return plan
            log.info("%s %s in %s", plan.action.value, target, namespace, extra=extra)
        return plan

    def _refuse(self, namespace: str, name: str, existing: JSONDict, plan: Plan) -> None:
        metadata = existing.get("metadata") or {}
        seen = (str(metadata.get("uid") or ""), str(metadata.get("resourceVersion") or ""))
        if self._refused.get((namespace, name)) == seen:
            return
        self._refused[(namespace, name)] = seen
        log.warning("%s/%s: %s", namespace, metadata.get("name"), plan.reason, extra={"namespace": namespace})
        try:
            self.kube.create(
                api_path("v1", "events", namespace), refusal_event(existing, plan.reason, instance=self.instance)
            )
        except ApiError as err:
            log.warning("could not record an Event in %s: %s", namespace, err)


def slim_named_pod(pod: JSONDict) -> JSONDict:
    """What the named-config pod cache keeps: the config label and the phase."""
    metadata = pod.get("metadata") or {}
    label = labels_of(pod).get(COLLECTOR_CONFIG_LABEL)
    return {
        "metadata": {
            "name": metadata.get("name"),
            "namespace": metadata.get("namespace"),
            "resourceVersion": metadata.get("resourceVersion"),
            "labels": {COLLECTOR_CONFIG_LABEL: label} if label is not None else {},
        },
        "status": {"phase": (pod.get("status") or {}).get("phase")},
    }


def _config_of(pod: JSONDict) -> str | None:
    value = labels_of(pod).get(COLLECTOR_CONFIG_LABEL)
    return value if isinstance(value, str) and valid_collector_config_name(value) else None


def _terminated(pod: JSONDict) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")
