"""Owning-workload inference from the pod alone."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from webhook.core.workload import Workload, infer_workload, pod_display_name


def pod(
    *,
    owners: list[dict[str, Any]] | None = None,
    labels: dict[str, str] | None = None,
    generate_name: str | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    if owners is not None:
        metadata["ownerReferences"] = owners
    if labels is not None:
        metadata["labels"] = labels
    if generate_name is not None:
        metadata["generateName"] = generate_name
    if name is not None:
        metadata["name"] = name
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": {"containers": [{"name": "app"}]}}


def owner(kind: str, name: str, *, controller: bool = True) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": "u-1", "controller": controller}


def test_replicaset_with_template_hash_is_deployment() -> None:
    p = pod(owners=[owner("ReplicaSet", "checkout-7d9f8b6c5d")], labels={"pod-template-hash": "7d9f8b6c5d"})
    workload = infer_workload(p)
    assert workload == Workload("Deployment", "checkout")
    assert workload.resource_attributes() == [("k8s.deployment.name", "checkout")]
    assert workload.service_name == "checkout"


def test_replicaset_with_dashes_in_deployment_name() -> None:
    p = pod(owners=[owner("ReplicaSet", "my-web-app-5f6b7c")], labels={"pod-template-hash": "5f6b7c"})
    assert infer_workload(p) == Workload("Deployment", "my-web-app")


def test_replicaset_without_matching_hash_stays_replicaset() -> None:
    p = pod(owners=[owner("ReplicaSet", "standalone-rs")], labels={"pod-template-hash": "abc123"})
    workload = infer_workload(p)
    assert workload == Workload("ReplicaSet", "standalone-rs")
    assert workload.resource_attributes() == [("k8s.replicaset.name", "standalone-rs")]


def test_replicaset_without_hash_label_stays_replicaset() -> None:
    assert infer_workload(pod(owners=[owner("ReplicaSet", "rs-abc")])) == Workload("ReplicaSet", "rs-abc")


@pytest.mark.parametrize(
    ("kind", "key"),
    [
        ("StatefulSet", "k8s.statefulset.name"),
        ("DaemonSet", "k8s.daemonset.name"),
        ("Job", "k8s.job.name"),
    ],
)
def test_direct_owner_kinds(kind: str, key: str) -> None:
    workload = infer_workload(pod(owners=[owner(kind, "db")]))
    assert workload == Workload(kind, "db")
    assert workload.resource_attributes() == [(key, "db")]
    assert workload.service_name == "db"


def test_cronjob_made_job() -> None:
    workload = infer_workload(pod(owners=[owner("Job", "hello-29012345")]))
    assert workload == Workload("Job", "hello-29012345")
    assert workload.resource_attributes() == [("k8s.job.name", "hello-29012345"), ("k8s.cronjob.name", "hello")]
    assert workload.service_name == "hello"


def test_job_with_short_numeric_suffix_is_not_cronjob() -> None:
    workload = Workload("Job", "batch-1234567")  # 7 digits: not a CronJob's scheduled-minutes suffix
    assert workload.resource_attributes() == [("k8s.job.name", "batch-1234567")]
    assert workload.service_name == "batch-1234567"


def test_cronjob_workload_itself() -> None:
    workload = Workload("CronJob", "nightly")
    assert workload.resource_attributes() == [("k8s.cronjob.name", "nightly")]
    assert workload.service_name == "nightly"


def test_unknown_owner_kind_has_no_attributes() -> None:
    workload = infer_workload(pod(owners=[owner("Rollout", "canary")]))
    assert workload == Workload("Rollout", "canary")
    assert workload.resource_attributes() == []
    assert workload.service_name == "canary"


def test_controller_owner_preferred_over_first() -> None:
    p = pod(owners=[owner("ConfigMap", "cm", controller=False), owner("StatefulSet", "db")])
    assert infer_workload(p) == Workload("StatefulSet", "db")


def test_first_owner_when_none_is_controller() -> None:
    p = pod(owners=[owner("DaemonSet", "agent", controller=False), owner("Job", "j", controller=False)])
    assert infer_workload(p) == Workload("DaemonSet", "agent")


def test_generate_name_fallback() -> None:
    p = pod(generate_name="checkout-7d9f8b6c5d-", labels={"pod-template-hash": "7d9f8b6c5d"})
    assert infer_workload(p) == Workload("Deployment", "checkout")


def test_generate_name_without_hash_label_is_bare() -> None:
    assert infer_workload(pod(generate_name="checkout-7d9f8b6c5d-")) is None


def test_generate_name_that_is_only_the_hash() -> None:
    assert infer_workload(pod(generate_name="-abc-", labels={"pod-template-hash": "abc"})) is None


@pytest.mark.parametrize("label", ["batch.kubernetes.io/job-name", "job-name"])
def test_job_name_label_fallback(label: str) -> None:
    assert infer_workload(pod(labels={label: "migrate-29000000"})) == Workload("Job", "migrate-29000000")


def test_bare_pod_is_none() -> None:
    assert infer_workload(pod(name="debug", labels={"app": "debug"})) is None
    assert infer_workload({}) is None


def test_owner_without_name_falls_through() -> None:
    p = pod(owners=[{"kind": "ReplicaSet", "controller": True}], labels={"job-name": "j"})
    assert infer_workload(p) == Workload("Job", "j")


def test_pod_display_name() -> None:
    assert pod_display_name(pod(name="web-0", generate_name="web-")) == "web-0"
    assert pod_display_name(pod(generate_name="web-")) == "web-"
    assert pod_display_name({}) == ""


OWNER_RS = {"kind": "ReplicaSet", "name": "web-12345", "controller": True}
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=12,
)
METADATA_KEYS = st.sampled_from(["labels", "ownerReferences", "generateName", "name", "namespace"])
OWNER = st.fixed_dictionaries(
    {},
    optional={
        "kind": st.sampled_from(["ReplicaSet", "Job", "StatefulSet"]) | JSON,
        "name": st.text(max_size=12) | JSON,
        "controller": st.booleans() | JSON,
    },
)
LABELS = st.dictionaries(st.sampled_from(["pod-template-hash", "job-name", "batch.kubernetes.io/job-name"]), JSON)
METADATA = st.fixed_dictionaries(
    {},
    optional={
        "labels": LABELS | JSON,
        "ownerReferences": st.lists(OWNER | JSON, max_size=3) | JSON,
        "generateName": st.text(max_size=12) | JSON,
        "name": JSON,
    },
)


# YAML turns an unquoted hash like 12345 into an int; the apiserver would reject it, but
# 'otel-injector inject' sees the YAML first.
@example({"metadata": {"labels": {"pod-template-hash": 12345}, "ownerReferences": [OWNER_RS]}})
@example({"metadata": {"ownerReferences": 5}})
@example({"metadata": "web"})
@given(st.dictionaries(st.sampled_from(["metadata", "spec"]), METADATA | JSON) | st.dictionaries(METADATA_KEYS, JSON))
def test_inference_never_raises(candidate: dict[str, Any]) -> None:
    workload = infer_workload(candidate)
    assert workload is None or (isinstance(workload.kind, str) and isinstance(workload.name, str))
    if workload is not None:
        workload.resource_attributes()
        assert isinstance(workload.service_name, str)
    assert isinstance(pod_display_name(candidate), str)
