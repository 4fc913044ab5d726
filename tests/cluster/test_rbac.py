"""The controllers under least-privilege RBAC (impersonating a ServiceAccount), as the
chart grants it: what they need, and how they degrade when the pod watch is not granted."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.localcluster.controlplane import ControlPlane
from tests.cluster.support import (
    delete_namespaces,
    make_namespace,
    mwc_path,
    put_source,
    unique,
    webhook_configuration,
)
from tests.support import wait_for
from webhook.cluster.certkeeper import bootstrap
from webhook.cluster.certmaterial import material_from_secret
from webhook.cluster.client import ApiError, Kube
from webhook.cluster.controllers import Controllers
from webhook.cluster.copies import HASH_ANNOTATION, MANAGED_BY, MANAGED_BY_LABEL
from webhook.cluster.leader import lease_holder
from webhook.cluster.paths import api_path, configmap_path, lease_path, secret_path
from webhook.config.settings import Settings
from webhook.config.timings import ClusterTimings
from webhook.core import names
from webhook.core.settings import InjectionSettings

pytestmark = pytest.mark.e2e

RBAC = "rbac.authorization.k8s.io/v1"
SECRET = "otel-injector-tls"
LEASE = "otel-injector-leader"


def cluster_rules(*, pods: bool, config_name: str) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = [
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]},
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
        },
        {
            "apiGroups": ["admissionregistration.k8s.io"],
            "resources": ["mutatingwebhookconfigurations"],
            "resourceNames": [config_name],
            "verbs": ["get", "patch", "update"],
        },
        {"apiGroups": ["", "events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
    ]
    if pods:
        rules.append({"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]})
        # With the pod watch the chart also lets the leader find and roll workloads.
        rules.append({"apiGroups": ["apps"], "resources": ["replicasets"], "verbs": ["get"]})
        rules.append(
            {
                "apiGroups": ["apps"],
                "resources": ["deployments", "statefulsets", "daemonsets"],
                "verbs": ["get", "patch"],
            }
        )
    return rules


def namespace_rules() -> list[dict[str, Any]]:
    return [
        {"apiGroups": [""], "resources": ["secrets"], "resourceNames": [SECRET], "verbs": ["get", "update", "patch"]},
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]},
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": [LEASE],
            "verbs": ["get", "update"],
        },
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
    ]


@pytest.fixture
def restricted(cluster: ControlPlane, kube: Kube, request: pytest.FixtureRequest) -> Iterator[tuple[Settings, Kube]]:
    """A namespace, a ServiceAccount identity with the chart's permissions (pods only when
    the test's param says so) and a client that impersonates it."""
    pods: bool = request.param
    namespace = make_namespace(kube, unique("inj-rbac"))
    account = f"system:serviceaccount:{namespace}:otel-injector"
    config_name = unique("otel-injector-rbac")
    kube.create(
        mwc_path(""),
        webhook_configuration(config_name, "https://127.0.0.1:9/mutate", ca_bundle=None, namespace_label=unique("n")),
    )
    role = unique("otel-injector-rbac")
    subject = [{"kind": "User", "name": account, "apiGroup": "rbac.authorization.k8s.io"}]
    kube.create(
        api_path(RBAC, "clusterroles"),
        {"metadata": {"name": role}, "rules": cluster_rules(pods=pods, config_name=config_name)},
    )
    kube.create(
        api_path(RBAC, "clusterrolebindings"),
        {
            "metadata": {"name": role},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": subject,
        },
    )
    kube.create(api_path(RBAC, "roles", namespace), {"metadata": {"name": "otel-injector"}, "rules": namespace_rules()})
    kube.create(
        api_path(RBAC, "rolebindings", namespace),
        {
            "metadata": {"name": "otel-injector"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "otel-injector"},
            "subjects": subject,
        },
    )
    client = Kube.connect(str(cluster.kubeconfig))
    client.api_client.set_default_header("Impersonate-User", account)
    put_source(kube, namespace, "source", "version: 1\n")
    settings = Settings(
        reconcile=True,
        leader_election=True,
        cert_mode="self-managed",
        cert_secret=SECRET,
        lease_name=LEASE,
        webhook_config_name=config_name,
        collector_source="source",
        injection=InjectionSettings(namespace=namespace),
    )
    try:
        yield settings, client
    finally:
        client.close()
        kube.delete(mwc_path(config_name))
        kube.delete(api_path(RBAC, "clusterrolebindings", None, role))
        kube.delete(api_path(RBAC, "clusterroles", None, role))
        delete_namespaces(kube, namespace)


