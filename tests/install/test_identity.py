"""The chart's ServiceAccount identity: the credential the injector process runs with is
really that ServiceAccount, its RBAC allows what the process does and nothing around it,
and a Secret in another namespace is out of its reach."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.localcluster.controlplane import ControlPlane
from tests.install.support import TEST_USER_AGENT, Release, can_i, kubectl_as
from webhook.cluster.client import Kube

pytestmark = pytest.mark.e2e

OTHER_NAMESPACE = "other-namespace"
TRACED_NAMESPACE = "traced-for-rbac"


def test_the_token_is_the_chart_service_account(
    release: Release, sa_kubeconfig: Path, control_plane: ControlPlane
) -> None:
    # The Python client loads the kubeconfig exactly as the injector process does.
    kube = Kube.connect(str(sa_kubeconfig))
    kube.api_client.user_agent = TEST_USER_AGENT
    try:
        review = kube.create(
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
        )
    finally:
        kube.close()
    user = review["status"]["userInfo"]
    assert user["username"] == release.username
    assert set(user["groups"]) == {
        "system:serviceaccounts",
        f"system:serviceaccounts:{release.namespace}",
        "system:authenticated",
    }
    whoami = kubectl_as(control_plane, sa_kubeconfig, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")
    assert whoami.stdout == release.username


def rbac_expectations(release: Release) -> list[tuple[str, tuple[str, ...]]]:
    """(expected answer, ``kubectl auth can-i`` arguments) for the chart's identity."""
    ns = release.namespace
    secret = release.setting("OTEL_INJECTOR_CERT_SECRET")
    lease = release.setting("OTEL_INJECTOR_LEASE_NAME")
    mwc = release.setting("OTEL_INJECTOR_WEBHOOK_CONFIG_NAME")
    source = release.setting("OTEL_INJECTOR_COLLECTOR_SOURCE")
    mwcs = "mutatingwebhookconfigurations.admissionregistration.k8s.io"
    return [
        # What it must not do.
        ("no", ("get", "secrets", "-n", OTHER_NAMESPACE)),
        ("no", ("list", "secrets", "--all-namespaces")),
        ("no", ("watch", "secrets", "--all-namespaces")),
        ("no", ("get", "secrets", "-n", "kube-system")),
        ("no", ("list", "secrets", "-n", ns)),
        ("no", ("get", "secrets/some-other-secret", "-n", ns)),
        ("no", ("delete", f"secrets/{secret}", "-n", ns)),
        ("no", ("patch", f"{mwcs}/some-other-webhook")),
        ("no", ("create", mwcs)),
        ("no", ("delete", f"{mwcs}/{mwc}")),
        ("no", ("list", mwcs)),
        ("no", ("patch", "validatingwebhookconfigurations.admissionregistration.k8s.io")),
        ("no", ("get", f"leases/{lease}", "-n", OTHER_NAMESPACE)),
        ("no", ("get", "leases/some-other-lease", "-n", ns)),
        ("no", ("update", "namespaces")),
        ("no", ("get", "pods", "-n", TRACED_NAMESPACE)),
        ("no", ("create", "pods", "-n", TRACED_NAMESPACE)),
        ("no", ("create", "pods/exec", "-n", TRACED_NAMESPACE)),
        ("no", ("create", "serviceaccounts/token", "-n", ns)),
        ("no", ("impersonate", "users")),
        ("no", ("bind", "clusterroles")),
        ("no", ("create", "roles", "-n", ns)),
        # What it needs: the cert bootstrap and renewal...
        ("yes", ("create", "secrets", "-n", ns)),
        ("yes", ("get", f"secrets/{secret}", "-n", ns)),
        ("yes", ("update", f"secrets/{secret}", "-n", ns)),
        ("yes", ("get", f"{mwcs}/{mwc}")),
        ("yes", ("patch", f"{mwcs}/{mwc}")),
        # ...the leader election...
        ("yes", ("create", "leases.coordination.k8s.io", "-n", ns)),
        ("yes", ("get", f"leases.coordination.k8s.io/{lease}", "-n", ns)),
        ("yes", ("update", f"leases.coordination.k8s.io/{lease}", "-n", ns)),
        # ...and the reconciler.
        ("yes", ("get", f"configmaps/{source}", "-n", ns)),
        ("yes", ("watch", "configmaps", "-n", ns)),
        ("yes", ("list", "configmaps", "--all-namespaces")),
        ("yes", ("watch", "configmaps", "--all-namespaces")),
        ("yes", ("create", "configmaps", "-n", TRACED_NAMESPACE)),
        ("yes", ("update", "configmaps", "-n", TRACED_NAMESPACE)),
        ("yes", ("delete", "configmaps", "-n", TRACED_NAMESPACE)),
        ("yes", ("list", "namespaces")),
        ("yes", ("watch", "namespaces")),
        ("yes", ("list", "pods", "--all-namespaces")),
        ("yes", ("watch", "pods", "--all-namespaces")),
        ("yes", ("create", "events", "-n", TRACED_NAMESPACE)),
    ]


def test_rbac_allows_what_the_injector_needs_and_nothing_around_it(
    control_plane: ControlPlane, release: Release, sa_kubeconfig: Path
) -> None:
    wrong = []
    for expected, query in rbac_expectations(release):
        answer = can_i(control_plane, sa_kubeconfig, query)
        if answer != expected:
            wrong.append(f"can-i {' '.join(query)}: {answer}, expected {expected}")
    assert not wrong, "\n".join(wrong)


def test_a_secret_in_another_namespace_is_forbidden(
    control_plane: ControlPlane, release: Release, sa_kubeconfig: Path
) -> None:
    control_plane.kubectl("create", "namespace", OTHER_NAMESPACE)
    control_plane.kubectl("create", "secret", "generic", "database", "-n", OTHER_NAMESPACE, "--from-literal=password=x")
    for args in (
        ("get", "secret", "database", "-n", OTHER_NAMESPACE),
        ("get", "secrets", "--all-namespaces"),
    ):
        result = kubectl_as(control_plane, sa_kubeconfig, *args)
        assert result.returncode != 0, f"{' '.join(args)} succeeded as {release.username}"
        assert "Forbidden" in result.stderr, result.stderr
        assert release.username in result.stderr, result.stderr
