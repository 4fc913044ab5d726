"""Leader election with a coordination.k8s.io/v1 Lease, so only one replica writes.

Every replica serves admissions; only the leader writes ConfigMaps, the certificate
Secret and the caBundle. The algorithm is the one client-go uses:

* the Lease ``settings.lease_name`` in the injector's namespace names the holder and when
  it last renewed; every write is a compare-and-swap on the Lease's resourceVersion, so
  two candidates can never both succeed;
* a candidate takes the Lease only when it is free (no holder: released on shutdown) or
  when its record has not changed for ``lease_duration`` seconds *by this process's own
  monotonic clock* (no trust in other machines' clocks);
* the leader renews every ``retry_period``; if it cannot renew within ``renew_deadline``
  it stops leading (and :meth:`LeaderElector.is_leader` turns false by itself after that
  deadline, even if the election thread is stuck), strictly before another candidate may
  take over at ``lease_duration``;
* on shutdown the leader releases the Lease (empty holder), so a successor takes over at
  its next retry instead of waiting out the lease.

Defaults: lease 15 s, renew deadline 10 s, retry every 2 s (settings
``lease_duration_seconds``, ``renew_deadline_seconds``, ``retry_period_seconds``).

Why not the ``kubernetes`` package's ``kubernetes.leaderelection.LeaderElection``? Read in
kubernetes 37.0.2:

* ``run()`` blocks its caller until leadership is lost, in ``time.sleep`` loops: it has no
  stop, so a shutting-down process can only abandon the thread;
* it cannot release: the Lease keeps its holder until it expires, so every rollout leaves
  the cluster without a writer for a whole lease duration;
* it measures the lease with the wall clock (``time.time()``), so a clock step (NTP, a
  suspended VM) can make a follower take over early, or a leader renew late, while the
  old leader still writes. This module only uses ``clock``, ``time.monotonic`` by default,
  which is also what lets the unit tests drive it (tests/unit/cluster/test_leader.py);
* its Lease lock makes its own ``CoordinationV1Api()`` from the global default
  configuration (resourcelock/leaselock.py), not the process's ``ApiClient``;
* it has no ``is_leader``: the writers here ask before every write, and the answer turns
  false by itself at the renew deadline, even while the election thread is stuck.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from webhook.cluster.client import ApiError, Kube
from webhook.cluster.objects import JSONDict
from webhook.cluster.paths import lease_path
from webhook.telemetry.controllerspans import decide, work_span

log = logging.getLogger("webhook.cluster.leader")


class Leadership(Protocol):
    """What the controllers ask before they write."""

    def is_leader(self) -> bool:
        """Whether this process may write now."""
        ...


class AlwaysLeader:
    """Leadership without election (one replica, or leader election off)."""

    def is_leader(self) -> bool:
        """Always true."""
        return True


@dataclass(frozen=True)
class LeaseTimings:
    """Bounds of the election, in seconds. ``renew_deadline < lease_duration`` keeps an
    old leader from writing after a new one may have started."""

    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.retry_period < self.renew_deadline < self.lease_duration:
            raise ValueError("need 0 < retry_period < renew_deadline < lease_duration")


def identity() -> str:
    """The candidate name of this process: the pod name (or host name) and a random suffix, so
    two processes of one pod (several uvicorn workers) are distinct candidates."""
    base = os.environ.get("POD_NAME") or socket.gethostname()
    return f"{base}_{uuid.uuid4().hex[:8]}"


def micro_time(moment: datetime | None = None) -> str:
    """A Kubernetes MicroTime: RFC 3339 with microseconds, UTC."""
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def lease_holder(lease: JSONDict | None) -> str:
    """The Lease's holder identity, "" when free."""
    return str(((lease or {}).get("spec") or {}).get("holderIdentity") or "")


