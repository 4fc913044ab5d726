"""The CNI conflist: a bridge per node, host-local addresses, no masquerading."""

from __future__ import annotations

import json

from bench.localcluster.node import cni


def test_each_node_has_its_own_bridge_and_range() -> None:
    first, second = (json.loads(cni.conflist(i)) for i in (0, 1))
    assert first["plugins"][0]["bridge"] != second["plugins"][0]["bridge"]
    assert first["plugins"][0]["ipam"]["ranges"][0][0] == {"subnet": "10.88.0.0/24", "gateway": "10.88.0.1"}
    assert second["plugins"][0]["ipam"]["ranges"][0][0]["subnet"] == "10.88.1.0/24"


def test_no_masquerade_and_the_bridge_is_the_gateway() -> None:
    bridge = json.loads(cni.conflist(0))["plugins"][0]
    assert bridge["ipMasq"] is False
    assert bridge["isGateway"] is True
    assert set(cni.PLUGINS) >= {"bridge", "host-local", "loopback", "portmap"}
