"""The copies' pure rules: what a namespace wants and what to do about its ConfigMap."""

from __future__ import annotations

import json
from typing import Any

import pytest

from webhook.cluster.copies import (
    HASH_ANNOTATION,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    Action,
    Ownership,
    Source,
    build_copy,
    is_current,
    is_terminating,
    namespace_wants_copy,
    ownership,
    plan_copy,
    pod_mounts_copy,
    read_source,
    refusal_event,
)
from webhook.core import names
from webhook.core.settings import config_hash

CONFIG = "receivers: {}\n"
SOURCE = Source(data={"config.yaml": CONFIG}, hash=config_hash(CONFIG.encode()))


def configmap(
    *,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    data: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": names.CONFIGMAP_NAME,
            "namespace": "shop",
            "uid": "u1",
            "resourceVersion": "7",
            "labels": labels or {},
            "annotations": annotations or {},
            "managedFields": [{"manager": "x"}],
        },
        "data": data if data is not None else {},
    }


def managed(data: dict[str, str] | None = None, hash_: str | None = None) -> dict[str, Any]:
    return configmap(
        labels={MANAGED_BY_LABEL: MANAGED_BY},
        annotations={HASH_ANNOTATION: hash_ or SOURCE.hash},
        data=data if data is not None else dict(SOURCE.data),
    )


def test_read_source_hashes_config_yaml() -> None:
    assert read_source({"data": {"config.yaml": CONFIG, "extra": "x"}}) == Source(
        {"config.yaml": CONFIG, "extra": "x"}, SOURCE.hash
    )
    assert read_source({"data": {"other": "x"}}) is None
    assert read_source(None) is None


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (None, Ownership.ABSENT),
        (configmap(), Ownership.USER),
        (configmap(labels={MANAGED_BY_LABEL: "Helm"}), Ownership.USER),
        (managed(), Ownership.MANAGED),
        (
            configmap(labels={MANAGED_BY_LABEL: MANAGED_BY}, annotations={names.MANAGED_ANNOTATION: "false"}),
            Ownership.OPTED_OUT,
        ),
        (configmap(annotations={names.MANAGED_ANNOTATION: " False "}), Ownership.OPTED_OUT),
    ],
)
def test_ownership(obj: dict[str, Any] | None, expected: Ownership) -> None:
    assert ownership(obj) is expected


def test_plan_creates_when_missing_and_wanted() -> None:
    assert plan_copy(wanted=True, why="w", existing=None, source=SOURCE).action is Action.CREATE
    assert plan_copy(wanted=True, why="w", existing=None, source=None).action is Action.WAIT
    assert plan_copy(wanted=False, why="w", existing=None, source=SOURCE).action is Action.NONE


def test_plan_updates_managed_copy_only_when_out_of_date() -> None:
    assert plan_copy(wanted=True, why="w", existing=managed(), source=SOURCE).action is Action.NONE
    old = managed(data={"config.yaml": "old"}, hash_="0000")
    assert plan_copy(wanted=True, why="w", existing=old, source=SOURCE).action is Action.UPDATE
    # Same data, missing hash annotation: repaired.
    assert plan_copy(wanted=True, why="w", existing=managed(hash_="x"), source=SOURCE).action is Action.UPDATE
    # Source gone: the copy is kept as it is.
    assert plan_copy(wanted=True, why="w", existing=old, source=None).action is Action.NONE


def test_plan_deletes_only_managed_copies() -> None:
    assert plan_copy(wanted=False, why="w", existing=managed(), source=SOURCE).action is Action.DELETE
    assert plan_copy(wanted=False, why="w", existing=configmap(data={"a": "b"}), source=SOURCE).action is Action.NONE
    opted_out = managed()
    opted_out["metadata"]["annotations"][names.MANAGED_ANNOTATION] = "false"
    assert plan_copy(wanted=False, why="w", existing=opted_out, source=SOURCE).action is Action.NONE


