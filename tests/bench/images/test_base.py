"""The Debian bookworm base image: minbase from Debian's packages, under a local name."""

from __future__ import annotations

import pytest

from bench.localcluster.images import DEBIAN_BASE_IMAGE, Image, build_debian_base
from bench.localcluster.images.base import debian_base_name
from tests.bench.images.support import layer_members, read_archive


@pytest.fixture(scope="module")
def base() -> Image:
    return build_debian_base()


def test_named_honestly(base: Image) -> None:
    assert base.name == DEBIAN_BASE_IMAGE
    assert base.name.startswith("localhost/")
    assert "docker.io" not in base.name


def test_is_a_debian_minbase_with_apt(base: Image) -> None:
    view = read_archive(base.archive)
    members = layer_members(view.layers[0])
    for path in ("usr/bin/apt-get", "usr/bin/dpkg", "bin/bash", "etc/debian_version", "etc/apt/sources.list.d"):
        assert path in members or f"usr/{path}" in members, path
    packages = view.config["config"]["Labels"]["io.otel-injector.bench.debian-packages"].split()
    assert any(p.startswith("apt=") for p in packages)
    assert view.config["config"]["Cmd"] == ["bash"]
    print(f"debian base image: {base.size / 1e6:.1f} MB")


def test_extra_packages_are_named_in_the_tag() -> None:
    assert debian_base_name(["python3"]) == f"{DEBIAN_BASE_IMAGE}-python3"
    assert debian_base_name() == DEBIAN_BASE_IMAGE
    with pytest.raises(ValueError, match="not a Debian package name"):
        debian_base_name(["python3; rm -rf /"])
