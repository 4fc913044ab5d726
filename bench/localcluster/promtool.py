"""``promtool``, Prometheus' own rule checker and rule unit-test runner, for the chart's alerts.

The chart's ``PrometheusRule`` and Grafana dashboard (``deploy/helm/otel-injector/files/``)
are tested with the real tool (``tests/deploy/test_monitoring_rules.py``): ``promtool
check rules``, ``promtool test rules`` on synthetic series, and ``promtool check rules`` of
every dashboard expression wrapped in a recording rule. It is built like every other bench
binary (:func:`bench.localcluster.binaries.ensure_group`: same cache under
``~/.cache/otel-injector/bin/promtool-<release>``, same build lock, same recipe stamps), from
the module ``github.com/prometheus/prometheus`` at the pinned version, and only its
``./cmd/promtool`` package: the server with its web UI assets is not needed.

``python -m bench.localcluster.promtool`` builds it (``make binaries`` runs it) and prints
its path. ``OTEL_INJECTOR_BIN_DIR`` / ``KUBEBUILDER_ASSETS`` holding a ``promtool`` is used
instead, as for the other binaries.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from bench.localcluster import binaries
from bench.localcluster.gobuild import GoGroup

#: Prometheus v3.16.0, the newest release the module proxy serves (module version
#: v0.316.0; its go.mod asks for go 1.26.7, within the bench's Go 1.26).
PROMETHEUS_RELEASE = "v3.16.0"
PROMETHEUS_MODULE_VERSION = "v0.316.0"


def _ldflags(release_time: str) -> list[str]:
    # What `promtool --version` prints; upstream's promu sets the same variables.
    pkg = "github.com/prometheus/common/version"
    return [
        f"-X {pkg}.Version={PROMETHEUS_RELEASE.removeprefix('v')}",
        f"-X {pkg}.Revision={PROMETHEUS_MODULE_VERSION}",
        f"-X {pkg}.Branch=release",
        f"-X {pkg}.BuildDate={release_time}",
    ]


PROMETHEUS = GoGroup(
    key="prometheus",
    module="github.com/prometheus/prometheus",
    version=PROMETHEUS_MODULE_VERSION,
    release=PROMETHEUS_RELEASE,
    packages={"promtool": "github.com/prometheus/prometheus/cmd/promtool"},
    ldflags=_ldflags,
)


def ensure_promtool(*, log: Callable[[str], None] | None = None) -> Path:
    """The path of a ``promtool`` binary: from ``$OTEL_INJECTOR_BIN_DIR`` /
    ``$KUBEBUILDER_ASSETS`` when one holds it, else the cached build, else built now.
    Raises :class:`~bench.localcluster.gomodfile.BinaryBuildError` when the build fails."""
    for env in (binaries.BIN_DIR_ENV, binaries.KUBEBUILDER_ASSETS_ENV):
        directory = os.environ.get(env)
        candidate = Path(directory).expanduser() / "promtool" if directory else None
        if candidate is not None and candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate.resolve()
    if log is None:
        return binaries.ensure_group(PROMETHEUS)["promtool"]
    return binaries.ensure_group(PROMETHEUS, log=log)["promtool"]


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: build (or find) promtool and print ``promtool<TAB>path``."""
    del argv
    started = time.monotonic()
    try:
        path = ensure_promtool()
    except binaries.BinaryBuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"promtool\t{path}")
    print(f"[bench-bin] done in {time.monotonic() - started:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
