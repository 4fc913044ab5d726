"""bench.peers.kyverno: the install objects it takes, and the published policy."""

from __future__ import annotations

import json

import yaml

from bench.peers import kyverno
from bench.peers.webhooks import PEER_LABEL

INSTALL = """
apiVersion: v1
kind: Namespace
metadata: {name: kyverno}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: kyverno, namespace: kyverno}
data:
  webhooks: '{"namespaceSelector":{"matchExpressions":[]}}'
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: kyverno-admission-controller, namespace: kyverno}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: clusterpolicies.kyverno.io}
"""


def test_only_namespace_crds_and_configmaps_are_taken_and_the_selector_is_narrowed() -> None:
    objects = kyverno.install_objects(INSTALL)
    assert [o["kind"] for o in objects] == ["Namespace", "ConfigMap", "CustomResourceDefinition"]
    selector = json.loads(objects[1]["data"]["webhooks"])
    assert selector == {"namespaceSelector": {"matchLabels": {PEER_LABEL: "kyverno"}}}


def test_the_published_policy_uses_foreach_and_json_patches() -> None:
    policy = yaml.safe_load(kyverno.POLICY.read_text(encoding="utf-8"))
    assert policy["kind"] == "ClusterPolicy"
    env_rule, sidecar_rule = policy["spec"]["rules"]
    assert "patchesJson6902" in env_rule["mutate"]["foreach"][0]
    assert "otel-collector" in sidecar_rule["mutate"]["patchesJson6902"]
    assert not any("patchStrategicMerge" in json.dumps(rule) for rule in policy["spec"]["rules"])
