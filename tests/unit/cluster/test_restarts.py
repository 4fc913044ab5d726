"""The restart worker against the loopback stub API server, with a hand-driven clock: the
``kubectl rollout restart`` patch, one workload at a time within the budget, failures
count, a follower rolls nothing, and a webhook failing in a loop stays a trickle."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.unit.cluster.stubapi import Reply, StubApi, status, stub_api
from webhook.cluster.owners import Owner, Owners
from webhook.cluster.restarts import Restarter, RestartRequest, rollout_complete
from webhook.cluster.stale import RESTARTED_AT
from webhook.core.restartbudget import RestartBudget
from webhook.telemetry.repairmetrics import RepairMetrics


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def path(name: str) -> str:
    return f"/apis/apps/v1/namespaces/shop/deployments/{name}"


def request(name: str, reason: str = "missing-sidecar", kind: str = "Deployment") -> RestartRequest:
    return RestartRequest(Owner("shop", kind, name, f"{name}-uid", "apps/v1"), reason, f"{name} is broken")


@pytest.fixture
def stub() -> Iterator[StubApi]:
    with stub_api() as running:
        for name in ("a", "b", "c"):
            running.on("PATCH", path(name), lambda r: Reply(200, r.json()))
        yield running


def restarter(stub: StubApi, clock: Clock, *, leading: bool = True, per_minute: int = 2) -> Restarter:
    kube = stub.kube()
    budget = RestartBudget(max_per_minute=per_minute, cooldown=600, cooldown_max=86400, clock=clock)
    return Restarter(
        kube, Owners(kube, ttl=300, clock=clock), budget, RepairMetrics(), is_leader=lambda: leading, rollout_wait=0
    )


def counter(worker: Restarter, name: str, labels: dict[str, str]) -> float:
    return worker.metrics.registry.get_sample_value(name, labels) or 0.0


def test_a_restart_is_the_kubectl_rollout_restart_patch(stub: StubApi) -> None:
    worker = restarter(stub, Clock())
    worker.update([request("a", "config-outdated")])
    rolled, _ = worker.step()
    assert rolled is not None
    assert rolled.key == "shop/Deployment/a"
    (patch,) = stub.calls("PATCH", path("a"))
    assert {k.lower(): v for k, v in patch.headers.items()}["content-type"].startswith("application/merge-patch+json")
    annotations = patch.json()["spec"]["template"]["metadata"]["annotations"]
    assert list(annotations) == [RESTARTED_AT]
    labels = {"reason": "config-outdated", "kind": "Deployment"}
    assert counter(worker, "otel_injector_workload_restarts_total", labels) == 1
    assert worker.pending() == []


def test_the_rate_limit_holds_the_third_and_counts_the_hold_once(stub: StubApi) -> None:
    clock = Clock()
    worker = restarter(stub, clock)
    worker.update([request("a"), request("b"), request("c")])
    assert worker.step()[0] is not None
    assert worker.step()[0] is not None
    held, wait = worker.step()
    assert held is None
    assert 0 < wait <= 60
    worker.step()
    assert counter(worker, "otel_injector_workload_restarts_deferred_total", {"reason": "rate-limited"}) == 1
    assert [r.owner.name for r in worker.pending()] == ["c"]
    clock.now += 60
    assert worker.step()[0] is not None
    assert len(stub.calls("PATCH", path("c"))) == 1


def test_jobs_and_bare_pods_are_never_pending(stub: StubApi) -> None:
    worker = restarter(stub, Clock())
    worker.update([request("j", kind="Job"), request("p", kind="Pod")])
    assert worker.pending() == []


def test_a_failed_patch_uses_up_the_budget(stub: StubApi) -> None:
    stub.on("PATCH", path("a"), lambda r: status(500, "InternalError"))
    worker = restarter(stub, Clock())
    worker.update([request("a")])
    assert worker.step() == (None, 0.0)
    worker.update([request("a")])
    assert worker.step()[0] is None
    assert len(stub.calls("PATCH", path("a"))) == 1  # cooling down, not retried at once
    assert (
        counter(worker, "otel_injector_workload_restarts_total", {"reason": "missing-sidecar", "kind": "Deployment"})
        == 0
    )


def test_a_follower_rolls_nothing_and_drops_its_pending_list(stub: StubApi) -> None:
    worker = restarter(stub, Clock(), leading=False)
    worker.update([request("a")])
    assert worker.step()[0] is None
    assert worker.pending() == []
    assert not stub.calls("PATCH", path("a"))


def test_a_webhook_failing_in_a_loop_never_causes_a_restart_storm(stub: StubApi) -> None:
    """Each pass (every 30 s) finds all three workloads broken again, for six hours."""
    clock = Clock()
    worker = restarter(stub, clock)
    for _ in range(6 * 120):
        worker.update([request("a"), request("b"), request("c")])
        while worker.step()[0] is not None:
            pass
        clock.now += 30
    patches = [len(stub.calls("PATCH", path(n))) for n in ("a", "b", "c")]
    # 600 s doubling: restarts at 0, 600, 1800, 4200, 9000, 18600 s; the seventh is at 37800 s.
    assert patches == [6, 6, 6]


def test_the_next_rollout_waits_for_the_current_one(stub: StubApi) -> None:
    done = threading.Event()
    deployment: dict[str, Any] = {
        "metadata": {"name": "a", "generation": 2},
        "spec": {"replicas": 1},
        "status": {"observedGeneration": 2, "updatedReplicas": 0, "replicas": 2},
    }

    def get(_: Any) -> Reply:
        if done.is_set():
            deployment["status"] = {"observedGeneration": 2, "updatedReplicas": 1, "replicas": 1}
        return Reply(200, deployment)

    stub.on("GET", path("a"), get)
    worker = restarter(stub, Clock())
    worker.rollout_wait, worker.poll = 30, 0.05
    waiter = threading.Thread(target=worker._wait_rollout, args=(request("a").owner,))
    waiter.start()
    waiter.join(0.5)
    assert waiter.is_alive(), "returned before the rollout finished"
    done.set()
    waiter.join(5)
    assert not waiter.is_alive()


@pytest.mark.parametrize(
    ("kind", "obj", "complete"),
    [
        ("Deployment", {"metadata": {"generation": 3}, "status": {"observedGeneration": 2}}, False),
        ("Deployment", {"spec": {"replicas": 2}, "status": {"updatedReplicas": 2, "replicas": 3}}, False),
        ("Deployment", {"spec": {"replicas": 2}, "status": {"updatedReplicas": 2, "replicas": 2}}, True),
        ("Deployment", {"spec": {"replicas": 0}, "status": {}}, True),
        (
            "StatefulSet",
            {"spec": {"replicas": 1}, "status": {"updatedReplicas": 1, "updateRevision": "b", "currentRevision": "a"}},
            False,
        ),
        (
            "StatefulSet",
            {"spec": {"replicas": 1}, "status": {"updatedReplicas": 1, "updateRevision": "b", "currentRevision": "b"}},
            True,
        ),
        ("DaemonSet", {"status": {"updatedNumberScheduled": 1, "desiredNumberScheduled": 3}}, False),
        ("DaemonSet", {"status": {"updatedNumberScheduled": 3, "desiredNumberScheduled": 3}}, True),
    ],
)
def test_rollout_complete(kind: str, obj: dict[str, Any], complete: bool) -> None:
    assert rollout_complete(kind, obj) is complete


def test_each_rollout_is_a_span_with_object_decision_and_reason(stub: StubApi, monkeypatch: pytest.MonkeyPatch) -> None:
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    stub.on("PATCH", path("b"), lambda r: status(500, "InternalError"))
    worker = restarter(stub, Clock(), per_minute=5)
    worker.kube.tracer = provider.get_tracer("test")
    worker.update([request("a", "image-outdated"), request("b")])
    worker.step()
    worker.step()
    # The work spans (their PATCHes are client spans under them).
    work = [s for s in spans.get_finished_spans() if s.attributes and "otel_injector.object" in s.attributes]
    found = {(s.attributes or {})["otel_injector.object"]: s for s in work}
    ok, failed = found["shop/Deployment/a"], found["shop/Deployment/b"]
    assert ok.name == "otel-injector restart workload"
    assert (ok.attributes or {})["otel_injector.decision"] == "restart"
    assert (ok.attributes or {})["otel_injector.reason"] == "image-outdated"
    assert (failed.attributes or {})["otel_injector.decision"] == "restart-failed"
    assert not failed.status.is_ok
