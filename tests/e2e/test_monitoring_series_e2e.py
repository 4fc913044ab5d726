"""The apiserver series the chart's alerts and dashboard use exist on the real
kube-apiserver, with the labels they select on: a webhook named like ours that cannot be
reached, with failurePolicy Ignore, shows up in ``apiserver_admission_webhook_fail_open_count``
and ``apiserver_admission_webhook_admission_duration_seconds`` under ``name``."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

import pytest
import yaml

from bench.localcluster.controlplane import ControlPlane
from tests.deploy.test_monitoring_rules import WELL_KNOWN

pytestmark = pytest.mark.e2e


def test_the_apiserver_series_of_the_alerts_exist(control_plane: ControlPlane, namespace: Callable[..., str]) -> None:
    ns = namespace(traced=False)
    marker = f"dead-{uuid.uuid4().hex[:6]}"
    config = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": marker},
        "webhooks": [
            {
                # The name the chart gives its second webhook; the alerts select on it.
                "name": "object.otel-injector.io",
                "clientConfig": {"url": "https://127.0.0.1:1/mutate"},
                "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}],
                "objectSelector": {"matchLabels": {"monitoring-probe": marker}},
                "failurePolicy": "Ignore",
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                "timeoutSeconds": 2,
            }
        ],
    }
    control_plane.kubectl("apply", "-f", "-", input=yaml.safe_dump(config))
    try:
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "probe", "namespace": ns, "labels": {"monitoring-probe": marker}},
            "spec": {"containers": [{"name": "a", "image": "registry.example/app:1"}]},
        }
        control_plane.kubectl("apply", "-f", "-", input=yaml.safe_dump(pod))
        text = control_plane.kubectl("get", "--raw", "/metrics").stdout
    finally:
        control_plane.kubectl("delete", "mutatingwebhookconfiguration", marker)
    apiserver = {n for n in WELL_KNOWN if n.startswith("apiserver_")}
    for name in sorted(apiserver):
        assert re.search(rf'^{name}\{{[^}}]*name="object\.otel-injector\.io"', text, re.M), f"no {name} for our webhook"
    opened = re.search(
        r'^apiserver_admission_webhook_fail_open_count\{[^}]*name="object\.otel-injector\.io"[^}]*\} (\S+)', text, re.M
    )
    assert opened is not None
    assert float(opened.group(1)) >= 1
