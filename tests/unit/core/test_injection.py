"""inject_pod: the one pure step from a pod to an injected pod."""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import pytest

from webhook import __version__
from webhook.core import names, overrides
from webhook.core.decision import Reason
from webhook.core.injection import inject_pod
from webhook.core.settings import DEFAULT_IMAGE, InjectionSettings
from webhook.core.sidecar import security_context
from webhook.core.workload import Workload

SETTINGS = InjectionSettings(config_hash="abc123")


def make_pod(**spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"containers": [{"name": "app", "image": "shop/app:1"}]}
    body.update(spec)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": "checkout-5f6b7c-",
            "namespace": "shop",
            "labels": {"app": "checkout", "pod-template-hash": "5f6b7c"},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": "checkout-5f6b7c",
                    "uid": "u",
                    "controller": True,
                }
            ],
        },
        "spec": body,
    }


def container_names(containers: list[dict[str, Any]]) -> list[str]:
    return [c["name"] for c in containers]


def env_names(container: dict[str, Any]) -> list[str]:
    return [e["name"] for e in container.get("env", [])]


def test_native_mode_goes_first_in_init_containers_without_others() -> None:
    result = inject_pod(make_pod(), SETTINGS, namespace="shop")
    assert result.injected
    assert result.reason == Reason.INJECTED
    assert result.mode == "native"
    spec = result.pod["spec"]
    assert container_names(spec["initContainers"]) == ["otel-collector"]
    assert spec["initContainers"][0]["restartPolicy"] == "Always"
    assert container_names(spec["containers"]) == ["app"]
    assert spec["volumes"] == [
        {
            "name": "otel-collector-config",
            "configMap": {"name": "otel-collector-sidecar", "items": [{"key": "config.yaml", "path": "config.yaml"}]},
        }
    ]


def test_native_mode_after_native_sidecars_before_regular_init() -> None:
    init = [
        {"name": "istio-proxy", "image": "proxy", "restartPolicy": "Always"},
        {"name": "vault-agent", "image": "vault", "restartPolicy": "Always"},
        {"name": "migrate", "image": "migrate"},
        {"name": "warmup", "image": "warmup"},
    ]
    result = inject_pod(make_pod(initContainers=init), SETTINGS, namespace="shop")
    assert container_names(result.pod["spec"]["initContainers"]) == [
        "istio-proxy",
        "vault-agent",
        "otel-collector",
        "migrate",
        "warmup",
    ]


def test_native_mode_before_regular_init_containers() -> None:
    init = [{"name": "migrate", "image": "migrate"}]
    result = inject_pod(make_pod(initContainers=init), SETTINGS, namespace="shop")
    assert container_names(result.pod["spec"]["initContainers"]) == ["otel-collector", "migrate"]


def test_container_mode_appends_to_containers() -> None:
    init = [{"name": "migrate", "image": "migrate"}]
    settings = InjectionSettings(sidecar_mode="container")
    result = inject_pod(make_pod(initContainers=init), settings, namespace="shop")
    spec = result.pod["spec"]
    assert result.mode == "container"
    assert container_names(spec["containers"]) == ["app", "otel-collector"]
    assert container_names(spec["initContainers"]) == ["migrate"]
    assert "restartPolicy" not in spec["containers"][1]


def test_mode_annotation_overrides_setting() -> None:
    pod = make_pod()
    pod["metadata"]["annotations"] = {overrides.SIDECAR_MODE: "container"}
    result = inject_pod(pod, SETTINGS, namespace="shop")
    assert container_names(result.pod["spec"]["containers"]) == ["app", "otel-collector"]
    assert "initContainers" not in result.pod["spec"]


