"""otel-injector's own image, built by BuildKit from the top-level Dockerfile.

    from bench.localcluster.images.injector import ensure_injector_image
    image = ensure_injector_image()      # bench.localcluster.images.Image
    image.name     # localhost/otel-injector:<webhook.__version__>
    image.archive  # docker archive for `ctr -n k8s.io images import`

What goes in, and nothing else:

- the build context: exactly the files the Dockerfile copies (the list below, the same
  as .dockerignore lets through), staged into a scratch directory;
- the two bases, from Debian's packages with mmdebstrap (base.py), each under its own
  local name: ``...-debian:bookworm-slim-python3`` for the run-time stage and
  ``...-slim-python3-pip`` for the build stage; the Dockerfile takes them as build
  args PYTHON_IMAGE and PIP_IMAGE, and BuildKit reads them as named contexts from OCI
  layouts (ocilayout.py). On a machine with a registry the same Dockerfile builds those
  two stages itself from ``debian:bookworm-slim`` with apt-get;
- the wheels of requirements.lock and build-requirements.lock, downloaded on the host
  (wheelhouse.py) and given as the named context ``wheels`` with ``PIP_NO_INDEX=1``.

buildkitd runs for the build only, in namespaces of its own (buildkitd.py). The tarball
is cached by :func:`injector_recipe`, a hash of every input above (the context files'
paths and bytes, the base images' IDs, the lock files, BuildKit's version and this
module); a warm call hashes the inputs and builds nothing. A changed input rebuilds with
buildkitd's own build cache (kept under the bench cache), so only the layers after the
changed file are redone.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from bench.localcluster.binaries import BUILDKIT_VERSION, IMAGE_BUILD_BINARY_NAMES, cache_root, ensure_binaries
from bench.localcluster.images import Image, build_debian_base
from bench.localcluster.images.buildkitd import running_buildkitd
from bench.localcluster.images.cache import Built, ImageBuildError, cached_build, file_digest, recipe_hash
from bench.localcluster.images.ocilayout import oci_layout_of
from bench.localcluster.images.wheelhouse import ensure_wheelhouse

__all__ = [
    "CONTEXT_FILES",
    "INJECTOR_REPOSITORY",
    "REPO_ROOT",
    "context_files",
    "ensure_injector_image",
    "injector_image_name",
    "injector_recipe",
]

REPO_ROOT = Path(__file__).resolve().parents[3]
#: The repository of the image's name; the tag is the package version.
INJECTOR_REPOSITORY = "localhost/otel-injector"
#: Files of the build context besides webhook/ (the .dockerignore allow-list).
CONTEXT_FILES = (
    "Dockerfile",
    ".dockerignore",
    "pyproject.toml",
    "requirements.lock",
    "deploy/docker/build-requirements.lock",
)
LOCK_FILES = ("requirements.lock", "deploy/docker/build-requirements.lock")
#: Debian packages of the two bases (see the module docstring).
RUNTIME_BASE_PACKAGES = ("python3",)
BUILD_BASE_PACKAGES = ("python3-pip",)
_BUILD_TIMEOUT_SECONDS = 1800
_VERSION = re.compile(r'^__version__ = "([^"]+)"$', re.MULTILINE)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def injector_image_name(repo: Path = REPO_ROOT) -> str:
    """``localhost/otel-injector:<version>``, the version read from webhook/__init__.py."""
    match = _VERSION.search((repo / "webhook" / "__init__.py").read_text(encoding="utf-8"))
    if match is None:
        raise ImageBuildError(f"no __version__ in {repo / 'webhook' / '__init__.py'}")
    return f"{INJECTOR_REPOSITORY}:{match.group(1)}"


def context_files(repo: Path = REPO_ROOT) -> list[str]:
    """Relative paths of the build context: CONTEXT_FILES and webhook/ without byte code, sorted."""
    webhook = [
        path.relative_to(repo).as_posix()
        for path in (repo / "webhook").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo", ".pyd")
    ]
    return sorted([*CONTEXT_FILES, *webhook])


def injector_recipe(repo: Path, files: Iterable[str], base_ids: Sequence[str]) -> str:
    """Cache key of the image: each context file's path and content, the bases' image IDs,
    BuildKit's version and the code of this module and of buildkitd.py."""
    here = Path(__file__).resolve().parent
    parts: list[str | bytes] = ["injector", BUILDKIT_VERSION, *base_ids]
    for rel in files:
        parts += [rel, file_digest(repo / rel)]
    parts += [(here / "injector.py").read_bytes(), (here / "buildkitd.py").read_bytes()]
    return recipe_hash(*parts)


def _stage_context(repo: Path, files: Iterable[str], dest: Path) -> None:
    for rel in files:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(repo / rel, target)


