"""Fixtures for the in-cluster controllers against a real local control plane.

One :class:`~bench.localcluster.controlplane.ControlPlane` per session (etcd,
kube-apiserver, kube-controller-manager; no kubelet, so pods stay Pending, which is all a
ConfigMap reconciler and an admission webhook need). Nothing talks to a fake API server:
the code under test runs either in this process with the admin kubeconfig or as a real
``otel-injector serve`` process started with ``KUBECONFIG`` set.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bench.localcluster.controlplane import ControlPlane
from tests.cluster.support import Tls
from webhook.cluster.client import Kube
from webhook.tls.certs import generate_bundle


@pytest.fixture(scope="session")
def cluster() -> Iterator[ControlPlane]:
    """A running control plane for this directory's tests; stopped at session end."""
    with ControlPlane() as cp:
        yield cp


@pytest.fixture(scope="session")
def kube(cluster: ControlPlane) -> Iterator[Kube]:
    """Plain-JSON admin access to the control plane."""
    client = Kube.connect(str(cluster.kubeconfig), field_manager="e2e-test")
    yield client
    client.close()


@pytest.fixture(scope="session")
def loopback_tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    directory = tmp_path_factory.mktemp("loopback-tls")
    bundle = generate_bundle(["localhost"], ["127.0.0.1"])
    bundle.write(directory)
    return Tls(directory, bundle.ca_bundle)
