"""The pod network of a node: a CNI bridge with host-local addresses, inside the run's
network namespace.

Each node gets its own bridge and /24 (``10.88.<n>.0/24``, gateway ``.1``). The bridge is
the pods' default gateway, so pod traffic to the node address (Jaeger, CoreDNS) or to a
Service (DNATed by kube-proxy) is routed by the run's namespace, which has no route out.
``ipMasq`` stays off: nothing needs its source rewritten, and masquerading would add
iptables rules for traffic that has nowhere to go. ``portmap`` handles ``hostPort``.
"""

from __future__ import annotations

import json
from pathlib import Path

#: The CNI plugins a node needs, as built into the cache.
PLUGINS = ("bridge", "host-local", "loopback", "portmap")
CNI_VERSION = "1.0.0"


def pod_cidr(node_index: int) -> str:
    """The pod range of node ``node_index`` (0-based)."""
    return f"10.88.{node_index}.0/24"


def gateway(node_index: int) -> str:
    """The bridge address of node ``node_index``: its pods' default gateway."""
    return f"10.88.{node_index}.1"


def conflist(node_index: int) -> str:
    """The CNI network configuration list of node ``node_index``."""
    config = {
        "cniVersion": CNI_VERSION,
        "name": f"otel-injector-bench-{node_index}",
        "plugins": [
            {
                "type": "bridge",
                "bridge": f"cni{node_index}",
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": pod_cidr(node_index), "gateway": gateway(node_index)}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }
    return json.dumps(config, indent=2) + "\n"


def write_conflist(conf_dir: Path, node_index: int) -> Path:
    """Write the node's conflist into ``conf_dir`` and return its path."""
    conf_dir.mkdir(parents=True, exist_ok=True)
    path = conf_dir / "10-bench.conflist"
    path.write_text(conflist(node_index), encoding="utf-8")
    return path
