"""Unpacking a docker archive like a runtime: layers in order, whiteouts, modes kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.localcluster.images.archive import Dir, File, ImageConfig, write_docker_archive, write_layer
from bench.localcluster.images.unpack import unpack_docker_archive


def test_layers_apply_in_order_with_whiteouts_and_modes(tmp_path: Path) -> None:
    lower = write_layer(
        tmp_path / "l1.tar",
        [
            File("etc/keep", b"1"),
            File("etc/gone", b"x"),
            File("var/cache/a", b"a"),
            File("var/cache/b", b"b"),
            Dir("tmp", mode=0o1777),
        ],
    )
    upper = write_layer(
        tmp_path / "l2.tar", [File("etc/.wh.gone", b""), File("var/cache/.wh..wh..opq", b""), File("etc/keep", b"2")]
    )
    archive = tmp_path / "img.tar"
    write_docker_archive(
        archive, name="localhost/x:1", layers=[lower, upper], config=ImageConfig(user="7"), history="t"
    )
    out = unpack_docker_archive(archive, tmp_path / "root")
    root = out.rootfs
    assert (root / "etc/keep").read_bytes() == b"2"
    assert not (root / "etc/gone").exists()
    assert not list((root / "var/cache").iterdir())
    assert not list(root.rglob(".wh.*"))
    assert (root / "tmp").stat().st_mode & 0o7777 == 0o1777
    assert out.config["User"] == "7"
    assert out.layers == 2


def test_entries_outside_the_root_are_refused(tmp_path: Path) -> None:
    import io
    import tarfile

    layer = tmp_path / "evil.tar"
    with tarfile.open(layer, "w") as tar:
        info = tarfile.TarInfo("../escaped")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    from bench.localcluster.images.archive import Layer

    digest = "sha256:" + __import__("hashlib").sha256(layer.read_bytes()).hexdigest()
    archive = tmp_path / "img.tar"
    write_docker_archive(
        archive,
        name="localhost/x:1",
        layers=[Layer(path=layer, diff_id=digest, size=layer.stat().st_size)],
        config=ImageConfig(),
        history="t",
    )
    with pytest.raises(tarfile.OutsideDestinationError):
        unpack_docker_archive(archive, tmp_path / "root")
    assert not (tmp_path / "escaped").exists()
