"""An OCI image layout made from one of the bench's docker archives, for BuildKit to read.

BuildKit takes a local base image only as a named context of type ``oci-layout``
(``buildctl --oci-layout NAME=DIR --opt context:REF=oci-layout://NAME@sha256:...``); it
does not read docker archives. The layout holds the same blobs as the archive: the
config JSON and the uncompressed layer tars (media type ``...layer.v1.tar``, whose digest
is the diff ID the archive already names them by), plus a manifest and ``index.json``
that names the image by its own tag (``org.opencontainers.image.ref.name``).

The layout is written once per archive into ``<archive stem>.oci/`` beside it, moved
into place with a rename, and reused while the archive is unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar"
MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"
REF_NAME = "org.opencontainers.image.ref.name"


@dataclass(frozen=True)
class OciLayout:
    """A layout directory and the digest of the one manifest it holds."""

    path: Path
    manifest_digest: str  # "sha256:..."
    name: str  # the image's own reference, e.g. localhost/otel-injector-debian:bookworm-slim-python3


def _json_bytes(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def _put_blob(blobs: Path, data: bytes) -> tuple[str, int]:
    hexdigest = hashlib.sha256(data).hexdigest()
    (blobs / hexdigest).write_bytes(data)
    return f"sha256:{hexdigest}", len(data)


def _write_layout(archive: Path, dest: Path) -> OciLayout:
    blobs = dest / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    with tarfile.open(archive, mode="r:") as tar:
        (entry,) = json.loads(_read_member(tar, "manifest.json"))
        name = str(entry["RepoTags"][0])
        config = _read_member(tar, entry["Config"])
        layers: list[dict[str, object]] = []
        for member_name in entry["Layers"]:
            member = tar.getmember(member_name)
            source = tar.extractfile(member)
            if source is None:
                raise ValueError(f"{archive}: {member_name} is not a file")
            digest = hashlib.sha256()
            staged = blobs / ".layer.tmp"
            with source, staged.open("wb") as sink:
                while block := source.read(1 << 20):
                    digest.update(block)
                    sink.write(block)
            os.replace(staged, blobs / digest.hexdigest())
            layers.append(
                {"mediaType": LAYER_MEDIA_TYPE, "digest": f"sha256:{digest.hexdigest()}", "size": member.size}
            )
    config_digest, config_size = _put_blob(blobs, config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": config_digest, "size": config_size},
        "layers": layers,
    }
    manifest_digest, manifest_size = _put_blob(blobs, _json_bytes(manifest))
    index = {
        "schemaVersion": 2,
        "mediaType": INDEX_MEDIA_TYPE,
        "manifests": [
            {
                "mediaType": MANIFEST_MEDIA_TYPE,
                "digest": manifest_digest,
                "size": manifest_size,
                "platform": {"architecture": "amd64", "os": "linux"},
                "annotations": {REF_NAME: name},
            }
        ],
    }
    (dest / "index.json").write_bytes(_json_bytes(index))
    (dest / "oci-layout").write_bytes(_json_bytes({"imageLayoutVersion": "1.0.0"}))
    return OciLayout(path=dest, manifest_digest=manifest_digest, name=name)


def _read_member(tar: tarfile.TarFile, name: str) -> bytes:
    handle = tar.extractfile(name)
    if handle is None:
        raise ValueError(f"{name} is not a file in the archive")
    with handle:
        return handle.read()


def read_layout(path: Path) -> OciLayout | None:
    """The layout at ``path`` if it is complete (index.json written last), else None."""
    try:
        index = json.loads((path / "index.json").read_text(encoding="utf-8"))
        (manifest,) = index["manifests"]
        digest = str(manifest["digest"])
        if not (path / "blobs" / "sha256" / digest.removeprefix("sha256:")).is_file():
            return None
        return OciLayout(path=path, manifest_digest=digest, name=str(manifest["annotations"][REF_NAME]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def oci_layout_of(archive: Path) -> OciLayout:
    """The OCI layout of a single-image docker archive, written beside it on first use.

    Concurrent callers each write a private copy and the first rename wins; a reader
    never sees a partial layout."""
    dest = archive.with_name(f"{archive.stem}.oci")
    found = read_layout(dest)
    if found is not None:
        return found
    staged = Path(tempfile.mkdtemp(prefix=f".{archive.stem}.", dir=archive.parent))
    try:
        layout = _write_layout(archive, staged / "layout")
        try:
            os.replace(layout.path, dest)
        except OSError:
            # Another process renamed its copy first (a non-empty target cannot be replaced).
            found = read_layout(dest)
            if found is None:
                raise
            return found
        return OciLayout(path=dest, manifest_digest=layout.manifest_digest, name=layout.name)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
