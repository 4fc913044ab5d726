"""Leader election through its injected clock, against a real HTTP server on loopback that
keeps the Lease with the apiserver's compare-and-swap rules: acquire, renew, lose at the
renew deadline, take over after the lease duration by this process's own clock, release
on stop."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.unit.cluster.stubapi import Store, StubApi, status, stub_api
from webhook.cluster.leader import LeaderElector, LeaseTimings, lease_holder
from webhook.cluster.paths import lease_path

NAMESPACE, NAME = "otel-injector", "otel-injector-leader"
TIMINGS = LeaseTimings(lease_duration=15.0, renew_deadline=10.0, retry_period=2.0)


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def stub() -> Iterator[StubApi]:
    with stub_api() as running:
        yield running


@pytest.fixture
def store(stub: StubApi) -> Store:
    leases = Store(stub, lease_path(NAMESPACE))
    leases.serve(NAME)
    return leases


def lease(store: Store) -> dict[str, Any]:
    return store.objects[lease_path(NAMESPACE, NAME)]


def elector(stub: StubApi, identity: str, clock: Clock, events: list[str] | None = None) -> LeaderElector:
    log = events if events is not None else []
    return LeaderElector(
        stub.kube(),
        namespace=NAMESPACE,
        name=NAME,
        identity=identity,
        timings=TIMINGS,
        on_started_leading=lambda: log.append(f"{identity} started"),
        on_stopped_leading=lambda: log.append(f"{identity} stopped"),
        clock=clock,
    )


def test_acquires_a_missing_lease_by_creating_it(stub: StubApi, store: Store) -> None:
    clock, events = Clock(), list[str]()
    me = elector(stub, "me", clock, events)
    assert me.step() is True
    assert me.is_leader()
    spec = lease(store)["spec"]
    assert spec["holderIdentity"] == "me"
    assert spec["leaseDurationSeconds"] == 15
    assert spec["leaseTransitions"] == 0
    assert events == ["me started"]


def test_renews_keeping_the_acquire_time(stub: StubApi, store: Store) -> None:
    clock, events = Clock(), list[str]()
    me = elector(stub, "me", clock, events)
    me.step()
    first = dict(lease(store)["spec"])
    clock.advance(TIMINGS.retry_period)
    assert me.step() is True
    renewed = lease(store)["spec"]
    assert renewed["acquireTime"] == first["acquireTime"]
    assert renewed["renewTime"] >= first["renewTime"]
    assert renewed["leaseTransitions"] == 0
    assert lease(store)["metadata"]["resourceVersion"] == "2"
    assert events == ["me started"]  # renewing is not a new start


def test_loses_leadership_at_the_renew_deadline(stub: StubApi, store: Store) -> None:
    clock, events = Clock(), list[str]()
    me = elector(stub, "me", clock, events)
    me.step()
    store.failing = status(500, "InternalError")  # the apiserver is unreachable for us
    clock.advance(TIMINGS.renew_deadline - 1)
    assert me.step() is True  # failed to renew, but still within the deadline
    clock.advance(1)
    # is_leader turns false by itself at the deadline, even before the next round runs.
    assert not me.is_leader()
    assert me.step() is False
    assert events == ["me started", "me stopped"]
    # Strictly before anyone may take over: the deadline is shorter than the lease.
    assert TIMINGS.renew_deadline < TIMINGS.lease_duration


def test_a_live_leader_is_left_alone_and_an_expired_one_is_taken_over(stub: StubApi, store: Store) -> None:
    clock_a, clock_b = Clock(), Clock()
    clock_b.now = 5.0  # another machine's monotonic clock: only its own differences matter
    a, b = elector(stub, "a", clock_a), elector(stub, "b", clock_b)
    assert a.step() is True
    assert b.step() is False  # b first sees a's record now
    for _ in range(3):  # a keeps renewing: each new record restarts b's count
        clock_a.advance(TIMINGS.retry_period)
        clock_b.advance(TIMINGS.lease_duration - 1)
        assert a.step() is True
        assert b.step() is False
    # a stops renewing (say, it froze). b counts the lease duration on its own clock.
    clock_b.advance(TIMINGS.lease_duration - 0.5)
    assert b.step() is False
    clock_b.advance(0.5)
    assert b.step() is True
    spec = lease(store)["spec"]
    assert spec["holderIdentity"] == "b"
    assert spec["leaseTransitions"] == 1


def test_wall_clock_times_in_the_record_do_not_matter(stub: StubApi, store: Store) -> None:
    """A holder whose renewTime is years old, by a skewed clock, is still alive while its
    record keeps changing; the record is only stale after lease_duration of our own time."""
    clock = Clock()
    store.objects[lease_path(NAMESPACE, NAME)] = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": NAME, "namespace": NAMESPACE, "resourceVersion": "1"},
        "spec": {"holderIdentity": "other", "leaseDurationSeconds": 15, "renewTime": "2001-01-01T00:00:00.000000Z"},
    }
    me = elector(stub, "me", clock)
    assert me.step() is False
    clock.advance(14)
    assert me.step() is False
    clock.advance(1)
    assert me.step() is True


def test_racing_candidates_cannot_both_win(stub: StubApi, store: Store) -> None:
    clock = Clock()
    a, b = elector(stub, "a", clock), elector(stub, "b", clock)
    assert a.try_acquire_or_renew() is True
    assert b.try_acquire_or_renew() is False  # exists: b now waits for it to expire
    # A compare-and-swap on a stale resourceVersion loses too.
    current = lease(store)
    stale = {**current, "metadata": {**current["metadata"], "resourceVersion": "0"}}
    from webhook.cluster.client import ApiError

    with pytest.raises(ApiError) as info:
        stub.kube().replace(lease_path(NAMESPACE, NAME), stale)
    assert info.value.conflict
    assert lease_holder(lease(store)) == "a"


def test_stop_releases_the_lease_so_a_successor_takes_over_at_once(stub: StubApi, store: Store) -> None:
    clock, events = Clock(), list[str]()
    a, b = elector(stub, "a", clock, events), elector(stub, "b", clock, events)
    a.step()
    assert b.step() is False
    a.stop(release=True)
    assert not a.is_leader()
    spec = lease(store)["spec"]
    assert spec["holderIdentity"] is None
    assert b.step() is True  # no waiting out the lease: it is free
    assert events == ["a started", "a stopped", "b started"]


def test_stop_without_leading_writes_nothing(stub: StubApi, store: Store) -> None:
    clock = Clock()
    a, b = elector(stub, "a", clock), elector(stub, "b", clock)
    a.step()
    b.step()
    writes = len(stub.calls("PUT", lease_path(NAMESPACE, NAME)))
    b.stop(release=True)
    assert len(stub.calls("PUT", lease_path(NAMESPACE, NAME))) == writes
    assert lease_holder(lease(store)) == "a"


def test_timings_must_keep_the_deadline_inside_the_lease() -> None:
    with pytest.raises(ValueError, match="retry_period < renew_deadline < lease_duration"):
        LeaseTimings(lease_duration=10, renew_deadline=10, retry_period=2)


def test_each_transition_is_a_span_and_renewals_are_not(stub: StubApi, store: Store) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    clock = Clock()
    me = elector(stub, "me", clock)
    me.kube.tracer = provider.get_tracer("test")
    me.step()
    clock.advance(2)
    me.step()  # a renewal
    stub.on("PUT", lease_path(NAMESPACE, NAME), lambda r: status(500, "InternalError"))
    clock.advance(11)
    me.step()  # renewal fails past the deadline
    spans = exporter.get_finished_spans()
    assert [(s.name, dict(s.attributes or {})["otel_injector.decision"]) for s in spans] == [
        ("leadership change", "acquired"),
        ("leadership change", "lost"),
    ]
    assert dict(spans[0].attributes or {})["otel_injector.object"] == f"lease/{NAMESPACE}/{NAME}"
