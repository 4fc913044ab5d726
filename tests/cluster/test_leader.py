"""Leader election: two controller instances against one apiserver, only the leader writes.

The two run in this process, each with its own client whose ``fieldManager`` names it,
so the API server itself records (in each ConfigMap's managedFields) who wrote what.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from bench.localcluster.controlplane import ControlPlane
from tests.cluster.support import Tls, delete_namespaces, make_namespace, put_source, serve, unique
from tests.support import wait_for
from webhook.cluster.client import Kube
from webhook.cluster.controllers import Controllers
from webhook.cluster.copies import HASH_ANNOTATION
from webhook.cluster.leader import lease_holder
from webhook.cluster.paths import configmap_path, lease_path
from webhook.config.settings import Settings
from webhook.config.timings import ClusterTimings
from webhook.core import names
from webhook.core.settings import InjectionSettings, config_hash

pytestmark = pytest.mark.e2e

SOURCE = "collector-source"
LEASE = "otel-injector-leader-test"
FAST = ClusterTimings(lease_duration_seconds=4.0, renew_deadline_seconds=3.0, retry_period_seconds=0.5)


def managers(cm: dict[str, Any] | None) -> set[str]:
    return {str(f.get("manager")) for f in ((cm or {}).get("metadata") or {}).get("managedFields") or []}


@pytest.fixture
def setup(cluster: ControlPlane, kube: Kube) -> Iterator[tuple[Settings, list[str]]]:
    namespace = make_namespace(kube, unique("inj-leader"))
    put_source(kube, namespace, SOURCE, "version: 1\n")
    settings = Settings(
        reconcile=True,
        leader_election=True,
        lease_name=LEASE,
        collector_source=SOURCE,
        kubeconfig=str(cluster.kubeconfig),
        injection=InjectionSettings(namespace=namespace),
        cluster=FAST,
    )
    made = [namespace]
    yield settings, made
    delete_namespaces(kube, *made)


def candidate(settings: Settings, cluster: ControlPlane, name: str, hashes: list[str]) -> Controllers:
    client = Kube.connect(str(cluster.kubeconfig), field_manager=name)
    return Controllers(settings, kube=client, on_source_hash=hashes.append, candidate=name)


def test_only_the_leader_writes_and_a_follower_takes_over(
    setup: tuple[Settings, list[str]], cluster: ControlPlane, kube: Kube
) -> None:
    settings, made = setup
    namespace = settings.injection.namespace
    hashes_a: list[str] = []
    hashes_b: list[str] = []
    a = candidate(settings, cluster, "replica-a", hashes_a)
    b = candidate(settings, cluster, "replica-b", hashes_b)
    try:
        a.start()
        wait_for("replica-a to lead", a.is_leader, timeout=10)
        b.start()
        assert b.reconciler is not None
        assert b.reconciler.wait_synced(10)
        lease = kube.get(lease_path(namespace, LEASE))
        assert lease_holder(lease) == "replica-a"
        assert not b.is_leader()

        traced = make_namespace(kube, unique("traced"), {"tracing": "enabled"})
        made.append(traced)
        copy = wait_for("the copy", lambda: kube.get_or_none(configmap_path(traced, names.CONFIGMAP_NAME)), timeout=5)
        kube.delete(configmap_path(traced, names.CONFIGMAP_NAME))
        copy = wait_for(
            "the copy to come back",
            lambda: kube.get_or_none(configmap_path(traced, names.CONFIGMAP_NAME)),
            timeout=5,
        )
        time.sleep(1.0)  # give the follower every chance to write as well
        assert managers(kube.get_or_none(configmap_path(traced, names.CONFIGMAP_NAME))) == {"replica-a"}
        # Every replica, leader or not, follows the source for the hash it injects.
        first = config_hash(b"version: 1\n")
        assert hashes_a == [first]
        assert hashes_b == [first]

        # The leader stops and releases the Lease: the follower takes over well before
        # the lease would have expired, and does the writing from then on.
        stopped = time.monotonic()
        a.stop()
        assert lease_holder(kube.get(lease_path(namespace, LEASE))) == ""
        wait_for("replica-b to lead", b.is_leader, timeout=FAST.lease_duration_seconds)
        print(f"replica-b took over {time.monotonic() - stopped:.2f}s after replica-a stopped")
        assert lease_holder(kube.get(lease_path(namespace, LEASE))) == "replica-b"
        put_source(kube, namespace, SOURCE, "version: 2\n")
        second = config_hash(b"version: 2\n")

        def updated() -> dict[str, Any] | None:
            cm = kube.get_or_none(configmap_path(traced, names.CONFIGMAP_NAME))
            return cm if cm and cm["metadata"]["annotations"].get(HASH_ANNOTATION) == second else None

        copy = wait_for("the follower-turned-leader to update the copy", updated, timeout=5)
        assert "replica-b" in managers(copy)
        assert hashes_b == [first, second]
        assert hashes_a == [first]  # stopped: it no longer follows anything
    finally:
        a.stop()
        b.stop()
    assert lease_holder(kube.get(lease_path(namespace, LEASE))) == ""


def test_a_live_leader_is_not_displaced(setup: tuple[Settings, list[str]], cluster: ControlPlane, kube: Kube) -> None:
    """A second candidate cannot take a Lease that is being renewed, however long it tries."""
    settings, _ = setup
    a = candidate(settings, cluster, "steady-a", [])
    b = candidate(settings, cluster, "steady-b", [])
    try:
        a.start()
        wait_for("steady-a to lead", a.is_leader, timeout=10)
        b.start()
        time.sleep(FAST.lease_duration_seconds * 2)
        assert a.is_leader()
        assert not b.is_leader()
        lease = kube.get(lease_path(settings.injection.namespace, LEASE))
        assert lease_holder(lease) == "steady-a"
        assert lease["spec"]["leaseTransitions"] == 0
    finally:
        b.stop()
        a.stop()


def test_two_serve_processes_elect_one_writer(cluster: ControlPlane, kube: Kube, loopback_tls: Tls) -> None:
    """The same through real ``otel-injector serve`` processes: the Lease names one, only
    its log shows writes, and when it stops the other takes over and writes."""
    namespace = make_namespace(kube, unique("inj-serve-leader"))
    put_source(kube, namespace, SOURCE, "version: 1\n")
    made = [namespace]
    processes = {}
    try:
        for pod in ("injector-0", "injector-1"):
            processes[pod], _ = serve(
                cluster,
                f"serve-{pod}",
                tls_cert=loopback_tls.cert,
                tls_key=loopback_tls.key,
                context=loopback_tls.context,
                env={
                    "POD_NAME": pod,
                    "OTEL_INJECTOR_RECONCILE": "true",
                    "OTEL_INJECTOR_LEADER_ELECTION": "true",
                    "OTEL_INJECTOR_LEASE_NAME": LEASE,
                    "OTEL_INJECTOR_NAMESPACE": namespace,
                    "OTEL_INJECTOR_COLLECTOR_SOURCE": SOURCE,
                    "OTEL_INJECTOR_LEASE_DURATION_SECONDS": "4",
                    "OTEL_INJECTOR_RENEW_DEADLINE_SECONDS": "3",
                    "OTEL_INJECTOR_RETRY_PERIOD_SECONDS": "0.5",
                },
            )
        holder = wait_for("a leader", lambda: lease_holder(kube.get_or_none(lease_path(namespace, LEASE))), timeout=10)
        leader = holder.split("_")[0]
        follower = next(p for p in processes if p != leader)
        traced = make_namespace(kube, unique("traced"), {"tracing": "enabled"})
        made.append(traced)
        wait_for("the copy", lambda: kube.get_or_none(configmap_path(traced, names.CONFIGMAP_NAME)), timeout=5)
        time.sleep(1.0)

        def writes(pod: str) -> int:
            log = processes[pod].log_path.read_text(encoding="utf-8")
            return sum(f"otel-collector-sidecar in {traced}" in line for line in log.splitlines())

        assert writes(leader) == 1
        assert writes(follower) == 0

        processes[leader].stop()
        wait_for(
            "the follower to take over",
            lambda: lease_holder(kube.get(lease_path(namespace, LEASE))).startswith(follower),
            timeout=8,
        )
        kube.delete(configmap_path(traced, names.CONFIGMAP_NAME))
        wait_for("the new leader to re-create the copy", lambda: writes(follower) == 1, timeout=5)
    finally:
        for process in processes.values():
            process.stop()
        delete_namespaces(kube, *made)
