"""otel-injector's own image: built by BuildKit from the Dockerfile, run by runc as the chart runs it.

The real tests build (or reuse) the image with :func:`ensure_injector_image`, unpack it
and start it under Debian's runc with a read-only root filesystem as uid 65532; they need
root, runc and the cached buildkitd, and fail (never skip) without them. The cache-key
tests at the top are pure.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import webhook
from bench.localcluster.images import Image
from bench.localcluster.images.injector import (
    CONTEXT_FILES,
    REPO_ROOT,
    context_files,
    ensure_injector_image,
    injector_image_name,
    injector_recipe,
)
from bench.localcluster.images.runcrun import Mount, RunningContainer, run_to_completion, running_container
from bench.localcluster.images.unpack import Unpacked, unpack_docker_archive
from tests.bench.images.support import read_archive

# --- the cache key (pure) -------------------------------------------------------------------


def _copy_context(dest: Path) -> Path:
    for rel in context_files(REPO_ROOT):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / rel, target)
    return dest


def test_context_is_what_dockerignore_lets_through() -> None:
    allowed = [
        line.removeprefix("!").rstrip("/")
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    ]
    files = context_files(REPO_ROOT)
    assert sorted(a for a in allowed if a != "webhook") == sorted(f for f in CONTEXT_FILES if f != ".dockerignore")
    assert "webhook/__init__.py" in files
    assert not [f for f in files if "__pycache__" in f or f.endswith(".pyc")]
    assert not [f for f in files if not (f in CONTEXT_FILES or f.startswith("webhook/"))]


def test_cache_key_follows_every_input(tmp_path: Path) -> None:
    repo = _copy_context(tmp_path / "repo")
    bases = ["sha256:aaa", "sha256:bbb"]
    key = injector_recipe(repo, context_files(repo), bases)
    assert injector_recipe(repo, context_files(repo), bases) == key

    # Byte code and caches are not inputs.
    cache = repo / "webhook" / "__pycache__"
    cache.mkdir(exist_ok=True)
    (cache / "x.cpython-311.pyc").write_bytes(b"\0")
    assert injector_recipe(repo, context_files(repo), bases) == key

    assert injector_recipe(repo, context_files(repo), ["sha256:aaa", "sha256:ccc"]) != key
    for rel in (
        "webhook/core/injection.py",
        "requirements.lock",
        "Dockerfile",
        "deploy/docker/build-requirements.lock",
    ):
        path = repo / rel
        original = path.read_bytes()
        path.write_bytes(original + b"\n# one more line\n")
        assert injector_recipe(repo, context_files(repo), bases) != key, rel
        path.write_bytes(original)
    assert injector_recipe(repo, context_files(repo), bases) == key

    (repo / "webhook" / "new_module.py").write_text("X = 1\n")
    assert injector_recipe(repo, context_files(repo), bases) != key


def test_image_name_is_the_package_version() -> None:
    assert injector_image_name() == f"localhost/otel-injector:{webhook.__version__}"


# --- the real image --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def image() -> Image:
    started = time.monotonic()
    built = ensure_injector_image()
    print(f"injector image: {built.name}, {built.size / 1e6:.1f} MB archive, {time.monotonic() - started:.1f}s")
    return built


@pytest.fixture(scope="module")
def unpacked(image: Image, tmp_path_factory: pytest.TempPathFactory) -> Unpacked:
    return unpack_docker_archive(image.archive, tmp_path_factory.mktemp("injector") / "rootfs")


def test_built_by_buildkit_from_the_dockerfile(image: Image) -> None:
    view = read_archive(image.archive)
    assert view.manifest[0]["RepoTags"] == [image.name]
    assert image.image_id == f"sha256:{Path(view.config_name).name.removesuffix('.json')}"
    config = view.config["config"]
    assert config["Entrypoint"] == ["otel-injector"]
    assert config["Cmd"][0] == "serve"
    assert config["User"] == "65532:65532"
    assert config["Labels"]["org.opencontainers.image.title"] == "otel-injector"
    assert config["Labels"]["org.opencontainers.image.version"] == webhook.__version__
    history = [entry.get("comment", "") + entry.get("created_by", "") for entry in view.config["history"]]
    assert any("buildkit.dockerfile" in entry for entry in history), history
    # The base layer is the bench's Debian python3 image, named for what it is.
    assert "python3=" in config["Labels"]["io.otel-injector.bench.debian-packages"]


def test_warm_call_builds_nothing(image: Image) -> None:
    started = time.monotonic()
    again = ensure_injector_image()
    assert again.cached
    assert again.archive == image.archive
    print(f"warm ensure_injector_image: {time.monotonic() - started:.2f}s")


def test_holds_no_build_tools(unpacked: Unpacked) -> None:
    root = unpacked.rootfs
    found = [
        str(path.relative_to(root))
        for pattern in (
            "usr/bin/pip*",
            "usr/lib/python3*/ensurepip",
            "usr/lib/python3/dist-packages/pip",
            "usr/share/python-wheels",
            "opt/otel-injector/lib/python3*/site-packages/pip",
            "opt/otel-injector/lib/python3*/site-packages/setuptools",
            "opt/build",
            "usr/bin/gcc*",
            "usr/bin/cc",
            "usr/bin/ld",
            "usr/bin/make",
        )
        for path in root.glob(pattern)
    ]
    assert found == []
    lists = root / "var/lib/apt/lists"
    # apt's own empty placeholders (lock, partial/) only: no package lists.
    assert [p for p in lists.rglob("*") if p.name not in {"partial", "lock"}] == []
    assert not list((root / "var/cache/apt").glob("**/*.deb"))
    assert (root / "usr/bin/python3").exists()
    print(f"injector image unpacked: {unpacked.unpacked_bytes / 1e6:.1f} MB in {unpacked.layers} layers")


def test_version_runs_read_only_as_65532(image: Image, tmp_path: Path) -> None:
    done = run_to_completion(image.archive, tmp_path, ["--version"])
    assert done.returncode == 0, done.output
    assert done.output.strip() == f"otel-injector {webhook.__version__}"


def test_root_filesystem_is_read_only_and_user_is_65532(image: Image, tmp_path: Path) -> None:
    probe = "import os; print(os.getuid(), os.getgid()); open('/opt/otel-injector/x', 'w')"
    done = run_to_completion(image.archive, tmp_path, ["-c", probe], entrypoint=["python3"])
    assert done.returncode != 0
    assert done.output.startswith("65532 65532"), done.output
    assert "Read-only file system" in done.output, done.output


@pytest.fixture
def certs(tmp_path: Path) -> Path:
    out = tmp_path / "certs"
    done = subprocess.run(
        [sys.executable, "-m", "webhook", "certs", "--out", str(out), "--dns-name", "localhost", "--ip", "127.0.0.1"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    # The container runs as 65532; the chart's Secret volume is readable to it, so is this.
    out.chmod(0o755)
    for path in out.iterdir():
        path.chmod(0o644)
    return out


@pytest.fixture
def serving(image: Image, certs: Path, tmp_path: Path) -> Iterator[RunningContainer]:
    """The image's own CMD (serve on 8443), certificates where the chart mounts them."""
    mounts = [Mount(certs, "/var/run/otel-injector/certs")]
    with running_container(image.archive, tmp_path / "box", mounts=mounts) as box:
        yield box


