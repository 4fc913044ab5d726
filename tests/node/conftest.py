"""One node-enabled cluster (control plane, a real node, CoreDNS, kube-proxy, Jaeger) plus
the injector, shared by the real-pod suites. Only tests under tests/node request it, so
the other suites never pay for a node. A component that cannot start fails the tests
with its log tail; nothing here is skipped.

The teardown test starts and stops a cluster of its own; it is moved to the front of the
node suites so that it never waits on the run lock the shared cluster holds."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from bench.localcluster.injector import LocalInjector, install
from bench.localcluster.node.cluster import NodeCluster

pytestmark = pytest.mark.e2e

TEARDOWN_TEST = "test_teardown.py"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    first = [i for i in items if i.path.name == TEARDOWN_TEST and i.path.parent.name == "node"]
    if not first:
        return
    rest = [i for i in items if i not in first]
    position = next((n for n, i in enumerate(rest) if i.path.parent.name == "node"), len(rest))
    items[:] = [*rest[:position], *first, *rest[position:]]


@pytest.fixture(scope="session")
def cluster() -> Iterator[NodeCluster]:
    with NodeCluster() as running:
        yield running


@pytest.fixture(scope="session")
def node_injector(cluster: NodeCluster) -> LocalInjector:
    return install(cluster)


@pytest.fixture
def namespace(cluster: NodeCluster, node_injector: LocalInjector) -> Callable[..., str]:
    """Factory: a fresh namespace, labelled ``tracing=enabled`` unless ``traced=False``;
    waits until the reconciler copied the collector config into it."""

    def make(*, traced: bool = True, labels: dict[str, str] | None = None) -> str:
        name = f"node-{uuid.uuid4().hex[:6]}"
        cluster.kubectl("create", "namespace", name)
        all_labels = dict(labels or {})
        if traced:
            all_labels["tracing"] = "enabled"
        if all_labels:
            cluster.kubectl("label", "namespace", name, *[f"{k}={v}" for k, v in all_labels.items()])
        if traced:
            from tests.support import wait_for

            wait_for(
                f"the collector ConfigMap in {name}",
                lambda: (
                    cluster.kubectl("get", "configmap", "otel-collector-sidecar", "-n", name, check=False).returncode
                    == 0
                ),
                timeout=30,
            )
        return name

    return make
