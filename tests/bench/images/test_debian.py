"""Debian rootfs making: Debian's packages only, nothing of the build host, no device nodes."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from bench.localcluster.images import debian
from bench.localcluster.images.cache import ImageBuildError


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> debian.Rootfs:
    return debian.make_rootfs(
        tmp_path_factory.mktemp("debian") / "rootfs", variant="extract", packages=["python3"], log=print
    )


def test_extract_holds_python_and_its_dependencies_only(rootfs: debian.Rootfs) -> None:
    root = rootfs.path
    assert (root / "usr/bin/python3").exists()
    assert (root / "lib64/ld-linux-x86-64.so.2").is_symlink()
    names = {p.split("=")[0] for p in rootfs.packages}
    assert {"python3", "python3.11-minimal", "libc6"} <= names
    assert "apt" not in names
    assert "bash" not in names
    assert all("=" in p for p in rootfs.packages)


def test_no_build_host_state_and_no_devices(rootfs: debian.Rootfs) -> None:
    root = rootfs.path
    assert (root / "etc/resolv.conf").read_bytes() == b""
    assert (root / "etc/hostname").read_bytes() == b""
    assert not list((root / "dev").iterdir())
    assert not list((root / "var/cache/apt").iterdir())
    devices = [p for p in root.rglob("*") if not p.is_symlink() and stat.S_ISCHR(p.lstat().st_mode)]
    assert not devices
    assert not (root / "usr/share/man").exists() or not list((root / "usr/share/man").iterdir())


def test_copyright_files_stay(rootfs: debian.Rootfs) -> None:
    assert (rootfs.path / "usr/share/doc/python3.11-minimal/copyright").is_file()


def test_unknown_package_fails_with_mmdebstrap_output(tmp_path: Path) -> None:
    with pytest.raises(ImageBuildError, match="mmdebstrap failed"):
        debian.make_rootfs(
            tmp_path / "rootfs", variant="extract", packages=["no-such-package-otel-injector"], log=print
        )
