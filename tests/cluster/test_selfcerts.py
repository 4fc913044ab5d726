"""Self-managed certificates against a real apiserver: bootstrap, reuse, racing replicas,
and a forced renewal served by a running ``otel-injector serve`` without a failed request."""

from __future__ import annotations

import base64
import dataclasses
import json
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from bench.localcluster.controlplane import ControlPlane
from bench.localcluster.injector import https_get
from tests.cluster.support import (
    PinnedHTTPSConnection,
    delete_namespaces,
    make_namespace,
    mwc_path,
    serve,
    unique,
    webhook_configuration,
)
from tests.support import review_for, wait_for
from webhook.cluster.certkeeper import bootstrap, request_renewal
from webhook.cluster.certmaterial import RENEW_ANNOTATION, material_from_secret, serial_of, service_dns_names
from webhook.cluster.client import Kube
from webhook.cluster.leader import lease_holder
from webhook.cluster.paths import lease_path, secret_path
from webhook.config.settings import Settings
from webhook.core.settings import InjectionSettings

pytestmark = pytest.mark.e2e


@pytest.fixture
def place(cluster: ControlPlane, kube: Kube, tmp_path: Path) -> Iterator[Settings]:
    """An injector namespace and a MutatingWebhookConfiguration (two webhooks, no caBundle,
    matching no namespace) for the bootstrap to patch."""
    namespace = make_namespace(kube, unique("inj-certs"))
    mwc = unique("otel-injector-certs")
    config = webhook_configuration(mwc, "https://127.0.0.1:9/mutate", ca_bundle=None, namespace_label=unique("never"))
    kube.create(mwc_path(""), config)
    yield Settings(
        cert_mode="self-managed",
        cert_secret="otel-injector-tls",
        webhook_config_name=mwc,
        service_name="otel-injector",
        kubeconfig=str(cluster.kubeconfig),
        tls_cert=str(tmp_path / "certs" / "tls.crt"),
        tls_key=str(tmp_path / "certs" / "tls.key"),
        injection=InjectionSettings(namespace=namespace),
    )
    kube.delete(mwc_path(mwc))
    delete_namespaces(kube, namespace)


def ca_bundles(kube: Kube, name: str) -> list[str]:
    return [h["clientConfig"].get("caBundle", "") for h in kube.get(mwc_path(name))["webhooks"]]


def test_bootstrap_creates_the_secret_patches_the_ca_bundle_and_is_reused(place: Settings, kube: Kube) -> None:
    started = time.monotonic()
    material = bootstrap(place, kube)
    print(f"bootstrap took {time.monotonic() - started:.2f}s")
    secret = kube.get(secret_path(place.injection.namespace, place.cert_secret))
    assert secret["type"] == "kubernetes.io/tls"
    assert material_from_secret(secret) == material
    assert Path(place.tls_cert).read_bytes() == material.tls_cert
    assert Path(place.tls_key).read_bytes() == material.tls_key
    assert ca_bundles(kube, place.webhook_config_name) == [material.ca_bundle_b64] * 2
    leaf = x509.load_pem_x509_certificate(material.tls_cert)
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == service_dns_names("otel-injector", place.injection.namespace)

    version = secret["metadata"]["resourceVersion"]
    mwc_version = kube.get(mwc_path(place.webhook_config_name))["metadata"]["resourceVersion"]
    again = bootstrap(place, kube)
    assert again == material
    assert kube.get(secret_path(place.injection.namespace, place.cert_secret))["metadata"]["resourceVersion"] == version
    assert kube.get(mwc_path(place.webhook_config_name))["metadata"]["resourceVersion"] == mwc_version


