"""The whole path is traced into the bench's Jaeger: apiserver, etcd's server side,
kubelet and containerd, next to the injector."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bench.localcluster.node.cluster import NodeCluster
from tests.node.support import find_spans

pytestmark = pytest.mark.e2e


def test_etcd_kubelet_and_containerd_send_spans(cluster: NodeCluster, namespace: Callable[..., str]) -> None:
    namespace()  # some API traffic, and a reason for kubelet and containerd to work
    for service in ("apiserver", "etcd", "kubelet", f"containerd-{cluster.nodes[0].name}"):
        spans = find_spans(cluster, service=service, timeout=60)
        assert spans, service
    # etcd's spans are its own gRPC server spans, not the apiserver's client view of them.
    etcd_ops = {span["operationName"] for _, span in find_spans(cluster, service="etcd")}
    assert any(op.startswith("etcdserverpb.") for op in etcd_ops), etcd_ops