class LeaderElector:
    """Campaign for, hold and release one Lease, in a daemon thread."""

    def __init__(
        self,
        kube: Kube,
        *,
        namespace: str,
        name: str,
        identity: str,
        timings: LeaseTimings | None = None,
        on_started_leading: Callable[[], None] | None = None,
        on_stopped_leading: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.timings = timings or LeaseTimings()
        self.on_started_leading = on_started_leading
        self.on_stopped_leading = on_stopped_leading
        self.clock = clock
        self._leading = False
        self._last_renew = float("-inf")
        self._observed: tuple[str, str, str] | None = None
        self._observed_at = float("-inf")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def is_leader(self) -> bool:
        """Leading, and renewed within the renew deadline."""
        return self._leading and self.clock() - self._last_renew < self.timings.renew_deadline

    def start(self) -> None:
        """Campaign in a daemon thread."""
        self._thread = threading.Thread(target=self._run, name="leader-election", daemon=True)
        self._thread.start()

    def stop(self, release: bool = True, timeout: float = 5.0) -> None:
        """Stop campaigning and, when leading and ``release``, free the Lease."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        was_leading = self._leading
        self._set_leading(False)
        if release and was_leading:
            self.release()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.step()
            jitter = 1.0 if self._leading else random.uniform(1.0, 1.2)  # noqa: S311 - jitter
            self._stop.wait(self.timings.retry_period * jitter)

    def step(self) -> bool:
        """One round of the election (what the thread does every ``retry_period``): try to
        acquire or renew, then lead or stop leading. Returns :meth:`is_leader`. Never raises."""
        try:
            renewed = self.try_acquire_or_renew()
        except ApiError as err:
            log.warning("lease %s/%s: %s", self.namespace, self.name, err)
            renewed = False
        except Exception:
            log.exception("lease %s/%s: unexpected error", self.namespace, self.name)
            renewed = False
        if renewed:
            self._last_renew = self.clock()
            self._set_leading(True)
        elif self._leading and self.clock() - self._last_renew >= self.timings.renew_deadline:
            log.warning("lease %s/%s: not renewed within the deadline; no longer leading", self.namespace, self.name)
            self._set_leading(False)
        return self.is_leader()

    def _set_leading(self, leading: bool) -> None:
        with self._lock:
            changed = leading != self._leading
            self._leading = leading
        if not changed:
            return
        log.info(
            "%s leadership of lease %s/%s",
            "acquired" if leading else "lost",
            self.namespace,
            self.name,
            extra={"identity": self.identity},
        )
        callback = self.on_started_leading if leading else self.on_stopped_leading
        # A span per transition, so Jaeger shows when which replica became the writer.
        attributes = {
            "otel_injector.object": f"lease/{self.namespace}/{self.name}",
            "otel_injector.identity": self.identity,
        }
        with work_span(self.kube.tracer, "leadership change", attributes) as span:
            decide(span, "acquired" if leading else "lost", "lease taken or renewed" if leading else "lease not held")
            if callback is not None:
                try:
                    callback()
                except Exception:
                    log.exception("leadership callback failed")

    def try_acquire_or_renew(self) -> bool:
        """One round: create, renew or take over the Lease. True when we hold it now."""
        path = lease_path(self.namespace, self.name)
        lease = self.kube.get_or_none(path)
        now = micro_time()
        duration = max(1, round(self.timings.lease_duration))
        if lease is None:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": {
                    "holderIdentity": self.identity,
                    "leaseDurationSeconds": duration,
                    "acquireTime": now,
                    "renewTime": now,
                    "leaseTransitions": 0,
                },
            }
            try:
                self.kube.create(lease_path(self.namespace), body)
            except ApiError as err:
                if err.conflict:
                    return False
                raise
            return True
        spec: dict[str, Any] = dict(lease.get("spec") or {})
        holder = lease_holder(lease)
        record = (holder, str(spec.get("renewTime") or ""), str(spec.get("leaseDurationSeconds") or ""))
        if record != self._observed:
            self._observed, self._observed_at = record, self.clock()
        if holder and holder != self.identity:
            their_duration = float(spec.get("leaseDurationSeconds") or self.timings.lease_duration)
            if self.clock() - self._observed_at < their_duration:
                return False  # held by a live leader
            log.info("lease %s/%s: holder %s expired; taking over", self.namespace, self.name, holder)
        if holder != self.identity:
            spec["acquireTime"] = now
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
        spec.update(holderIdentity=self.identity, leaseDurationSeconds=duration, renewTime=now)
        try:
            self.kube.replace(path, {**lease, "spec": spec})
        except ApiError as err:
            if err.conflict:
                return False  # someone else wrote first; look again next round
            raise
        return True

    def release(self) -> None:
        """Give the Lease up if we still hold it (bounded: one GET and one PUT)."""
        path = lease_path(self.namespace, self.name)
        try:
            lease = self.kube.get_or_none(path)
            if lease is None or lease_holder(lease) != self.identity:
                return
            spec = dict(lease.get("spec") or {})
            spec.update(holderIdentity=None, leaseDurationSeconds=1, renewTime=micro_time())
            self.kube.replace(path, {**lease, "spec": spec})
            log.info("released lease %s/%s", self.namespace, self.name)
        except ApiError as err:
            log.warning("could not release lease %s/%s: %s", self.namespace, self.name, err)
