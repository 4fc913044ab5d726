"""Debian bookworm root filesystems made with mmdebstrap, from Debian's own packages.

mmdebstrap resolves the packages with apt from the machine's configured Debian mirror
and writes a rootfs tarball (about 10 s for python3 alone). Two shapes are used:

- ``extract``: only the named packages and their dependencies are unpacked, no
  maintainer scripts run, so no shell, no apt, no package database: a distroless-like
  rootfs for an app (the demo app's Python runtime is 61 MB this way, against 219 MB
  for the ``apt`` variant with python3).
- ``minbase``: Debian's minimal installable system (essential packages and apt), the
  equivalent of ``debian:bookworm-slim`` for an image build that runs ``apt-get``.

The rootfs is unpacked into a directory (as root, owners kept) for the caller to add
to; what no container image should carry is left out: device nodes (the runtime makes
/dev), the build host's resolv.conf and hostname (empty files stand in for the
runtime's bind mounts), apt's downloaded .debs, manual pages, info pages and
translations. The copyright files under /usr/share/doc stay.

The packages are whatever the mirror serves when the image is built (bookworm plus its
updates), so a rebuild after a Debian update gives another digest for the same recipe;
the images' labels list the exact package versions they hold.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.localcluster.images.archive import EPOCH
from bench.localcluster.images.cache import ImageBuildError

SUITE = "bookworm"
_MMDEBSTRAP_TIMEOUT = 900
_APT_TIMEOUT = 600
_ARCHIVES = "var/cache/apt/archives"
#: Paths (relative to the rootfs) left out of every layer; see the module docstring.
_DROPPED_DIRS = ("dev", "usr/share/man", "usr/share/info", "usr/share/locale", "usr/share/lintian", "var/cache/apt")
_MERGED_USR_HOOK = Path("/usr/share/mmdebstrap/hooks/merged-usr")
_DEB = re.compile(r"^(?P<name>[^_]+)_(?P<version>[^_]+)_(?P<arch>[^_.]+)\.deb$")


@dataclass(frozen=True)
class Rootfs:
    """An unpacked rootfs and the Debian packages (name=version) it was made from."""

    path: Path
    packages: tuple[str, ...]


def ensure_mmdebstrap(log: Callable[[str], None]) -> str:
    """Return the path of mmdebstrap, installing Debian's package with apt-get if it is missing."""
    found = shutil.which("mmdebstrap")
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        raise ImageBuildError("mmdebstrap is not installed and cannot be installed here (needs root and apt-get)")
    log("[images] installing mmdebstrap with apt-get")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = [apt, "install", "-y", "-qq", "--no-install-recommends", "mmdebstrap"]
    result = subprocess.run(install, env=env, capture_output=True, text=True, timeout=_APT_TIMEOUT, check=False)
    if result.returncode != 0:
        # A fresh machine may have no package lists yet.
        subprocess.run([apt, "update", "-qq"], env=env, capture_output=True, timeout=_APT_TIMEOUT, check=False)
        result = subprocess.run(install, env=env, capture_output=True, text=True, timeout=_APT_TIMEOUT, check=False)
    found = shutil.which("mmdebstrap")
    if result.returncode != 0 or found is None:
        raise ImageBuildError(f"apt-get install mmdebstrap failed (exit {result.returncode}): {result.stderr[-2000:]}")
    return found


def mmdebstrap_version(log: Callable[[str], None]) -> str:
    """``mmdebstrap --version``, part of the recipes of Debian-based images."""
    tool = ensure_mmdebstrap(log)
    result = subprocess.run([tool, "--version"], capture_output=True, text=True, timeout=60, check=False)
    return result.stdout.strip()


def _installed(root: Path) -> list[str]:
    """name=version of every package dpkg's database in ``root`` records as installed."""
    try:
        text = (root / "var/lib/dpkg/status").read_text(encoding="utf-8")
    except OSError:
        return []
    found: list[str] = []
    for stanza in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line and line[:1] != " ")
        if fields.get("Status", "").endswith(" installed") and "Package" in fields:
            found.append(f"{fields['Package']}={fields.get('Version', '')}")
    return sorted(found)


def _package_list(root: Path) -> tuple[str, ...]:
    installed = _installed(root)
    if installed:
        return tuple(installed)
    # The extract variant runs no dpkg: the downloaded .debs are the list.
    found: list[str] = []
    for deb in sorted((root / _ARCHIVES).glob("*.deb")):
        match = _DEB.match(deb.name)
        if match:
            found.append(f"{match['name']}={match['version'].replace('%3a', ':')}")
    return tuple(found)


def _empty(path: Path) -> None:
    for child in path.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def make_rootfs(
    dest: Path,
    *,
    variant: str,
    packages: Sequence[str],
    log: Callable[[str], None],
) -> Rootfs:
    """Build a bookworm rootfs with mmdebstrap into the empty directory ``dest``.

    ``variant`` is mmdebstrap's (``extract`` or ``minbase``); ``packages`` are added with
    their dependencies. Raises ImageBuildError with mmdebstrap's last output on failure.
    """
    tool = ensure_mmdebstrap(log)
    if os.geteuid() != 0:
        raise ImageBuildError("building a Debian rootfs needs root (mmdebstrap's root mode keeps file owners)")
    dest.mkdir(parents=True, exist_ok=True)
    tarball = dest.parent / f"{dest.name}.mmdebstrap.tar"
    argv = [
        tool,
        f"--variant={variant}",
        "--mode=root",
        "--format=tar",
        "--quiet",
        # Keep the downloaded .debs: their names are the package list. They are not copied
        # into the layer.
        "--skip=cleanup/apt/cache",
    ]
    if variant != "extract" and _MERGED_USR_HOOK.is_dir():
        # Merge /usr the way debootstrap and the official images do (the usr-is-merged
        # marker package), not with the usrmerge package, which would pull perl in.
        argv.append(f"--hook-dir={_MERGED_USR_HOOK}")
    if packages:
        argv.append(f"--include={','.join(packages)}")
    argv += [SUITE, str(tarball)]
    env = dict(os.environ, SOURCE_DATE_EPOCH=str(EPOCH))
    log(f"[images] mmdebstrap --variant={variant} {SUITE} ({', '.join(packages) or 'no extra packages'})")
    try:
        result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=_MMDEBSTRAP_TIMEOUT, check=False)
        if result.returncode != 0:
            raise ImageBuildError(f"mmdebstrap failed (exit {result.returncode}):\n{result.stderr[-3000:]}")
        unpack = subprocess.run(
            ["tar", "-x", "-f", str(tarball), "-C", str(dest), "--numeric-owner", "--exclude=./dev/*"],
            capture_output=True,
            text=True,
            timeout=_MMDEBSTRAP_TIMEOUT,
            check=False,
        )
        if unpack.returncode != 0:
            raise ImageBuildError(f"unpacking the mmdebstrap rootfs failed: {unpack.stderr[-2000:]}")
    finally:
        tarball.unlink(missing_ok=True)
    listed = _package_list(dest)
    for rel in _DROPPED_DIRS:
        target = dest / rel
        if target.is_dir() and not target.is_symlink():
            _empty(target)
    for rel in ("etc/resolv.conf", "etc/hostname"):
        target = dest / rel
        target.unlink(missing_ok=True)
        target.write_bytes(b"")
        target.chmod(0o644)
    return Rootfs(path=dest, packages=listed)
