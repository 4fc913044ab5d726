"""Build recipes of the peers: istiod's ``pilot-discovery`` and Kyverno's admission controller.

Both are compiled from their published Go modules through
:func:`bench.localcluster.binaries.ensure_group`, so they share the bench's cache
(``~/.cache/otel-injector/bin/<name>-<version>``), its build lock (one build at a time)
and its recipe stamps (a changed pin or flag rebuilds, nothing else does).

* Istio tags no Go module; the module proxy serves its main branch only as a
  pseudo-version, pinned here. Its go.mod has no ``replace``.
* Kyverno v1.19.1's go.mod has one ``replace`` (``k8s.io/pod-security-admission`` to
  Kyverno's fork), which the wrapper repeats.

``python -m bench.peers.builds [istio|kyverno ...]`` builds them ahead of a run.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.localcluster import binaries

#: The istio.io/istio main-branch pseudo-version the proxy serves (late August 2026).
ISTIO_VERSION = "v0.0.0-20260827124520-eed52ebb66ad"
#: The Kyverno release.
KYVERNO_VERSION = "v1.19.1"


def _istio_ldflags(release_time: str) -> list[str]:
    pkg = "istio.io/istio/pkg/version"
    del release_time
    return [f"-X {pkg}.buildVersion={ISTIO_VERSION}", f"-X {pkg}.buildStatus=Clean", f"-X {pkg}.buildTag=main"]


def _kyverno_ldflags(release_time: str) -> list[str]:
    del release_time
    return [f"-X github.com/kyverno/kyverno/pkg/version.BuildVersion={KYVERNO_VERSION}"]


ISTIO = binaries.GoGroup(
    key="istio",
    module="istio.io/istio",
    version=ISTIO_VERSION,
    packages={"pilot-discovery": "istio.io/istio/pilot/cmd/pilot-discovery"},
    ldflags=_istio_ldflags,
    template_package=__package__ or "bench.peers",
)
KYVERNO = binaries.GoGroup(
    key="kyverno",
    module="github.com/kyverno/kyverno",
    version=KYVERNO_VERSION,
    packages={"kyverno": "github.com/kyverno/kyverno/cmd/kyverno"},
    ldflags=_kyverno_ldflags,
    template_package=__package__ or "bench.peers",
)
PEER_BUILDS: dict[str, binaries.GoGroup] = {"istio": ISTIO, "kyverno": KYVERNO}


@dataclass(frozen=True)
class Built:
    """A peer's binary, or why there is none."""

    peer: str
    path: Path | None
    version: str
    seconds: float
    error: str = ""
    #: How long the cached binary's own (cold) build took, from its build-info.json.
    build_seconds: float | None = None


def build(peer: str, log: Callable[[str], None]) -> Built:
    """Build (or find cached) the binary of ``peer``; a failure is returned, not raised,
    so the report can say why that peer is missing."""
    group = PEER_BUILDS[peer]
    started = time.monotonic()
    try:
        paths = binaries.ensure_group(group, log=log)
    except (binaries.BinaryBuildError, OSError) as err:
        return Built(peer, None, group.label, round(time.monotonic() - started, 1), str(err)[-2000:])
    (path,) = paths.values()
    try:
        info = json.loads((path.parent / "build-info.json").read_text(encoding="utf-8"))
        cold = float(info["build_seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        cold = None
    return Built(peer, path, group.label, round(time.monotonic() - started, 1), build_seconds=cold)


def module_dir(peer: str) -> Path:
    """The peer's module source in the Go module cache (charts, CRDs, install manifests
    come from there). Valid after :func:`build`; the wrapper's ``go mod`` put it there."""
    import subprocess

    group = PEER_BUILDS[peer]
    done = subprocess.run(["go", "env", "GOMODCACHE"], capture_output=True, text=True, check=True, timeout=60)
    return Path(done.stdout.strip()) / f"{group.module}@{group.version}"


def main(argv: Sequence[str] | None = None) -> int:
    """Build the named peers (default: all), one after the other."""
    names = list(argv if argv is not None else sys.argv[1:]) or list(PEER_BUILDS)
    status = 0
    for name in names:
        result = build(name, log=lambda m: print(m, file=sys.stderr, flush=True))
        print(f"{name}\t{result.path or 'FAILED: ' + result.error}")
        status |= result.path is None
    return status


if __name__ == "__main__":
    raise SystemExit(main())
