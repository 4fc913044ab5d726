"""The ``otel-collector`` sidecar container and its config volume, built field by field.

Contract: the result depends only on the validated overrides and settings. The
securityContext is a constant that passes Pod Security "restricted", and no override can
reach it.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from webhook.core import names
from webhook.core.overrides import PodOverrides
from webhook.core.quantity import gomemlimit
from webhook.core.settings import InjectionSettings

# The official collector images run as this uid; naming it lets runAsNonRoot be verified
# by the kubelet even for an image whose USER is a name.
COLLECTOR_UID = 10001

_PORTS = (
    ("otlp-grpc", names.OTLP_GRPC_PORT),
    ("otlp-http", names.OTLP_HTTP_PORT),
    ("health", names.HEALTH_PORT),
)


def security_context() -> dict[str, Any]:
    """A fresh copy of the sidecar's securityContext (restricted profile compliant)."""
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": COLLECTOR_UID,
        "runAsGroup": COLLECTOR_UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def build_sidecar(
    overrides: PodOverrides,
    settings: InjectionSettings,
    *,
    taken_port_names: Collection[str] = (),
) -> dict[str, Any]:
    """The sidecar container for ``overrides.sidecar_mode``.

    In native mode it carries ``restartPolicy: Always`` (so it is a sidecar init container:
    the app starts once the startup probe passes, and a Job completes when its app exits).
    Port names already used in the pod are left off ours, because duplicate names make the
    apiserver reject the pod, while the numbers alone are enough for the probes.
    """
    env: list[dict[str, Any]] = [
        {"name": env_name, "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": path}}}
        for env_name, path in names.SIDECAR_DOWNWARD_ENV
    ]
    env.append({"name": "GOMEMLIMIT", "value": gomemlimit(overrides.memory_limit, settings.gomemlimit_percent)})
    container: dict[str, Any] = {
        "name": names.CONTAINER_NAME,
        "image": overrides.image,
        "imagePullPolicy": settings.sidecar_image_pull_policy,
        "args": [f"--config={names.CONFIG_FILE_PATH}"],
        "ports": [
            {"containerPort": number, "protocol": "TCP"}
            | ({} if port_name in taken_port_names else {"name": port_name})
            for port_name, number in _PORTS
        ],
        "env": env,
        "resources": {
            "requests": {"cpu": overrides.cpu_request, "memory": overrides.memory_request},
            "limits": {"cpu": overrides.cpu_limit, "memory": overrides.memory_limit},
        },
        "volumeMounts": [{"name": names.VOLUME_NAME, "mountPath": names.CONFIG_MOUNT_PATH, "readOnly": True}],
        # The startup probe is what makes the app wait for the collector in native mode.
        "startupProbe": _health_probe(period=1, failures=60, timeout=1),
        "readinessProbe": _health_probe(period=10, failures=3, timeout=1),
        "livenessProbe": _health_probe(period=30, failures=3, timeout=2),
        "securityContext": security_context(),
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if overrides.sidecar_mode == "native":
        container["restartPolicy"] = "Always"
    return container


def build_volume(overrides: PodOverrides) -> dict[str, Any]:
    """The ConfigMap volume the sidecar mounts at ``/etc/otelcol``."""
    return {
        "name": names.VOLUME_NAME,
        "configMap": {"name": overrides.config_map, "items": [{"key": names.CONFIG_KEY, "path": names.CONFIG_KEY}]},
    }


def _health_probe(*, period: int, failures: int, timeout: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": "/", "port": names.HEALTH_PORT},
        "periodSeconds": period,
        "failureThreshold": failures,
        "timeoutSeconds": timeout,
    }
