"""The image cache: one tarball per recipe, written atomically, built under a file lock.

    $OTEL_INJECTOR_CACHE_DIR (default ~/.cache/otel-injector)/images/
        <slug>-<recipe>.tar     docker-archive tarball
        <slug>-<recipe>.json    what was built: name, image ID, size, build seconds
        build.lock              serialises image builds across processes
        work/                   scratch space of builds in progress

The recipe is a hash of everything that decides an image's content (source files,
pinned versions, the digest of a binary it copies, the builder's revision), so a
changed input builds a new tarball and an unchanged one is reused. A tarball and its
metadata are moved into place with :func:`os.replace` after they are complete; a reader
never sees a half-written file, and a crashed build leaves only scratch files behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.localcluster.binaries import cache_root

#: Bumped when this package changes how any image is assembled, to rebuild them all.
BUILDER_REVISION = "1"
#: How long a build waits for another process's build before it gives up.
LOCK_TIMEOUT_SECONDS = 1800.0


class ImageBuildError(RuntimeError):
    """An image could not be built; the message says which step failed and why."""


@dataclass(frozen=True)
class Built:
    """A finished tarball in the cache and what its metadata records."""

    name: str
    archive: Path
    image_id: str
    size: int
    build_seconds: float
    cached: bool


def images_dir() -> Path:
    """The directory that holds the image tarballs."""
    return cache_root() / "images"


def recipe_hash(*parts: str | bytes) -> str:
    """A short stable hash of the inputs of one image."""
    digest = hashlib.sha256()
    for part in (BUILDER_REVISION, *parts):
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def file_digest(path: Path) -> str:
    """sha256 of a file's content, for recipes that copy a file."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def build_lock(directory: Path, log: Callable[[str], None]) -> Iterator[None]:
    """Hold the exclusive image-build lock of ``directory``, waiting at most LOCK_TIMEOUT_SECONDS."""
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / "build.lock").open("a+") as handle:
        deadline = time.monotonic() + LOCK_TIMEOUT_SECONDS
        announced = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ImageBuildError(
                        f"another process held {directory / 'build.lock'} for {LOCK_TIMEOUT_SECONDS:.0f}s"
                    ) from None
                if not announced:
                    log(f"[images] waiting for another process's image build ({directory / 'build.lock'})")
                    announced = True
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read_meta(meta: Path, archive: Path) -> Built | None:
    try:
        data = json.loads(meta.read_text(encoding="utf-8"))
        if not archive.is_file() or archive.stat().st_size != data["size"]:
            return None
        return Built(
            name=str(data["name"]),
            archive=archive,
            image_id=str(data["image_id"]),
            size=int(data["size"]),
            build_seconds=float(data["build_seconds"]),
            cached=True,
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def cached_build(
    *,
    slug: str,
    name: str,
    recipe: str,
    build: Callable[[Path, Path], str],
    log: Callable[[str], None],
    rebuild: bool = False,
) -> Built:
    """Return the cached tarball of ``slug`` for ``recipe``, building it first if needed.

    ``rebuild`` builds even when a tarball is cached, and replaces it (for measuring a
    cold build).

    ``build(workdir, archive)`` writes the docker archive to ``archive`` (scratch files
    go in ``workdir``, removed afterwards) and returns the image ID. Exceptions other
    than ImageBuildError are wrapped in one that names the image.
    """
    directory = images_dir()
    archive = directory / f"{slug}-{recipe}.tar"
    meta = directory / f"{slug}-{recipe}.json"
    found = None if rebuild else _read_meta(meta, archive)
    if found is not None:
        return found
    with build_lock(directory, log):
        found = None if rebuild else _read_meta(meta, archive)  # built by another process while this one waited
        if found is not None:
            return found
        scratch = directory / "work"
        scratch.mkdir(parents=True, exist_ok=True)
        # Every build holds the lock, so whatever is in work/ now was left by a build
        # that was killed: remove it.
        for stale in scratch.iterdir():
            shutil.rmtree(stale, ignore_errors=True)
        workdir = Path(tempfile.mkdtemp(prefix=f"{slug}-", dir=scratch))
        started = time.monotonic()
        try:
            log(f"[images] building {name}")
            staged = workdir / "image.tar"
            try:
                image_id = build(workdir, staged)
            except ImageBuildError:
                raise
            except Exception as exc:
                raise ImageBuildError(f"{name}: build failed: {exc}") from exc
            seconds = round(time.monotonic() - started, 2)
            size = staged.stat().st_size
            os.replace(staged, archive)
            record = {"name": name, "image_id": image_id, "size": size, "build_seconds": seconds, "recipe": recipe}
            staged_meta = workdir / "meta.json"
            staged_meta.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
            os.replace(staged_meta, meta)
            log(f"[images] built {name}: {size / 1e6:.1f} MB in {seconds:.1f}s")
            return Built(name=name, archive=archive, image_id=image_id, size=size, build_seconds=seconds, cached=False)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
