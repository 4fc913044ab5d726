"""Which running pods are missing the sidecar: in the webhook's scope, not finished, and
``decide`` (the webhook's own rules) says inject. Each rule, and agreement with inject_pod."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webhook.core import names
from webhook.core.injection import inject_pod
from webhook.core.missing import missing_sidecar, opted_in_to_restart, webhook_scope
from webhook.core.settings import InjectionSettings

SETTINGS = InjectionSettings(namespace="otel-injector")
TRACED = {"tracing": "enabled"}


def pod(namespace: str = "shop", *, labels: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "web-1", "namespace": namespace, "labels": labels or {}}
    metadata.update(extra.pop("metadata", {}))
    body: dict[str, Any] = {"containers": [{"name": "app", "image": "nginx"}], **extra.pop("spec", {})}
    return {"metadata": metadata, "spec": body, "status": extra.pop("status", {"phase": "Running"})}


def verdict(candidate: dict[str, Any], namespace_labels: dict[str, str] | None = None) -> Any:
    return missing_sidecar(
        candidate, namespace_labels=TRACED if namespace_labels is None else namespace_labels, settings=SETTINGS
    )


def test_a_pod_in_a_traced_namespace_without_the_sidecar_is_missing() -> None:
    found = verdict(pod())
    assert found is not None
    assert found.reason == "injected"
    assert found.scope == "namespace labelled tracing=enabled"
    assert found.message == "no otel-collector sidecar, but the rules inject it (namespace labelled tracing=enabled)"


def test_a_pod_labelled_tracing_enabled_is_in_scope_in_any_namespace() -> None:
    found = verdict(pod(labels=TRACED), {})
    assert found is not None
    assert found.scope == "pod labelled tracing=enabled"


def test_out_of_scope_pods_are_not_missing() -> None:
    assert verdict(pod(), {}) is None
    assert webhook_scope(pod(), {"tracing": "disabled"}) == ""


def test_an_injected_pod_is_not_missing() -> None:
    injected = inject_pod(pod(), SETTINGS, namespace="shop").pod
    assert verdict(dict(injected)) is None
    by_container = pod(spec={"initContainers": [{"name": names.CONTAINER_NAME}]})
    assert verdict(by_container) is None


@pytest.mark.parametrize(
    ("why", "candidate"),
    [
        ("opted out", pod(labels={"tracing": "disabled"})),
        ("hostNetwork", pod(spec={"hostNetwork": True})),
        ("port conflict", pod(spec={"containers": [{"name": "app", "ports": [{"containerPort": 4317}]}]})),
        ("mirror pod", pod(metadata={"annotations": {names.MIRROR_POD_ANNOTATION: "x"}})),
        ("system namespace", pod("kube-system")),
        ("own namespace", pod("otel-injector")),
        ("volume name", pod(spec={"volumes": [{"name": names.VOLUME_NAME}]})),
        ("succeeded", pod(status={"phase": "Succeeded"})),
        ("failed", pod(status={"phase": "Failed"})),
        ("being deleted", pod(metadata={"deletionTimestamp": "2026-12-01T00:00:00Z"})),
    ],
)
def test_pods_the_rules_skip_or_that_are_done_are_not_missing(why: str, candidate: dict[str, Any]) -> None:
    assert verdict(candidate) is None, why


@given(
    host_network=st.booleans(),
    port=st.sampled_from([80, 4317, 4318, 13133]),
    opt=st.sampled_from([None, "enabled", "disabled"]),
    namespace=st.sampled_from(["shop", "kube-system", "otel-injector"]),
)
def test_missing_agrees_with_what_the_webhook_would_do(
    host_network: bool, port: int, opt: str | None, namespace: str
) -> None:
    candidate = pod(
        namespace,
        labels={"tracing": opt} if opt else {},
        spec={"hostNetwork": host_network, "containers": [{"name": "app", "ports": [{"containerPort": port}]}]},
    )
    would_inject = inject_pod(candidate, SETTINGS, namespace=namespace).injected
    assert (verdict(candidate) is not None) == would_inject


def test_auto_restart_is_opted_in_by_any_of_the_annotation_sets() -> None:
    yes = {names.AUTO_RESTART_ANNOTATION: "true"}
    assert opted_in_to_restart({}, yes, {})
    assert opted_in_to_restart({names.AUTO_RESTART_ANNOTATION: " True "})
    assert not opted_in_to_restart({}, {names.AUTO_RESTART_ANNOTATION: "false"}, {names.AUTO_RESTART_ANNOTATION: "1"})
    assert not opted_in_to_restart()
