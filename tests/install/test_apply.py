"""Every rendered object, for every value set tests/deploy renders, is accepted by the real
kube-apiserver (``kubectl apply --dry-run=server``, with warnings as errors so a PodSecurity
or deprecation warning fails too); the default render is then really applied; the generated
kustomize base and the cert-manager overlay pass the same server-side dry run."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from bench.localcluster.controlplane import SERVICE_CLUSTER_IP_RANGE, ControlPlane
from tests.deploy.support import DEPLOY, helm_template, parse_stream
from tests.deploy.test_chart import VARIANTS
from tests.install.support import Release
from tests.support import wait_for
from webhook.tls.certs import generate_ca

pytestmark = pytest.mark.e2e

#: The jaeger variant pins the Jaeger Service's ClusterIP; the apiserver only accepts one
#: inside its service range, which on this control plane is SERVICE_CLUSTER_IP_RANGE.
LOCAL_JAEGER_IP = SERVICE_CLUSTER_IP_RANGE.rsplit(".", 1)[0] + ".43"


def local_sets(sets: tuple[str, ...]) -> tuple[str, ...]:
    """The variant's values, with cluster-specific ones adapted to this control plane."""
    adapted = []
    for given in sets:
        key, _, _ = given.partition("=")
        if key == "jaeger.collectorClusterIP":
            adapted.append(f"{key}={LOCAL_JAEGER_IP}")
        elif key == "certs.caBundle":
            # The variant's bundle is a placeholder; use a real CA, as a user would.
            ca_cert, _ = generate_ca(days=1)
            adapted.append(f"{key}={base64.b64encode(ca_cert).decode()}")
        else:
            adapted.append(given)
    return tuple(adapted)


def stub_crd(kind: str) -> dict[str, Any]:
    plural = kind.lower() + "s"
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.cert-manager.io"},
        "spec": {
            "group": "cert-manager.io",
            "scope": "Namespaced",
            "names": {"kind": kind, "plural": plural, "singular": kind.lower(), "listKind": f"{kind}List"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                }
            ],
        },
    }


@pytest.fixture(scope="module")
def cert_manager_crds(control_plane: ControlPlane) -> Iterator[None]:
    """Stand-ins for cert-manager's Certificate and Issuer CRDs: namespaced
    ``cert-manager.io/v1`` kinds that accept any spec. cert-manager itself (and its real
    CRD schemas) is not available on this offline bench, so with them a dry run checks
    every other object of the cert-manager mode fully, and the cert-manager objects only
    for group, version, kind, scope and namespace, not for their spec."""
    crds = [stub_crd("Certificate"), stub_crd("Issuer")]
    text = yaml.safe_dump_all(crds)
    control_plane.kubectl("apply", "-f", "-", input=text)
    for crd in crds:
        control_plane.kubectl("wait", "--for=condition=Established", f"crd/{crd['metadata']['name']}", "--timeout=30s")
    yield
    control_plane.kubectl("delete", "-f", "-", "--wait=false", input=text)


def server_dry_run(control_plane: ControlPlane, *source: str, text: str | None = None) -> list[str]:
    """``kubectl apply --dry-run=server`` of ``-f -`` (``text``) or of ``source`` args;
    returns kubectl's lines. Fails with kubectl's stderr on a rejection or a warning."""
    args = ["apply", "--dry-run=server", "--warnings-as-errors", *(source or ("-f", "-"))]
    result = control_plane.kubectl(*args, input=text, check=False)
    assert result.returncode == 0, f"the apiserver rejected the objects:\n{result.stderr}\n{result.stdout}"
    lines = result.stdout.strip().splitlines()
    assert all(line.endswith("(server dry run)") for line in lines), lines
    return lines


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_rendered_object_passes_a_server_side_dry_run(
    variant: str, control_plane: ControlPlane, release_namespace: str, helm: Path, request: pytest.FixtureRequest
) -> None:
    sets = local_sets(VARIANTS[variant])
    text = helm_template(helm, *sets)
    objects = parse_stream(text)
    if any(o["apiVersion"].startswith("cert-manager.io/") for o in objects):
        request.getfixturevalue("cert_manager_crds")
    lines = server_dry_run(control_plane, text=text)
    assert len(lines) == len(objects), f"kubectl reported {len(lines)} objects for {len(objects)}:\n" + "\n".join(lines)


def test_the_variants_cover_every_cert_mode() -> None:
    modes = {dict(s.partition("=")[::2] for s in sets).get("certs.mode", "self-managed") for sets in VARIANTS.values()}
    assert modes == {"self-managed", "cert-manager", "secret"}


def test_the_default_render_is_really_applied(control_plane: ControlPlane, release: Release) -> None:
    for obj in release.objects:
        kind, name = obj["kind"], obj["metadata"]["name"]
        args = [kind, name] + (["-n", obj["metadata"]["namespace"]] if "namespace" in obj["metadata"] else [])
        live = json.loads(control_plane.kubectl("get", *args, "-o", "json").stdout)
        assert live["metadata"]["uid"], f"{kind}/{name} was not created"
        assert live["metadata"]["labels"]["app.kubernetes.io/instance"] == "otel-injector", f"{kind}/{name}"
    # The controller-manager turns the Deployment into its pods: the pod template passes
    # the namespace's PodSecurity "restricted" enforcement for real (they stay Pending:
    # there is no scheduler or kubelet).
    replicas = release.deployment["spec"]["replicas"]
    selector = ",".join(f"{k}={v}" for k, v in release.deployment["spec"]["selector"]["matchLabels"].items())

    def pods() -> list[Any] | None:
        items: list[Any] = json.loads(
            control_plane.kubectl("get", "pods", "-n", release.namespace, "-l", selector, "-o", "json").stdout
        )["items"]
        return items if len(items) >= replicas else None

    created = wait_for(f"{replicas} injector pods", pods, timeout=60)
    assert {p["spec"]["serviceAccountName"] for p in created} == {release.service_account}
    events = control_plane.kubectl("get", "events", "-n", release.namespace, "-o", "json").stdout
    assert "FailedCreate" not in events, events


def test_kustomize_base_passes_a_server_side_dry_run(control_plane: ControlPlane, release_namespace: str) -> None:
    built = control_plane.kubectl("kustomize", str(DEPLOY / "kustomize" / "base")).stdout
    lines = server_dry_run(control_plane, "-k", str(DEPLOY / "kustomize" / "base"))
    assert len(lines) == len(parse_stream(built))


def test_kustomize_cert_manager_overlay_passes_a_server_side_dry_run(
    control_plane: ControlPlane, release_namespace: str, cert_manager_crds: None
) -> None:
    overlay = DEPLOY / "kustomize" / "overlays" / "cert-manager"
    built = parse_stream(control_plane.kubectl("kustomize", str(overlay)).stdout)
    lines = server_dry_run(control_plane, "-k", str(overlay))
    assert len(lines) == len(built)
    assert any(line.startswith("certificate.cert-manager.io/") for line in lines), lines
    assert any(line.startswith("issuer.cert-manager.io/") for line in lines), lines
