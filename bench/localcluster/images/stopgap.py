"""A stop-gap image of otel-injector, ``localhost/otel-injector-stopgap:dev``, for the chart
install while the image built from the top-level ``Dockerfile`` (BuildKit) is not there.

It is *not* the Dockerfile's image and is named so: the chart is installed with
``webhook.image.repository=localhost/otel-injector-stopgap``. Contents, in one layer:

- a bookworm rootfs of ``python3`` and its dependencies only (mmdebstrap ``extract``, as
  the demo app): Debian's CPython 3.11, no shell, no apt, no pip, no compiler;
- the runtime dependencies from ``requirements.lock`` (hash-checked binary wheels, the
  same lock the Dockerfile installs) and the project itself, installed by this
  machine's pip for CPython 3.11 into /opt/otel-injector/lib;
- an ``otel-injector`` launcher on PATH (the chart's ``command``), written from the
  console-script entry point in pyproject.toml;
- bytecode compiled by the image's own python3 (a read-only root filesystem costs no
  start-up time), and a passwd entry for uid 65532, which the chart runs as.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from bench.localcluster.images import archive, debian, demoapp
from bench.localcluster.images.archive import File, ImageConfig, write_docker_archive, write_layer
from bench.localcluster.images.cache import Built, ImageBuildError, cached_build, recipe_hash

STOPGAP_REPOSITORY = "localhost/otel-injector-stopgap"
STOPGAP_TAG = "dev"
STOPGAP_IMAGE = f"{STOPGAP_REPOSITORY}:{STOPGAP_TAG}"
UID = 65532
APP_DIR = "/opt/otel-injector"
LIB_DIR = f"{APP_DIR}/lib"
REPO_ROOT = Path(__file__).resolve().parents[3]
_PIP_TIMEOUT = 900


def _sources() -> list[Path]:
    return sorted(p for p in (REPO_ROOT / "webhook").rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def stopgap_recipe(log: Callable[[str], None]) -> str:
    """Cache key: the package sources, pyproject, the lock, the Debian tools, this code."""
    parts: list[str | bytes] = ["otel-injector-stopgap", STOPGAP_IMAGE, debian.SUITE, debian.mmdebstrap_version(log)]
    for path in [REPO_ROOT / "pyproject.toml", REPO_ROOT / "requirements.lock", *_sources()]:
        parts += [str(path.relative_to(REPO_ROOT)), path.read_bytes()]
    parts += [Path(__file__).read_bytes(), Path(debian.__file__).read_bytes(), Path(archive.__file__).read_bytes()]
    return recipe_hash(*parts)


def _pip(target: Path, *args: str, log: Callable[[str], None]) -> None:
    argv = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-deps",
        "--no-compile",
        f"--python-version={demoapp.PYTHON_VERSION}",
        "--implementation=cp",
        f"--abi=cp{demoapp.PYTHON_VERSION.replace('.', '')}",
        "--platform=manylinux_2_28_x86_64",
        "--platform=manylinux2014_x86_64",
        "--platform=manylinux_2_17_x86_64",
        "--only-binary=:all:",
        f"--target={target}",
        *args,
    ]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=_PIP_TIMEOUT, check=False)
    if result.returncode != 0:
        raise ImageBuildError(f"stopgap: pip install {' '.join(args)} failed:\n{result.stderr[-3000:]}")


def _wheel(workdir: Path, log: Callable[[str], None]) -> Path:
    out = workdir / "wheel"
    argv = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out), str(REPO_ROOT)]
    log("[images] stopgap: pip wheel of the project")
    result = subprocess.run(argv, capture_output=True, text=True, timeout=_PIP_TIMEOUT, check=False)
    wheels = sorted(out.glob("otel_injector-*.whl"))
    if result.returncode != 0 or not wheels:
        raise ImageBuildError(f"stopgap: building the wheel failed:\n{result.stderr[-3000:]}")
    return wheels[0]


LAUNCHER = b"""#!/usr/bin/python3
# The console script pip would install for pyproject's otel-injector = webhook.cli.main:main
import sys
from webhook.cli.main import main
if __name__ == '__main__':
    sys.exit(main())
"""


def build_stopgap(workdir: Path, archive_path: Path, log: Callable[[str], None]) -> str:
    """Assemble the rootfs in ``workdir`` and write the image to ``archive_path``."""
    rootfs = debian.make_rootfs(workdir / "rootfs", variant="extract", packages=["python3"], log=log)
    root = rootfs.path
    lib = root / LIB_DIR.lstrip("/")
    log("[images] stopgap: pip install -r requirements.lock and the project's wheel")
    _pip(lib, "--require-hashes", "-r", str(REPO_ROOT / "requirements.lock"), log=log)
    _pip(lib, str(_wheel(workdir, log)), log=log)
    # Console scripts point at this machine's interpreter; the image has its own launcher.
    for script in (lib / "bin").glob("*") if (lib / "bin").is_dir() else []:
        script.unlink()
    launcher = root / "usr/local/bin/otel-injector"
    launcher.parent.mkdir(parents=True, exist_ok=True)
    launcher.write_bytes(LAUNCHER)
    launcher.chmod(0o755)
    for path in root.joinpath(APP_DIR.lstrip("/")).rglob("*"):
        os.chown(path, 0, 0, follow_symlinks=False)
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)
    demoapp._compile_bytecode(root)
    users = f"root:x:0:0:root:/root:/usr/sbin/nologin\notel-injector:x:{UID}:{UID}::/nonexistent:/usr/sbin/nologin\n"
    groups = f"root:x:0:\notel-injector:x:{UID}:\n"
    layer = write_layer(
        workdir / "layer.tar",
        [File("etc/passwd", users.encode()), File("etc/group", groups.encode())],
        tree=root,
    )
    config = ImageConfig(
        entrypoint=["otel-injector"],
        cmd=["serve", "--port", "8443"],
        env=[
            "PATH=/usr/local/bin:/usr/bin:/bin",
            f"PYTHONPATH={LIB_DIR}",
            "PYTHONDONTWRITEBYTECODE=1",
            "PYTHONUNBUFFERED=1",
        ],
        user=f"{UID}:{UID}",
        working_dir="/",
        exposed_ports=["8443/tcp"],
        labels={
            "org.opencontainers.image.title": "otel-injector (stop-gap bench image, not the Dockerfile's)",
            "org.opencontainers.image.description": "otel-injector's wheel and requirements.lock on Debian's "
            "python3, assembled by bench/localcluster/images/stopgap.py until the BuildKit image exists",
            "org.opencontainers.image.base.name": f"debian {debian.SUITE} (mmdebstrap extract: python3)",
            "io.otel-injector.bench.debian-packages": " ".join(rootfs.packages),
        },
    )
    return write_docker_archive(
        archive_path,
        name=STOPGAP_IMAGE,
        layers=[layer],
        config=config,
        history="bench/localcluster/images/stopgap.py: mmdebstrap python3 + requirements.lock + the wheel",
    )


def build_stopgap_image(log: Callable[[str], None]) -> Built:
    """The stop-gap image, built or taken from the image cache."""
    return cached_build(
        slug="otel-injector-stopgap",
        name=STOPGAP_IMAGE,
        recipe=stopgap_recipe(log),
        build=lambda workdir, archive_path: build_stopgap(workdir, archive_path, log),
        log=log,
    )
