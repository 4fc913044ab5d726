"""The chart's monitoring objects (values monitoring.*): off by default, each rendered on
its own when asked, lint-clean, and shaped as the Prometheus Operator and Grafana's
dashboard sidecar expect. (The rules' content is tested with promtool in
test_monitoring_rules.py.)"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.deploy.support import CHART, HELM_TARGET, NAMESPACE, Objects, find, run

ALL_ON = (
    "monitoring.serviceMonitor.enabled=true",
    "monitoring.prometheusRule.enabled=true",
    "monitoring.dashboard.enabled=true",
)
Render = Callable[..., Objects]


def monitoring_kinds(objects: Objects) -> set[str]:
    return {
        o["kind"]
        for o in objects
        if o["kind"] in ("ServiceMonitor", "PrometheusRule") or "grafana_dashboard" in o["metadata"].get("labels", {})
    }


def test_off_by_default(render: Render) -> None:
    assert monitoring_kinds(render()) == set()


@pytest.mark.parametrize(
    ("value", "kind"),
    [(ALL_ON[0], "ServiceMonitor"), (ALL_ON[1], "PrometheusRule"), (ALL_ON[2], "ConfigMap")],
)
def test_each_part_renders_on_its_own(render: Render, value: str, kind: str) -> None:
    assert monitoring_kinds(render(value)) == {kind}


def test_helm_lint_is_clean_with_everything_on(helm: Path) -> None:
    argv: list[str | Path] = [helm, "lint", "--strict", CHART, *HELM_TARGET]
    for value in ALL_ON:
        argv += ["--set", value]
    proc = run(argv)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[WARNING]" not in proc.stdout, proc.stdout


def test_service_monitor_scrapes_the_https_port_verified(render: Render) -> None:
    objects = render(ALL_ON[0], "monitoring.serviceMonitor.labels.release=prom")
    monitor = find(objects, "ServiceMonitor")
    service = find(objects, "Service", "otel-injector")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert (endpoint["scheme"], endpoint["path"], endpoint["honorLabels"]) == ("https", "/metrics", True)
    assert endpoint["tlsConfig"] == {
        "ca": {"secret": {"name": "otel-injector-tls", "key": "ca.crt"}},
        "serverName": f"otel-injector.{NAMESPACE}.svc",
    }


def test_service_monitor_tls_in_secret_mode(render: Render, render_error: Callable[..., str]) -> None:
    secret = ("certs.mode=secret", "certs.caBundle=Q0EK", ALL_ON[0])
    assert "monitoring.serviceMonitor.tlsConfig must be set" in render_error(*secret)
    monitor = find(render(*secret, "monitoring.serviceMonitor.tlsConfig.insecureSkipVerify=true"), "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["tlsConfig"] == {"insecureSkipVerify": True}


def test_prometheus_rule_holds_the_files_alerts(render: Render) -> None:
    rule = find(render(ALL_ON[1], "monitoring.prometheusRule.labels.release=prom"), "PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "prom"
    alerts = [r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]]
    assert alerts == [
        "OtelInjectorPodsMissingSidecar",
        "OtelInjectorAdmissionErrors",
        "OtelInjectorWebhookFailingOpen",
        "OtelInjectorAdmissionLatencyHigh",
        "OtelInjectorCertificateExpiresSoon",
        "OtelInjectorCertificateExpiresSoon",
        "OtelInjectorNoReadyReplica",
    ]


def test_prometheus_rule_uses_monitoring_job(render: Render) -> None:
    rule = find(render(ALL_ON[1], "monitoring.job=webhooks"), "PrometheusRule")
    assert 'job="webhooks"' in rule["spec"]["groups"][0]["rules"][0]["expr"]


def test_dashboard_config_map_is_the_file(render: Render) -> None:
    objects = render(ALL_ON[2], "monitoring.dashboard.namespace=grafana", "monitoring.dashboard.labels.team=obs")
    (config_map,) = [o for o in objects if o["metadata"]["name"] == "otel-injector-dashboard"]
    assert config_map["metadata"]["namespace"] == "grafana"
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["labels"]["team"] == "obs"
    expected = json.loads((CHART / "files" / "grafana-dashboard.json").read_text())
    assert json.loads(config_map["data"]["otel-injector.json"]) == expected
    assert expected["uid"] == "otel-injector"