def test_plan_refuses_user_and_opted_out_configmaps() -> None:
    user = plan_copy(wanted=True, why="w", existing=configmap(data={"config.yaml": "mine"}), source=SOURCE)
    assert user.action is Action.REFUSE
    assert "user made it" in user.reason
    opted = managed(data={"config.yaml": "mine"})
    opted["metadata"]["annotations"][names.MANAGED_ANNOTATION] = "false"
    refused = plan_copy(wanted=True, why="w", existing=opted, source=SOURCE)
    assert refused.action is Action.REFUSE
    assert "managed" in refused.reason
    # A user ConfigMap that already holds the source data needs no complaint.
    same = configmap(data=dict(SOURCE.data))
    assert plan_copy(wanted=True, why="w", existing=same, source=SOURCE).action is Action.NONE


def test_build_copy_new_and_update_keep_foreign_metadata() -> None:
    new = build_copy(SOURCE, namespace="shop", name="cm", source_ref="otel-injector/src")
    assert new["metadata"] == {
        "name": "cm",
        "namespace": "shop",
        "labels": {MANAGED_BY_LABEL: MANAGED_BY},
        "annotations": {HASH_ANNOTATION: SOURCE.hash, "otel-injector.io/source": "otel-injector/src"},
    }
    assert is_current(new, SOURCE)
    existing = managed(data={"config.yaml": "old"}, hash_="0")
    existing["metadata"]["labels"]["team"] = "a"
    updated = build_copy(SOURCE, namespace="shop", name="cm", source_ref="s", existing=existing)
    assert updated["metadata"]["resourceVersion"] == "7"
    assert "managedFields" not in updated["metadata"]
    assert updated["metadata"]["labels"]["team"] == "a"
    assert updated["data"] == SOURCE.data
    assert is_current(updated, SOURCE)


def pod(labels: dict[str, str], status: dict[str, Any] | str | None, phase: str = "Pending") -> dict[str, Any]:
    annotations = {}
    if status is not None:
        annotations[names.STATUS_ANNOTATION] = status if isinstance(status, str) else json.dumps(status)
    return {
        "metadata": {"name": "p", "namespace": "x", "labels": labels, "annotations": annotations},
        "status": {"phase": phase},
    }


def test_pod_mounts_copy() -> None:
    opted = {names.TRACING_LABEL: names.TRACING_ENABLED}
    assert pod_mounts_copy(pod(opted, {"configMap": names.CONFIGMAP_NAME}), names.CONFIGMAP_NAME)
    assert pod_mounts_copy(pod(opted, "not json"), names.CONFIGMAP_NAME)
    assert not pod_mounts_copy(pod(opted, {"configMap": "own-config"}), names.CONFIGMAP_NAME)
    assert not pod_mounts_copy(pod(opted, None), names.CONFIGMAP_NAME)  # not injected
    assert not pod_mounts_copy(pod({}, {"configMap": names.CONFIGMAP_NAME}), names.CONFIGMAP_NAME)
    assert not pod_mounts_copy(pod(opted, {"configMap": names.CONFIGMAP_NAME}, "Succeeded"), names.CONFIGMAP_NAME)
    assert not pod_mounts_copy(pod(opted, {"mode": "none", "endpoint": "node"}), names.CONFIGMAP_NAME)  # env only


def ns(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels or {}}}


def test_namespace_wants_copy() -> None:
    traced = ns("shop", {names.TRACING_LABEL: names.TRACING_ENABLED})
    assert namespace_wants_copy(traced, excluded=(), opted_in_pods=0, pods_left_recently=False)[0]
    assert not namespace_wants_copy(ns("shop"), excluded=(), opted_in_pods=0, pods_left_recently=False)[0]
    assert namespace_wants_copy(ns("shop"), excluded=(), opted_in_pods=2, pods_left_recently=False)[0]
    assert namespace_wants_copy(ns("shop"), excluded=(), opted_in_pods=0, pods_left_recently=True)[0]
    wanted, why = namespace_wants_copy(traced, excluded=("shop",), opted_in_pods=3, pods_left_recently=True)
    assert not wanted
    assert "excluded" in why


def test_is_terminating() -> None:
    assert is_terminating({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}})
    assert is_terminating({"metadata": {}, "status": {"phase": "Terminating"}})
    assert not is_terminating(ns("a"))


def test_refusal_event_points_at_the_configmap() -> None:
    event = refusal_event(configmap(), "why", instance="me")
    assert event["involvedObject"]["kind"] == "ConfigMap"
    assert event["involvedObject"]["uid"] == "u1"
    assert event["metadata"]["namespace"] == "shop"
    assert event["type"] == "Warning"
    assert event["message"] == "why"
