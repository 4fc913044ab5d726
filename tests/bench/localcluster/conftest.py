"""Session fixture: one real local control plane (etcd, kube-apiserver, kcm, Jaeger).

Starting it builds the Go binaries on first use (many minutes, cached afterwards under
~/.cache/otel-injector); later sessions start it in well under a minute.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bench.localcluster.controlplane import ControlPlane


def pytest_configure(config: pytest.Config) -> None:
    # The suite runs with --strict-markers; registered here until the project config
    # carries the marker.
    config.addinivalue_line("markers", "e2e: starts real processes (control plane, Jaeger); slow on first run")


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    """A running control plane shared by the whole session; stopped at session end."""
    with ControlPlane() as cp:
        yield cp
