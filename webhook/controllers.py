"""The in-cluster controllers that run beside the webhook in the ``serve`` process.

:func:`app_with_controllers` builds the app (:func:`webhook.app.create_app`) with
:func:`start_controllers` as its ``on_startup`` hook and a shutdown step that stops them;
:func:`webhook.app.app_from_environment` uses it when ``settings.needs_kubernetes``.
It starts, in daemon threads:

* the leader election (:mod:`webhook.leader`) when ``settings.leader_election``; without
  it every process acts as the leader;
* the ConfigMap reconciler (:mod:`webhook.reconciler`) when ``settings.reconcile``; its
  source watch runs in every replica and swaps the config hash into ``state.injection``;
* the certificate keeper (:mod:`webhook.selfcerts`) when ``cert_mode`` is
  ``self-managed``. The first certificate was already bootstrapped by ``otel-injector
  serve`` before the server loaded TLS.

Only the leader writes (ConfigMaps, the certificate Secret, the caBundle); every replica
serves admissions. On exit the controllers stop and then the Lease is released, so a
successor takes over at once. With several uvicorn workers each worker process is its own
candidate; one worker (the default) per pod is the intended setup.

Tuning for tests and small clusters, from the environment (seconds):
``OTEL_INJECTOR_RESYNC_SECONDS`` (full resync, default 300),
``OTEL_INJECTOR_POD_GRACE_SECONDS`` (keep a pod-opt-in copy after its last pod, 60),
``OTEL_INJECTOR_CERT_SYNC_SECONDS`` (certificate Secret poll, 30),
``OTEL_INJECTOR_LEASE_DURATION_SECONDS`` / ``_RENEW_DEADLINE_SECONDS`` /
``_RETRY_PERIOD_SECONDS`` (15 / 10 / 2).
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from webhook.kube import Kube
from webhook.leader import AlwaysLeader, LeaderElector, LeaseTimings, identity
from webhook.reconciler import DEFAULT_POD_GRACE_SECONDS, DEFAULT_RESYNC_SECONDS, Reconciler, hash_swapper
from webhook.selfcerts import CertKeeper
from webhook.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from webhook.app import AppState

log = logging.getLogger("webhook.controllers")

#: How long start-up waits for the first read of the source config.
SOURCE_WAIT_SECONDS = 5.0


def _env_seconds(name: str, default: float) -> float:
    raw = os.environ.get(f"OTEL_INJECTOR_{name}")
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        log.warning("OTEL_INJECTOR_%s=%r is not a number; using %s", name, raw, default)
        return default
    return value if value > 0 else default


def timings_from_environment() -> LeaseTimings:
    """Lease timings, defaults overridden by ``OTEL_INJECTOR_*_SECONDS``."""
    default = LeaseTimings()
    return LeaseTimings(
        lease_duration=_env_seconds("LEASE_DURATION_SECONDS", default.lease_duration),
        renew_deadline=_env_seconds("RENEW_DEADLINE_SECONDS", default.renew_deadline),
        retry_period=_env_seconds("RETRY_PERIOD_SECONDS", default.retry_period),
    )


class Controllers:
    """The leader election, reconciler and certificate keeper of one process."""

    def __init__(
        self,
        settings: Settings,
        *,
        kube: Kube | None = None,
        on_source_hash: Callable[[str], None] | None = None,
        candidate: str | None = None,
        timings: LeaseTimings | None = None,
        resync_seconds: float | None = None,
        pod_grace_seconds: float | None = None,
        cert_interval: float | None = None,
    ) -> None:
        self.settings = settings
        self.kube = kube or Kube.connect(settings.kubeconfig)
        self.identity = candidate or identity()
        self.leader: LeaderElector | None = None
        self.reconciler: Reconciler | None = None
        self.keeper: CertKeeper | None = None
        self._stopped = threading.Event()
        is_leader: Callable[[], bool] = AlwaysLeader().is_leader
        if settings.leader_election:
            self.leader = LeaderElector(
                self.kube,
                namespace=settings.injection.namespace,
                name=settings.lease_name,
                identity=self.identity,
                timings=timings or timings_from_environment(),
                on_started_leading=self._started_leading,
            )
            is_leader = self.leader.is_leader
        if settings.reconcile:
            self.reconciler = Reconciler(
                self.kube,
                settings,
                is_leader=is_leader,
                on_source_hash=on_source_hash,
                resync_seconds=resync_seconds or _env_seconds("RESYNC_SECONDS", DEFAULT_RESYNC_SECONDS),
                pod_grace_seconds=pod_grace_seconds or _env_seconds("POD_GRACE_SECONDS", DEFAULT_POD_GRACE_SECONDS),
                instance=self.identity,
            )
        if settings.cert_mode == "self-managed":
            self.keeper = CertKeeper(self.kube, settings, is_leader=is_leader, interval=cert_interval)

    def is_leader(self) -> bool:
        """Whether this process may write now."""
        return self.leader.is_leader() if self.leader is not None else True

    def _started_leading(self) -> None:
        if self.reconciler is not None:
            self.reconciler.on_leadership(True)
        if self.keeper is not None:
            self.keeper.wake()

    def start(self) -> None:
        """Start everything that is configured (daemon threads)."""
        if self.reconciler is not None:
            self.reconciler.start()
        if self.keeper is not None:
            self.keeper.start()
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

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the writers first, then release the Lease. Idempotent, bounded."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        if self.reconciler is not None:
            self.reconciler.stop(timeout)
        if self.keeper is not None:
            self.keeper.stop(timeout)
        if self.leader is not None:
            self.leader.stop(release=True, timeout=timeout)
        self.kube.close()
        log.info("controllers stopped", extra={"identity": self.identity})


def start_controllers(state: AppState) -> Controllers:
    """The app's ``on_startup`` hook: start the controllers the settings ask for and swap
    config hashes into ``state``. They are stopped (and the Lease released) by the app's
    shutdown (:func:`app_with_controllers`), or at the latest at interpreter exit."""
    controllers = Controllers(state.settings, on_source_hash=hash_swapper(state))
    controllers.start()
    atexit.register(controllers.stop)
    # Pods admitted before the source is read would record no config hash; the app
    # reports ready only after this hook, so wait for the first read (bounded).
    reconciler = controllers.reconciler
    if reconciler is not None and not reconciler.source_informer.synced.wait(SOURCE_WAIT_SECONDS):
        log.warning("source collector config not read within %.0fs; serving anyway", SOURCE_WAIT_SECONDS)
    return controllers


def app_with_controllers(settings: Settings) -> FastAPI:
    """The webhook app with the controllers started on start-up and stopped on shutdown.

    uvicorn re-raises SIGTERM once it has shut down, which ends the process without
    running ``atexit`` handlers, so the Lease is released here, in the app's lifespan,
    after the server has stopped serving."""
    from webhook.app import create_app

    running: list[Controllers] = []

    def on_startup(state: AppState) -> None:
        running.append(start_controllers(state))

    app = create_app(settings, on_startup=on_startup)
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: Any) -> AsyncIterator[Any]:
        try:
            async with inner(application) as value:
                yield value
        finally:
            for controllers in running:
                await asyncio.to_thread(controllers.stop)

    app.router.lifespan_context = lifespan
    return app
