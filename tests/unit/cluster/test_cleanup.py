"""The uninstall hooks' steps against the stub apiserver: the webhook configuration goes
first and is waited for; leftovers go only once the pods are gone, and only ours."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.unit.cluster.stubapi import Reply, StubApi, status, stub_api
from webhook.cluster.cleanup import remove_leftovers, unregister
from webhook.cluster.client import ApiError
from webhook.cluster.paths import api_path, configmap_path, lease_path, mutating_webhook_path, secret_path
from webhook.config.settings import Settings
from webhook.core.settings import InjectionSettings

NS = "otel-injector"
SETTINGS = Settings(cert_mode="self-managed", injection=InjectionSettings(namespace=NS))
HOOK = mutating_webhook_path("otel-injector")


@pytest.fixture
def stub() -> Iterator[StubApi]:
    with stub_api() as running:
        yield running


def _cm(
    namespace: str, name: str, labels: dict[str, str], annotations: dict[str, str] | None = None
) -> dict[str, object]:
    metadata = {"namespace": namespace, "name": name, "uid": f"uid-{namespace}", "labels": labels}
    return {"metadata": {**metadata, "annotations": annotations or {}}}


def test_unregister_deletes_and_waits_until_gone(stub: StubApi) -> None:
    gets = iter([Reply(200, {"metadata": {"name": "otel-injector"}}), status(404, "NotFound")])
    stub.on("DELETE", HOOK, lambda r: Reply(200, {}))
    stub.on("GET", HOOK, lambda r: next(gets))
    assert unregister(stub.kube(), SETTINGS, timeout=10) is True
    assert len(stub.calls("GET", HOOK)) == 2


def test_unregister_of_a_missing_configuration_passes(stub: StubApi) -> None:
    assert unregister(stub.kube(), SETTINGS, timeout=5) is False


def test_leftovers_wait_for_the_pods_and_spare_what_is_not_ours(stub: StubApi) -> None:
    pods = iter([{"items": [{"metadata": {"name": "otel-injector-1"}}]}, {"items": []}])
    stub.on("GET", api_path("v1", "pods", NS), lambda r: Reply(200, next(pods)))
    managed = {"app.kubernetes.io/managed-by": "otel-injector"}
    items = [
        _cm("shop", "otel-collector-sidecar", managed),
        _cm("kept", "otel-collector-sidecar", managed, {"otel-injector.io/managed": "false"}),
        _cm("other", "something-else", managed),
    ]
    stub.on("GET", api_path("v1", "configmaps"), lambda r: Reply(200, {"items": items}))
    for path in (configmap_path("shop", "otel-collector-sidecar"), secret_path(NS, "otel-injector-tls")):
        stub.on("DELETE", path, lambda r: Reply(200, {}))
    removed = remove_leftovers(stub.kube(), SETTINGS, pod_selector="app=x", timeout=10)
    assert removed == ["configmap shop/otel-collector-sidecar", f"secret {NS}/otel-injector-tls"]
    assert stub.calls("DELETE", configmap_path("kept", "otel-collector-sidecar")) == []
    assert stub.calls("DELETE", configmap_path("other", "something-else")) == []
    assert len(stub.calls("DELETE", lease_path(NS, "otel-injector-leader"))) == 1  # absent: not an error
    # The copy is deleted only if it is still the one that was listed.
    assert stub.calls("DELETE", configmap_path("shop", "otel-collector-sidecar"))[0].json()["preconditions"] == {
        "uid": "uid-shop"
    }


def test_leftovers_give_up_while_pods_remain(stub: StubApi) -> None:
    stub.on("GET", api_path("v1", "pods", NS), lambda r: Reply(200, {"items": [{"metadata": {"name": "p"}}]}))
    with pytest.raises(ApiError, match="timed out"):
        remove_leftovers(stub.kube(), SETTINGS, pod_selector="app=x", timeout=1.5)
    assert stub.calls("GET", api_path("v1", "configmaps")) == []
