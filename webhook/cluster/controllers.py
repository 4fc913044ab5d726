"""The in-cluster controllers that run beside the webhook in the ``serve`` process.

:class:`Controllers` starts, in daemon threads:

* the leader election (:mod:`webhook.cluster.leader`) when ``settings.leader_election``;
  without it every process acts as the leader;
* the ConfigMap reconciler (:mod:`webhook.cluster.reconciler`) when ``settings.reconcile``;
  its source watch runs in every replica and reports the config hash to ``on_source_hash``;
* the certificate keeper (:mod:`webhook.cluster.certkeeper`) when ``cert_mode`` is
  ``self-managed``. The first certificate was already bootstrapped by ``otel-injector
  serve`` before the server loaded TLS;
* with the reconciler and ``settings.missing_sidecars``, the pass over every pod
  (:mod:`webhook.cluster.missing`: pods missing the sidecar, auto-restart) and its restart
  worker (:mod:`webhook.cluster.restarts`), sharing the reconciler's namespace informer.

Only the leader writes (ConfigMaps, the certificate Secret, the caBundle); every replica
serves admissions. The composition root (:mod:`webhook.compose`) hands a
:class:`Controllers` to the app, whose lifespan starts it and, after serving has stopped,
stops it. With several uvicorn workers each worker process is its own candidate; one
worker (the default) per pod is the intended setup.

Their timings are ``settings.cluster`` (:class:`~webhook.config.timings.ClusterTimings`:
resync, pod grace, certificate sync, lease duration, renew deadline, retry period), read
once with the other settings and handed to each controller's constructor.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from opentelemetry.trace import Tracer

from webhook.cluster.certkeeper import CertKeeper
from webhook.cluster.client import Kube
from webhook.cluster.leader import AlwaysLeader, LeaderElector, LeaseTimings, identity
from webhook.cluster.missing import SidecarWatch
from webhook.cluster.owners import Owners
from webhook.cluster.reconciler import Reconciler
from webhook.cluster.restarts import Restarter
from webhook.config.settings import Settings
from webhook.config.timings import ClusterTimings
from webhook.core.restartbudget import RestartBudget
from webhook.core.settings import InjectionSettings
from webhook.telemetry.repairmetrics import RepairMetrics

log = logging.getLogger("webhook.cluster.controllers")

#: How long start-up waits for the first read of the source config.
SOURCE_WAIT_SECONDS = 5.0


def lease_timings(timings: ClusterTimings) -> LeaseTimings:
    """The leader election's bounds from the settings."""
    return LeaseTimings(
        lease_duration=timings.lease_duration_seconds,
        renew_deadline=timings.renew_deadline_seconds,
        retry_period=timings.retry_period_seconds,
    )


class Controllers:
    """The leader election, reconciler and certificate keeper of one process."""

    def __init__(
        self,
        settings: Settings,
        *,
        kube: Kube | None = None,
        on_source_hash: Callable[[str], object] | None = None,
        candidate: str | None = None,
        tracer: Tracer | None = None,
        metrics: RepairMetrics | None = None,
        injection: Callable[[], InjectionSettings] | None = None,
    ) -> None:
        self.settings = settings
        self.kube = kube or Kube.connect(settings.kubeconfig)
        if tracer is not None:  # the controllers' spans and their API calls' client spans
            self.kube.tracer = tracer
        self.identity = candidate or identity()
        self.leader: LeaderElector | None = None
        self.reconciler: Reconciler | None = None
        self.keeper: CertKeeper | None = None
        self.restarter: Restarter | None = None
        self.sidecar_watch: SidecarWatch | None = None
        self.metrics = metrics or RepairMetrics()
        self._stopped = threading.Event()
        timings = settings.cluster
        is_leader: Callable[[], bool] = AlwaysLeader().is_leader
        if settings.leader_election:
            self.leader = LeaderElector(
                self.kube,
                namespace=settings.injection.namespace,
                name=settings.lease_name,
                identity=self.identity,
                timings=lease_timings(timings),
                on_started_leading=self._started_leading,
            )
            is_leader = self.leader.is_leader
        if settings.reconcile:
            self.reconciler = Reconciler(
                self.kube,
                settings,
                is_leader=is_leader,
                on_source_hash=on_source_hash,
                resync_seconds=timings.resync_seconds,
                pod_grace_seconds=timings.pod_grace_seconds,
                instance=self.identity,
            )
        if settings.cert_mode == "self-managed":
            self.keeper = CertKeeper(self.kube, settings, is_leader=is_leader, interval=timings.cert_sync_seconds)
        if self.reconciler is not None and settings.missing_sidecars:
            owners = Owners(self.kube, ttl=timings.resync_seconds, clock=time.monotonic)
            budget = RestartBudget(
                max_per_minute=settings.max_restarts_per_minute,
                cooldown=timings.restart_cooldown_seconds,
                cooldown_max=timings.restart_cooldown_max_seconds,
                clock=time.monotonic,
            )
            self.restarter = Restarter(
                self.kube,
                owners,
                budget,
                self.metrics,
                is_leader=is_leader,
                rollout_wait=timings.rollout_wait_seconds,
            )
            self.sidecar_watch = SidecarWatch(
                self.kube,
                namespaces=self.reconciler.namespaces,
                injection=injection or (lambda: settings.injection),
                restarter=self.restarter,
                owners=owners,
                metrics=self.metrics,
                is_leader=is_leader,
                repair=settings.repair_missing_sidecars,
                pass_seconds=timings.missing_pass_seconds,
                instance=self.identity,
            )

    def is_leader(self) -> bool:
        """Whether this process may write now."""
        return self.leader.is_leader() if self.leader is not None else True

    def _started_leading(self) -> None:
        if self.reconciler is not None:
            self.reconciler.on_leadership(True)
        if self.keeper is not None:
            self.keeper.wake()

    def start(self) -> None:
        """Start everything that is configured (daemon threads). Returns once the source
        config has been read (bounded by :data:`SOURCE_WAIT_SECONDS`): pods admitted before
        that would record no config hash, and the app reports ready only after this."""
        if self.reconciler is not None:
            self.reconciler.start()
        if self.keeper is not None:
            self.keeper.start()
        if self.sidecar_watch is not None and self.restarter is not None:
            self.restarter.start()
            self.sidecar_watch.start()
        if self.leader is not None:
            self.leader.start()
        log.info(
            "controllers started",
            extra={
                "identity": self.identity,
                "leader_election": self.leader is not None,
                "reconcile": self.reconciler is not None,
                "self_managed_certs": self.keeper is not None,
            },
        )
        reconciler = self.reconciler
        if reconciler is not None and not reconciler.source_informer.synced.wait(SOURCE_WAIT_SECONDS):
            log.warning("source collector config not read within %.0fs; serving anyway", SOURCE_WAIT_SECONDS)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the writers first, then release the Lease, so a successor takes over at
        once. Idempotent, bounded."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        if self.sidecar_watch is not None and self.restarter is not None:
            self.sidecar_watch.stop(timeout)
            self.restarter.stop(timeout)
        if self.reconciler is not None:
            self.reconciler.stop(timeout)
        if self.keeper is not None:
            self.keeper.stop(timeout)
        if self.leader is not None:
            self.leader.stop(release=True, timeout=timeout)
        self.kube.close()
        log.info("controllers stopped", extra={"identity": self.identity})
