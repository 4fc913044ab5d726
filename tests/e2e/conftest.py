"""One real control plane (etcd, kube-apiserver, controller-manager, Jaeger) plus the
webhook for the whole e2e session. A component that cannot start fails the tests with
its log tail; nothing here is ever skipped."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bench.localcluster.controlplane import ControlPlane
from bench.localcluster.injector import LocalInjector, install, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    with ControlPlane() as cp:
        yield cp


@pytest.fixture(scope="session")
def injector(control_plane: ControlPlane) -> LocalInjector:
    return install(control_plane)


@pytest.fixture
def namespace(control_plane: ControlPlane, injector: LocalInjector) -> Callable[..., str]:
    """Factory: a fresh namespace, optionally labelled, named after the test."""

    def make(*, traced: bool, labels: dict[str, str] | None = None) -> str:
        name = f"e2e-{uuid.uuid4().hex[:8]}"
        control_plane.kubectl("create", "namespace", name)
        all_labels = dict(labels or {})
        if traced:
            all_labels["tracing"] = "enabled"
        if all_labels:
            control_plane.kubectl("label", "namespace", name, *[f"{k}={v}" for k, v in all_labels.items()])
        return name

    return make


def get_json(cp: ControlPlane, *args: str) -> Any:
    return json.loads(cp.kubectl("get", *args, "-o", "json").stdout)


def wait_for_pods(cp: ControlPlane, namespace: str, selector: str, count: int = 1, timeout: float = 60) -> list[Any]:
    def pods() -> list[Any] | None:
        items: list[Any] = get_json(cp, "pods", "-n", namespace, "-l", selector)["items"]
        return items if len(items) >= count else None

    result: list[Any] = wait_for(f"{count} pod(s) {selector} in {namespace}", pods, timeout=timeout)
    return result


def sidecar_names(pod: dict[str, Any]) -> list[str]:
    spec = pod["spec"]
    return [
        c["name"] for c in spec.get("initContainers", []) + spec.get("containers", []) if c["name"] == "otel-collector"
    ]