def _probe_code(ca: Path, path: str) -> str:
    # Runs inside the container's network namespace; gives up after 30 s (an exited
    # container is noticed there as a refused connection, and its output is printed).
    return (
        "import ssl, sys, time, urllib.request\n"
        f"ctx = ssl.create_default_context(cafile={str(ca)!r})\n"
        "deadline = time.monotonic() + 30\n"
        "while True:\n"
        "    try:\n"
        f"        body = urllib.request.urlopen('https://127.0.0.1:8443{path}', context=ctx, timeout=2).read()\n"
        "        print(body.decode()); break\n"
        "    except OSError as exc:\n"
        "        if time.monotonic() > deadline: sys.exit(f'no answer: {exc}')\n"
        "        time.sleep(0.2)\n"
    )


def test_serve_answers_healthz_in_a_read_only_container(serving: RunningContainer, certs: Path) -> None:
    box = serving
    started = time.monotonic()
    done = box.in_netns([sys.executable, "-c", _probe_code(certs / "ca.crt", "/healthz")], timeout=90)
    assert done.returncode == 0, f"{done.stderr}\n--- container output ---\n{box.output()[-3000:]}"
    print(f"injector in runc: /healthz answered {done.stdout.strip()!r} {time.monotonic() - started:.1f}s after start")
    status = Path(f"/proc/{box.pid}/status").read_text()
    uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
    assert uid_line.split()[1:] == ["65532"] * 4


def test_changed_source_rebuilds_with_the_build_cache(image: Image, tmp_path: Path) -> None:
    repo = _copy_context(tmp_path / "repo")
    target = repo / "webhook" / "__init__.py"
    # Unique, so BuildKit cannot have the changed step cached from an earlier run.
    target.write_text(target.read_text() + f"\n# a one-line change {time.time_ns()}\n")
    started = time.monotonic()
    changed = ensure_injector_image(repo=repo)
    try:
        assert not changed.cached
        assert changed.name == image.name
        assert changed.image_id != image.image_id
        print(f"injector image rebuilt after a one-line change: {changed.build_seconds:.1f}s (warm BuildKit cache)")
        assert time.monotonic() - started < 600
    finally:
        # The next run must rebuild again rather than find this archive.
        changed.archive.unlink(missing_ok=True)
        changed.archive.with_suffix(".json").unlink(missing_ok=True)
