"""What the chart install sets on top of the defaults, and where helm keeps its state."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from bench.localcluster.chartinstall import WebhookImage, bench_values, helm_env, merge
from bench.localcluster.node.cluster import NodeCluster


def _cluster(tmp_path: Path) -> NodeCluster:
    fake = SimpleNamespace(
        workdir=tmp_path,
        kubeconfig=tmp_path / "admin.kubeconfig",
        jaeger_otlp_http_endpoint="http://10.200.0.1:4318",
        jaeger_otlp_grpc_endpoint="10.200.0.1:4317",
    )
    return cast(NodeCluster, fake)


def test_only_the_image_and_the_benchs_jaeger_are_set(tmp_path: Path) -> None:
    image = WebhookImage(name="localhost/otel-injector:0.1.0", archive=tmp_path / "x.tar")
    values: dict[str, Any] = bench_values(_cluster(tmp_path), image)
    assert set(values) == {"webhook", "collector"}
    assert values["webhook"]["image"] == {
        "repository": "localhost/otel-injector",
        "tag": "0.1.0",
        "pullPolicy": "IfNotPresent",
    }
    assert values["collector"] == {"exporterEndpoint": "10.200.0.1:4317"}


def test_helm_state_stays_in_the_work_directory(tmp_path: Path) -> None:
    env = helm_env(_cluster(tmp_path))
    for key in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME", "HOME"):
        assert env[key].startswith(str(tmp_path)), key
    assert env["KUBECONFIG"] == str(tmp_path / "admin.kubeconfig")


def test_merge_is_deep() -> None:
    assert merge({"a": {"b": 1, "c": 2}, "d": 1}, {"a": {"b": 3}, "e": 4}) == {"a": {"b": 3, "c": 2}, "d": 1, "e": 4}
