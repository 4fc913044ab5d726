"""Self-managed certificate material: checks, renewal decisions, Secret shape."""

from __future__ import annotations

import base64
import datetime as dt
import ssl

from cryptography import x509

from webhook.cluster.certmaterial import (
    RENEW_ANNOTATION,
    Material,
    check,
    issue,
    material_from_secret,
    secret_body,
    serial_of,
    service_dns_names,
)

DNS = service_dns_names("otel-injector", "otel-injector")


def test_dns_names_cover_the_service_forms() -> None:
    assert DNS == [
        "otel-injector",
        "otel-injector.otel-injector",
        "otel-injector.otel-injector.svc",
        "otel-injector.otel-injector.svc.cluster.local",
    ]


def test_fresh_material_is_good_and_has_the_sans() -> None:
    material = issue(None, DNS)
    assert check(material, DNS) is None
    leaf = x509.load_pem_x509_certificate(material.tls_cert)
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == DNS
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    assert dt.timedelta(days=89) < lifetime < dt.timedelta(days=91)


def test_renewal_is_due_after_two_thirds_of_the_lifetime() -> None:
    material = issue(None, DNS)
    leaf = x509.load_pem_x509_certificate(material.tls_cert)
    start = leaf.not_valid_before_utc
    assert check(material, DNS, now=start + dt.timedelta(days=55)) is None
    problem = check(material, DNS, now=start + dt.timedelta(days=61))
    assert problem is not None
    assert "serving certificate is due" in problem


def test_renewal_reuses_the_ca_and_changes_the_serial() -> None:
    first = issue(None, DNS)
    second = issue(first, DNS)
    assert second.ca_bundle == first.ca_bundle
    assert second.ca_key == first.ca_key
    assert serial_of(second.tls_cert) != serial_of(first.tls_cert)
    assert check(second, DNS) is None


def test_ca_renewal_keeps_the_old_ca_in_the_bundle() -> None:
    first = issue(None, DNS)
    second = issue(first, DNS, renew_ca=True)
    assert second.ca_cert != first.ca_cert
    assert second.ca_bundle == second.ca_cert + first.ca_cert
    assert check(second, DNS) is None
    # A client trusting only the bundle verifies the new leaf.
    context = ssl.create_default_context(cadata=second.ca_bundle.decode())
    assert len(context.get_ca_certs()) == 2


def test_check_catches_missing_sans_and_foreign_issuer() -> None:
    material = issue(None, DNS[:1])
    assert "lacks the SANs" in (check(material, DNS) or "")
    other = issue(None, DNS)
    mixed = Material(
        ca_bundle=other.ca_bundle, ca_key=other.ca_key, tls_cert=material.tls_cert, tls_key=material.tls_key
    )
    assert "not signed by the current CA" in (check(mixed, DNS) or "")
    swapped = Material(
        ca_bundle=other.ca_bundle, ca_key=other.ca_key, tls_cert=other.tls_cert, tls_key=material.tls_key
    )
    assert "does not match" in (check(swapped, DNS) or "")


def test_secret_round_trip_and_renew_annotation_removed() -> None:
    material = issue(None, DNS)
    body = secret_body("tls", "ns", material)
    assert body["type"] == "kubernetes.io/tls"
    assert material_from_secret(body) == material
    existing = {
        **body,
        "metadata": {
            "name": "tls",
            "namespace": "ns",
            "resourceVersion": "5",
            "annotations": {RENEW_ANNOTATION: "now", "keep": "me"},
            "managedFields": [],
        },
    }
    again = secret_body("tls", "ns", material, existing=existing)
    assert again["metadata"]["resourceVersion"] == "5"
    assert again["metadata"]["annotations"] == {"keep": "me"}
    assert "managedFields" not in again["metadata"]


def test_material_from_bad_secret_is_none() -> None:
    assert material_from_secret(None) is None
    assert material_from_secret({"data": {"tls.crt": "x"}}) is None
    junk = base64.b64encode(b"junk").decode()
    assert material_from_secret({"data": dict.fromkeys(("ca.crt", "ca.key", "tls.crt", "tls.key"), junk)}) is None
