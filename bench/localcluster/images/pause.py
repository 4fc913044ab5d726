"""The pause image: our own tiny sandbox process (``pause/main.go``), static, in one layer.

Every pod sandbox starts one pause process that holds the pod's namespaces, exits on
SIGINT/SIGTERM and reaps orphans (see pause/main.go). containerd's CRI
``pinned_images.sandbox`` names this image. It is built here with the standard Go
toolchain from source in this repository and published under a local name, so nothing
passes it off as the Kubernetes project's ``registry.k8s.io/pause``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from importlib import resources
from pathlib import Path

from bench.localcluster.images.archive import File, ImageConfig, write_docker_archive, write_layer
from bench.localcluster.images.cache import ImageBuildError, recipe_hash

#: Version of our pause program; bump it when pause/main.go changes.
PAUSE_VERSION = "1.0"
#: The reference the image registers.
PAUSE_IMAGE = f"localhost/otel-injector-pause:{PAUSE_VERSION}"
#: The same unprivileged uid/gid the upstream pause image uses.
PAUSE_USER = "65535:65535"
_GO_BUILD_TIMEOUT = 600


def _source(name: str) -> bytes:
    return (resources.files(__package__ or "bench.localcluster.images") / "pause" / name).read_bytes()


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise ImageBuildError("pause: the `go` command is not on PATH; install Go 1.22 or later")
    return go


def _go_version(go: str) -> str:
    result = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, timeout=60, check=False)
    return result.stdout.strip()


def pause_recipe() -> str:
    """The cache key of the pause image: its sources, the Go release and the version."""
    go = _go()
    return recipe_hash("pause", PAUSE_VERSION, _source("main.go"), _source("go.mod"), _go_version(go))


def build_pause(workdir: Path, archive: Path) -> str:
    """Compile pause/main.go into a static binary and write the image to ``archive``."""
    go = _go()
    src = workdir / "src"
    src.mkdir()
    for name in ("main.go", "go.mod"):
        (src / name).write_bytes(_source(name))
    env = dict(os.environ, CGO_ENABLED="0", GOWORK="off", GOFLAGS="-trimpath -buildvcs=false", GOOS="linux")
    env.setdefault("GOTOOLCHAIN", "local")
    env["GOARCH"] = "amd64"
    binary = workdir / "pause"
    # -buildid= keeps the binary, and so the layer digest, identical across builds.
    result = subprocess.run(
        [go, "build", "-ldflags", "-s -w -buildid=", "-o", str(binary), "."],
        cwd=src,
        env=env,
        capture_output=True,
        text=True,
        timeout=_GO_BUILD_TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        raise ImageBuildError(f"pause: go build failed (exit {result.returncode}):\n{result.stderr[-3000:]}")
    layer = write_layer(workdir / "layer.tar", [File("pause", binary.read_bytes(), mode=0o755)])
    config = ImageConfig(
        entrypoint=["/pause"],
        user=PAUSE_USER,
        labels={
            "org.opencontainers.image.title": "otel-injector bench pause",
            "org.opencontainers.image.description": "Pod sandbox process of the otel-injector test bench "
            "(bench/localcluster/images/pause/main.go); not registry.k8s.io/pause",
            "org.opencontainers.image.version": PAUSE_VERSION,
            "org.opencontainers.image.licenses": "Apache-2.0",
        },
    )
    return write_docker_archive(
        archive, name=PAUSE_IMAGE, layers=[layer], config=config, history="go build bench/localcluster/images/pause"
    )
