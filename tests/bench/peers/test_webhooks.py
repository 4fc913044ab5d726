"""bench.peers.webhooks: registration by loopback IP only, the reviews wrk posts."""

from __future__ import annotations

import json
import os

import pytest

from bench.peers import webhooks
from bench.perf import pods


def test_a_configuration_selects_only_its_own_namespaces_by_ip_url() -> None:
    manifest = webhooks.bench_configuration("istio", "https://127.0.0.1:15017/inject", "Q0E=", "istio")
    (hook,) = manifest["webhooks"]
    assert hook["clientConfig"] == {"url": "https://127.0.0.1:15017/inject", "caBundle": "Q0E="}
    assert hook["namespaceSelector"] == {"matchLabels": {webhooks.PEER_LABEL: "istio"}}
    assert hook["failurePolicy"] == "Fail"


@pytest.mark.parametrize("url", ["https://localhost:8443/mutate", "https://istiod.istio-system.svc/inject"])
def test_a_hostname_url_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="loopback IP"):
        webhooks.bench_configuration("x", url, "", "x")


def test_the_review_carries_the_namespace_the_pod_is_created_in() -> None:
    review = json.loads(webhooks.review_for(pods.typical_pod(), "peer-istio"))
    assert review["request"]["namespace"] == "peer-istio"
    assert review["request"]["object"]["metadata"]["namespace"] == "peer-istio"
    assert review["request"]["operation"] == "CREATE"


def test_the_precomputed_patch_is_otel_injectors_own() -> None:
    patch = json.loads(__import__("base64").b64decode(webhooks.precomputed_patch(pods.typical_pod(), "ns")))
    assert any(op["path"] == "/spec/initContainers" for op in patch)


def test_process_tree_holds_this_process() -> None:
    assert webhooks.process_tree(os.getpid())[0] == os.getpid()


def test_every_webhook_has_a_fairness_note() -> None:
    assert set(webhooks.INJECTS) == set(webhooks.WEBHOOKS)