def test_input_is_never_mutated() -> None:
    pod = make_pod(
        initContainers=[{"name": "migrate", "env": [{"name": "OTEL_RESOURCE_ATTRIBUTES", "value": "a=b"}]}],
        volumes=[{"name": "data", "emptyDir": {}}],
    )
    pod["spec"]["containers"][0]["env"] = [{"name": "OTEL_RESOURCE_ATTRIBUTES", "value": "team=x"}]
    pod["metadata"]["annotations"] = {"example.com/a": "b"}
    before = copy.deepcopy(pod)
    result = inject_pod(pod, SETTINGS, namespace="shop")
    assert result.injected
    assert pod == before
    assert result.pod is not pod
    assert result.pod["spec"]["containers"][0]["env"] is not pod["spec"]["containers"][0]["env"]


def test_second_injection_is_already_injected() -> None:
    first = inject_pod(make_pod(), SETTINGS, namespace="shop")
    second = inject_pod(first.pod, SETTINGS, namespace="shop")
    assert not second.injected
    assert second.reason == Reason.ALREADY_INJECTED
    assert second.pod is first.pod
    assert second.warnings == ("otel-injector: sidecar not injected: pod already has the otel-collector sidecar",)


def test_second_injection_without_status_annotation_is_still_skipped() -> None:
    injected = copy.deepcopy(dict(inject_pod(make_pod(), SETTINGS, namespace="shop").pod))
    del injected["metadata"]["annotations"][names.STATUS_ANNOTATION]
    assert inject_pod(injected, SETTINGS, namespace="shop").reason == Reason.ALREADY_INJECTED


def test_status_annotation() -> None:
    pod = make_pod()
    pod["metadata"]["annotations"] = {"keep": "me"}
    result = inject_pod(pod, SETTINGS, namespace="shop")
    annotations = result.pod["metadata"]["annotations"]
    assert annotations["keep"] == "me"
    raw = annotations[names.STATUS_ANNOTATION]
    assert json.loads(raw) == {
        "version": __version__,
        "configHash": "abc123",
        "configMap": "otel-collector-sidecar",
        "image": DEFAULT_IMAGE,
        "mode": "native",
        "initContainers": ["otel-collector"],
        "volumes": ["otel-collector-config"],
        "env": sorted(
            [
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "OTEL_EXPORTER_OTLP_PROTOCOL",
                "OTEL_PROPAGATORS",
                "OTEL_RESOURCE_ATTRIBUTES",
                "OTEL_RESOURCE_ATTRIBUTES_NODE_NAME",
                "OTEL_RESOURCE_ATTRIBUTES_POD_NAME",
                "OTEL_RESOURCE_ATTRIBUTES_POD_UID",
                "OTEL_SERVICE_NAME",
            ]
        ),
        "envContainers": ["app"],
    }
    # Compact and key-sorted, so equal records are equal strings.
    assert raw == json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":"))


def test_status_annotation_in_container_mode() -> None:
    result = inject_pod(make_pod(), InjectionSettings(sidecar_mode="container"), namespace="shop")
    record = json.loads(result.pod["metadata"]["annotations"][names.STATUS_ANNOTATION])
    assert record["mode"] == "container"
    assert record["containers"] == ["otel-collector"]
    assert "initContainers" not in record


def test_gomemlimit_from_memory_limit_annotation() -> None:
    pod = make_pod()
    pod["metadata"]["annotations"] = {overrides.MEMORY_LIMIT: "1Gi"}
    sidecar = inject_pod(pod, SETTINGS, namespace="shop").pod["spec"]["initContainers"][0]
    assert sidecar["resources"]["limits"]["memory"] == "1Gi"
    assert {"name": "GOMEMLIMIT", "value": "819MiB"} in sidecar["env"]


