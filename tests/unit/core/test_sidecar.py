"""The sidecar container and its volume, field by field."""

from __future__ import annotations

import dataclasses

from webhook.core import names
from webhook.core.overrides import read_overrides
from webhook.core.settings import DEFAULT_IMAGE, InjectionSettings
from webhook.core.sidecar import COLLECTOR_UID, build_sidecar, build_volume, security_context

SETTINGS = InjectionSettings()
DEFAULTS, _ = read_overrides({}, SETTINGS, ["app"])


def test_security_context_is_restricted_and_fresh() -> None:
    context = security_context()
    assert context == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert COLLECTOR_UID == 10001
    context["capabilities"]["drop"].clear()
    assert security_context()["capabilities"] == {"drop": ["ALL"]}


def test_native_sidecar_defaults() -> None:
    sidecar = build_sidecar(DEFAULTS, SETTINGS)
    assert sidecar["name"] == "otel-collector"
    assert sidecar["image"] == DEFAULT_IMAGE
    assert sidecar["imagePullPolicy"] == "IfNotPresent"
    assert sidecar["restartPolicy"] == "Always"
    assert sidecar["args"] == ["--config=/etc/otelcol/config.yaml"]
    assert sidecar["ports"] == [
        {"containerPort": 4317, "protocol": "TCP", "name": "otlp-grpc"},
        {"containerPort": 4318, "protocol": "TCP", "name": "otlp-http"},
        {"containerPort": 13133, "protocol": "TCP", "name": "health"},
    ]
    assert sidecar["resources"] == {
        "requests": {"cpu": "50m", "memory": "64Mi"},
        "limits": {"cpu": "500m", "memory": "256Mi"},
    }
    assert sidecar["volumeMounts"] == [{"name": names.VOLUME_NAME, "mountPath": "/etc/otelcol", "readOnly": True}]
    assert sidecar["securityContext"] == security_context()
    assert sidecar["terminationMessagePolicy"] == "FallbackToLogsOnError"


def test_env_is_downward_api_plus_gomemlimit() -> None:
    env = build_sidecar(DEFAULTS, SETTINGS)["env"]
    assert env == [
        {"name": "K8S_POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
        {
            "name": "K8S_NAMESPACE_NAME",
            "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}},
        },
        {"name": "K8S_POD_UID", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.uid"}}},
        {"name": "K8S_NODE_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "spec.nodeName"}}},
        {"name": "GOMEMLIMIT", "value": "204MiB"},
    ]


def test_gomemlimit_follows_override_and_percent() -> None:
    overrides = dataclasses.replace(DEFAULTS, memory_limit="1Gi")
    settings = InjectionSettings(gomemlimit_percent=50)
    env = build_sidecar(overrides, settings)["env"]
    assert env[-1] == {"name": "GOMEMLIMIT", "value": "512MiB"}


def test_probes_hit_the_health_port() -> None:
    sidecar = build_sidecar(DEFAULTS, SETTINGS)
    for probe, period, failures, timeout in (
        ("startupProbe", 1, 60, 1),
        ("readinessProbe", 10, 3, 1),
        ("livenessProbe", 30, 3, 2),
    ):
        assert sidecar[probe] == {
            "httpGet": {"path": "/", "port": 13133},
            "periodSeconds": period,
            "failureThreshold": failures,
            "timeoutSeconds": timeout,
        }


def test_container_mode_has_no_restart_policy() -> None:
    sidecar = build_sidecar(dataclasses.replace(DEFAULTS, sidecar_mode="container"), SETTINGS)
    assert "restartPolicy" not in sidecar
    assert sidecar["name"] == "otel-collector"


def test_taken_port_names_are_left_off() -> None:
    ports = build_sidecar(DEFAULTS, SETTINGS, taken_port_names={"health", "otlp-grpc", "http"})["ports"]
    assert ports == [
        {"containerPort": 4317, "protocol": "TCP"},
        {"containerPort": 4318, "protocol": "TCP", "name": "otlp-http"},
        {"containerPort": 13133, "protocol": "TCP"},
    ]


def test_overrides_and_settings_reach_their_fields() -> None:
    overrides = dataclasses.replace(
        DEFAULTS,
        image="example.com/otelcol:1",
        cpu_request="1",
        cpu_limit="2",
        memory_request="1Gi",
        memory_limit="2Gi",
    )
    sidecar = build_sidecar(overrides, InjectionSettings(sidecar_image_pull_policy="Always"))
    assert sidecar["image"] == "example.com/otelcol:1"
    assert sidecar["imagePullPolicy"] == "Always"
    assert sidecar["resources"] == {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "2Gi"}}
    assert sidecar["securityContext"] == security_context()


def test_two_builds_share_no_objects() -> None:
    first = build_sidecar(DEFAULTS, SETTINGS)
    second = build_sidecar(DEFAULTS, SETTINGS)
    first["env"].append({"name": "X"})
    first["securityContext"]["privileged"] = True
    assert second == build_sidecar(DEFAULTS, SETTINGS)


def test_volume() -> None:
    assert build_volume(DEFAULTS) == {
        "name": "otel-collector-config",
        "configMap": {"name": "otel-collector-sidecar", "items": [{"key": "config.yaml", "path": "config.yaml"}]},
    }
    assert build_volume(dataclasses.replace(DEFAULTS, config_map="mine"))["configMap"]["name"] == "mine"
