"""``otel-injector stale``'s pure parts: reasons, grouping, exit codes, output."""

from __future__ import annotations

import json
from typing import Any

from webhook.cluster.stale import (
    RESTARTED_AT,
    StalePod,
    exit_code,
    find_stale,
    group_by_workload,
    render_json,
    render_text,
    restart_patch,
    stale_reasons,
)
from webhook.core import names
from webhook.core.settings import InjectionSettings
from webhook.core.workload import Workload

SETTINGS = InjectionSettings(sidecar_image="collector:2", config_hash="new")


def pod(
    name: str,
    *,
    config_hash: str = "new",
    image: str = "collector:2",
    config_map: str = names.CONFIGMAP_NAME,
    owner: tuple[str, str] | None = None,
    template_hash: str | None = None,
    phase: str = "Running",
    annotations: dict[str, str] | None = None,
    injected: bool = True,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "shop", "annotations": dict(annotations or {}), "labels": {}}
    if injected:
        meta["annotations"][names.STATUS_ANNOTATION] = json.dumps(
            {"configHash": config_hash, "image": image, "configMap": config_map}
        )
    if owner:
        meta["ownerReferences"] = [{"kind": owner[0], "name": owner[1], "controller": True}]
    if template_hash:
        meta["labels"]["pod-template-hash"] = template_hash
    return {"metadata": meta, "spec": {"containers": [{"name": "app"}]}, "status": {"phase": phase}}


def test_current_pod_is_not_stale() -> None:
    assert stale_reasons(pod("a"), current_hash="new", settings=SETTINGS) == []
    assert stale_reasons(pod("a", injected=False), current_hash="new", settings=SETTINGS) == []


def test_reasons_name_config_and_image() -> None:
    reasons = stale_reasons(pod("a", config_hash="old", image="collector:1"), current_hash="new", settings=SETTINGS)
    assert reasons == ["collector config old, current is new", "sidecar image collector:1, current is collector:2"]


def test_unknown_current_hash_compares_images_only() -> None:
    assert stale_reasons(pod("a", config_hash="old"), current_hash="", settings=SETTINGS) == []


def test_own_configmap_and_own_image_are_respected() -> None:
    own = pod("a", config_hash="old", config_map="mine")
    assert stale_reasons(own, current_hash="new", settings=SETTINGS) == []
    chosen = pod("b", image="collector:custom", annotations={"otel-injector.io/image": "collector:custom"})
    assert stale_reasons(chosen, current_hash="new", settings=SETTINGS) == []


def test_finished_pods_are_ignored() -> None:
    assert stale_reasons(pod("a", config_hash="old", phase="Succeeded"), current_hash="new", settings=SETTINGS) == []


def test_grouping_maps_replicasets_to_deployments() -> None:
    pods = [
        pod("web-7d9-x", config_hash="old", owner=("ReplicaSet", "web-7d9"), template_hash="7d9"),
        pod("web-7d9-y", config_hash="old", owner=("ReplicaSet", "web-7d9"), template_hash="7d9"),
        pod("bare", image="collector:1"),
        pod("fine", owner=("ReplicaSet", "web-7d9"), template_hash="7d9"),
        pod("job-1-z", config_hash="old", owner=("Job", "job-1")),
    ]
    groups = group_by_workload(find_stale(pods, current_hash="new", settings=SETTINGS))
    assert [(g.kind, g.name, [p.name for p in g.pods]) for g in groups] == [
        ("Deployment", "web", ["web-7d9-x", "web-7d9-y"]),
        ("Job", "job-1", ["job-1-z"]),
        ("Pod", "bare", ["bare"]),
    ]
    assert [g.restartable for g in groups] == [True, False, False]
    assert "bare pod" in groups[2].note
    text = render_text(groups, current_hash="new", image="collector:2", restart=False)
    assert "Deployment shop/web: 2 stale pod(s); roll it with --restart" in text
    assert "Pod shop/bare: 1 stale pod(s); bare pod: cannot be restarted" in text
    assert text.endswith("4 stale pod(s) in 3 workload(s) (config new, image collector:2)\n")
    document = json.loads(render_json(groups, current_hash="new", image="collector:2"))
    assert document["stalePods"] == 4
    assert document["workloads"][0]["pods"][0]["reasons"] == ["collector config old, current is new"]


def test_exit_codes() -> None:
    assert exit_code([], restart=False) == 0
    groups = group_by_workload(
        [
            StalePod("shop", "a", Workload("Deployment", "web"), ("r",)),
            StalePod("shop", "b", None, ("r",)),
        ]
    )
    assert exit_code(groups, restart=False) == 3
    groups[0].restarted = True
    assert exit_code(groups, restart=True) == 3  # the bare pod is still stale
    assert exit_code(groups[:1], restart=True) == 0
    groups[0].restarted, groups[0].error = False, "forbidden"
    assert exit_code(groups[:1], restart=True) == 1


def test_restart_patch_is_kubectl_rollout_restart() -> None:
    annotations = restart_patch()["spec"]["template"]["metadata"]["annotations"]
    assert list(annotations) == [RESTARTED_AT]
    assert annotations[RESTARTED_AT].endswith("Z")


def test_env_only_pods_have_no_sidecar_to_be_stale() -> None:
    env_only = pod("a")
    env_only["metadata"]["annotations"][names.STATUS_ANNOTATION] = json.dumps({"mode": "none", "endpoint": "node"})
    assert stale_reasons(env_only, current_hash="new", settings=SETTINGS) == []
