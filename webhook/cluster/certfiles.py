"""The serving certificate's files on local disk, written so that a reader (the server's
certificate watcher, :mod:`webhook.http.server`) never loads a mismatched pair.

Each file is replaced by an atomic rename of a fsync'ed temporary file in the same
directory; the order of the two renames is explained in :func:`write_files`.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path

from webhook.cluster.certmaterial import Material
from webhook.config.settings import Settings


def default_cert_dir() -> Path:
    """Where self-managed certificates go when no path is configured.

    A function, not a module constant: ``tempfile.gettempdir()`` raises when no temporary
    directory is writable (a read-only root filesystem without a ``/tmp`` volume), and at
    import time that crashed ``serve`` before it could log why.
    """
    return Path(tempfile.gettempdir()) / "otel-injector-tls"


def _atomic_write(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_files(material: Material, cert_path: str, key_path: str) -> bool:
    """Write the serving cert and key, each by an atomic rename; returns whether anything
    changed. The key goes first: a reader that sees the new key with the old cert fails
    to load the pair and keeps its current one (OpenSSL refuses a key that does not match
    the loaded cert), then loads both at its next look; the old key with a new cert would
    be the pair no reader can see, since the cert is only replaced after its key."""
    cert, key = Path(cert_path), Path(key_path)
    if _read(cert) == material.tls_cert and _read(key) == material.tls_key:
        return False
    if _read(key) != material.tls_key:
        _atomic_write(key, material.tls_key, 0o600)
    _atomic_write(cert, material.tls_cert, 0o644)
    return True


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def with_cert_paths(settings: Settings) -> Settings:
    """``settings`` with tls_cert/tls_key defaulted to files under the temp directory
    when they are not set (self-managed mode writes them itself)."""
    cert = settings.tls_cert or str(default_cert_dir() / "tls.crt")
    key = settings.tls_key or str(default_cert_dir() / "tls.key")
    return dataclasses.replace(settings, tls_cert=cert, tls_key=key)
