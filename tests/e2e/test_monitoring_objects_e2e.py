"""The chart's monitoring objects are valid for the real apiserver: with the Prometheus
Operator's own CRDs installed, the ServiceMonitor, the PrometheusRule and the dashboard
ConfigMap pass a server-side dry run with strict field validation (an unknown or mistyped
field fails), and a ServiceMonitor with a field the CRD does not have is refused."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import yaml

from bench.localcluster.controlplane import ControlPlane
from bench.localcluster.operatorcrds import operator_crds
from tests.deploy.support import CHART, find_helm, run

pytestmark = pytest.mark.e2e


def test_monitoring_objects_pass_the_apiservers_validation(
    control_plane: ControlPlane, namespace: Callable[..., str]
) -> None:
    cp = control_plane
    for crd in operator_crds():
        cp.kubectl("apply", "--server-side", "-f", str(crd))
    cp.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/servicemonitors.monitoring.coreos.com")
    cp.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/prometheusrules.monitoring.coreos.com")
    ns = namespace(traced=False)
    sets = [
        "monitoring.serviceMonitor.enabled=true",
        "monitoring.prometheusRule.enabled=true",
        "monitoring.dashboard.enabled=true",
    ]
    argv: list[object] = [find_helm(), "template", "otel-injector", CHART, "-n", ns, "--kube-version", "1.36.0"]
    for value in sets:
        argv += ["--set", value]
    proc = run([str(a) for a in argv])
    assert proc.returncode == 0, proc.stderr
    objects = [o for o in yaml.safe_load_all(proc.stdout) if o]
    chosen = [
        o
        for o in objects
        if o["kind"] in ("ServiceMonitor", "PrometheusRule") or o["metadata"]["name"].endswith("-dashboard")
    ]
    assert sorted(o["kind"] for o in chosen) == ["ConfigMap", "PrometheusRule", "ServiceMonitor"]
    manifest = yaml.safe_dump_all(chosen)
    result = cp.kubectl("apply", "--dry-run=server", "--validate=strict", "-f", "-", input=manifest, check=False)
    assert result.returncode == 0, result.stderr

    # A negative control: the same validation refuses a field the CRD does not define.
    bad = next(o for o in chosen if o["kind"] == "ServiceMonitor")
    bad["spec"]["endpoints"][0]["scrapeEvery"] = "30s"
    refused = cp.kubectl(
        "apply", "--dry-run=server", "--validate=strict", "-f", "-", input=yaml.safe_dump(bad), check=False
    )
    assert refused.returncode != 0
    assert "scrapeEvery" in refused.stderr
