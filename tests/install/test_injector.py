"""A fresh install from the chart runs the injector process with the chart's own RBAC
identity: the self-managed certificate bootstraps itself (Secret, caBundle), the process
holds the Lease, the reconciler keeps the collector ConfigMap in traced namespaces, a
Deployment's pod gets the sidecar through the chart's own webhook configuration, a forced
renewal and a restart work, and the process never hits a permission it lacks."""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from bench.localcluster.controlplane import ControlPlane
from tests.install.proxy import ServiceProxy
from tests.install.support import (
    Injector,
    Release,
    Request,
    audited_requests,
    get_json,
    list_json,
    secret_material,
    tls_probe,
)
from tests.support import wait_for
from webhook.cluster.certmaterial import RENEW_ANNOTATION
from webhook.cluster.copies import HASH_ANNOTATION, MANAGED_BY, MANAGED_BY_LABEL
from webhook.core import names
from webhook.core.settings import config_hash

pytestmark = pytest.mark.e2e

#: What the reconciler is given to create a copy in a newly labelled namespace.
COPY_WITHIN_SECONDS = 5.0
_FORBIDDEN = re.compile(r"HTTP 403|forbidden", re.IGNORECASE)


# --- helpers ----------------------------------------------------------------------------


def assert_never_forbidden(injector: Injector) -> None:
    """The RBAC was enough for everything the process did so far."""
    denied = [line for line in injector.log().splitlines() if _FORBIDDEN.search(line)]
    assert not denied, "the injector was denied:\n" + "\n".join(denied[:20])


def traced_selector(release: Release) -> dict[str, str]:
    """The namespace label the chart's first webhook selects (``tracing=enabled``)."""
    labels: dict[str, str] = release.webhook_configuration["webhooks"][0]["namespaceSelector"]["matchLabels"]
    return labels


def new_namespace(cp: ControlPlane, prefix: str, labels: dict[str, str] | None = None) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    cp.kubectl("create", "namespace", name)
    if labels:
        cp.kubectl("label", "namespace", name, *[f"{k}={v}" for k, v in labels.items()])
    return name


def copy_name(release: Release) -> str:
    return release.setting("OTEL_INJECTOR_CONFIG_MAP")


def source(cp: ControlPlane, release: Release) -> dict[str, Any]:
    found: dict[str, Any] = get_json(
        cp, "configmap", release.setting("OTEL_INJECTOR_COLLECTOR_SOURCE"), "-n", release.namespace
    )
    return found


def configmap(cp: ControlPlane, release: Release, namespace: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = get_json(cp, "configmap", copy_name(release), "-n", namespace)
    return found


def the_secret(cp: ControlPlane, release: Release) -> dict[str, Any]:
    found: dict[str, Any] = get_json(
        cp, "secret", release.setting("OTEL_INJECTOR_CERT_SECRET"), "-n", release.namespace
    )
    assert found is not None, "the certificate Secret does not exist"
    return found


def live_webhooks(cp: ControlPlane, release: Release) -> list[dict[str, Any]]:
    name = release.webhook_configuration["metadata"]["name"]
    hooks: list[dict[str, Any]] = get_json(cp, "mutatingwebhookconfiguration", name)["webhooks"]
    return hooks


def lease(cp: ControlPlane, release: Release) -> dict[str, Any] | None:
    found: dict[str, Any] | None = get_json(
        cp, "lease", release.setting("OTEL_INJECTOR_LEASE_NAME"), "-n", release.namespace
    )
    return found


def serial(pem: bytes) -> int:
    return int(x509.load_pem_x509_certificate(pem).serial_number)


def pods(cp: ControlPlane, namespace: str, selector: str) -> list[dict[str, Any]]:
    return list_json(cp, "pods", "-n", namespace, "-l", selector)


def sidecars(pod: dict[str, Any]) -> list[str]:
    spec = pod["spec"]
    return [c["name"] for c in spec.get("initContainers", []) + spec["containers"] if c["name"] == names.CONTAINER_NAME]


def deployment(name: str, namespace: str, labels: dict[str, str] | None = None) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name, **(labels or {})}},
                    "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]},
                },
            },
        }
    )


def field_owners(obj: dict[str, Any], field: str) -> set[str]:
    """The field managers (server-side field ownership) whose fields include ``field``."""
    return {
        entry["manager"]
        for entry in obj["metadata"].get("managedFields", [])
        if field in json.dumps(entry.get("fieldsV1", {}))
    }