def test_racing_replicas_converge_on_one_secret(place: Settings, cluster: ControlPlane, tmp_path: Path) -> None:
    replicas = 4
    results: list[Any] = [None] * replicas
    barrier = threading.Barrier(replicas)

    def replica(index: int) -> None:
        own = dataclasses.replace(
            place, tls_cert=str(tmp_path / f"r{index}" / "tls.crt"), tls_key=str(tmp_path / f"r{index}" / "tls.key")
        )
        client = Kube.connect(str(cluster.kubeconfig))
        barrier.wait()
        try:
            results[index] = bootstrap(own, client, timeout=20)
        except Exception as err:  # reported below
            results[index] = err
        finally:
            client.close()

    threads = [threading.Thread(target=replica, args=(i,)) for i in range(replicas)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not [r for r in results if isinstance(r, Exception) or r is None], results
    assert len({r.tls_cert for r in results}) == 1, "every replica serves the one cert in the Secret"
    for index in range(replicas):
        assert (tmp_path / f"r{index}" / "tls.crt").read_bytes() == results[0].tls_cert


def verified_context(kube: Kube, settings: Settings) -> ssl.SSLContext | None:
    """Trust exactly the CA in the Secret, as the apiserver does through the caBundle."""
    secret = kube.get_or_none(secret_path(settings.injection.namespace, settings.cert_secret))
    material = material_from_secret(secret)
    return None if material is None else ssl.create_default_context(cadata=material.ca_bundle.decode())


def test_forced_renewal_is_served_without_a_failed_request(
    place: Settings, cluster: ControlPlane, kube: Kube, tmp_path: Path
) -> None:
    namespace = place.injection.namespace
    hostname = f"{place.service_name}.{namespace}.svc"
    process, port = serve(
        cluster,
        "serve-selfcerts",
        tls_cert=place.tls_cert,
        tls_key=place.tls_key,
        context=lambda: verified_context(kube, place),
        server_hostname=hostname,
        env={
            "OTEL_INJECTOR_CERT_MODE": "self-managed",
            "OTEL_INJECTOR_NAMESPACE": namespace,
            "OTEL_INJECTOR_CERT_SECRET": place.cert_secret,
            "OTEL_INJECTOR_WEBHOOK_CONFIG_NAME": place.webhook_config_name,
            "OTEL_INJECTOR_LEADER_ELECTION": "true",
            "OTEL_INJECTOR_CERT_SYNC_SECONDS": "1",
            "OTEL_INJECTOR_CERT_POLL_SECONDS": "0.5",
        },
    )
    try:
        before = material_from_secret(kube.get(secret_path(namespace, place.cert_secret)))
        assert before is not None
        assert ca_bundles(kube, place.webhook_config_name) == [before.ca_bundle_b64] * 2
        context = ssl.create_default_context(cadata=before.ca_bundle.decode())
        old_serial = serial_of(before.tls_cert)

        failures: list[str] = []
        served: list[int] = []
        kept_alive = [0]
        stop = threading.Event()

        def new_connections() -> None:
            while not stop.is_set():
                try:
                    status, der = https_get(port, "/readyz", context, hostname)
                    if status != 200:
                        failures.append(f"new connection: HTTP {status}")
                    served.append(x509.load_der_x509_certificate(der).serial_number)
                except (OSError, ssl.SSLError) as err:
                    failures.append(f"new connection: {err!r}")

        def keep_alive() -> None:
            connection = PinnedHTTPSConnection(port, context, hostname)
            pod = {"metadata": {"name": "p", "namespace": "shop"}, "spec": {"containers": [{"name": "a"}]}}
            body = json.dumps(review_for(pod))
            try:
                while not stop.is_set():
                    try:
                        connection.request("POST", "/mutate", body, {"Content-Type": "application/json"})
                        response = connection.getresponse()
                        response.read()
                        if response.status != 200:
                            failures.append(f"keep-alive: HTTP {response.status}")
                        kept_alive[0] += 1
                    except (OSError, ssl.SSLError, ConnectionError) as err:
                        failures.append(f"keep-alive: {err!r}")
                        connection.close()
            finally:
                connection.close()

        workers = [threading.Thread(target=new_connections), threading.Thread(target=keep_alive)]
        for worker in workers:
            worker.start()
        try:
            time.sleep(1.0)
            assert served
            assert set(served) == {old_serial}
            asked = time.monotonic()
            request_renewal(kube, namespace, place.cert_secret)

            def renewed() -> int | None:
                new = served[-1] if served else old_serial
                return new if new != old_serial else None

            new_serial = wait_for("the server to present the renewed cert", renewed, timeout=30)
            print(f"renewed cert served {time.monotonic() - asked:.2f}s after the renewal was requested")
            time.sleep(1.0)
        finally:
            stop.set()
            for worker in workers:
                worker.join(10)
        print(f"{len(served)} requests on new connections, {kept_alive[0]} on one keep-alive connection")
        assert failures == []
        assert kept_alive[0] > 10
        after_secret = kube.get(secret_path(namespace, place.cert_secret))
        after = material_from_secret(after_secret)
        assert after is not None
        assert serial_of(after.tls_cert) == new_serial
        assert RENEW_ANNOTATION not in (after_secret["metadata"].get("annotations") or {})
        assert after.ca_bundle == before.ca_bundle, "the CA is reused, so the caBundle stays valid"
        assert ca_bundles(kube, place.webhook_config_name) == [base64.b64encode(before.ca_bundle).decode()] * 2
        assert Path(place.tls_cert).read_bytes() == after.tls_cert
        # After the switch only the new cert is served.
        assert set(served[-5:]) == {new_serial}
    finally:
        process.stop()
    # On SIGTERM the process released the Lease it held, for a successor to take at once.
    assert lease_holder(kube.get(lease_path(namespace, place.lease_name))) == ""
