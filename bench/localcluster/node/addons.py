"""kube-scheduler, kube-proxy and CoreDNS: what makes Pods land and Services resolve.

All three run as processes inside the run's network namespace (they need no image):

* **kube-scheduler** with its own client certificate (``system:kube-scheduler``, bound by
  the apiserver's bootstrap RBAC), no leader election.
* **kube-proxy** in iptables mode, one per node, as ``system:kube-proxy``. Its conntrack
  knobs are zeroed so it changes no sysctl of the machine (``nf_conntrack_max`` is
  read-only outside the initial namespace, the timeouts would be global on older kernels).
* **CoreDNS** on the first node's address, port 53, serving the cluster zone from the
  ``kubernetes`` plugin and the reverse zones of the pod and Service ranges. It has no
  ``forward``: a name outside those zones matches no server block and CoreDNS answers
  REFUSED, so no query ever goes to the machine's resolver.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CLUSTER_DOMAIN = "cluster.local"


def scheduler_argv(scheduler: Path, *, kubeconfig: Path, port: int, cert_dir: Path) -> list[str]:
    """kube-scheduler's command line, serving /healthz on 127.0.0.1:``port``."""
    return [
        str(scheduler),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--authentication-skip-lookup=true",
        "--leader-elect=false",
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        f"--cert-dir={cert_dir}",
        "--profiling=false",
    ]


def kube_proxy_configuration(
    *, kubeconfig: Path, node_name: str, cluster_cidr: str, healthz_port: int, metrics_port: int
) -> dict[str, Any]:
    """A KubeProxyConfiguration for one node (see the module docstring)."""
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "hostnameOverride": node_name,
        "mode": "iptables",
        "clusterCIDR": cluster_cidr,
        "healthzBindAddress": f"127.0.0.1:{healthz_port}",
        "metricsBindAddress": f"127.0.0.1:{metrics_port}",
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
        },
        # The Service range is routed onto the node's veth; replies from a backend on the
        # same bridge must come back through the namespace's conntrack.
        "iptables": {"masqueradeAll": True, "syncPeriod": "5s", "minSyncPeriod": "0s"},
        "nodePortAddresses": ["primary"],
    }


def write_json(path: Path, document: dict[str, Any]) -> Path:
    """Write ``document`` as JSON (valid YAML for the components that read it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return path


def kube_proxy_argv(kube_proxy: Path, config: Path) -> list[str]:
    """kube-proxy's command line."""
    return [str(kube_proxy), f"--config={config}", "--v=1"]


def corefile(*, address: str, kubeconfig: Path, ready_port: int, reverse_zones: tuple[str, ...]) -> str:
    """CoreDNS's Corefile: the cluster zone and reverse zones only, bound to ``address``."""
    zones = " ".join((CLUSTER_DOMAIN, *reverse_zones))
    return f"""\
{zones} {{
    bind {address}
    errors
    ready 127.0.0.1:{ready_port}
    kubernetes {zones} {{
        kubeconfig {kubeconfig}
        pods insecure
        ttl 5
    }}
    cache 5
}}
"""


def coredns_argv(coredns: Path, corefile_path: Path) -> list[str]:
    """CoreDNS's command line."""
    return [str(coredns), "-conf", str(corefile_path)]
