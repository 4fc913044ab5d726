"""kubelet for one node: credentials, KubeletConfiguration and command line.

The configuration is a real node's, with what this machine kind needs and nothing that
would reach outside the run:

* ``failCgroupV1: false`` and ``cgroupDriver: cgroupfs``: the machine runs cgroup v1
  (hybrid) without systemd as init; kubelet 1.35+ refuses v1 unless told.
* ``cgroupRoot: /otel-injector-<run>-<node>``: the pods' cgroups live under a root of the
  run's own, created and removed by :mod:`bench.localcluster.node.hoststate`.
* ``resolvConf: ""`` and ``clusterDNS`` = the bench's CoreDNS: a pod's only nameserver is
  CoreDNS, which answers the cluster zone and nothing else.
* ``address`` = the node address, ``healthzBindAddress: 127.0.0.1``, ``readOnlyPort: 0``.
* x509 client authentication against the cluster CA and ``Webhook`` authorization (the
  apiserver's SubjectAccessReview), as a real node does.
* lenient eviction and image-GC thresholds: a shared CI disk must not evict the bench's
  pods or delete its preloaded images (they cannot be pulled back).
* ``tracing``: kubelet's own spans (CRI calls, pod sync) go to the bench's Jaeger.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class KubeletPaths:
    """Where one node's kubelet keeps everything."""

    base: Path

    @property
    def root(self) -> Path:
        return self.base / "root"

    @property
    def config(self) -> Path:
        return self.base / "config.json"

    @property
    def kubeconfig(self) -> Path:
        return self.base / "kubeconfig"

    @property
    def cert_dir(self) -> Path:
        return self.base / "pki"

    @property
    def pod_logs(self) -> Path:
        return self.base / "pod-logs"

    @property
    def volume_plugins(self) -> Path:
        return self.base / "volume-plugins"


def configuration(
    paths: KubeletPaths,
    *,
    node_address: str,
    runtime_socket: Path,
    client_ca: Path,
    cluster_dns: str,
    cgroup_root: str,
    healthz_port: int,
    otlp_grpc_endpoint: str,
    cluster_domain: str = "cluster.local",
    max_pods: int = 30,
) -> dict[str, Any]:
    """The KubeletConfiguration of one node (see the module docstring)."""
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": cgroup_root,
        "cgroupsPerQOS": True,
        "failSwapOn": False,
        "containerRuntimeEndpoint": f"unix://{runtime_socket}",
        "address": node_address,
        "port": 10250,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": healthz_port,
        "authentication": {
            "x509": {"clientCAFile": str(client_ca)},
            "webhook": {"enabled": True},
            "anonymous": {"enabled": False},
        },
        "authorization": {"mode": "Webhook"},
        "podLogsDir": str(paths.pod_logs),
        "volumePluginDir": str(paths.volume_plugins),
        "resolvConf": "",
        "clusterDNS": [cluster_dns],
        "clusterDomain": cluster_domain,
        "maxPods": max_pods,
        "evictionHard": {
            "memory.available": "1Mi",
            "nodefs.available": "1%",
            "nodefs.inodesFree": "1%",
            "imagefs.available": "1%",
        },
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "serializeImagePulls": False,
        "protectKernelDefaults": False,
        "rotateCertificates": False,
        "serverTLSBootstrap": False,
        "registerNode": True,
        "kernelMemcgNotification": False,
        "tracing": {"endpoint": otlp_grpc_endpoint, "samplingRatePerMillion": 1_000_000},
        # Faster status updates make "Ready" and container start times show up sooner;
        # the bench has one or two nodes, so the extra apiserver writes do not matter.
        "nodeStatusUpdateFrequency": "4s",
        "syncFrequency": "10s",
        "fileCheckFrequency": "10s",
        "shutdownGracePeriod": "0s",
    }


def write_configuration(paths: KubeletPaths, config: dict[str, Any]) -> Path:
    """Write ``config`` as JSON (valid YAML, which is what kubelet parses)."""
    paths.base.mkdir(parents=True, exist_ok=True)
    paths.config.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return paths.config


def argv(kubelet: Path, paths: KubeletPaths, *, node_name: str, node_address: str) -> list[str]:
    """kubelet's command line."""
    return [
        str(kubelet),
        f"--config={paths.config}",
        f"--kubeconfig={paths.kubeconfig}",
        f"--root-dir={paths.root}",
        f"--cert-dir={paths.cert_dir}",
        f"--hostname-override={node_name}",
        f"--node-ip={node_address}",
        "--v=1",
    ]
