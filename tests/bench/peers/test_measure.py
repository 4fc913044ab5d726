"""bench.peers.measure: what is POSTed and how lanes are formed (no apiserver)."""

from __future__ import annotations

import ssl

from bench.peers import measure
from bench.peers.webhooks import BASELINE_NAMESPACE, SHAPES, Peer


def _peer(name: str) -> Peer:
    return Peer(
        name=name,
        version="v",
        namespaces=dict.fromkeys(SHAPES, f"peer-{name}"),
        endpoints=dict.fromkeys(SHAPES, "https://127.0.0.1:1/x"),
        pids=list,
        context=ssl.create_default_context(),
        marker=b"m",
    )


def test_a_created_pod_is_stripped_of_what_the_server_sets() -> None:
    created = {
        "metadata": {"name": "p-x", "generateName": "p-", "uid": "u", "resourceVersion": "1", "namespace": "n"},
        "spec": {},
        "status": {"phase": "Pending"},
    }
    assert measure.creatable(created) == {"metadata": {"generateName": "p-"}, "spec": {}}


def test_each_shape_has_one_lane_per_webhook_and_a_baseline() -> None:
    peers = [_peer("otel-injector"), _peer("istio")]
    lanes = measure.lanes_for("typical", peers, {"typical": b"T"}, {})
    assert [(lane.key, lane.namespace) for lane in lanes] == [
        ("otel-injector", "peer-otel-injector"),
        ("istio", "peer-istio"),
        ("none", BASELINE_NAMESPACE),
    ]
    assert all(lane.body == b"T" for lane in lanes)


def test_the_injected_shape_has_each_webhooks_own_body_and_baseline() -> None:
    peers = [_peer("otel-injector"), _peer("istio")]
    lanes = measure.lanes_for("injected", peers, {}, {"otel-injector": b"O", "istio": b"I"})
    assert [(lane.key, lane.body) for lane in lanes] == [
        ("otel-injector", b"O"),
        ("none:otel-injector", b"O"),
        ("istio", b"I"),
        ("none:istio", b"I"),
    ]
    assert not any(lane.marker for lane in lanes)  # an already-injected pod gets no new marker check


def test_a_slow_lane_stops_at_its_budget_once_it_has_the_minimum() -> None:
    lane = measure.Lane("kyverno", "peer-kyverno", b"L")
    lane.spent_s = 1000.0
    lane.latencies_ms = [1.0] * (measure.MIN_CREATIONS - 1)
    assert lane.open(budget_s=240.0)
    lane.latencies_ms.append(1.0)
    assert not lane.open(budget_s=240.0)


def test_a_lane_that_keeps_failing_is_closed() -> None:
    lane = measure.Lane("istio", "peer-istio", b"T")
    lane.errors = ["500"] * measure.MAX_ERRORS
    assert not lane.open(budget_s=240.0)
