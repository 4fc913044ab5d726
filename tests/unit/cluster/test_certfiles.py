"""The serving certificate's local files: atomic, idempotent writes, key first, and the
default paths of self-managed mode."""

from __future__ import annotations

import ssl
from pathlib import Path

from webhook.cluster.certfiles import default_cert_dir, with_cert_paths, write_files
from webhook.cluster.certmaterial import issue, service_dns_names
from webhook.config.settings import Settings

DNS = service_dns_names("otel-injector", "otel-injector")


def test_write_files_is_atomic_and_idempotent(tmp_path: Path) -> None:
    material = issue(None, DNS)
    cert, key = tmp_path / "d" / "tls.crt", tmp_path / "d" / "tls.key"
    assert write_files(material, str(cert), str(key))
    assert cert.read_bytes() == material.tls_cert
    assert key.stat().st_mode & 0o777 == 0o600
    inode = cert.stat().st_ino
    assert not write_files(material, str(cert), str(key))
    assert cert.stat().st_ino == inode
    renewed = issue(material, DNS)
    assert write_files(renewed, str(cert), str(key))
    assert cert.stat().st_ino != inode
    assert [p.name for p in sorted(cert.parent.iterdir())] == ["tls.crt", "tls.key"]  # no temp files left
    ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(str(cert), str(key))


def test_self_managed_mode_defaults_the_paths_and_keeps_given_ones() -> None:
    defaulted = with_cert_paths(Settings())
    assert (defaulted.tls_cert, defaulted.tls_key) == (
        str(default_cert_dir() / "tls.crt"),
        str(default_cert_dir() / "tls.key"),
    )
    given = with_cert_paths(Settings(tls_cert="/c.pem", tls_key="/k.pem"))
    assert (given.tls_cert, given.tls_key) == ("/c.pem", "/k.pem")