def buildctl_build_args(
    *,
    context: Path,
    wheelhouse: Path,
    runtime_base: tuple[str, Path, str],
    build_base: tuple[str, Path, str],
    name: str,
    dest: Path,
    metadata: Path,
) -> list[str]:
    """Arguments of ``buildctl build``; each base is (its image name, OCI layout dir, manifest digest)."""
    args = ["build", "--progress", "plain", "--frontend", "dockerfile.v0"]
    args += ["--local", f"context={context}", "--local", f"dockerfile={context}"]
    args += ["--local", f"wheelhouse={wheelhouse}", "--opt", "context:wheels=local:wheelhouse"]
    args += ["--opt", "build-arg:PIP_NO_INDEX=1"]
    for arg, store, (image, layout, digest) in (
        ("PYTHON_IMAGE", "python", runtime_base),
        ("PIP_IMAGE", "pip", build_base),
    ):
        args += ["--oci-layout", f"{store}={layout}"]
        args += ["--opt", f"build-arg:{arg}={image}", "--opt", f"context:{image}=oci-layout://{store}@{digest}"]
    # force-compression: the bases' layers arrive uncompressed (OCI layouts of our own
    # archives) and BuildKit would otherwise export them as they came, 130 MB for python3.
    output = f"type=docker,name={name},dest={dest},compression=gzip,force-compression=true"
    args += ["--output", output, "--metadata-file", str(metadata)]
    return args


def _build(
    *,
    repo: Path,
    files: Sequence[str],
    name: str,
    bases: tuple[Image, Image],
    state_dir: Path | None,
    log: Callable[[str], None],
) -> Callable[[Path, Path], str]:
    def build(workdir: Path, archive: Path) -> str:
        binaries = ensure_binaries(IMAGE_BUILD_BINARY_NAMES, log=log)
        wheelhouse = ensure_wheelhouse([repo / lock for lock in LOCK_FILES], log)
        layouts = [oci_layout_of(base.archive) for base in bases]
        context = workdir / "context"
        _stage_context(repo, files, context)
        metadata = workdir / "metadata.json"
        args = buildctl_build_args(
            context=context,
            wheelhouse=wheelhouse,
            runtime_base=(layouts[0].name, layouts[0].path, layouts[0].manifest_digest),
            build_base=(layouts[1].name, layouts[1].path, layouts[1].manifest_digest),
            name=name,
            dest=archive,
            metadata=metadata,
        )
        # No state dir: a fresh one in the scratch directory, removed with it (a cold build).
        daemon_state = state_dir or workdir / "buildkit"
        with running_buildkitd(binaries.buildkitd, binaries.buildctl, daemon_state, log) as daemon:
            started = time.monotonic()
            build_log = workdir / "buildctl.log"
            with build_log.open("wb") as sink:
                done = subprocess.run(
                    daemon.buildctl_argv(*args),
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                    timeout=_BUILD_TIMEOUT_SECONDS,
                    check=False,
                )
            output = build_log.read_text(encoding="utf-8", errors="replace")
            # Kept for reading after a build, cold or warm.
            keep = cache_root() / "buildkit"
            keep.mkdir(parents=True, exist_ok=True)
            shutil.copy2(build_log, keep / "last-build.log")
            if done.returncode != 0:
                raise ImageBuildError(f"buildctl build failed (exit {done.returncode}):\n{output[-4000:]}")
            log(f"[images] buildctl build of {name} took {time.monotonic() - started:.1f}s")
        data = json.loads(metadata.read_text(encoding="utf-8"))
        return str(data["containerimage.config.digest"])

    return build


def ensure_injector_image(
    log: Callable[[str], None] = _stderr,
    *,
    repo: Path = REPO_ROOT,
    state_dir: Path | None = None,
    no_cache: bool = False,
) -> Image:
    """Build otel-injector's image with BuildKit from ``repo``'s Dockerfile, or reuse it.

    Returns the docker archive (``Image.archive``) of ``localhost/otel-injector:<version>``
    (``Image.name``), ready for ``ctr -n k8s.io images import``. Builds the two Debian
    bases, buildkitd/buildctl and the wheelhouse first when they are not cached. Needs
    root (namespaces, overlayfs, runc) and Debian's runc. ``state_dir`` is buildkitd's
    state (default: the bench cache's ``buildkit/``, which keeps the build cache).
    ``no_cache`` rebuilds even a cached image, with a fresh, empty buildkitd state (a cold
    build, for measuring it) and replaces the cached tarball. Raises ImageBuildError with
    the failing step's output."""
    bases = (
        build_debian_base(log, RUNTIME_BASE_PACKAGES),
        build_debian_base(log, BUILD_BASE_PACKAGES),
    )
    files = context_files(repo)
    name = injector_image_name(repo)
    recipe = injector_recipe(repo, files, [base.image_id for base in bases])
    built: Built = cached_build(
        slug="injector",
        name=name,
        recipe=recipe,
        build=_build(
            repo=repo,
            files=files,
            name=name,
            bases=bases,
            state_dir=None if no_cache else state_dir or cache_root() / "buildkit",
            log=log,
        ),
        log=log,
        rebuild=no_cache,
    )
    return Image(
        name=built.name,
        archive=built.archive,
        image_id=built.image_id,
        size=built.size,
        build_seconds=built.build_seconds,
        cached=built.cached,
    )
