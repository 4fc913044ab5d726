"""The leader's pass: pods missing the sidecar are grouped and counted, Events go to the
owning workload, repairs and auto-restarts are asked for only where allowed. Against the
loopback stub API server (tests/cluster has the real control plane)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.unit.cluster.stubapi import Reply, Request, StubApi, serve_collection, stub_api
from webhook.cluster.informer import Informer
from webhook.cluster.missing import (
    SidecarWatch,
    find_missing,
    outdated_reason,
    sidecar_missing_event,
)
from webhook.cluster.owners import Owner, Owners
from webhook.cluster.paths import api_path
from webhook.cluster.restarts import Restarter
from webhook.core import names
from webhook.core.injection import inject_pod
from webhook.core.restartbudget import RestartBudget
from webhook.core.settings import InjectionSettings
from webhook.telemetry.repairmetrics import RepairMetrics

SETTINGS = InjectionSettings(namespace="otel-injector", config_hash="new")
GOLDEN = Path(__file__).parents[2] / "golden" / "input"
TRACED = {"tracing": "enabled"}


def rs_pod(name: str, namespace: str = "shop", rs: str = "web-5d9c", **metadata: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"pod-template-hash": "5d9c"},
            "ownerReferences": [{"kind": "ReplicaSet", "name": rs, "uid": "rs-uid", "controller": True}],
            "resourceVersion": "1",
            **metadata,
        },
        "spec": {"containers": [{"name": "app", "image": "i"}]},
        "status": {"phase": "Running"},
    }


def test_find_missing_groups_by_workload_with_the_reason() -> None:
    found = find_missing(
        [rs_pod("web-5d9c-a"), rs_pod("web-5d9c-b"), rs_pod("plain-1", "plain")],
        namespace_labels={"shop": TRACED, "plain": {}},
        settings=SETTINGS,
    )
    assert [(p.name, p.workload and p.workload.name) for p in found] == [("web-5d9c-a", "web"), ("web-5d9c-b", "web")]
    assert found[0].reasons == (
        "no otel-collector sidecar, but the rules inject it (namespace labelled tracing=enabled)",
    )


def test_outdated_reason_and_event_shape() -> None:
    assert outdated_reason(["collector config a, current is b", "sidecar image x"]) == "config-outdated"
    assert outdated_reason(["sidecar image x, current is y"]) == "image-outdated"
    event = sidecar_missing_event(Owner("shop", "Deployment", "web", "u1", "apps/v1"), "2 pods", instance="me")
    assert event["reason"] == "SidecarMissing"
    assert event["type"] == "Warning"
    assert event["involvedObject"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "namespace": "shop",
        "name": "web",
        "uid": "u1",
    }


def wait_until(what: str, condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def deployment(name: str, namespace: str = "shop", annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "uid": f"{name}-uid", "annotations": annotations or {}},
    }


def replicaset(name: str, deployment_name: str, namespace: str = "shop") -> dict[str, Any]:
    owner = {"kind": "Deployment", "name": deployment_name, "uid": f"{deployment_name}-uid", "controller": True}
    return {"metadata": {"name": name, "namespace": namespace, "ownerReferences": [owner]}}


def injected(pod: dict[str, Any], config_hash: str) -> dict[str, Any]:
    settings = InjectionSettings(namespace="otel-injector", config_hash=config_hash)
    out = dict(inject_pod(pod, settings, namespace=pod["metadata"]["namespace"]).pod)
    out["status"] = {"phase": "Running"}
    return out


@pytest.fixture
def stub() -> Iterator[StubApi]:
    with stub_api() as running:
        yield running


def watch(stub: StubApi, pods: list[dict[str, Any]], namespaces: list[dict[str, Any]], *, repair: bool) -> SidecarWatch:
    serve_collection(stub, api_path("v1", "namespaces"), namespaces)
    serve_collection(stub, api_path("v1", "pods"), pods)
    kube = stub.kube()
    owners = Owners(kube, ttl=300, clock=time.monotonic)
    budget = RestartBudget(max_per_minute=2, cooldown=600, cooldown_max=86400, clock=time.monotonic)
    metrics = RepairMetrics()
    restarter = Restarter(kube, owners, budget, metrics, is_leader=lambda: True, rollout_wait=0)
    ns_informer = Informer(kube, api_path("v1", "namespaces"), name="namespaces", on_change=lambda o, n: None)
    sidecar_watch = SidecarWatch(
        kube,
        namespaces=ns_informer,
        injection=lambda: SETTINGS,
        restarter=restarter,
        owners=owners,
        metrics=metrics,
        is_leader=lambda: True,
        repair=repair,
        pass_seconds=3600,
        instance="me",
    )
    ns_informer.start()
    sidecar_watch.pods.start()
    wait_until("synced", lambda: ns_informer.synced.is_set() and sidecar_watch.pods.synced.is_set())
    return sidecar_watch


def ns(name: str, labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": labels or {}, "annotations": annotations or {}, "resourceVersion": "1"}
    }


def gauge(metrics: RepairMetrics, namespace: str) -> float | None:
    return metrics.registry.get_sample_value("otel_injector_pods_missing_sidecar", {"namespace": namespace})


def test_a_pass_counts_reports_and_asks_for_repairs(stub: StubApi) -> None:
    events: list[dict[str, Any]] = []
    stub.on(
        "GET",
        api_path("apps/v1", "replicasets", "shop", "web-5d9c"),
        lambda r: Reply(200, replicaset("web-5d9c", "web")),
    )
    stub.on("GET", api_path("apps/v1", "deployments", "shop", "web"), lambda r: Reply(200, deployment("web")))

    def record(request: Request) -> Reply:
        events.append(request.json())
        return Reply(201, request.json())

    stub.on("POST", api_path("v1", "events", "shop"), record)
    bare = {
        "metadata": {"name": "bare", "namespace": "shop", "uid": "bare-uid", "resourceVersion": "1"},
        "spec": {"containers": [{"name": "c"}]},
        "status": {"phase": "Pending"},
    }
    pods = [rs_pod("web-5d9c-a"), rs_pod("web-5d9c-b"), bare]
    sidecar_watch = watch(stub, pods, [ns("shop", TRACED), ns("quiet", TRACED), ns("plain")], repair=True)
    try:
        result = sidecar_watch.run_pass()
        assert result is not None
        assert gauge(sidecar_watch.metrics, "shop") == 3
        assert gauge(sidecar_watch.metrics, "quiet") == 0  # every traced namespace has a series
        assert gauge(sidecar_watch.metrics, "plain") is None
        assert result.reported == ["shop/Pod/bare"]
        assert [(r.owner.key, r.reason, r.pods) for r in sidecar_watch.restarter.pending()] == [
            ("shop/Deployment/web", "missing-sidecar", 2)
        ]
        assert sorted(
            (e["involvedObject"]["kind"], e["involvedObject"]["name"], e["involvedObject"].get("uid")) for e in events
        ) == [
            ("Deployment", "web", "web-uid"),
            ("Pod", "bare", "bare-uid"),
        ]
        assert "never restarted" in next(e["message"] for e in events if e["involvedObject"]["kind"] == "Pod")
        # The same counts again: no new Events, and the owners come from the cache.
        sidecar_watch.run_pass()
        assert len(events) == 2
        assert len(stub.calls("GET", api_path("apps/v1", "replicasets", "shop", "web-5d9c"))) == 1
    finally:
        sidecar_watch.pods.stop()
        sidecar_watch.namespaces.stop()


def test_a_pass_is_a_span_with_object_decision_and_reason(stub: StubApi, monkeypatch: pytest.MonkeyPatch) -> None:
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    stub.on("POST", api_path("v1", "events", "shop"), lambda r: Reply(201, r.json()))
    sidecar_watch = watch(stub, [], [ns("shop", TRACED)], repair=True)
    sidecar_watch.kube.tracer = provider.get_tracer("test")
    try:
        sidecar_watch.run_pass()
    finally:
        sidecar_watch.pods.stop()
        sidecar_watch.namespaces.stop()
    (span,) = [s for s in spans.get_finished_spans() if s.parent is None]  # its API calls are children
    assert span.name == "otel-injector missing-sidecar pass"
    attributes = dict(span.attributes or {})
    assert (attributes["otel_injector.object"], attributes["otel_injector.decision"]) == ("pods", "none")
    assert attributes["otel_injector.reason"] == "0 missing, 0 out of date"


def test_without_repair_nothing_is_rolled_and_a_follower_exports_nothing(stub: StubApi) -> None:
    stub.on(
        "GET",
        api_path("apps/v1", "replicasets", "shop", "web-5d9c"),
        lambda r: Reply(200, replicaset("web-5d9c", "web")),
    )
    stub.on("GET", api_path("apps/v1", "deployments", "shop", "web"), lambda r: Reply(200, deployment("web")))
    stub.on("POST", api_path("v1", "events", "shop"), lambda r: Reply(201, r.json()))
    sidecar_watch = watch(stub, [rs_pod("web-5d9c-a")], [ns("shop", TRACED)], repair=False)
    try:
        sidecar_watch.run_pass()
        assert gauge(sidecar_watch.metrics, "shop") == 1
        assert sidecar_watch.restarter.pending() == []
        sidecar_watch.is_leader = lambda: False
        assert sidecar_watch.run_pass() is None
        assert gauge(sidecar_watch.metrics, "shop") is None
    finally:
        sidecar_watch.pods.stop()
        sidecar_watch.namespaces.stop()


def test_auto_restart_asks_only_for_opted_in_workloads(stub: StubApi) -> None:
    def serve(name: str, extra: dict[str, str]) -> None:
        rs = f"{name}-5d9c"
        stub.on("GET", api_path("apps/v1", "replicasets", "shop", rs), lambda r: Reply(200, replicaset(rs, name)))
        stub.on(
            "GET",
            api_path("apps/v1", "deployments", "shop", name),
            lambda r: Reply(200, deployment(name, annotations=extra)),
        )

    serve("web", {names.AUTO_RESTART_ANNOTATION: "true"})
    serve("api", {})
    stub.on(
        "GET",
        api_path("apps/v1", "replicasets", "team", "db-5d9c"),
        lambda r: Reply(200, replicaset("db-5d9c", "db", "team")),
    )
    stub.on("GET", api_path("apps/v1", "deployments", "team", "db"), lambda r: Reply(200, deployment("db", "team")))
    pods = [
        injected(rs_pod("web-5d9c-a", rs="web-5d9c"), "old"),
        injected(rs_pod("api-5d9c-a", rs="api-5d9c"), "old"),
        injected(rs_pod("db-5d9c-a", "team", rs="db-5d9c"), "old"),
        injected(rs_pod("fresh-5d9c-a", rs="fresh-5d9c"), "new"),
    ]
    namespaces = [ns("shop", TRACED), ns("team", TRACED, {names.AUTO_RESTART_ANNOTATION: "true"})]
    sidecar_watch = watch(stub, pods, namespaces, repair=False)
    try:
        result = sidecar_watch.run_pass()
        assert result is not None
        assert gauge(sidecar_watch.metrics, "shop") == 0
        assert sorted((r.owner.key, r.reason) for r in result.requests) == [
            ("shop/Deployment/web", "config-outdated"),  # the workload's annotation
            ("team/Deployment/db", "config-outdated"),  # the namespace's annotation
        ]
        assert not stub.calls("GET", api_path("apps/v1", "replicasets", "shop", "fresh-5d9c")), (
            "current pods cost nothing"
        )
    finally:
        sidecar_watch.pods.stop()
        sidecar_watch.namespaces.stop()