def test_port_names_in_use_are_dropped_from_ours() -> None:
    pod = make_pod(
        initContainers=[
            {"name": "mesh", "restartPolicy": "Always", "ports": [{"name": "health", "containerPort": 15021}]}
        ]
    )
    pod["spec"]["containers"][0]["ports"] = [{"name": "otlp-http", "containerPort": 8080}]
    sidecar = next(
        c
        for c in inject_pod(pod, SETTINGS, namespace="shop").pod["spec"]["initContainers"]
        if c["name"] == "otel-collector"
    )
    assert sidecar["ports"] == [
        {"containerPort": 4317, "protocol": "TCP", "name": "otlp-grpc"},
        {"containerPort": 4318, "protocol": "TCP"},
        {"containerPort": 13133, "protocol": "TCP"},
    ]


def test_unknown_fields_survive() -> None:
    pod = make_pod(someFutureField={"nested": [1, 2]})
    pod["futureTopLevel"] = "x"
    pod["metadata"]["futureMeta"] = True
    pod["spec"]["containers"][0]["futureField"] = {"a": "b"}
    pod["spec"]["initContainers"] = [{"name": "init", "futureInitField": 7}]
    result = inject_pod(pod, SETTINGS, namespace="shop")
    assert result.pod["spec"]["someFutureField"] == {"nested": [1, 2]}
    assert result.pod["futureTopLevel"] == "x"
    assert result.pod["metadata"]["futureMeta"] is True
    assert result.pod["spec"]["containers"][0]["futureField"] == {"a": "b"}
    assert result.pod["spec"]["initContainers"][1] == {"name": "init", "futureInitField": 7}


def test_containers_annotation_limits_env() -> None:
    pod = make_pod()
    pod["spec"]["containers"] = [{"name": "web"}, {"name": "worker"}, {"name": "db"}]
    pod["metadata"]["annotations"] = {overrides.CONTAINERS: "web,worker"}
    result = inject_pod(pod, SETTINGS, namespace="shop")
    web, worker, db = result.pod["spec"]["containers"]
    assert "OTEL_SERVICE_NAME" in env_names(web)
    assert "OTEL_SERVICE_NAME" in env_names(worker)
    assert db == {"name": "db"}
    assert set(result.env_added) == {"web", "worker"}
    assert json.loads(result.pod["metadata"]["annotations"][names.STATUS_ANNOTATION])["envContainers"] == [
        "web",
        "worker",
    ]


def test_init_containers_get_no_app_env() -> None:
    result = inject_pod(make_pod(initContainers=[{"name": "migrate"}]), SETTINGS, namespace="shop")
    migrate = result.pod["spec"]["initContainers"][1]
    assert migrate == {"name": "migrate"}


