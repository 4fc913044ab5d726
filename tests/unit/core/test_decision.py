"""The skip rules: every reason, their order, and totality on odd input."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from webhook.core import names
from webhook.core.decision import INJECT, Decision, Reason, decide
from webhook.core.settings import InjectionSettings

SETTINGS = InjectionSettings(namespace="otel-injector")


def pod(
    *,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    containers: list[dict[str, Any]] | None = None,
    init: list[dict[str, Any]] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "web"}
    if labels is not None:
        metadata["labels"] = labels
    if annotations is not None:
        metadata["annotations"] = annotations
    body: dict[str, Any] = {"containers": containers if containers is not None else [{"name": "app", "image": "nginx"}]}
    if init is not None:
        body["initContainers"] = init
    body.update(spec)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": body}


def run(candidate: Any, *, namespace: str = "shop", operation: str = "CREATE") -> Decision:
    return decide(candidate, namespace=namespace, operation=operation, settings=SETTINGS)


def test_plain_pod_is_injected() -> None:
    decision = run(pod())
    assert decision == INJECT
    assert decision == Decision(True, Reason.INJECTED, "otel-injector: sidecar injected")


def test_tracing_enabled_label_is_injected() -> None:
    assert run(pod(labels={names.TRACING_LABEL: names.TRACING_ENABLED})) == INJECT


def test_reason_values_are_stable() -> None:
    assert {r.value for r in Reason} == {
        "injected",
        "opted-out",
        "already-injected",
        "not-create",
        "mirror-pod",
        "host-network",
        "port-conflict",
        "name-conflict",
        "system-namespace",
        "too-large",
        "malformed",
    }


@pytest.mark.parametrize("operation", ["UPDATE", "DELETE", "CONNECT", ""])
def test_not_create(operation: str) -> None:
    decision = run(pod(), operation=operation)
    assert decision == Decision(
        False,
        Reason.NOT_CREATE,
        f"otel-injector: sidecar not injected: operation is {operation}, only CREATE is injected",
    )


def test_opted_out() -> None:
    decision = run(pod(labels={"tracing": "disabled"}))
    assert decision == Decision(
        False, Reason.OPTED_OUT, "otel-injector: sidecar not injected: pod has the label tracing=disabled"
    )


def test_already_injected_by_status_annotation() -> None:
    decision = run(pod(annotations={names.STATUS_ANNOTATION: "{}"}))
    assert decision.reason == Reason.ALREADY_INJECTED
    assert decision.message == "otel-injector: sidecar not injected: pod already has the otel-collector sidecar"


def test_already_injected_by_container_name() -> None:
    assert run(pod(containers=[{"name": "app"}, {"name": "otel-collector"}])).reason == Reason.ALREADY_INJECTED


def test_already_injected_by_init_container_name() -> None:
    init = [{"name": "otel-collector", "restartPolicy": "Always"}]
    assert run(pod(init=init)).reason == Reason.ALREADY_INJECTED


@pytest.mark.parametrize("namespace", ["kube-system", "kube-public", "kube-node-lease", "otel-injector"])
def test_system_namespaces(namespace: str) -> None:
    decision = run(pod(), namespace=namespace)
    assert decision == Decision(
        False,
        Reason.SYSTEM_NAMESPACE,
        f"otel-injector: sidecar not injected: namespace {namespace} is a system namespace",
    )


def test_own_namespace_follows_settings() -> None:
    settings = InjectionSettings(namespace="observability")
    assert decide(pod(), namespace="observability", operation="CREATE", settings=settings).reason == (
        Reason.SYSTEM_NAMESPACE
    )
    assert decide(pod(), namespace="otel-injector", operation="CREATE", settings=settings) == INJECT


def test_mirror_pod() -> None:
    decision = run(pod(annotations={names.MIRROR_POD_ANNOTATION: "abc123"}))
    assert decision.reason == Reason.MIRROR_POD
    assert (
        decision.message == "otel-injector: sidecar not injected: pod is a mirror pod (static pods cannot be changed)"
    )


def test_host_network() -> None:
    decision = run(pod(hostNetwork=True))
    assert decision.reason == Reason.HOST_NETWORK
    assert "port 4317 would collide on the node" in decision.message
    assert run(pod(hostNetwork=False)) == INJECT
    # Only a real boolean true counts.
    assert run(pod(hostNetwork="true")) == INJECT


@pytest.mark.parametrize("port", [4317, 4318, 13133])
def test_port_conflict_in_app_container(port: int) -> None:
    decision = run(pod(containers=[{"name": "app", "ports": [{"containerPort": 80}, {"containerPort": port}]}]))
    assert decision == Decision(
        False,
        Reason.PORT_CONFLICT,
        f"otel-injector: sidecar not injected: container app already uses port {port}, which the collector needs",
    )


@pytest.mark.parametrize("port", [4317, 4318, 13133])
def test_port_conflict_in_init_container(port: int) -> None:
    decision = run(pod(init=[{"name": "mesh", "ports": [{"containerPort": port}]}]))
    assert decision.reason == Reason.PORT_CONFLICT
    assert f"container mesh already uses port {port}" in decision.message


def test_other_ports_are_fine() -> None:
    assert run(pod(containers=[{"name": "app", "ports": [{"containerPort": 8080}, {"containerPort": 4319}]}])) == INJECT


def test_volume_name_conflict() -> None:
    decision = run(pod(volumes=[{"name": "data"}, {"name": names.VOLUME_NAME, "emptyDir": {}}]))
    assert decision.reason == Reason.NAME_CONFLICT
    assert (
        decision.message == "otel-injector: sidecar not injected: pod already has a volume named otel-collector-config"
    )


def test_tracing_disabled_beats_port_conflict() -> None:
    candidate = pod(labels={"tracing": "disabled"}, containers=[{"name": "app", "ports": [{"containerPort": 4317}]}])
    assert run(candidate).reason == Reason.OPTED_OUT


def test_rule_order() -> None:
    everything = pod(
        labels={"tracing": "disabled"},
        annotations={names.STATUS_ANNOTATION: "{}", names.MIRROR_POD_ANNOTATION: "x"},
        containers=[{"name": "app", "ports": [{"containerPort": 4317}]}],
        hostNetwork=True,
        volumes=[{"name": names.VOLUME_NAME}],
    )
    assert run(everything, operation="UPDATE", namespace="kube-system").reason == Reason.NOT_CREATE
    assert run(everything, namespace="kube-system").reason == Reason.OPTED_OUT
    del everything["metadata"]["labels"]
    assert run(everything, namespace="kube-system").reason == Reason.ALREADY_INJECTED
    del everything["metadata"]["annotations"][names.STATUS_ANNOTATION]
    assert run(everything, namespace="kube-system").reason == Reason.SYSTEM_NAMESPACE
    assert run(everything).reason == Reason.MIRROR_POD
    del everything["metadata"]["annotations"]
    assert run(everything).reason == Reason.HOST_NETWORK
    del everything["spec"]["hostNetwork"]
    assert run(everything).reason == Reason.PORT_CONFLICT
    everything["spec"]["containers"] = [{"name": "app"}]
    assert run(everything).reason == Reason.NAME_CONFLICT
    del everything["spec"]["volumes"]
    assert run(everything) == INJECT


@pytest.mark.parametrize(
    "candidate",
    [
        {},
        {"metadata": None, "spec": None},
        {"spec": {"containers": None}},
        {"spec": {"containers": [{"name": "app", "ports": "x"}]}},
        {"spec": {"containers": [{"name": "app", "ports": ["x", None, 4317, {"containerPort": "4317"}]}]}},
        {"spec": {"containers": ["app", None, 3]}},
        {"spec": {"containers": "app", "initContainers": {"name": "x"}, "volumes": "v"}},
        {"metadata": {"labels": None, "annotations": None}},
    ],
)
def test_garbage_shapes_are_injected_not_errors(candidate: dict[str, Any]) -> None:
    assert run(candidate) == INJECT


@pytest.mark.parametrize(
    "candidate",
    [
        {"metadata": "x"},
        {"metadata": ["a"]},
        {"metadata": {"labels": ["tracing"]}},
        {"metadata": {"labels": "tracing=disabled"}},
        {"metadata": {"annotations": 5}},
        {"metadata": {"annotations": ["otel-injector.io/status"]}},
        {"spec": [1]},
        {"spec": "x"},
        {"spec": {"containers": [{"name": "app", "ports": 5}]}},
        {"spec": {"containers": [{"name": "app", "ports": {"containerPort": 4317}}]}},
    ],
)
def test_wrongly_typed_fields_never_raise(candidate: dict[str, Any]) -> None:
    decision = run(candidate)
    assert isinstance(decision, Decision)
    assert decision.reason in (Reason.INJECTED, Reason.ALREADY_INJECTED)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=12,
)
PORT = st.fixed_dictionaries({}, optional={"containerPort": st.sampled_from([80, 4317, 4318, 13133]) | JSON}) | JSON
CONTAINER = (
    st.fixed_dictionaries(
        {}, optional={"name": st.sampled_from(["app", "otel-collector"]) | JSON, "ports": st.lists(PORT) | JSON}
    )
    | JSON
)
SPEC = (
    st.fixed_dictionaries(
        {},
        optional={
            "containers": st.lists(CONTAINER, max_size=3) | JSON,
            "initContainers": st.lists(CONTAINER, max_size=2) | JSON,
            "hostNetwork": st.booleans() | JSON,
            "volumes": st.lists(st.fixed_dictionaries({"name": st.sampled_from(["a", names.VOLUME_NAME])}) | JSON)
            | JSON,
        },
    )
    | JSON
)
METADATA = (
    st.fixed_dictionaries(
        {},
        optional={
            "labels": st.dictionaries(st.sampled_from(["tracing", "app"]), st.sampled_from(["disabled", "x"]) | JSON)
            | JSON,
            "annotations": st.dictionaries(
                st.sampled_from([names.STATUS_ANNOTATION, names.MIRROR_POD_ANNOTATION, "a"]), JSON
            )
            | JSON,
        },
    )
    | JSON
)


# Generating odd pods is slow on a loaded machine; the examples checked are the same.
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.fixed_dictionaries({}, optional={"metadata": METADATA, "spec": SPEC}),
    st.sampled_from(["default", "kube-system", "otel-injector"]),
    st.sampled_from(["CREATE", "UPDATE"]),
)
def test_decide_is_total(candidate: dict[str, Any], namespace: str, operation: str) -> None:
    decision = run(candidate, namespace=namespace, operation=operation)
    assert isinstance(decision, Decision)
    assert decision.inject == (decision.reason == Reason.INJECTED)
    assert decision.message.startswith("otel-injector: ")
    if operation != "CREATE":
        assert decision.reason == Reason.NOT_CREATE
