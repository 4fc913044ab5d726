"""The certificate keeper's API side against a loopback stub API server: the Secret is
created once and shared by racing replicas, renewed on request by the leader only, and the
caBundle is patched under a resourceVersion test. (The material itself: test_certmaterial.py;
against a real kube-apiserver: tests/cluster/test_selfcerts.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.unit.cluster.stubapi import Reply, Request, Store, StubApi, status, stub_api
from webhook.cluster.certkeeper import CertKeeper, bootstrap, ensure_secret, patch_ca_bundle, request_renewal
from webhook.cluster.certmaterial import RENEW_ANNOTATION, material_from_secret, service_dns_names
from webhook.cluster.client import ApiError
from webhook.cluster.paths import mutating_webhook_path, secret_path
from webhook.config.settings import Settings
from webhook.core.settings import InjectionSettings

NS, NAME = "otel-injector", "otel-injector-tls"
DNS = service_dns_names("otel-injector", NS)
HOOK = mutating_webhook_path("otel-injector")


@pytest.fixture
def stub() -> Iterator[StubApi]:
    with stub_api() as running:
        yield running


@pytest.fixture
def secrets(stub: StubApi) -> Store:
    store = Store(stub, secret_path(NS))
    store.serve(NAME)
    return store


def test_creates_the_secret_once_and_then_reuses_it(stub: StubApi, secrets: Store) -> None:
    material, written = ensure_secret(stub.kube(), namespace=NS, name=NAME, dns_names=DNS)
    assert written
    again, written_again = ensure_secret(stub.kube(), namespace=NS, name=NAME, dns_names=DNS)
    assert (again, written_again) == (material, False)
    assert len(stub.calls("POST", secret_path(NS))) == 1


def test_a_replica_that_loses_the_create_race_uses_the_winners_secret(stub: StubApi, secrets: Store) -> None:
    winner, _ = ensure_secret(stub.kube(), namespace=NS, name=NAME, dns_names=DNS)
    reads = iter([status(404, "NotFound")])  # the loser's first read: not there yet

    def read(request: Request) -> Reply:
        return next(reads, None) or Reply(200, secrets.objects[secret_path(NS, NAME)])

    stub.on("GET", secret_path(NS, NAME), read)
    loser, written = ensure_secret(stub.kube(), namespace=NS, name=NAME, dns_names=DNS)
    assert not written
    assert loser == winner  # its own POST got 409; it re-read and took the winner's


def test_renewal_on_request_is_the_leaders_and_removes_the_annotation(stub: StubApi, secrets: Store) -> None:
    first, _ = ensure_secret(stub.kube(), namespace=NS, name=NAME, dns_names=DNS)
    stub.on("PATCH", secret_path(NS, NAME), lambda r: _annotate(secrets, r))
    request_renewal(stub.kube(), NS, NAME)
    kept, written = ensure_secret(stub.kube(), namespace=NS, name=NAME, dns_names=DNS, may_renew=False)
    assert (kept, written) == (first, False)  # a follower never renews
    renewed, written = ensure_secret(stub.kube(), namespace=NS, name=NAME, dns_names=DNS)
    assert written
    assert renewed.tls_cert != first.tls_cert
    assert renewed.ca_cert == first.ca_cert  # "now" renews the serving cert, not the CA
    stored = secrets.objects[secret_path(NS, NAME)]
    assert RENEW_ANNOTATION not in (stored["metadata"].get("annotations") or {})
    assert material_from_secret(stored) == renewed


def _annotate(store: Store, request: Request) -> Reply:
    obj = store.objects[secret_path(NS, NAME)]
    annotations = request.json()["metadata"]["annotations"]
    obj["metadata"].setdefault("annotations", {}).update(annotations)
    return Reply(200, obj)


def test_a_follower_waits_for_a_broken_secret_to_be_fixed(stub: StubApi, secrets: Store) -> None:
    secrets.objects[secret_path(NS, NAME)] = {"metadata": {"name": NAME, "resourceVersion": "1"}, "data": {}}
    with pytest.raises(ApiError, match="waiting for the leader"):
        ensure_secret(stub.kube(), namespace=NS, name=NAME, dns_names=DNS, may_renew=False)


def hook_config(bundle: str = "") -> dict[str, Any]:
    client_config = {"caBundle": bundle} if bundle else {}
    return {
        "metadata": {"name": "otel-injector", "resourceVersion": "5"},
        "webhooks": [{"name": "a", "clientConfig": dict(client_config)}, {"name": "b", "clientConfig": client_config}],
    }


def test_ca_bundle_is_patched_where_it_differs_under_a_version_test(stub: StubApi) -> None:
    stub.on("GET", HOOK, lambda r: Reply(200, hook_config()))
    stub.on("PATCH", HOOK, lambda r: Reply(200, {}))
    assert patch_ca_bundle(stub.kube(), "otel-injector", "QlVORExF")
    (patch,) = stub.calls("PATCH", HOOK)
    assert patch.headers["content-type"] == "application/json-patch+json"
    assert patch.json() == [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "5"},
        {"op": "add", "path": "/webhooks/0/clientConfig/caBundle", "value": "QlVORExF"},
        {"op": "add", "path": "/webhooks/1/clientConfig/caBundle", "value": "QlVORExF"},
    ]
    stub.on("GET", HOOK, lambda r: Reply(200, hook_config("QlVORExF")))
    assert not patch_ca_bundle(stub.kube(), "otel-injector", "QlVORExF")
    assert len(stub.calls("PATCH", HOOK)) == 1


def test_bootstrap_writes_the_files_even_before_the_webhook_configuration_exists(
    stub: StubApi, secrets: Store, tmp_path: Path
) -> None:
    settings = Settings(
        cert_mode="self-managed",
        tls_cert=str(tmp_path / "tls.crt"),
        tls_key=str(tmp_path / "tls.key"),
        injection=InjectionSettings(namespace=NS),
    )
    material = bootstrap(settings, stub.kube(), timeout=10)
    assert (tmp_path / "tls.crt").read_bytes() == material.tls_cert
    assert (tmp_path / "tls.key").read_bytes() == material.tls_key
    # The keeper, a follower, keeps the files in step with the Secret and never writes it.
    keeper = CertKeeper(stub.kube(), settings, is_leader=lambda: False, interval=30)
    assert keeper.sync() is False
    assert not [r for r in stub.requests if r.method in ("PUT", "PATCH") and r.path == secret_path(NS, NAME)]


def test_creation_renewal_and_ca_bundle_patch_are_spans_with_their_writes(stub: StubApi, secrets: Store) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    kube = stub.kube(tracer=provider.get_tracer("test"))
    ensure_secret(kube, namespace=NS, name=NAME, dns_names=DNS)
    ensure_secret(kube, namespace=NS, name=NAME, dns_names=DNS)  # current: no span
    stub.on("PATCH", secret_path(NS, NAME), lambda r: _annotate(secrets, r))
    request_renewal(stub.kube(), NS, NAME)
    ensure_secret(kube, namespace=NS, name=NAME, dns_names=DNS)
    stub.on("GET", HOOK, lambda r: Reply(200, hook_config()))
    stub.on("PATCH", HOOK, lambda r: Reply(200, {}))
    patch_ca_bundle(kube, "otel-injector", "QlVORExF")
    spans = exporter.get_finished_spans()
    work = [s for s in spans if s.parent is None]
    assert [(s.name, dict(s.attributes or {})["otel_injector.decision"]) for s in work] == [
        ("certificate creation", "create"),
        ("certificate renewal", "renew"),
        ("caBundle patch", "patch"),
    ]
    assert dict(work[1].attributes or {})["otel_injector.reason"] == f"renewal requested ({RENEW_ANNOTATION}=now)"
    assert dict(work[0].attributes or {})["otel_injector.object"] == f"secret/{NS}/{NAME}"
    children = {s.parent.span_id: s.name for s in spans if s.parent is not None}
    assert children == {
        work[0].context.span_id: "POST /api/v1/namespaces/{namespace}/secrets",
        work[1].context.span_id: "PUT /api/v1/namespaces/{namespace}/secrets/{name}",
        work[2].context.span_id: "PATCH /apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/{name}",
    }
