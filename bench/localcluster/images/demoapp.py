"""The demo app image: demo_app/app.py under ``opentelemetry-instrument`` on Debian's Python.

Contents, in one layer:

- a bookworm rootfs of ``python3`` and its dependencies only (mmdebstrap ``extract``,
  see debian.py): Debian's CPython 3.11, no shell, no apt, no package database;
- the hash-locked PyPI packages of demo_app/requirements.lock (the OpenTelemetry SDK,
  the OTLP/HTTP exporter, the distro, the Flask and urllib instrumentations, Flask),
  installed as binary wheels by pip into /opt/demo-app/lib, nothing compiled;
- /opt/demo-app/app.py and the ``opentelemetry-instrument`` launcher, written from the
  console-script entry point that opentelemetry-instrumentation declares;
- bytecode for all of it, compiled at build time by the image's own python3 with
  unchecked-hash invalidation, so a read-only root filesystem costs no start-up time;
- a passwd entry for the unprivileged user 10001 (``app``), which the image runs as.

The app is configured only by the environment: ``OTEL_*`` from otel-injector,
``DOWNSTREAM_URL`` and ``PORT`` from the Deployment. It carries the OTLP/HTTP exporter
only, matching the ``http/protobuf`` protocol otel-injector sets (the gRPC exporter would
add grpcio, about a quarter of the image). Without any ``OTEL_*`` variable (a pod the
webhook did not inject) the SDK asks for its default gRPC exporter, logs that it has
none, and the app runs untraced: ``emit`` still exits 0. ``python -m
bench.localcluster.images`` prints the image's size.
"""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from bench.localcluster.images import archive, debian
from bench.localcluster.images.archive import File, ImageConfig, write_docker_archive, write_layer
from bench.localcluster.images.cache import ImageBuildError, recipe_hash

DEMO_APP_VERSION = "1.0"
DEMO_APP_IMAGE = f"localhost/otel-injector-demo-app:{DEMO_APP_VERSION}"
DEMO_APP_UID = 10001
DEMO_APP_PORT = 8080
#: Debian's python3 in bookworm; the lock is resolved for this CPython.
PYTHON_VERSION = "3.11"
APP_DIR = "/opt/demo-app"
LIB_DIR = f"{APP_DIR}/lib"
_PIP_TIMEOUT = 900
_COMPILE_TIMEOUT = 600


def _data(name: str) -> bytes:
    return (resources.files(__package__ or "bench.localcluster.images") / "demo_app" / name).read_bytes()


def demo_app_recipe(log: Callable[[str], None]) -> str:
    """Cache key: the app, the lock, the Debian suite and tools, and this module's code."""
    return recipe_hash(
        "demo-app",
        DEMO_APP_VERSION,
        _data("app.py"),
        _data("requirements.lock"),
        debian.SUITE,
        debian.mmdebstrap_version(log),
        Path(__file__).read_bytes(),
        Path(debian.__file__).read_bytes(),
        Path(archive.__file__).read_bytes(),
    )


def _pip_install(target: Path, lock: Path, log: Callable[[str], None]) -> None:
    argv = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-deps",
        "--require-hashes",
        "--only-binary=:all:",
        "--no-compile",
        f"--python-version={PYTHON_VERSION}",
        "--implementation=cp",
        f"--abi=cp{PYTHON_VERSION.replace('.', '')}",
        "--platform=manylinux_2_28_x86_64",
        "--platform=manylinux2014_x86_64",
        "--platform=manylinux_2_17_x86_64",
        f"--target={target}",
        "-r",
        str(lock),
    ]
    log(f"[images] pip install -r demo_app/requirements.lock into {LIB_DIR}")
    result = subprocess.run(argv, capture_output=True, text=True, timeout=_PIP_TIMEOUT, check=False)
    if result.returncode != 0:
        raise ImageBuildError(f"demo-app: pip install failed (exit {result.returncode}):\n{result.stderr[-3000:]}")
    # Scripts pip wrote point at this machine's interpreter; the image has its own launcher.
    # Their RECORD lines go too: they hash those scripts, whose bytes depend on the build
    # machine, and would make the layer differ from one build to the next.
    shutil.rmtree(target / "bin", ignore_errors=True)
    for record in sorted(target.glob("*.dist-info/RECORD")):
        lines = record.read_text(encoding="utf-8").splitlines(keepends=True)
        kept = [line for line in lines if not line.startswith("../../bin/")]
        if kept != lines:
            record.write_text("".join(kept), encoding="utf-8")


def _launcher(lib: Path) -> bytes:
    """The ``opentelemetry-instrument`` script, from the entry point the package declares."""
    for entry_points in sorted(lib.glob("opentelemetry_instrumentation-*.dist-info/entry_points.txt")):
        parser = configparser.ConfigParser()
        parser.read(entry_points, encoding="utf-8")
        target = parser.get("console_scripts", "opentelemetry-instrument", fallback="")
        module, _, func = target.strip().partition(":")
        if module and func:
            return (
                "#!/usr/bin/python3\n"
                "# The console script pip would install for opentelemetry-instrumentation's\n"
                f"# entry point opentelemetry-instrument = {module}:{func}\n"
                "import sys\n"
                f"from {module} import {func}\n"
                "if __name__ == '__main__':\n"
                f"    sys.exit({func}())\n"
            ).encode()
    raise ImageBuildError("demo-app: opentelemetry-instrumentation declares no opentelemetry-instrument entry point")


