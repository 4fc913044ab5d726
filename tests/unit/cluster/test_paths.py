"""REST paths, with names percent-encoded."""

from __future__ import annotations

from webhook.cluster.paths import api_path, configmap_path, lease_path, mutating_webhook_path, secret_path


def test_core_and_group_paths() -> None:
    assert api_path("v1", "namespaces") == "/api/v1/namespaces"
    assert configmap_path("shop", "cfg") == "/api/v1/namespaces/shop/configmaps/cfg"
    assert configmap_path("shop") == "/api/v1/namespaces/shop/configmaps"
    assert secret_path("ns", "tls") == "/api/v1/namespaces/ns/secrets/tls"
    assert lease_path("ns", "l") == "/apis/coordination.k8s.io/v1/namespaces/ns/leases/l"
    assert mutating_webhook_path("hook") == "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/hook"


def test_a_name_cannot_steer_the_path() -> None:
    assert configmap_path("shop", "../../secrets/x") == "/api/v1/namespaces/shop/configmaps/..%2F..%2Fsecrets%2Fx"
    assert api_path("v1", "pods", "a/b") == "/api/v1/namespaces/a%2Fb/pods"
