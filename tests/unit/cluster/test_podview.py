"""The trimmed pod view: every rule gives it the same answer as the whole pod (every golden
input, before and after injection), and it keeps nothing else."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from webhook.cluster.podview import slim_pod_for_rules
from webhook.cluster.stale import stale_reasons
from webhook.core import names
from webhook.core.injection import inject_pod
from webhook.core.missing import missing_sidecar
from webhook.core.settings import InjectionSettings

SETTINGS = InjectionSettings(namespace="otel-injector", config_hash="new")
GOLDEN = Path(__file__).parents[2] / "golden" / "input"
TRACED = {"tracing": "enabled"}


def golden_pods() -> list[dict[str, Any]]:
    pods = []
    for path in sorted(GOLDEN.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "Pod":
                doc.setdefault("metadata", {}).setdefault("namespace", "shop")
                pods.append(doc)
    return pods


@pytest.mark.parametrize("pod", golden_pods(), ids=lambda p: str(p["metadata"].get("name")))
def test_the_trimmed_pod_gives_the_same_verdicts(pod: dict[str, Any]) -> None:
    for candidate in (pod, dict(inject_pod(pod, SETTINGS, namespace="shop").pod)):
        slim = slim_pod_for_rules(candidate)
        for labels in (TRACED, {}):
            full = missing_sidecar(candidate, namespace_labels=labels, settings=SETTINGS)
            assert missing_sidecar(slim, namespace_labels=labels, settings=SETTINGS) == full
        assert stale_reasons(slim, current_hash="new", settings=SETTINGS) == stale_reasons(
            candidate, current_hash="new", settings=SETTINGS
        )


def test_the_trimmed_pod_drops_what_no_rule_reads() -> None:
    pod = {
        "metadata": {
            "name": "p",
            "namespace": "shop",
            "annotations": {"big": "x" * 10_000, names.STATUS_ANNOTATION: "{}"},
            "managedFields": [{"x": "y" * 10_000}],
        },
        "spec": {"containers": [{"name": "app", "image": "i", "env": [{"name": "A", "value": "b" * 10_000}]}]},
        "status": {"phase": "Running", "conditions": [{"type": "Ready"}]},
    }
    slim = slim_pod_for_rules(pod)
    assert len(str(slim)) < 600
    assert list(slim["metadata"]["annotations"]) == [names.STATUS_ANNOTATION]
    assert '"env":[]' in slim["metadata"]["annotations"][names.STATUS_ANNOTATION]  # only what the rules read