def first_pod(cp: ControlPlane, namespace: str, app: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = wait_for(
        f"a pod of {app} in {namespace}", lambda: pods(cp, namespace, f"app={app}"), timeout=60
    )
    return found[0]


# --- the tests --------------------------------------------------------------------------


def test_cert_bootstrap_creates_the_secret_and_patches_the_ca_bundle(
    control_plane: ControlPlane, release: Release, injector: Injector
) -> None:
    secret = get_json(
        control_plane,
        "secret",
        release.setting("OTEL_INJECTOR_CERT_SECRET"),
        "-n",
        release.namespace,
        "--show-managed-fields",
    )
    assert secret is not None, "the certificate Secret does not exist"
    assert secret["type"] == "kubernetes.io/tls"
    material = secret_material(secret)
    assert set(material) >= {"ca.crt", "ca.key", "tls.crt", "tls.key"}
    assert field_owners(secret, '"f:data"') == {"otel-injector"}, "the process wrote the certificate"

    ca_bundle = base64.b64encode(material["ca.crt"]).decode()
    hooks = live_webhooks(control_plane, release)
    assert [h["name"] for h in hooks] == [h["name"] for h in release.webhook_configuration["webhooks"]]
    for hook in hooks:
        assert hook["clientConfig"] == {"service": release.service_ref, "caBundle": ca_bundle}
    mwc = get_json(
        control_plane,
        "mutatingwebhookconfiguration",
        release.webhook_configuration["metadata"]["name"],
        "--show-managed-fields",
    )
    assert field_owners(mwc, '"f:caBundle"') == {"otel-injector"}, "the process patched the caBundle"

    leaf = x509.load_pem_x509_certificate(material["tls.crt"])
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert release.service_host in sans.get_values_for_type(x509.DNSName)
    _, served = tls_probe(injector.port, ca_pem=material["ca.crt"], server_hostname=release.service_host)
    assert served == leaf.public_bytes(Encoding.DER), "the process serves the certificate from its Secret"
    assert_never_forbidden(injector)


def test_the_process_holds_and_renews_the_lease(
    control_plane: ControlPlane, release: Release, injector: Injector
) -> None:
    def held_by_process() -> dict[str, Any] | None:
        found = lease(control_plane, release)
        holder = str((found or {}).get("spec", {}).get("holderIdentity") or "")
        return found if holder.startswith(injector.pod_name + "_") else None

    held = wait_for("the Lease held by the process", held_by_process, timeout=30)
    first = held["spec"]["renewTime"]

    def renewed_lease() -> dict[str, Any] | None:
        found = lease(control_plane, release)
        return found if found is not None and found["spec"]["renewTime"] != first else None

    renewed = wait_for("a Lease renewal", renewed_lease, timeout=15)
    assert renewed["spec"]["holderIdentity"] == held["spec"]["holderIdentity"]
    assert_never_forbidden(injector)


def test_a_labelled_namespace_gets_the_configmap_within_seconds(
    control_plane: ControlPlane, release: Release, injector: Injector
) -> None:
    namespace = new_namespace(control_plane, "labelled")
    labelled_at = time.monotonic()
    control_plane.kubectl("label", "namespace", namespace, *[f"{k}={v}" for k, v in traced_selector(release).items()])
    copy = wait_for(
        f"{copy_name(release)} in {namespace}",
        lambda: configmap(control_plane, release, namespace),
        timeout=COPY_WITHIN_SECONDS,
    )
    took = time.monotonic() - labelled_at
    print(f"the copy appeared {took:.2f}s after the label")
    src = source(control_plane, release)
    assert copy["data"] == src["data"]
    assert copy["metadata"]["labels"][MANAGED_BY_LABEL] == MANAGED_BY
    assert copy["metadata"]["annotations"][HASH_ANNOTATION] == config_hash(src["data"][names.CONFIG_KEY].encode())
    assert_never_forbidden(injector)


def test_the_reconciler_repairs_updates_refuses_and_removes_copies(
    control_plane: ControlPlane, release: Release, injector: Injector
) -> None:
    cp = control_plane
    labels = traced_selector(release)
    namespace = new_namespace(cp, "repair", labels)
    original = wait_for("the first copy", lambda: configmap(cp, release, namespace))

    # Deleted: recreated.
    cp.kubectl("delete", "configmap", copy_name(release), "-n", namespace)
    wait_for(
        "the copy recreated",
        lambda: (
            (found := configmap(cp, release, namespace)) and found["metadata"]["uid"] != original["metadata"]["uid"]
        ),
    )

    # A ConfigMap a user made is left alone, and the refusal is recorded as an Event.
    users = new_namespace(cp, "users-own")
    cp.kubectl("create", "configmap", copy_name(release), "-n", users, "--from-literal=config.yaml=mine: true")
    cp.kubectl("label", "namespace", users, *[f"{k}={v}" for k, v in labels.items()])
    event = wait_for(
        "a Warning Event on the user's ConfigMap",
        lambda: [
            e
            for e in list_json(cp, "events", "-n", users)
            if e["involvedObject"]["name"] == copy_name(release) and e["type"] == "Warning"
        ],
    )
    assert event[0]["reason"] == "ConfigMapNotManaged"
    kept = configmap(cp, release, users)
    assert kept is not None
    assert kept["data"] == {"config.yaml": "mine: true"}

    # The source changes: the copy follows; then the chart's source is put back.
    src = source(cp, release)
    changed = src["data"][names.CONFIG_KEY] + "\n# changed by test_install\n"
    patch = json.dumps({"data": {names.CONFIG_KEY: changed}})
    cp.kubectl("patch", "configmap", src["metadata"]["name"], "-n", release.namespace, "--type=merge", "-p", patch)
    try:
        updated = wait_for(
            "the copy updated",
            lambda: (
                (found := configmap(cp, release, namespace)) and found["data"][names.CONFIG_KEY] == changed and found
            ),
        )
        assert updated["metadata"]["annotations"][HASH_ANNOTATION] == config_hash(changed.encode())
    finally:
        chart_source = next(
            o for o in release.objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == src["metadata"]["name"]
        )
        cp.kubectl("apply", "-f", "-", input=yaml.safe_dump(chart_source))
    wait_for(
        "the copy back at the chart's config",
        lambda: (found := configmap(cp, release, namespace)) and found["data"] == chart_source["data"],
    )

    # The label goes: the copy goes; the user's ConfigMap stays.
    cp.kubectl("label", "namespace", namespace, *[f"{k}-" for k in labels])
    cp.kubectl("label", "namespace", users, *[f"{k}-" for k in labels])
    wait_for("the copy removed", lambda: configmap(cp, release, namespace) is None)
    time.sleep(1)
    assert configmap(cp, release, users) is not None
    assert_never_forbidden(injector)


def test_a_pod_of_a_fresh_install_gets_the_sidecar(
    control_plane: ControlPlane, release: Release, injector: Injector, proxy: ServiceProxy
) -> None:
    cp = control_plane
    target = f"{release.service_host}:{release.service_ref['port']}"
    calls_before = proxy.connected.count(target)
    labels = traced_selector(release)

    traced = new_namespace(cp, "shop", labels)
    cp.kubectl("apply", "-f", "-", input=deployment("web", traced))
    pod = first_pod(cp, traced, "web")
    assert sidecars(pod) == [names.CONTAINER_NAME], f"no sidecar: {pod['spec']}"
    assert [c["name"] for c in pod["spec"].get("initContainers", [])] == [names.CONTAINER_NAME], "native sidecar"
    status = json.loads(pod["metadata"]["annotations"][names.STATUS_ANNOTATION])
    assert status["configMap"] == copy_name(release)
    src = source(cp, release)
    assert status["configHash"] == config_hash(src["data"][names.CONFIG_KEY].encode())
    assert status["image"] == release.setting("OTEL_INJECTOR_SIDECAR_IMAGE")
    assert configmap(cp, release, traced) is not None, "the mounted ConfigMap exists in the pod's namespace"

    # The apiserver called the webhook through the chart's Service reference.
    assert proxy.connected.count(target) > calls_before
    assert not proxy.refused, f"the apiserver dialled other targets: {proxy.refused}"
    assert all(h["clientConfig"].get("service") == release.service_ref for h in live_webhooks(cp, release))

    # A pod that opts in by its own label in an unlabelled namespace gets the sidecar,
    # and the reconciler (watching such pods) gives that namespace the ConfigMap too.
    plain = new_namespace(cp, "plain")
    cp.kubectl("apply", "-f", "-", input=deployment("opted-in", plain, labels))
    cp.kubectl("apply", "-f", "-", input=deployment("untouched", plain))
    assert sidecars(first_pod(cp, plain, "opted-in")) == [names.CONTAINER_NAME]
    assert sidecars(first_pod(cp, plain, "untouched")) == []
    wait_for(f"{copy_name(release)} in {plain}", lambda: configmap(cp, release, plain), timeout=COPY_WITHIN_SECONDS)
    assert_never_forbidden(injector)


def test_a_forced_renewal_is_done_and_served_under_the_service_account(
    control_plane: ControlPlane, release: Release, injector: Injector
) -> None:
    cp = control_plane
    before = secret_material(the_secret(cp, release))
    cp.kubectl(
        "annotate", "secret", release.setting("OTEL_INJECTOR_CERT_SECRET"), "-n", release.namespace,
        f"{RENEW_ANNOTATION}=now",
    )  # fmt: skip

    def renewed_material() -> dict[str, bytes] | None:
        secret = the_secret(cp, release)
        material = secret_material(secret)
        if RENEW_ANNOTATION in secret["metadata"].get("annotations", {}):
            return None
        return material if serial(material["tls.crt"]) != serial(before["tls.crt"]) else None

    renewed = wait_for("the renewed Secret", renewed_material, timeout=30)
    assert renewed["ca.crt"] == before["ca.crt"], "a serving-cert renewal keeps the CA"
    wait_for(
        "the process serving the new certificate",
        lambda: (
            tls_probe(injector.port, ca_pem=renewed["ca.crt"], server_hostname=release.service_host)[1]
            == x509.load_pem_x509_certificate(renewed["tls.crt"]).public_bytes(Encoding.DER)
        ),
        timeout=30,
    )
    ca_bundle = base64.b64encode(renewed["ca.crt"]).decode()
    assert all(h["clientConfig"]["caBundle"] == ca_bundle for h in live_webhooks(cp, release))
    # The apiserver still trusts it: a new pod is injected.
    namespace = new_namespace(cp, "after-renewal", traced_selector(release))
    cp.kubectl("apply", "-f", "-", input=deployment("web", namespace))
    assert sidecars(first_pod(cp, namespace, "web")) == [names.CONTAINER_NAME]
    assert_never_forbidden(injector)


def test_a_restart_releases_the_lease_and_reuses_the_secret(
    control_plane: ControlPlane, release: Release, injector: Injector
) -> None:
    cp = control_plane
    secret_before = the_secret(cp, release)
    holder = wait_for("a Lease holder", lambda: (found := lease(cp, release)) and found["spec"].get("holderIdentity"))
    injector.process.stop()
    released = lease(cp, release)
    assert released is not None
    assert not released["spec"].get("holderIdentity"), "the Lease is released on shutdown"

    injector.process.start()  # waits for the Deployment's readiness probe again
    new_holder = wait_for(
        "the Lease re-acquired",
        lambda: (found := lease(cp, release)) and found["spec"].get("holderIdentity"),
        timeout=30,
    )
    assert new_holder != holder
    assert str(new_holder).startswith(injector.pod_name + "_")
    secret_after = the_secret(cp, release)
    assert secret_after["metadata"]["uid"] == secret_before["metadata"]["uid"]
    assert secret_material(secret_after) == secret_material(secret_before), "the restart reuses the certificate"
    namespace = new_namespace(cp, "after-restart", traced_selector(release))
    wait_for("the copy after the restart", lambda: configmap(cp, release, namespace), timeout=COPY_WITHIN_SECONDS)
    assert_never_forbidden(injector)


def test_the_apiserver_never_denied_the_service_account(
    control_plane: ControlPlane, release: Release, injector: Injector, audit_log: Path
) -> None:
    """The apiserver's own record (audit log) of every request the process made under the
    chart's identity: all allowed. Run last, it covers everything the tests above did.
    (The tests' own requests with the same token, some denied on purpose, are left out.)"""
    namespace = new_namespace(control_plane, "audited", traced_selector(release))
    wait_for("the copy", lambda: configmap(control_plane, release, namespace), timeout=COPY_WITHIN_SECONDS)
    # The cert bootstrap, the leader election and the reconciler all acted as this identity.
    needed = {
        ("create", "secrets"),
        ("patch", "mutatingwebhookconfigurations"),
        ("update", "leases"),
        ("create", "configmaps"),
    }

    def process_requests() -> list[Request] | None:
        found = [r for r in audited_requests(audit_log, release.username) if not r.by_tests]
        return found if needed <= {(r.verb, r.resource) for r in found} else None

    requests = wait_for("the audit log to show the injector's work", process_requests, timeout=15)
    assert {r.user_agent.split("/")[0] for r in requests} == {"OpenAPI-Generator"}, "only the Python client"
    denied = sorted({r.describe() for r in requests if r.decision != "allow" or r.code == 403})
    assert not denied, "denied to the chart's ServiceAccount:\n" + "\n".join(denied)
