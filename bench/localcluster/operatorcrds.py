"""The Prometheus Operator's CustomResourceDefinitions, for checking the chart's
ServiceMonitor and PrometheusRule on the real apiserver (tests/e2e/test_monitoring_objects_e2e.py).

They are read from the published Go module ``github.com/prometheus-operator/prometheus-operator``
at a pinned version (``example/prometheus-operator-crd/`` in its module zip), fetched with the
plain ``go mod download`` into the Go module cache: nothing is built, and a second call costs
a lookup in that cache.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from bench.localcluster.gobuild import go_executable
from bench.localcluster.gomodfile import BinaryBuildError

MODULE = "github.com/prometheus-operator/prometheus-operator"
#: The newest release the module proxy serves.
VERSION = "v0.85.0"
CRDS = ("monitoring.coreos.com_servicemonitors.yaml", "monitoring.coreos.com_prometheusrules.yaml")


def operator_crds() -> list[Path]:
    """The ServiceMonitor and PrometheusRule CRD files. Raises BinaryBuildError when the
    module cannot be fetched."""
    env = {**os.environ, "GOWORK": "off", "GOTOOLCHAIN": os.environ.get("GOTOOLCHAIN", "local"), "GOFLAGS": ""}
    proc = subprocess.run(
        [go_executable(), "mod", "download", "-json", f"{MODULE}@{VERSION}"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd="/",
        check=False,
    )
    try:
        directory = Path(json.loads(proc.stdout)["Dir"])
    except (ValueError, KeyError) as err:
        raise BinaryBuildError(
            f"go mod download {MODULE}@{VERSION} failed: {proc.stdout[-500:]}{proc.stderr[-500:]}"
        ) from err
    paths = [directory / "example" / "prometheus-operator-crd" / name for name in CRDS]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise BinaryBuildError(f"{MODULE}@{VERSION} has no {', '.join(missing)}")
    return paths
