"""The restart worker: the leader's one thread that rolls workloads, one at a time, within
the restart budget (:class:`~webhook.core.restartbudget.RestartBudget`).

A rollout is exactly what ``kubectl rollout restart`` does: a merge patch of
``spec.template.metadata.annotations["kubectl.kubernetes.io/restartedAt"]``
(:func:`webhook.cluster.stale.restart_patch`) on a Deployment, StatefulSet or DaemonSet.
Jobs, bare pods and other controllers' kinds never reach this worker
(:attr:`~webhook.cluster.owners.Owner.rollable`); the pass that found them reports them.

Level-triggered: each pass of :class:`~webhook.cluster.missing.SidecarWatch` hands over
the complete list of workloads that want a restart (:meth:`Restarter.update`); a workload
no longer listed is no longer pending. The worker takes the first pending workload the
budget allows, rolls it, and then waits for that rollout to finish (or
``rollout_wait`` seconds) before it starts another, so two rollouts of ours never overlap.
Only the leader rolls; a follower's pending list is dropped.

Reasons (the ``reason`` label of ``otel_injector_workload_restarts_total``):
``missing-sidecar`` (repair), ``config-outdated`` and ``image-outdated`` (auto-restart).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

from webhook.cluster.client import ApiError, Kube
from webhook.cluster.owners import Owner, Owners
from webhook.cluster.stale import restart_patch
from webhook.core.restartbudget import RestartBudget
from webhook.telemetry.repairmetrics import RepairMetrics

log = logging.getLogger("webhook.cluster.restarts")

REASONS = ("missing-sidecar", "config-outdated", "image-outdated")


@dataclass(frozen=True)
class RestartRequest:
    """One workload that wants a rollout, why (one of :data:`REASONS`), and the one-line
    detail (which pods, what is out of date)."""

    owner: Owner
    reason: str
    detail: str
    pods: int = 1


def rollout_complete(kind: str, obj: Mapping[str, Any]) -> bool:
    """Whether the workload's controller has finished rolling out its current template
    (as ``kubectl rollout status`` judges it). Pure."""
    metadata = obj.get("metadata") or {}
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if int(status.get("observedGeneration") or 0) < int(metadata.get("generation") or 0):
        return False
    if kind == "DaemonSet":
        return int(status.get("updatedNumberScheduled") or 0) >= int(status.get("desiredNumberScheduled") or 0)
    replicas = int(spec.get("replicas", 1) or 0)
    updated = int(status.get("updatedReplicas") or 0)
    if kind == "StatefulSet":
        revision = status.get("updateRevision")
        return updated >= replicas and (not revision or revision == status.get("currentRevision"))
    return updated >= replicas and int(status.get("replicas") or 0) <= updated


class Restarter:
    """See the module docstring. ``clock`` is monotonic seconds; ``wait`` sleeps for up to
    the given seconds and returns True when asked to stop (defaults: a stop Event's)."""

    def __init__(
        self,
        kube: Kube,
        owners: Owners,
        budget: RestartBudget,
        metrics: RepairMetrics,
        *,
        is_leader: Callable[[], bool],
        rollout_wait: float,
        poll: float = 1.0,
    ) -> None:
        self.kube = kube
        self.owners = owners
        self.budget = budget
        self.metrics = metrics
        self.is_leader = is_leader
        self.rollout_wait = rollout_wait
        self.poll = poll
        self._pending: dict[str, RestartRequest] = {}
        self._deferred: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- from the pass ------------------------------------------------------------------

    def update(self, requests: Sequence[RestartRequest]) -> None:
        """Replace the pending list (the first request per workload wins)."""
        fresh: dict[str, RestartRequest] = {}
        for request in requests:
            if request.owner.rollable:
                fresh.setdefault(request.owner.key, request)
        with self._lock:
            self._pending = fresh
            self._deferred &= {(k, r.reason) for k, r in fresh.items()}
        self._wake.set()

    def healthy(self, keys: Sequence[str]) -> None:
        """These workloads have no pod missing the sidecar or out of date."""
        with self._lock:
            for key in keys:
                self.budget.forget(key)

    def pending(self) -> list[RestartRequest]:
        """The pending requests, in order."""
        with self._lock:
            return list(self._pending.values())

    # -- the worker ---------------------------------------------------------------------

    def start(self) -> None:
        """Run the worker in a daemon thread."""
        self._thread = threading.Thread(target=self._run, name="restarter", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the worker (a rollout being waited for is not waited for any longer)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()  # before the step: an update during it wakes the next wait
            try:
                done, wait = self.step()
            except Exception:
                log.exception("restart worker crashed; retrying")
                done, wait = None, 5.0
            if done is not None:
                self._wait_rollout(done)
                continue
            self._wake.wait(wait)

    def step(self) -> tuple[Owner | None, float]:
        """Roll the first pending workload the budget allows. Returns (the workload rolled,
        or ``None``; seconds until something may be allowed)."""
        if not self.is_leader():
            with self._lock:
                self._pending.clear()
            return None, 5.0
        with self._lock:
            chosen, wait = None, 60.0
            for key, request in self._pending.items():
                verdict = self.budget.check(key)
                if verdict.allowed:
                    chosen = request
                    break
                wait = min(wait, max(verdict.wait, 0.05))
                if (key, request.reason) not in self._deferred:
                    self._deferred.add((key, request.reason))
                    self.metrics.deferred.labels(reason=verdict.reason).inc()
                    log.info(
                        "not rolling %s yet (%s, %.0fs): %s",
                        key,
                        verdict.reason,
                        verdict.wait,
                        request.detail,
                        extra={"workload": key, "decision": "deferred", "reason": verdict.reason},
                    )
            if chosen is None:
                return None, wait
            del self._pending[chosen.owner.key]
            # Counted before the call: a failed patch still used up the budget, so an
            # API server refusing every patch is not asked twice a second.
            self.budget.record(chosen.owner.key)
        return (chosen.owner if self._roll(chosen) else None), 0.0

    def _roll(self, request: RestartRequest) -> bool:
        owner = request.owner
        # The controllers' tracer (webhook.compose): exported, and its PATCH is a client span.
        with self.kube.tracer.start_as_current_span("otel-injector restart workload") as span:
            span.set_attributes(
                {
                    "otel_injector.object": owner.key,
                    "otel_injector.decision": "restart",
                    "otel_injector.reason": request.reason,
                    "k8s.namespace.name": owner.namespace,
                }
            )
            try:
                self.kube.merge_patch(owner.path, restart_patch(datetime.now(UTC)))
            except ApiError as err:
                span.set_attribute("otel_injector.decision", "restart-failed")
                span.set_status(trace.StatusCode.ERROR, str(err))
                log.warning("rolling %s failed: %s", owner.key, err, extra={"workload": owner.key})
                return False
        self.metrics.restarts.labels(reason=request.reason, kind=owner.kind).inc()
        log.info(
            "rolled %s (%s): %s",
            owner.key,
            request.reason,
            request.detail,
            extra={"workload": owner.key, "decision": "restart", "reason": request.reason},
        )
        return True

    def _wait_rollout(self, owner: Owner) -> None:
        """One rollout at a time: wait until this one is complete, bounded."""
        waited = 0.0
        while waited < self.rollout_wait and not self._stop.is_set():
            try:
                obj = self.owners.refresh(owner)
            except ApiError as err:
                log.warning("cannot read %s while it rolls: %s", owner.key, err)
                obj = None
            if obj is None or rollout_complete(owner.kind, obj):
                return
            if self._stop.wait(self.poll):
                return
            waited += self.poll
        if not self._stop.is_set():
            log.info("rollout of %s not complete after %.0fs; going on", owner.key, self.rollout_wait)
