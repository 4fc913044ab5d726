"""The run's namespaces: created with a node address and no route out, gone after destroy."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.localcluster.node import hoststate
from bench.localcluster.node.namespaces import NODE_ADDRESSES, RunNamespaces

pytestmark = pytest.mark.e2e


def test_namespaces_have_node_addresses_and_no_default_route(tmp_path: Path) -> None:
    before = hoststate.capture()
    ns = RunNamespaces(tmp_path)
    ns.create()
    try:
        addresses = ns.run("ip", "-o", "-4", "addr")
        for address in NODE_ADDRESSES:
            assert f"{address}/24" in addresses
        routes = ns.run("ip", "route")
        assert "default" not in routes
        assert "tmpfs" in ns.run("findmnt", "-n", "-o", "FSTYPE", "/run")
        # Negative control: the machine's own namespace does not see the veth.
        assert "otel0" not in hoststate.capture().links
    finally:
        ns.destroy()
    assert hoststate.differences(before, hoststate.capture()) == []
    assert not (tmp_path / "ns").exists()