def _compile_bytecode(root: Path) -> None:
    # The image's own interpreter writes the .pyc files, so they match its magic number.
    chroot = shutil.which("chroot")
    if chroot is None:
        raise ImageBuildError("demo-app: chroot (coreutils) is not on PATH")
    result = subprocess.run(
        [
            chroot,
            str(root),
            "/usr/bin/python3",
            "-m",
            "compileall",
            "-q",
            "-j",
            "1",
            "--invalidation-mode",
            "unchecked-hash",
            f"/usr/lib/python{PYTHON_VERSION}",
            APP_DIR,
        ],
        env={"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "PYTHONHASHSEED": "0"},
        capture_output=True,
        text=True,
        timeout=_COMPILE_TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        # compileall exits 1 for files that do not compile (e.g. test fixtures written
        # for another Python); anything else is a broken rootfs.
        broken = [line for line in result.stdout.splitlines() if "Error" in line and "/test" not in line]
        if result.returncode != 1 or broken:
            raise ImageBuildError(f"demo-app: compileall failed (exit {result.returncode}):\n{result.stdout[-2000:]}")


def build_demo_app(workdir: Path, archive_path: Path, log: Callable[[str], None]) -> str:
    """Assemble the demo app rootfs in ``workdir`` and write its image to ``archive_path``."""
    rootfs = debian.make_rootfs(workdir / "rootfs", variant="extract", packages=["python3"], log=log)
    root = rootfs.path
    if not (root / f"usr/bin/python{PYTHON_VERSION}").exists():
        raise ImageBuildError(f"demo-app: the {debian.SUITE} rootfs has no python{PYTHON_VERSION}")
    lib = root / LIB_DIR.lstrip("/")
    lock = workdir / "requirements.lock"
    lock.write_bytes(_data("requirements.lock"))
    _pip_install(lib, lock, log)
    app = root / APP_DIR.lstrip("/") / "app.py"
    app.write_bytes(_data("app.py"))
    launcher = root / "usr/local/bin/opentelemetry-instrument"
    launcher.parent.mkdir(parents=True, exist_ok=True)
    launcher.write_bytes(_launcher(lib))
    launcher.chmod(0o755)
    for path in [*root.joinpath(APP_DIR.lstrip("/")).rglob("*")]:
        os.chown(path, 0, 0, follow_symlinks=False)
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)
    _compile_bytecode(root)
    users = (
        "root:x:0:0:root:/root:/usr/sbin/nologin\n"
        f"app:x:{DEMO_APP_UID}:{DEMO_APP_UID}:demo app:/nonexistent:/usr/sbin/nologin\n"
    )
    groups = f"root:x:0:\napp:x:{DEMO_APP_UID}:\n"
    layer = write_layer(
        workdir / "layer.tar",
        [File("etc/passwd", users.encode()), File("etc/group", groups.encode())],
        tree=root,
    )
    python_packages = [
        line.split(" ", 1)[0] for line in _data("requirements.lock").decode().splitlines() if line[:1].isalnum()
    ]
    config = ImageConfig(
        entrypoint=["/usr/local/bin/opentelemetry-instrument", "/usr/bin/python3", f"{APP_DIR}/app.py"],
        cmd=["serve"],
        env=[
            "PATH=/usr/local/bin:/usr/bin:/bin",
            f"PYTHONPATH={LIB_DIR}",
            "PYTHONDONTWRITEBYTECODE=1",
            "PYTHONUNBUFFERED=1",
        ],
        user=f"{DEMO_APP_UID}:{DEMO_APP_UID}",
        working_dir=APP_DIR,
        exposed_ports=[f"{DEMO_APP_PORT}/tcp"],
        labels={
            "org.opencontainers.image.title": "otel-injector demo app",
            "org.opencontainers.image.description": "HTTP service and one-span job instrumented with the "
            "OpenTelemetry SDK, configured only by OTEL_* variables (bench/localcluster/images/demo_app)",
            "org.opencontainers.image.version": DEMO_APP_VERSION,
            "org.opencontainers.image.base.name": f"debian {debian.SUITE} (mmdebstrap extract: python3)",
            "io.otel-injector.bench.debian-packages": " ".join(rootfs.packages),
            "io.otel-injector.bench.python-packages": " ".join(python_packages),
        },
    )
    return write_docker_archive(
        archive_path,
        name=DEMO_APP_IMAGE,
        layers=[layer],
        config=config,
        history="bench/localcluster/images/demoapp.py: mmdebstrap python3 + pip -r demo_app/requirements.lock",
    )
