"""The controllers of one process: built from the settings (every timing handed to its
controller's constructor), started and stopped as the app's lifespan does, the Lease
released on the way out. Against a loopback stub API server."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator

import pytest
from kubernetes import client

from tests.unit.cluster.stubapi import Store, StubApi, serve_collection, stub_api
from webhook.cluster.certkeeper import CertKeeper
from webhook.cluster.client import Kube
from webhook.cluster.controllers import Controllers, lease_timings
from webhook.cluster.leader import lease_holder
from webhook.cluster.paths import api_path, configmap_path, lease_path
from webhook.config.settings import Settings, load_settings
from webhook.config.timings import ClusterTimings
from webhook.core.settings import InjectionSettings

OWN = "otel-injector"


def test_every_timing_reaches_its_controller() -> None:
    settings = load_settings(
        environ={
            "OTEL_INJECTOR_RECONCILE": "true",
            "OTEL_INJECTOR_LEADER_ELECTION": "true",
            "OTEL_INJECTOR_CERT_MODE": "self-managed",
            "OTEL_INJECTOR_RESYNC_SECONDS": "120",
            "OTEL_INJECTOR_POD_GRACE_SECONDS": "0",
            "OTEL_INJECTOR_CERT_SYNC_SECONDS": "1.5",
            "OTEL_INJECTOR_LEASE_DURATION_SECONDS": "4",
            "OTEL_INJECTOR_RENEW_DEADLINE_SECONDS": "3",
            "OTEL_INJECTOR_RETRY_PERIOD_SECONDS": "0.5",
        }
    )
    timings = lease_timings(settings.cluster)
    assert (timings.lease_duration, timings.renew_deadline, timings.retry_period) == (4, 3, 0.5)
    # A real client that is never used: the controllers are built, not started.
    unused = Kube(client.ApiClient(client.Configuration(host="http://127.0.0.1:1")))
    controllers = Controllers(settings, kube=unused, candidate="c")
    assert controllers.reconciler is not None
    assert (controllers.reconciler.resync_seconds, controllers.reconciler.pod_grace_seconds) == (120, 0)
    assert isinstance(controllers.keeper, CertKeeper)
    assert controllers.keeper.interval == 1.5
    assert controllers.leader is not None
    assert controllers.leader.timings == timings


@pytest.fixture
def stub() -> Iterator[StubApi]:
    with stub_api() as running:
        for path in (
            api_path("v1", "namespaces"),
            configmap_path(OWN),
            api_path("v1", "configmaps"),
            api_path("v1", "pods"),
        ):
            serve_collection(running, path, [])
        yield running


def test_start_leads_and_stop_releases_the_lease(stub: StubApi) -> None:
    leases = Store(stub, lease_path(OWN))
    leases.serve("leader")
    settings = Settings(
        reconcile=True,
        leader_election=True,
        lease_name="leader",
        collector_source="source",
        injection=InjectionSettings(namespace=OWN),
        cluster=ClusterTimings(lease_duration_seconds=4, renew_deadline_seconds=3, retry_period_seconds=0.5),
    )
    controllers = Controllers(settings, kube=stub.kube(), candidate="me")
    controllers.start()
    deadline = time.monotonic() + 10
    while not controllers.is_leader() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert controllers.is_leader()
    assert lease_holder(leases.objects[lease_path(OWN, "leader")]) == "me"
    controllers.stop(timeout=5)
    controllers.stop(timeout=5)  # idempotent
    assert lease_holder(leases.objects[lease_path(OWN, "leader")]) == ""
    assert not controllers.is_leader()


def test_without_election_every_process_leads() -> None:
    unused = Kube(client.ApiClient(client.Configuration(host="http://127.0.0.1:1")))
    controllers = Controllers(dataclasses.replace(Settings(), reconcile=True), kube=unused, candidate="c")
    assert controllers.leader is None
    assert controllers.is_leader()


def test_the_repair_settings_reach_the_pass_and_the_restart_worker() -> None:
    settings = load_settings(
        environ={
            "OTEL_INJECTOR_RECONCILE": "true",
            "OTEL_INJECTOR_REPAIR_MISSING_SIDECARS": "true",
            "OTEL_INJECTOR_MAX_RESTARTS_PER_MINUTE": "3",
            "OTEL_INJECTOR_MISSING_PASS_SECONDS": "7",
            "OTEL_INJECTOR_RESTART_COOLDOWN_SECONDS": "60",
            "OTEL_INJECTOR_RESTART_COOLDOWN_MAX_SECONDS": "600",
            "OTEL_INJECTOR_ROLLOUT_WAIT_SECONDS": "9",
        }
    )
    unused = Kube(client.ApiClient(client.Configuration(host="http://127.0.0.1:1")))
    controllers = Controllers(settings, kube=unused, candidate="c")
    watch, worker = controllers.sidecar_watch, controllers.restarter
    assert watch is not None
    assert worker is not None
    assert controllers.reconciler is not None
    assert watch.namespaces is controllers.reconciler.namespaces, "one namespace informer, shared"
    assert (watch.repair, watch.pass_seconds, worker.rollout_wait) == (True, 7, 9)
    assert (worker.budget.max_per_minute, worker.budget.cooldown, worker.budget.cooldown_max) == (3, 60, 600)
    off = Controllers(dataclasses.replace(settings, missing_sidecars=False), kube=unused, candidate="c")
    assert off.sidecar_watch is None
    assert off.restarter is None
    without_reconciler = Controllers(dataclasses.replace(settings, reconcile=False), kube=unused, candidate="c")
    assert without_reconciler.sidecar_watch is None
