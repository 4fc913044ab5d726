"""An OCI layout of a docker archive: the same blobs, a manifest and an index naming the image."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from bench.localcluster.images.archive import File, ImageConfig, write_docker_archive, write_layer
from bench.localcluster.images.ocilayout import LAYER_MEDIA_TYPE, REF_NAME, oci_layout_of, read_layout


def _archive(tmp_path: Path) -> tuple[Path, str]:
    layer = write_layer(tmp_path / "layer.tar", [File("etc/hello", b"hello\n")])
    archive = tmp_path / "img.tar"
    image_id = write_docker_archive(
        archive, name="localhost/example:1", layers=[layer], config=ImageConfig(cmd=["true"]), history="test"
    )
    return archive, image_id


def _blob(layout: Path, digest: str) -> bytes:
    data = (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()
    assert f"sha256:{hashlib.sha256(data).hexdigest()}" == digest
    return data


def test_layout_holds_the_archive_image_under_its_own_name(tmp_path: Path) -> None:
    archive, image_id = _archive(tmp_path)
    layout = oci_layout_of(archive)
    assert layout.path == tmp_path / "img.oci"
    assert layout.name == "localhost/example:1"
    index = json.loads((layout.path / "index.json").read_text())
    (entry,) = index["manifests"]
    assert entry["digest"] == layout.manifest_digest
    assert entry["annotations"][REF_NAME] == "localhost/example:1"
    manifest = json.loads(_blob(layout.path, layout.manifest_digest))
    assert manifest["config"]["digest"] == image_id
    config = json.loads(_blob(layout.path, image_id))
    (layer,) = manifest["layers"]
    assert layer["mediaType"] == LAYER_MEDIA_TYPE
    # Uncompressed layers: the blob digest is the diff ID the config lists.
    assert config["rootfs"]["diff_ids"] == [layer["digest"]]
    assert len(_blob(layout.path, layer["digest"])) == layer["size"]
    assert json.loads((layout.path / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}


def test_second_call_reuses_the_layout_and_a_partial_one_is_not_read(tmp_path: Path) -> None:
    archive, _ = _archive(tmp_path)
    first = oci_layout_of(archive)
    marker = first.path / "index.json"
    stamp = marker.stat().st_mtime_ns
    assert oci_layout_of(archive) == first
    assert marker.stat().st_mtime_ns == stamp
    partial = tmp_path / "partial"
    (partial / "blobs" / "sha256").mkdir(parents=True)
    assert read_layout(partial) is None
