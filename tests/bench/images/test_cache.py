"""The image cache: reuse by recipe, atomic results, errors that name the image, the lock."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bench.localcluster.images import cache
from bench.localcluster.images.cache import ImageBuildError, cached_build, recipe_hash


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OTEL_INJECTOR_CACHE_DIR", str(tmp_path))
    return tmp_path / "images"


def _writer(calls: list[Path], content: bytes = b"archive") -> Callable[[Path, Path], str]:
    def build(workdir: Path, archive: Path) -> str:
        calls.append(workdir)
        archive.write_bytes(content)
        return "sha256:abc"

    return build


def test_builds_once_then_reuses(cache_dir: Path) -> None:
    calls: list[Path] = []
    first = cached_build(slug="x", name="localhost/x:1", recipe="r1", build=_writer(calls), log=lambda _: None)
    again = cached_build(slug="x", name="localhost/x:1", recipe="r1", build=_writer(calls), log=lambda _: None)
    assert len(calls) == 1
    assert (first.cached, again.cached) == (False, True)
    assert first.archive == again.archive == cache_dir / "x-r1.tar"
    assert again.image_id == "sha256:abc"
    assert again.size == len(b"archive")
    assert not calls[0].exists(), "scratch space is removed"


def test_a_new_recipe_builds_a_new_tarball(cache_dir: Path) -> None:
    calls: list[Path] = []
    cached_build(slug="x", name="localhost/x:1", recipe="r1", build=_writer(calls), log=lambda _: None)
    cached_build(slug="x", name="localhost/x:1", recipe="r2", build=_writer(calls), log=lambda _: None)
    assert len(calls) == 2
    assert (cache_dir / "x-r1.tar").exists()
    assert (cache_dir / "x-r2.tar").exists()


def test_a_truncated_tarball_is_rebuilt(cache_dir: Path) -> None:
    calls: list[Path] = []
    cached_build(slug="x", name="localhost/x:1", recipe="r1", build=_writer(calls), log=lambda _: None)
    (cache_dir / "x-r1.tar").write_bytes(b"arch")
    rebuilt = cached_build(slug="x", name="localhost/x:1", recipe="r1", build=_writer(calls), log=lambda _: None)
    assert len(calls) == 2
    assert not rebuilt.cached


def test_a_failed_build_leaves_nothing_and_names_the_image(cache_dir: Path) -> None:
    def broken(workdir: Path, archive: Path) -> str:
        archive.write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(ImageBuildError, match=r"localhost/x:1: build failed: disk full"):
        cached_build(slug="x", name="localhost/x:1", recipe="r1", build=broken, log=lambda _: None)
    assert not list(cache_dir.glob("x-*"))
    assert not list((cache_dir / "work").iterdir())


def test_concurrent_callers_build_once(cache_dir: Path) -> None:
    calls: list[Path] = []

    def slow(workdir: Path, archive: Path) -> str:
        calls.append(workdir)
        time.sleep(0.5)
        archive.write_bytes(b"archive")
        return "sha256:abc"

    results = []
    threads = [
        threading.Thread(
            target=lambda: results.append(
                cached_build(slug="x", name="localhost/x:1", recipe="r1", build=slow, log=lambda _: None)
            )
        )
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(calls) == 1
    assert sorted(r.cached for r in results) == [False, True, True]


def test_the_lock_wait_is_bounded(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache, "LOCK_TIMEOUT_SECONDS", 0.3)
    holding = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with cache.build_lock(cache_dir, lambda _: None):
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait(10)
    try:
        with pytest.raises(ImageBuildError, match="held"), cache.build_lock(cache_dir, lambda _: None):
            pass
    finally:
        release.set()
        holder.join(10)


def test_recipe_hash_depends_on_every_part() -> None:
    assert recipe_hash("a", b"b") == recipe_hash("a", b"b")
    assert recipe_hash("a", "b") != recipe_hash("ab")
    assert len(recipe_hash("a")) == 16


def test_scratch_left_by_a_killed_build_is_removed(cache_dir: Path) -> None:
    leftover = cache_dir / "work" / "demo-app-killed"
    leftover.mkdir(parents=True)
    (leftover / "rootfs.tar").write_bytes(b"x" * 100)
    cached_build(slug="x", name="localhost/x:1", recipe="r1", build=_writer([]), log=lambda _: None)
    assert not leftover.exists()
