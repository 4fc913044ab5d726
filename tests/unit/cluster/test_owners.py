"""Owner lookups against the loopback stub API server: a ReplicaSet's Deployment, kinds we
never read, a vanished owner, the cache, and a refusal that names the missing grant."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.unit.cluster.stubapi import Reply, StubApi, status, stub_api
from webhook.cluster.client import ApiError
from webhook.cluster.owners import Owner, Owners, controller_ref
from webhook.cluster.paths import api_path


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def pod(kind: str | None, name: str = "", uid: str = "u") -> dict[str, Any]:
    refs = [{"kind": kind, "name": name, "uid": uid, "controller": True}] if kind else []
    return {"metadata": {"name": "p", "namespace": "shop", "uid": "pod-uid", "ownerReferences": refs}}


@pytest.fixture
def stub() -> Iterator[StubApi]:
    with stub_api() as running:
        yield running


def test_a_replicasets_pod_belongs_to_its_deployment(stub: StubApi) -> None:
    deployment = {"kind": "Deployment", "name": "web", "uid": "d-uid", "controller": True}
    stub.on(
        "GET",
        api_path("apps/v1", "replicasets", "shop", "web-1"),
        lambda r: Reply(200, {"metadata": {"name": "web-1", "ownerReferences": [deployment]}}),
    )
    stub.on(
        "GET",
        api_path("apps/v1", "deployments", "shop", "web"),
        lambda r: Reply(
            200, {"apiVersion": "apps/v1", "metadata": {"name": "web", "uid": "d-uid", "annotations": {"a": "b"}}}
        ),
    )
    clock = Clock()
    owners = Owners(stub.kube(), ttl=10, clock=clock)
    owner = owners.of_pod(pod("ReplicaSet", "web-1"))
    assert owner == Owner("shop", "Deployment", "web", "d-uid", "apps/v1", {"a": "b"})
    assert owner.rollable
    assert owner.path == "/apis/apps/v1/namespaces/shop/deployments/web"
    assert owners.cached_of_pod(pod("ReplicaSet", "web-1")) == owner
    owners.of_pod(pod("ReplicaSet", "web-1"))
    assert len(stub.calls("GET", api_path("apps/v1", "replicasets", "shop", "web-1"))) == 1
    clock.now = 11
    assert owners.cached_of_pod(pod("ReplicaSet", "web-1")) is None
    owners.of_pod(pod("ReplicaSet", "web-1"))
    assert len(stub.calls("GET", api_path("apps/v1", "replicasets", "shop", "web-1"))) == 2


def test_a_replicaset_of_another_controller_is_not_rollable(stub: StubApi) -> None:
    rollout = {"kind": "Rollout", "name": "canary", "uid": "r-uid", "controller": True}
    stub.on(
        "GET",
        api_path("apps/v1", "replicasets", "shop", "canary-1"),
        lambda r: Reply(200, {"metadata": {"ownerReferences": [rollout]}}),
    )
    owner = Owners(stub.kube(), ttl=10, clock=Clock()).of_pod(pod("ReplicaSet", "canary-1"))
    assert (owner.kind, owner.name, owner.rollable) == ("Rollout", "canary", False)


def test_jobs_bare_pods_and_vanished_owners_need_no_read(stub: StubApi) -> None:
    owners = Owners(stub.kube(), ttl=10, clock=Clock())
    job = owners.of_pod(pod("Job", "batch-1", "j-uid"))
    assert (job.kind, job.uid, job.api_version, job.rollable) == ("Job", "j-uid", "batch/v1", False)
    bare = owners.of_pod(pod(None))
    assert (bare.kind, bare.name, bare.uid, bare.rollable) == ("Pod", "p", "pod-uid", False)
    stub.on("GET", api_path("apps/v1", "statefulsets", "shop", "db"), lambda r: status(404, "NotFound"))
    gone = owners.of_pod(pod("StatefulSet", "db", "s-uid"))
    assert (gone.kind, gone.uid) == ("StatefulSet", "s-uid")
    assert [r.path for r in stub.requests] == [api_path("apps/v1", "statefulsets", "shop", "db")]


def test_a_refused_read_names_the_grant(stub: StubApi) -> None:
    stub.on("GET", api_path("apps/v1", "daemonsets", "shop", "agent"), lambda r: status(403, "Forbidden"))
    with pytest.raises(ApiError, match="grant get") as refused:
        Owners(stub.kube(), ttl=10, clock=Clock()).of_pod(pod("DaemonSet", "agent"))
    assert refused.value.status == 403


def test_controller_ref_tolerates_odd_metadata() -> None:
    assert controller_ref({}) is None
    assert controller_ref({"metadata": {"ownerReferences": "x"}}) is None
    assert controller_ref({"metadata": {"ownerReferences": [{"kind": "Job", "name": "j"}]}}) is None
    assert controller_ref(pod("Job", "j")) == ("Job", "j", "u")
