"""The webhook's CA and serving certificate."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from webhook.tls.certs import CertBundle, generate_bundle, generate_ca, not_after, sign_serving_cert

DNS = ["otel-injector.otel-injector.svc", "otel-injector.otel-injector.svc.cluster.local"]


@pytest.fixture(scope="module")
def bundle() -> CertBundle:
    return generate_bundle(DNS, ["127.0.0.1", "::1"], days=30)


def load(pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem)


def verify_signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> None:
    public_key = issuer.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    assert cert.signature_hash_algorithm is not None
    public_key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))


def test_ca_is_a_ca() -> None:
    cert_pem, key_pem = generate_ca("test-ca", days=10)
    ca = load(cert_pem)
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value.ca is True
    assert constraints.value.path_length == 0
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign
    assert usage.crl_sign
    assert ca.subject == ca.issuer
    assert ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "test-ca"
    verify_signed_by(ca, ca)
    key = serialization.load_pem_private_key(key_pem, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert isinstance(key.curve, ec.SECP256R1)
    assert key.public_key().public_numbers() == ca.public_key().public_numbers()  # type: ignore[union-attr]
    assert ca.not_valid_after_utc - ca.not_valid_before_utc == dt.timedelta(days=10, minutes=5)


def test_serving_cert_sans(bundle: CertBundle) -> None:
    cert = load(bundle.tls_cert)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == DNS
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")]
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == DNS[0]


def test_serving_cert_is_signed_by_the_ca(bundle: CertBundle) -> None:
    cert, ca = load(bundle.tls_cert), load(bundle.ca_cert)
    assert cert.issuer == ca.subject
    verify_signed_by(cert, ca)
    cert.verify_directly_issued_by(ca)
    # Another CA with the same name did not sign it.
    impostor = load(generate_ca()[0])
    assert impostor.subject == ca.subject
    with pytest.raises(InvalidSignature):
        cert.verify_directly_issued_by(impostor)


def test_serving_cert_is_for_servers_only(bundle: CertBundle) -> None:
    cert = load(bundle.tls_cert)
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH
    ]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert cert.signature_hash_algorithm is not None
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)


def test_serving_key_matches_cert(bundle: CertBundle) -> None:
    key = serialization.load_pem_private_key(bundle.tls_key, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    cert_key = load(bundle.tls_cert).public_key()
    assert isinstance(cert_key, ec.EllipticCurvePublicKey)
    assert key.public_key().public_numbers() == cert_key.public_numbers()


def test_validity(bundle: CertBundle) -> None:
    cert = load(bundle.tls_cert)
    now = dt.datetime.now(dt.UTC)
    assert abs(cert.not_valid_after_utc - (now + dt.timedelta(days=30))) < dt.timedelta(minutes=1)
    assert abs(cert.not_valid_before_utc - (now - dt.timedelta(minutes=5))) < dt.timedelta(minutes=1)
    assert not_after(bundle.tls_cert) == cert.not_valid_after_utc
    # The CA outlives the serving cert: at least ten years.
    ca = load(bundle.ca_cert)
    assert ca.not_valid_after_utc - ca.not_valid_before_utc >= dt.timedelta(days=3650)


def test_ip_only_cert() -> None:
    ca_cert, ca_key = generate_ca()
    cert = load(sign_serving_cert(ca_cert, ca_key, dns_names=[], ips=["10.0.0.1"])[0])
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == []
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.1")]
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "10.0.0.1"


def test_no_sans_is_an_error() -> None:
    ca_cert, ca_key = generate_ca()
    with pytest.raises(ValueError, match=r"^a serving cert needs at least one --dns-name or --ip$"):
        sign_serving_cert(ca_cert, ca_key, dns_names=[])
    with pytest.raises(ValueError, match="at least one --dns-name or --ip"):
        generate_bundle([])


def test_bad_ip_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="not-an-ip"):
        generate_bundle(["x"], ["not-an-ip"])


def test_ca_bundle_is_base64_of_ca_cert(bundle: CertBundle) -> None:
    assert base64.b64decode(bundle.ca_bundle) == bundle.ca_cert
    assert bundle.ca_bundle.isascii()
    assert "\n" not in bundle.ca_bundle


def test_write(bundle: CertBundle, tmp_path: Path) -> None:
    out = tmp_path / "nested" / "tls"
    bundle.write(out)
    assert sorted(p.name for p in out.iterdir()) == ["ca.crt", "tls.crt", "tls.key"]
    assert (out / "ca.crt").read_bytes() == bundle.ca_cert
    assert (out / "tls.crt").read_bytes() == bundle.tls_cert
    assert (out / "tls.key").read_bytes() == bundle.tls_key
    assert stat.S_IMODE((out / "tls.key").stat().st_mode) == 0o600


def test_write_tightens_an_existing_key_file(bundle: CertBundle, tmp_path: Path) -> None:
    key = tmp_path / "tls.key"
    key.write_bytes(b"old")
    key.chmod(0o644)
    bundle.write(tmp_path)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_bytes() == bundle.tls_key
