"""Helpers for the deployment tests: locating helm, kubectl and hadolint, running them,
and picking objects out of rendered manifests.

A missing tool is a test failure with a message saying how to get it, never a skip: these
tests guard what users install.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
CHART = DEPLOY / "helm" / "otel-injector"
RELEASE = "otel-injector"
NAMESPACE = "otel-injector"
# helm's default Kubernetes version depends on how the binary was built (without its
# version ldflags it is v1.20); render for the oldest version the chart supports.
KUBE_VERSION = "1.30.0"
HELM_TARGET = ("--namespace", NAMESPACE, "--kube-version", KUBE_VERSION)

Objects = list[dict[str, Any]]


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def find_helm() -> Path:
    """helm from $HELM, else the shared bench binaries module (which builds it into the
    cache when needed), else the newest cached ~/.cache/otel-injector/bin/helm-*/helm.
    """
    configured = os.environ.get("HELM")
    if configured:
        path = Path(configured).expanduser()
        if not _executable(path):
            pytest.fail(f"HELM={configured} is not an executable file")
        return path
    try:
        from bench.localcluster.binaries import BinaryBuildError, ensure_binaries
    except ImportError:
        pass
    else:
        try:
            return Path(ensure_binaries({"helm"}).helm)
        except BinaryBuildError as err:
            pytest.fail(f"helm could not be built (set HELM=/path/to/helm to use another one): {err}")
    cache = Path(os.environ.get("OTEL_INJECTOR_CACHE_DIR") or Path.home() / ".cache" / "otel-injector")
    found = sorted((p for p in cache.glob("bin/helm-*/helm") if _executable(p)), key=lambda p: p.stat().st_mtime)
    if found:
        return found[-1]
    pytest.fail(
        "helm not found: set HELM=/path/to/helm, or build it with "
        "`python -m bench.localcluster.binaries helm` (it lands in ~/.cache/otel-injector/bin/)"
    )


def find_tool(env: str, name: str, hint: str) -> Path:
    """A tool from ``$env``, the venv's bin directory, or PATH; fails with ``hint``."""
    configured = os.environ.get(env)
    if configured:
        path = Path(configured).expanduser()
        if not _executable(path):
            pytest.fail(f"{env}={configured} is not an executable file")
        return path
    beside_python = Path(sys.executable).parent / name
    if _executable(beside_python):
        return beside_python
    found = shutil.which(name)
    if found:
        return Path(found)
    pytest.fail(f"{name} not found: {hint}")


def run(argv: Sequence[str | Path], *, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, check=False, timeout=timeout)


def run_helm_template(
    helm: Path, *sets: str, extra: Sequence[str | Path] = (), hooks: bool = False
) -> subprocess.CompletedProcess[str]:
    """``helm template`` of the chart as the release in its namespace, with each of ``sets``
    as a ``--set`` value and ``extra`` raw arguments. Without ``hooks`` the uninstall
    hooks are left out (``--no-hooks``): they are not part of what is installed."""
    argv: list[str | Path] = [helm, "template", RELEASE, CHART, *HELM_TARGET, *extra]
    if not hooks:
        argv.append("--no-hooks")
    for value in sets:
        argv += ["--set", value]
    return run(argv)


def helm_template(helm: Path, *sets: str, extra: Sequence[str | Path] = (), hooks: bool = False) -> str:
    """The manifests :func:`run_helm_template` prints; fails the test if helm fails."""
    proc = run_helm_template(helm, *sets, extra=extra, hooks=hooks)
    if proc.returncode != 0:
        pytest.fail(f"helm template {' '.join(sets)} failed:\n{proc.stderr}")
    return proc.stdout


def parse_stream(text: str) -> Objects:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def find(objects: Objects, kind: str, name: str | None = None) -> dict[str, Any]:
    """The one object of ``kind`` (and ``name``); fails if there is not exactly one."""
    matches = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, found {len(matches)}"
    return matches[0]


def kinds(objects: Objects) -> list[str]:
    return sorted(o["kind"] for o in objects)