def test_inferred_workload_gives_service_name_and_attributes() -> None:
    pod = make_pod()
    del pod["metadata"]["labels"]["app"]
    app = inject_pod(pod, SETTINGS, namespace="shop").pod["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in app["env"]}
    assert env["OTEL_SERVICE_NAME"] == "checkout"
    assert "k8s.deployment.name=checkout" in env["OTEL_RESOURCE_ATTRIBUTES"]
    assert env["OTEL_RESOURCE_ATTRIBUTES"].startswith("k8s.namespace.name=shop,")


def test_explicit_workload_beats_inference() -> None:
    pod = make_pod()
    del pod["metadata"]["labels"]["app"]
    result = inject_pod(pod, SETTINGS, namespace="shop", workload=Workload("CronJob", "nightly"))
    env = {e["name"]: e.get("value") for e in result.pod["spec"]["containers"][0]["env"]}
    assert env["OTEL_SERVICE_NAME"] == "nightly"
    assert "k8s.cronjob.name=nightly" in env["OTEL_RESOURCE_ATTRIBUTES"]
    assert "k8s.deployment.name" not in env["OTEL_RESOURCE_ATTRIBUTES"]


def test_env_not_a_list_leaves_the_pod_as_it_is() -> None:
    pod = make_pod()
    pod["spec"]["containers"].append({"name": "odd", "env": {"A": "b"}})
    result = inject_pod(pod, SETTINGS, namespace="shop")
    assert not result.injected
    assert result.pod is pod
    assert result.reason == Reason.MALFORMED
    assert result.warnings == (
        "otel-injector: sidecar not injected: spec.containers[1].env must be a list, not an object",
    )


def test_fallback_notices_become_warnings() -> None:
    pod = make_pod()
    pod["metadata"]["annotations"] = {overrides.IMAGE: "NOT VALID"}
    result = inject_pod(pod, SETTINGS, namespace="shop")
    assert result.injected
    assert result.warnings == (
        f"otel-injector: {overrides.IMAGE}: 'NOT VALID' is not an image reference; using the default {DEFAULT_IMAGE}",
    )
    assert result.pod["spec"]["initContainers"][0]["image"] == DEFAULT_IMAGE


def test_hostile_annotation_cannot_touch_security_context() -> None:
    pod = make_pod()
    pod["metadata"]["annotations"] = {
        overrides.IMAGE: "nginx\n  securityContext: {privileged: true}",
        overrides.SERVICE_NAME: '"},{"name":"X","securityContext":{"privileged":true}}',
    }
    result = inject_pod(pod, SETTINGS, namespace="shop")
    sidecar = result.pod["spec"]["initContainers"][0]
    assert sidecar["securityContext"] == security_context()
    assert sidecar["image"] == DEFAULT_IMAGE
    app = result.pod["spec"]["containers"][0]
    assert "securityContext" not in app
    assert {"name": "OTEL_SERVICE_NAME", "value": '"},{"name":"X","securityContext":{"privileged":true}}'} in app["env"]
    assert container_names(result.pod["spec"]["containers"]) == ["app"]


@pytest.mark.parametrize(
    ("namespace", "operation", "reason"),
    [("kube-system", "CREATE", Reason.SYSTEM_NAMESPACE), ("shop", "UPDATE", Reason.NOT_CREATE)],
)
def test_skipped_pod_is_returned_as_is(namespace: str, operation: str, reason: Reason) -> None:
    pod = make_pod()
    result = inject_pod(pod, SETTINGS, namespace=namespace, operation=operation)
    assert result.pod is pod
    assert result.reason == reason
    assert result.mode is None
    assert result.env_added == {}
    assert result.warnings == (result.decision.message,)


def test_same_input_same_output() -> None:
    first = inject_pod(make_pod(), SETTINGS, namespace="shop")
    second = inject_pod(make_pod(), SETTINGS, namespace="shop")
    assert first == second


# --- bounded output (issue 9) ---


def test_names_longer_than_kubernetes_allows_are_capped_before_they_are_copied() -> None:
    pod = make_pod()
    pod["metadata"]["ownerReferences"][0]["name"] = "%" * 100_000 + "-5f6b7c"
    pod["spec"]["containers"] = [{"name": f"{i}" + "c" * 1000} for i in range(50)]
    result = inject_pod(pod, SETTINGS, namespace="n" * 5000)
    assert result.injected
    for container in result.pod["spec"]["containers"]:
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert len(env["OTEL_SERVICE_NAME"]) <= 63  # the app label, which wins
        # the Deployment's and the ReplicaSet's names encoded (3 characters a "%"), plus
        # names of at most 63 characters each
        assert len(env["OTEL_RESOURCE_ATTRIBUTES"]) < 2 * 253 * 3 + 800
        assert "k8s.namespace.name=" + "n" * 63 + "," in env["OTEL_RESOURCE_ATTRIBUTES"]
    reasons = [n.reason for n in result.notices]
    assert reasons.count("capped-value") == 4  # Deployment, ReplicaSet, namespace, containers
    assert all(len(w) < 300 for w in result.warnings)


def test_a_pod_too_large_to_store_is_left_as_it_is_and_quickly() -> None:
    pod = make_pod(containers=[{"name": f"c{i}"} for i in range(60_000)])
    started = time.perf_counter()
    result = inject_pod(pod, SETTINGS, namespace="shop")
    assert time.perf_counter() - started < 3.0
    assert result.pod is pod
    assert result.reason == Reason.TOO_LARGE
    assert result.warnings[0].startswith(
        "otel-injector: sidecar not injected: too large: with it the pod would be over "
    )


def test_the_budget_stops_early_for_a_small_pod_with_a_huge_injection() -> None:
    # 25k tiny containers is under 1.5 MiB, but 25k times the env is not.
    pod = make_pod(containers=[{"name": f"c{i}"} for i in range(25_000)])
    result = inject_pod(pod, SETTINGS, namespace="shop")
    assert result.reason == Reason.TOO_LARGE
    assert result.pod is pod


def test_annotations_over_the_apiserver_limit_leave_the_pod_as_it_is() -> None:
    pod = make_pod()
    pod["metadata"]["annotations"] = {"big": "x" * (256 * 1024 - 100)}
    result = inject_pod(pod, SETTINGS, namespace="shop")
    assert result.reason == Reason.TOO_LARGE
    assert "bytes of annotations allowed" in result.warnings[0]


def test_null_fields_are_absent() -> None:
    pod = {"metadata": None, "spec": {"containers": [{"name": "app", "env": None, "ports": None}], "volumes": None}}
    result = inject_pod(pod, SETTINGS, namespace="shop")
    assert result.injected
    assert result.pod["spec"]["volumes"][0]["name"] == names.VOLUME_NAME


def test_container_mode_on_a_job_pod_warns_but_injects() -> None:
    pod = {
        "metadata": {
            "name": "report-x1",
            "annotations": {"otel-injector.io/sidecar-mode": "container"},
            "ownerReferences": [{"kind": "Job", "name": "report", "controller": True}],
        },
        "spec": {"restartPolicy": "Never", "containers": [{"name": "report", "image": "r:1"}]},
    }
    result = inject_pod(pod, InjectionSettings(), namespace="batch")
    assert result.injected
    assert "container-mode-job" in [n.reason for n in result.notices]
    assert any("never completes" in w for w in result.warnings)


def test_negative_control_native_mode_job_and_container_mode_deployment_do_not_warn() -> None:
    job_pod = {
        "metadata": {"name": "report-x1", "ownerReferences": [{"kind": "Job", "name": "report", "controller": True}]},
        "spec": {"containers": [{"name": "report", "image": "r:1"}]},
    }
    plain = {
        "metadata": {"name": "web", "annotations": {"otel-injector.io/sidecar-mode": "container"}},
        "spec": {"containers": [{"name": "web", "image": "w:1"}]},
    }
    for pod in (job_pod, plain):
        result = inject_pod(pod, InjectionSettings(), namespace="shop")
        assert result.injected
        assert "container-mode-job" not in [n.reason for n in result.notices]


# --- env only (sidecar-mode none, issue 12 section 5) ---


def env_only_pod(endpoint: str = "node", **spec: Any) -> dict[str, Any]:
    pod = make_pod(**spec)
    pod["metadata"]["annotations"] = {overrides.SIDECAR_MODE: "none", overrides.ENDPOINT: endpoint}
    return pod


def test_env_only_adds_no_sidecar_and_no_volume() -> None:
    pod = env_only_pod(volumes=[{"name": "data", "emptyDir": {}}])
    result = inject_pod(pod, SETTINGS, namespace="shop")
    assert result.injected
    assert result.mode == "none"
    assert result.decision.message == "otel-injector: OTEL_* env injected, no sidecar (sidecar-mode none)"
    assert "initContainers" not in result.pod["spec"]
    assert container_names(result.pod["spec"]["containers"]) == ["app"]
    assert result.pod["spec"]["volumes"] == [{"name": "data", "emptyDir": {}}]
    env = {e["name"]: e for e in result.pod["spec"]["containers"][0]["env"]}
    assert env["OTEL_NODE_IP"]["valueFrom"] == {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.hostIP"}}
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"] == "http://$(OTEL_NODE_IP):4318"
    order = env_names(result.pod["spec"]["containers"][0])
    assert order.index("OTEL_NODE_IP") < order.index("OTEL_EXPORTER_OTLP_ENDPOINT")
    status = json.loads(result.pod["metadata"]["annotations"][names.STATUS_ANNOTATION])
    assert (status["mode"], status["endpoint"]) == ("none", "node")
    assert "configHash" not in status
    assert "image" not in status
    assert "OTEL_NODE_IP" in status["env"]


def test_env_only_with_a_url_and_the_grpc_setting() -> None:
    result = inject_pod(
        env_only_pod("https://gw.example:4317"), InjectionSettings(app_otlp_protocol="grpc"), namespace="shop"
    )
    env = {e["name"]: e.get("value") for e in result.pod["spec"]["containers"][0]["env"]}
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "https://gw.example:4317"
    assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "grpc"
    assert "OTEL_NODE_IP" not in env


def test_env_only_pod_is_not_injected_twice() -> None:
    once = inject_pod(env_only_pod(), SETTINGS, namespace="shop")
    again = inject_pod(once.pod, SETTINGS, namespace="shop")
    assert again.reason == Reason.ALREADY_INJECTED
    assert again.pod is once.pod


def test_env_only_with_a_bad_endpoint_gets_the_native_sidecar_and_a_warning() -> None:
    result = inject_pod(env_only_pod("tcp://gw"), SETTINGS, namespace="shop")
    assert result.mode == "native"
    assert container_names(result.pod["spec"]["initContainers"]) == [names.CONTAINER_NAME]
    assert [n.reason for n in result.notices] == ["invalid-endpoint"]
    assert "using a native sidecar" in result.warnings[0]


def test_env_only_job_in_container_default_gets_no_container_mode_notice() -> None:
    pod = env_only_pod()
    pod["metadata"]["ownerReferences"] = [{"kind": "Job", "name": "j", "controller": True}]
    result = inject_pod(pod, InjectionSettings(sidecar_mode="container"), namespace="shop")
    assert result.mode == "none"
    assert result.notices == ()


# --- resource attributes (issue 12 section 6) ---


def test_resource_annotation_service_name_sets_otel_service_name_unless_ours_is_set() -> None:
    pod = make_pod()
    pod["metadata"]["annotations"] = {"resource.opentelemetry.io/service.name": "cart"}
    env = {
        e["name"]: e.get("value")
        for e in inject_pod(pod, SETTINGS, namespace="shop").pod["spec"]["containers"][0]["env"]
    }
    assert env["OTEL_SERVICE_NAME"] == "cart"
    assert "service.name=" not in env["OTEL_RESOURCE_ATTRIBUTES"]
    pod["metadata"]["annotations"][overrides.SERVICE_NAME] = "storefront"
    env = {
        e["name"]: e.get("value")
        for e in inject_pod(pod, SETTINGS, namespace="shop").pod["spec"]["containers"][0]["env"]
    }
    assert env["OTEL_SERVICE_NAME"] == "storefront"


def test_conventions_attributes_on_a_deployment_pod() -> None:
    pod = make_pod()
    pod["metadata"]["labels"]["app.kubernetes.io/part-of"] = "shop-suite"
    result = inject_pod(pod, SETTINGS, namespace="shop")
    env = {e["name"]: e.get("value") for e in result.pod["spec"]["containers"][0]["env"]}
    attrs = dict(item.split("=", 1) for item in env["OTEL_RESOURCE_ATTRIBUTES"].split(","))
    assert attrs["k8s.deployment.name"] == "checkout"
    assert attrs["k8s.replicaset.name"] == "checkout-5f6b7c"
    assert attrs["service.namespace"] == "shop-suite"
    assert attrs["service.version"] == "1"
    assert attrs["service.instance.id"] == "shop.$(OTEL_RESOURCE_ATTRIBUTES_POD_NAME).app"
