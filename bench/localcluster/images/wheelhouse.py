"""The wheels of the image's lock files, downloaded on the host once, for a build without a network.

The image build itself reaches nothing (see buildkitd.py), so pip inside it installs
from a directory of wheels handed to BuildKit as the named context ``wheels``
(``pip install --no-index --find-links``). That directory is made here with
``pip download --require-hashes --only-binary=:all:`` from the same lock files the
Dockerfile installs, for the image's interpreter (Debian bookworm's CPython 3.11 on
manylinux x86-64), not the host's. pip checks every file against the lock's hashes on
download and again when the image installs it.

    $OTEL_INJECTOR_CACHE_DIR/wheelhouse/<hash of the locks and target>/   *.whl, .complete

A directory is complete once ``.complete`` exists; a changed lock makes a new one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from bench.localcluster.binaries import cache_root
from bench.localcluster.images.cache import ImageBuildError, recipe_hash

#: The interpreter of the image: Debian bookworm's python3 package.
PYTHON_VERSION = "3.11"
ABI = "cp311"
#: Wheel platforms bookworm (glibc 2.36) runs, newest first. pip download needs them
#: spelled out: for a foreign target it does not derive the older manylinux tags.
PLATFORMS = (
    "manylinux_2_36_x86_64",
    "manylinux_2_34_x86_64",
    "manylinux_2_28_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
    "manylinux_2_5_x86_64",
    "manylinux1_x86_64",
)
_TIMEOUT_SECONDS = 1200
_COMPLETE = ".complete"


def download_argv(locks: Sequence[Path], dest: Path, python: str = sys.executable) -> list[str]:
    """The ``pip download`` command line for ``locks`` into ``dest``."""
    argv = [python, "-m", "pip", "download", "--quiet", "--disable-pip-version-check"]
    argv += ["--require-hashes", "--only-binary=:all:"]
    argv += ["--python-version", PYTHON_VERSION, "--implementation", "cp", "--abi", ABI]
    for platform in PLATFORMS:
        argv += ["--platform", platform]
    argv += ["--dest", str(dest)]
    for lock in locks:
        argv += ["-r", str(lock)]
    return argv


def _requirements(lock: Path) -> str:
    # Comments (the generating command, "# via" notes) do not change which files pip fetches.
    lines = (line.split("#", 1)[0].rstrip() for line in lock.read_text(encoding="utf-8").splitlines())
    return "\n".join(line for line in lines if line)


def wheelhouse_key(locks: Sequence[Path]) -> str:
    """Cache key of a wheelhouse: the locks' requirements and hashes, and the target interpreter."""
    return recipe_hash("wheelhouse", PYTHON_VERSION, ABI, *PLATFORMS, *(_requirements(lock) for lock in locks))


def ensure_wheelhouse(locks: Sequence[Path], log: Callable[[str], None]) -> Path:
    """The wheelhouse directory for ``locks``, downloading it first if it is not cached.

    Raises ImageBuildError with pip's last output when a download fails."""
    root = cache_root() / "wheelhouse"
    final = root / wheelhouse_key(locks)
    if (final / _COMPLETE).is_file():
        return final
    root.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix=".download-", dir=root))
    try:
        log(f"[images] downloading the wheels of {', '.join(lock.name for lock in locks)} for CPython {PYTHON_VERSION}")
        done = subprocess.run(
            download_argv(locks, staged),
            capture_output=True,
            text=True,
            timeout=_TIMEOUT_SECONDS,
            check=False,
        )
        if done.returncode != 0:
            raise ImageBuildError(
                f"pip download of the image's wheels failed (exit {done.returncode}):\n{done.stderr[-3000:]}"
            )
        (staged / _COMPLETE).write_text("", encoding="utf-8")
        try:
            os.replace(staged, final)
        except OSError:
            if not (final / _COMPLETE).is_file():
                raise
        return final
    finally:
        shutil.rmtree(staged, ignore_errors=True)
