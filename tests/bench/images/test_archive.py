"""docker-archive writing: the structure ctr imports, and byte-for-byte reproducibility."""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
from pathlib import Path

import pytest

from bench.localcluster.images.archive import (
    EPOCH,
    Dir,
    File,
    ImageConfig,
    Symlink,
    config_json,
    write_docker_archive,
    write_layer,
)
from tests.bench.images.support import layer_members, read_archive


def _tree(root: Path) -> Path:
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/tool").write_bytes(b"#!/bin/true\n")
    (root / "usr/bin/tool").chmod(0o755)
    os.link(root / "usr/bin/tool", root / "usr/bin/tool-alias")
    (root / "usr/lib").mkdir()
    (root / "usr/lib/libx.so.1").write_bytes(b"\x7fELF")
    (root / "usr/lib/libx.so").symlink_to("libx.so.1")
    (root / "skip").mkdir()
    (root / "skip/big").write_bytes(b"x" * 1000)
    return root


def test_layer_from_tree_and_entries(tmp_path: Path) -> None:
    root = _tree(tmp_path / "root")
    layer = write_layer(
        tmp_path / "layer.tar",
        [File("etc/app/config.yaml", b"a: 1\n"), Symlink("bin", "usr/bin"), File("usr/lib/libx.so.1", b"new")],
        tree=root,
        exclude=lambda name: name == "skip",
    )
    data = layer.path.read_bytes()
    assert layer.diff_id == f"sha256:{hashlib.sha256(data).hexdigest()}"
    assert layer.size == len(data)
    members = layer_members(data)
    names = list(members)
    assert names == sorted(names)
    assert "skip" not in members
    assert "skip/big" not in members
    assert members["etc"].isdir()
    assert members["etc/app"].isdir()
    assert members["bin"].issym()
    assert members["bin"].linkname == "usr/bin"
    assert members["usr/lib/libx.so"].issym()
    assert members["usr/bin/tool"].mode == 0o755
    # The second path of an inode is a hard link to the first in sorted order.
    assert members["usr/bin/tool-alias"].islnk()
    assert members["usr/bin/tool-alias"].linkname == "usr/bin/tool"
    # An entry replaces the tree's file of the same path.
    with tarfile.open(layer.path) as tar:
        handle = tar.extractfile("usr/lib/libx.so.1")
        assert handle is not None
        assert handle.read() == b"new"
    assert {m.mtime for m in members.values()} == {EPOCH}
    assert {(m.uname, m.gname) for m in members.values()} == {("", "")}


def test_layers_are_reproducible(tmp_path: Path) -> None:
    root = _tree(tmp_path / "root")
    first = write_layer(tmp_path / "one.tar", [Dir("data", mode=0o700, uid=10001)], tree=root)
    os.utime(root / "usr/bin/tool", (1, 1))  # mtimes on disk do not matter
    second = write_layer(tmp_path / "two.tar", [Dir("data", mode=0o700, uid=10001)], tree=root)
    assert first.diff_id == second.diff_id
    assert first.path.read_bytes() == second.path.read_bytes()


def test_a_device_node_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    os.mkfifo(root / "fifo")
    with pytest.raises(ValueError, match="not a file"):
        write_layer(tmp_path / "layer.tar", tree=root)


def test_paths_must_stay_inside(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="bad path"):
        write_layer(tmp_path / "layer.tar", [File("../etc/passwd", b"")])


def test_docker_archive_structure(tmp_path: Path) -> None:
    layer = write_layer(tmp_path / "layer.tar", [File("hello", b"hi", mode=0o755)])
    config = ImageConfig(
        entrypoint=["/hello"],
        cmd=["--flag"],
        env=["PATH=/bin"],
        user="10001",
        exposed_ports=["4317/tcp"],
        labels={"a": "b"},
    )
    image_id = write_docker_archive(
        tmp_path / "image.tar", name="docker.io/example/hello:1.0", layers=[layer], config=config, history="test"
    )
    view = read_archive(tmp_path / "image.tar")
    assert view.manifest == [
        {
            "Config": f"{image_id.removeprefix('sha256:')}.json",
            "RepoTags": ["docker.io/example/hello:1.0"],
            "Layers": [f"{layer.diff_id.removeprefix('sha256:')}/layer.tar"],
        }
    ]
    raw = json.dumps(view.config, sort_keys=True, separators=(",", ":")).encode()
    assert f"sha256:{hashlib.sha256(raw).hexdigest()}" == image_id
    assert view.config["architecture"] == "amd64"
    assert view.config["os"] == "linux"
    assert view.config["rootfs"] == {"type": "layers", "diff_ids": [layer.diff_id]}
    assert view.config["config"] == {
        "Entrypoint": ["/hello"],
        "Cmd": ["--flag"],
        "Env": ["PATH=/bin"],
        "User": "10001",
        "ExposedPorts": {"4317/tcp": {}},
        "Labels": {"a": "b"},
    }
    assert hashlib.sha256(view.layers[0]).hexdigest() == layer.diff_id.removeprefix("sha256:")
    assert {m.mtime for m in view.members.values()} == {EPOCH}


def test_docker_archive_is_reproducible(tmp_path: Path) -> None:
    digests = []
    for run in ("a", "b"):
        layer = write_layer(tmp_path / f"{run}.layer", [File("x", b"1")])
        write_docker_archive(
            tmp_path / f"{run}.tar", name="localhost/x:1", layers=[layer], config=ImageConfig(), history="t"
        )
        digests.append(hashlib.sha256((tmp_path / f"{run}.tar").read_bytes()).hexdigest())
    assert digests[0] == digests[1]


def test_a_name_needs_a_tag(tmp_path: Path) -> None:
    layer = write_layer(tmp_path / "layer.tar", [File("x", b"1")])
    with pytest.raises(ValueError, match="no tag"):
        write_docker_archive(
            tmp_path / "i.tar", name="localhost:5000/x", layers=[layer], config=ImageConfig(), history=""
        )


def test_config_json_is_canonical(tmp_path: Path) -> None:
    layer = write_layer(tmp_path / "layer.tar", [File("x", b"1")])
    text = config_json([layer], ImageConfig(labels={"b": "2", "a": "1"}), history="h")
    assert b" " not in text
    assert text == json.dumps(json.loads(text), sort_keys=True, separators=(",", ":")).encode()