@pytest.mark.parametrize("restricted", [True], indirect=True)
def test_everything_works_with_the_chart_permissions_plus_pod_watch(
    restricted: tuple[Settings, Kube], kube: Kube, tmp_path: Path
) -> None:
    settings, client = restricted
    settings = dataclasses.replace(settings, tls_cert=str(tmp_path / "tls.crt"), tls_key=str(tmp_path / "tls.key"))
    namespace = settings.injection.namespace
    with pytest.raises(ApiError) as refused:  # the client really is the restricted identity
        client.list(api_path("v1", "secrets"))
    assert refused.value.status == 403
    material = bootstrap(settings, client, timeout=10)
    assert material_from_secret(kube.get(secret_path(namespace, SECRET))) == material
    fast = ClusterTimings(
        cert_sync_seconds=1, lease_duration_seconds=4, renew_deadline_seconds=3, retry_period_seconds=0.5
    )
    controllers = Controllers(dataclasses.replace(settings, cluster=fast), kube=client, candidate="restricted")
    made: list[str] = []
    try:
        controllers.start()
        wait_for("leadership", controllers.is_leader, timeout=10)
        assert lease_holder(kube.get(lease_path(namespace, LEASE))) == "restricted"
        traced = make_namespace(kube, unique("traced"), {"tracing": "enabled"})
        plain = make_namespace(kube, unique("plain"))
        made += [traced, plain]
        wait_for("a copy", lambda: kube.get_or_none(configmap_path(traced, names.CONFIGMAP_NAME)), timeout=5)
        kube.create(
            api_path("v1", "pods", plain),
            {
                "metadata": {
                    "name": "opted-in",
                    "labels": {"tracing": "enabled"},
                    "annotations": {names.STATUS_ANNOTATION: json.dumps({"configMap": names.CONFIGMAP_NAME})},
                },
                "spec": {"containers": [{"name": "c", "image": "x"}]},
            },
        )
        wait_for("a copy for the opted-in pod", lambda: kube.get_or_none(configmap_path(plain, names.CONFIGMAP_NAME)))
    finally:
        controllers.stop()
        delete_namespaces(kube, *made)


@pytest.mark.parametrize("restricted", [False], indirect=True)
def test_without_pod_watch_the_reconciler_still_copies_and_deletes_nothing(
    restricted: tuple[Settings, Kube], kube: Kube
) -> None:
    settings, client = restricted
    settings = dataclasses.replace(settings, cert_mode="file", leader_election=False)
    plain = make_namespace(kube, unique("plain"))
    traced = make_namespace(kube, unique("traced"), {"tracing": "enabled"})
    # A managed copy in an unlabelled namespace: only a pod could justify it, and the
    # pods cannot be seen, so it must stay.
    kube.create(
        configmap_path(plain),
        {
            "metadata": {
                "name": names.CONFIGMAP_NAME,
                "labels": {MANAGED_BY_LABEL: MANAGED_BY},
                "annotations": {HASH_ANNOTATION: "x"},
            },
            "data": {"config.yaml": "old\n"},
        },
    )
    controllers = Controllers(settings, kube=client, candidate="no-pods")
    try:
        controllers.start()
        assert controllers.reconciler is not None
        wait_for("the pod watch to be refused", controllers.reconciler.pods.forbidden.is_set, timeout=10)
        wait_for("a copy", lambda: kube.get_or_none(configmap_path(traced, names.CONFIGMAP_NAME)), timeout=5)
        time.sleep(1.0)
        assert kube.get_or_none(configmap_path(plain, names.CONFIGMAP_NAME)) is not None
    finally:
        controllers.stop()
        delete_namespaces(kube, plain, traced)
