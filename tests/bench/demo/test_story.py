"""The demo's short diff of what the injector added to a pod."""

from __future__ import annotations

from typing import Any

from bench.demo.story import describe_injection
from webhook.core.injection import inject_pod
from webhook.core.settings import InjectionSettings

TEMPLATE: dict[str, Any] = {
    "metadata": {"labels": {"app": "checkout"}},
    "spec": {"containers": [{"name": "checkout", "image": "app:1", "env": [{"name": "LOG_LEVEL", "value": "info"}]}]},
}


def test_describe_injection_lists_sidecar_volume_env_and_status() -> None:
    pod = dict(
        inject_pod(
            {"metadata": {"name": "checkout-abc", **TEMPLATE["metadata"]}, "spec": TEMPLATE["spec"]},
            InjectionSettings(config_hash="h1"),
            namespace="shop",
        ).pod
    )
    lines = describe_injection(TEMPLATE, pod)
    assert lines[0] == "pod checkout-abc:"
    assert lines[1].startswith("+ initContainers: otel-collector  image=otel/opentelemetry-collector:")
    assert "restartPolicy=Always" in lines[1]
    assert "startupProbe=:13133" in lines[1]
    assert lines[2] == "+ volume: otel-collector-config  (ConfigMap otel-collector-sidecar, read-only at /etc/otelcol)"
    assert lines[3] == "+ env in container checkout:"
    assert "    OTEL_SERVICE_NAME=checkout" in lines
    assert "    OTEL_RESOURCE_ATTRIBUTES_POD_NAME=<metadata.name>" in lines
    assert not any("LOG_LEVEL" in line for line in lines)
    assert lines[-1] == "+ annotation otel-injector.io/status: mode=native configHash=h1 version=0.1.0"
