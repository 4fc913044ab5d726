"""The chart's alerts and dashboard, checked with Prometheus' own promtool
(bench/localcluster/promtool.py builds it from the github.com/prometheus/prometheus module).

* ``promtool check rules`` accepts files/prometheus-rules.yaml, as it is and as the chart
  renders it;
* ``promtool test rules`` (monitoring-rules.test.yaml) fires each alert on synthetic series
  and keeps every one quiet on healthy series; a rule with a broken threshold fails it;
* every PromQL expression of files/grafana-dashboard.json parses (each wrapped in a
  recording rule for ``promtool check rules``);
* the alerts and the dashboard name only metrics the injector really exports (a scrape of
  ``/metrics`` of the app the composition root builds, controllers included) or the
  well-known series listed in :data:`WELL_KNOWN`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from bench.localcluster.promtool import ensure_promtool
from tests.deploy.promql import metric_names, substitute
from tests.deploy.support import CHART, find, run
from webhook.compose import build_app
from webhook.config.settings import Settings
from webhook.tls.certs import generate_bundle

HERE = Path(__file__).resolve().parent
RULES = CHART / "files" / "prometheus-rules.yaml"
DASHBOARD = CHART / "files" / "grafana-dashboard.json"
RULE_TESTS = HERE / "monitoring-rules.test.yaml"

#: Series the alerts and the dashboard may use that other components export.
WELL_KNOWN = {
    # kube-apiserver's admission webhook metrics (k8s.io/apiserver/pkg/admission/metrics).
    "apiserver_admission_webhook_admission_duration_seconds_bucket",
    "apiserver_admission_webhook_fail_open_count",
    # Prometheus' own scrape health.
    "up",
}


@pytest.fixture(scope="module")
def promtool() -> Path:
    try:
        return ensure_promtool()
    except Exception as err:  # a build failure fails the tests, it never skips them
        pytest.fail(f"promtool could not be built (python -m bench.localcluster.promtool): {err}")


def promtool_ok(promtool: Path, *args: str | Path) -> str:
    proc = run([promtool, *args])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def series_names(exposition: str) -> set[str]:
    """Every series name a text exposition can hold, from its ``# TYPE`` lines (so a
    labelled metric with no series yet counts too)."""
    suffixes = {
        "counter": ("_total",),
        "histogram": ("_bucket", "_sum", "_count"),
        "summary": ("", "_sum", "_count"),
        "gauge": ("",),
        "untyped": ("",),
        "info": ("_info",),
    }
    names: set[str] = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", exposition, re.M):
        base = name.removesuffix("_total") if kind == "counter" else name
        names.update(base + suffix for suffix in suffixes.get(kind, ("",)))
    return names


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """The series names of ``/metrics`` of the app ``otel-injector serve`` builds, with
    every controller configured (nothing is started: no lifespan, no API call)."""
    directory = tmp_path_factory.mktemp("scrape")
    bundle = generate_bundle(["otel-injector.otel-injector.svc"])
    bundle.write(directory)
    kubeconfig = directory / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:9"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    settings = Settings(
        reconcile=True,
        leader_election=True,
        cert_mode="self-managed",
        kubeconfig=str(kubeconfig),
        tls_cert=str(directory / "tls.crt"),
        tls_key=str(directory / "tls.key"),
    )
    assert settings.needs_kubernetes
    response = TestClient(build_app(settings)).get("/metrics")
    assert response.status_code == 200
    return series_names(response.text)


def rule_groups(text: str) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = yaml.safe_load(text)["groups"]
    return groups


def dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def test_promtool_checks_the_rules(promtool: Path) -> None:
    out = promtool_ok(promtool, "check", "rules", RULES)
    assert "SUCCESS: 7 rules found" in out


def test_each_alert_fires_on_synthetic_series_and_stays_quiet_without(promtool: Path) -> None:
    assert "SUCCESS" in promtool_ok(promtool, "test", "rules", RULE_TESTS)
    alerts = {rule["alert"] for group in rule_groups(RULES.read_text()) for rule in group["rules"]}
    cases = [case for test in yaml.safe_load(RULE_TESTS.read_text())["tests"] for case in test["alert_rule_test"]]
    assert {c["alertname"] for c in cases if c["exp_alerts"]} == alerts, "an alert is never fired"
    assert {c["alertname"] for c in cases if not c["exp_alerts"]} == alerts, "an alert is never kept quiet"


def test_a_broken_threshold_fails_the_rule_tests(promtool: Path, tmp_path: Path) -> None:
    broken = RULES.read_text().replace("> 0.25", "> 5")
    assert broken != RULES.read_text()
    (tmp_path / "rules.yaml").write_text(broken)
    tests = yaml.safe_load(RULE_TESTS.read_text())
    tests["rule_files"] = [str(tmp_path / "rules.yaml")]
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests))
    proc = run([promtool, "test", "rules", tmp_path / "tests.yaml"])
    assert proc.returncode != 0
    assert "OtelInjectorAdmissionLatencyHigh" in proc.stdout + proc.stderr


def test_the_rendered_prometheus_rule_checks(promtool: Path, helm: Path, tmp_path: Path) -> None:
    proc = run(
        [
            helm,
            "template",
            "obs",
            CHART,
            "-n",
            "mon",
            "--kube-version",
            "1.30.0",
            "--set",
            "monitoring.prometheusRule.enabled=true",
        ]
    )
    assert proc.returncode == 0, proc.stderr
    rule = find([o for o in yaml.safe_load_all(proc.stdout) if o], "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    (tmp_path / "rendered.yaml").write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    assert "SUCCESS: 7 rules found" in promtool_ok(promtool, "check", "rules", tmp_path / "rendered.yaml")
    text = json.dumps(rule["spec"])
    assert 'job=\\"obs-otel-injector\\"' in text
    assert 'job=\\"otel-injector\\"' not in text
    # Alert templates reach Prometheus untouched by helm.
    assert "{{ $labels.namespace }}" in text


def test_every_dashboard_expression_parses(promtool: Path, tmp_path: Path) -> None:
    expressions = dashboard_expressions()
    assert len(expressions) >= 15
    rules = [{"record": f"dashboard:expr_{i}", "expr": substitute(e)} for i, e in enumerate(expressions)]
    (tmp_path / "dashboard.rules.yaml").write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    assert f"SUCCESS: {len(rules)} rules found" in promtool_ok(
        promtool, "check", "rules", tmp_path / "dashboard.rules.yaml"
    )


def test_a_broken_dashboard_expression_fails_the_check(promtool: Path, tmp_path: Path) -> None:
    rules = [{"record": "dashboard:bad", "expr": substitute("sum by (le (rate(x[5m]))")}]
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({"groups": [{"name": "d", "rules": rules}]}))
    assert run([promtool, "check", "rules", tmp_path / "bad.yaml"]).returncode != 0


def test_alerts_and_dashboard_name_only_metrics_the_injector_exports(exported: set[str]) -> None:
    expressions = dashboard_expressions() + [r["expr"] for g in rule_groups(RULES.read_text()) for r in g["rules"]]
    used = set().union(*(metric_names(substitute(e)) for e in expressions))
    assert "otel_injector_admission_duration_seconds_bucket" in used  # the extraction works
    unknown = used - exported - WELL_KNOWN
    assert not unknown, f"not exported by the injector: {sorted(unknown)}; it exports {sorted(exported)}"
    assert {
        "otel_injector_certificate_expiry_timestamp_seconds",
        "otel_injector_ready",
        "otel_injector_pods_missing_sidecar",
        "otel_injector_workload_restarts_total",
    } <= exported


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum by (le) (rate(a_bucket{job="x",le=~"1|2"}[5m]))', {"a_bucket"}),
        ("min(b) - time() < 14 * 86400", {"b"}),
        ("absent(c{job='j'} == 1)", {"c"}),
        ("d / on (pod) group_left (node) e offset 1h", {"d", "e"}),
        ("histogram_quantile(0.99, sum by (le, name) (rate(f[$__rate_interval])))", {"f"}),
        ("1e3 * g and bool h", {"g", "h"}),
    ],
)
def test_metric_names(expr: str, names: set[str]) -> None:
    assert metric_names(substitute(expr)) == names
