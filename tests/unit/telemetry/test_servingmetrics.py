"""The serving certificate's expiry and readiness gauges, on real certificates."""

from __future__ import annotations

import os
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from webhook.telemetry.servingmetrics import EXPIRY, READY, ServingCollector, certificate_expiry
from webhook.tls.certs import generate_bundle, not_after


def scrape(collector: ServingCollector) -> dict[str, float]:
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}


def test_expiry_is_the_served_certificates_not_after(tmp_path: Path) -> None:
    bundle = generate_bundle(["svc.ns.svc"], days=30)
    cert = tmp_path / "tls.crt"
    cert.write_bytes(bundle.tls_cert)
    found = scrape(ServingCollector(str(cert), lambda: True))
    assert found[EXPIRY] == not_after(bundle.tls_cert).timestamp()
    assert found[READY] == 1.0


def test_a_renewed_file_is_read_again(tmp_path: Path) -> None:
    cert = tmp_path / "tls.crt"
    first, second = generate_bundle(["a"], days=10), generate_bundle(["a"], days=90)
    cert.write_bytes(first.tls_cert)
    collector = ServingCollector(str(cert), lambda: False)
    assert collector.expiry() == not_after(first.tls_cert).timestamp()
    cert.write_bytes(second.tls_cert)
    os.utime(cert, ns=(1, 10**18))  # a new mtime even within the clock's resolution
    assert collector.expiry() == not_after(second.tls_cert).timestamp()
    assert scrape(collector)[READY] == 0.0


def test_no_series_without_a_certificate(tmp_path: Path) -> None:
    assert EXPIRY not in scrape(ServingCollector("", lambda: True))
    assert EXPIRY not in scrape(ServingCollector(str(tmp_path / "missing.crt"), lambda: True))
    garbage = tmp_path / "garbage.crt"
    garbage.write_bytes(b"-----BEGIN CERTIFICATE-----\nnot base64\n")
    assert certificate_expiry(str(garbage)) is None
    assert EXPIRY not in scrape(ServingCollector(str(garbage), lambda: True))
