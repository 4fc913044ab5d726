"""otel-injector installed the way users install it: its image on the nodes, then
``helm install`` of ``deploy/helm/otel-injector`` with default values plus the image.

What the cluster gets is exactly what a user's cluster gets: two replicas of the chart's
Deployment running as pods on the real node(s), self-managed certificates, the PDB, and
the MutatingWebhookConfiguration reaching the webhook through its **Service** (no
``url``). The apiserver runs inside the run's network namespace, where kube-proxy keeps
its iptables rules, so its call to the Service's ClusterIP is DNAT-ed to a pod like any
other in-cluster client's (the apiserver resolves a webhook Service to its ClusterIP
itself and verifies the certificate for ``<service>.<ns>.svc``: no DNS lookup at all).

Only these values are set on top of the defaults (:func:`bench_values`): the image
(imported into every node's containerd beforehand, since nothing is ever pulled), and
the bench's Jaeger as the sidecars' exporter and the webhook's trace endpoint.

helm keeps its cache, config and data under the run's work directory, so it touches
nothing of the machine's home.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.localcluster import binaries as _binaries
from bench.localcluster.node import containerd
from bench.localcluster.node.cluster import NodeCluster
from bench.localcluster.process import ControlPlaneError

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "deploy" / "helm" / "otel-injector"
RELEASE = "otel-injector"
NAMESPACE = "otel-injector"
HELM_TIMEOUT_SECONDS = 180.0


@dataclass(frozen=True)
class WebhookImage:
    """An image of otel-injector to import into the nodes: its reference and archive."""

    name: str
    archive: Path

    @property
    def repository(self) -> str:
        return self.name.rsplit(":", 1)[0]

    @property
    def tag(self) -> str:
        return self.name.rsplit(":", 1)[1]


@dataclass
class ChartRelease:
    """A release of the chart on a running cluster."""

    cluster: NodeCluster
    helm_path: Path
    image: WebhookImage
    values: dict[str, Any]
    release: str = RELEASE
    namespace: str = NAMESPACE
    install_seconds: float = 0.0
    history: list[str] = field(default_factory=list)

    def helm(
        self, *args: str, check: bool = True, timeout: float = HELM_TIMEOUT_SECONDS
    ) -> subprocess.CompletedProcess[str]:
        """Run helm against the cluster (its state dirs under the work directory)."""
        return run_helm(self.cluster, self.helm_path, *args, check=check, timeout=timeout)

    def upgrade(self, values: Mapping[str, Any], *, wait: bool = True) -> subprocess.CompletedProcess[str]:
        """``helm upgrade`` with ``values`` merged over the current ones."""
        self.values = merge(self.values, values)
        path = write_values(self.cluster, self.values, f"values-{len(self.history) + 1}.json")
        args = ["upgrade", self.release, str(CHART), "-n", self.namespace, "-f", str(path)]
        if wait:
            args += ["--wait", "--timeout", f"{int(HELM_TIMEOUT_SECONDS)}s"]
        self.history.append("upgrade")
        return self.helm(*args)

    def uninstall(self, *, wait: bool = True) -> subprocess.CompletedProcess[str]:
        """``helm uninstall`` (waiting until every object is gone)."""
        args = ["uninstall", self.release, "-n", self.namespace]
        if wait:
            args += ["--wait", "--timeout", f"{int(HELM_TIMEOUT_SECONDS)}s"]
        self.history.append("uninstall")
        return self.helm(*args)

    def pods(self) -> list[dict[str, Any]]:
        """The injector's pods (including terminating ones)."""
        out = self.cluster.kubectl(
            "get", "pods", "-n", self.namespace, "-l", f"app.kubernetes.io/instance={self.release}", "-o", "json"
        )
        items: list[dict[str, Any]] = json.loads(out.stdout)["items"]
        return items


def merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``extra`` deep-merged over ``base`` (dicts merge, everything else replaces)."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def helm_env(cluster: NodeCluster) -> dict[str, str]:
    """helm's environment: the admin kubeconfig and state dirs inside the run."""
    import os

    home = cluster.workdir / "helm"
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "KUBECONFIG": str(cluster.kubeconfig),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
        # Its Kubernetes client keeps a discovery cache under $HOME/.kube.
        "HOME": str(home),
    }


def run_helm(
    cluster: NodeCluster, helm: Path, *args: str, check: bool = True, timeout: float = HELM_TIMEOUT_SECONDS
) -> subprocess.CompletedProcess[str]:
    """helm ``args`` against ``cluster``; raises ControlPlaneError with its output on failure."""
    argv = [str(helm), *args]
    result = subprocess.run(
        argv, env=helm_env(cluster), capture_output=True, text=True, timeout=timeout + 30, check=False
    )
    if check and result.returncode != 0:
        raise ControlPlaneError(
            cluster.failure_report(
                f"helm {' '.join(args)} failed ({result.returncode}):\n{result.stderr}{result.stdout}"
            )
        )
    return result


def import_image(cluster: NodeCluster, image: WebhookImage, log: Callable[[str], None]) -> None:
    """Load ``image`` into every node's containerd (``ctr images import``)."""
    ctr = cluster.binaries.path("ctr")
    enter = cluster.namespaces.argv([])
    for node in cluster.nodes:
        started = time.monotonic()
        containerd.import_image(ctr, node.containerd, image.archive, enter=enter, timeout=300)
        log(f"[chart] {node.name}: imported {image.name} in {time.monotonic() - started:.1f}s")


def bench_values(cluster: NodeCluster, image: WebhookImage) -> dict[str, Any]:
    """Default values plus the image and the bench's Jaeger (see the module docstring)."""
    return {
        "webhook": {
            "image": {"repository": image.repository, "tag": image.tag, "pullPolicy": "IfNotPresent"},
            "tracing": {"enabled": True, "endpoint": cluster.jaeger_otlp_http_endpoint, "protocol": "http/protobuf"},
        },
        "collector": {"exporterEndpoint": cluster.jaeger_otlp_grpc_endpoint},
    }


def write_values(cluster: NodeCluster, values: Mapping[str, Any], name: str) -> Path:
    path = cluster.workdir / "helm" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(values, indent=2) + "\n", encoding="utf-8")
    return path


def find_helm(log: Callable[[str], None]) -> Path:
    """The cached helm binary (built from its module the first time)."""
    return Path(_binaries.ensure_binaries({"helm"}, log=log).helm)


def install_chart(
    cluster: NodeCluster,
    image: WebhookImage,
    *,
    values: Mapping[str, Any] | None = None,
    preloaded: bool = False,
    log: Callable[[str], None] = lambda message: print(message, file=sys.stderr, flush=True),
) -> ChartRelease:
    """Import ``image`` (unless ``preloaded``: given to the cluster as an extra image),
    ``helm install --wait`` the chart and wait for the caBundle.

    Returns once both replicas are Ready (helm's ``--wait``) and the webhook has patched
    its caBundle into the MutatingWebhookConfiguration, i.e. once the apiserver can call
    it. Raises ControlPlaneError with the components' logs on failure."""
    helm = find_helm(log)
    if not preloaded:
        import_image(cluster, image, log)
    all_values = merge(bench_values(cluster, image), values or {})
    path = write_values(cluster, all_values, "values.json")
    started = time.monotonic()
    log(f"[chart] helm install {RELEASE} {CHART.relative_to(REPO_ROOT)} -n {NAMESPACE} (image {image.name})")
    try:
        run_helm(
            cluster,
            helm,
            "install",
            RELEASE,
            str(CHART),
            "-n",
            NAMESPACE,
            "--create-namespace",
            "--set",
            "namespace.create=false",
            "-f",
            str(path),
            "--wait",
            "--timeout",
            f"{int(HELM_TIMEOUT_SECONDS)}s",
        )
    except ControlPlaneError as exc:
        raise ControlPlaneError(f"{exc}\n{pod_report(cluster, NAMESPACE)}") from exc
    release = ChartRelease(cluster=cluster, helm_path=helm, image=image, values=all_values)
    wait_ca_bundle(cluster, str(all_values.get("webhook", {}).get("configName", "otel-injector")))
    release.install_seconds = time.monotonic() - started
    log(f"[chart] installed and serving in {release.install_seconds:.1f}s")
    return release


def wait_ca_bundle(cluster: NodeCluster, config_name: str, timeout: float = 60.0) -> None:
    """Until every webhook of ``config_name`` has a caBundle."""
    deadline = time.monotonic() + timeout
    while True:
        result = cluster.kubectl("get", "mutatingwebhookconfiguration", config_name, "-o", "json", check=False)
        if result.returncode == 0:
            hooks = json.loads(result.stdout).get("webhooks") or []
            if hooks and all((h.get("clientConfig") or {}).get("caBundle") for h in hooks):
                return
        if time.monotonic() > deadline:
            raise ControlPlaneError(cluster.failure_report(f"no caBundle on {config_name} after {timeout:.0f}s"))
        time.sleep(0.5)


def webhook_image(log: Callable[[str], None]) -> WebhookImage:
    """otel-injector's own image, built from the top-level Dockerfile with BuildKit
    (:mod:`bench.localcluster.images.injector`), or taken from its cache. Call it before
    starting the cluster: a build holds the image lock, never the node lock."""
    from bench.localcluster.images.injector import ensure_injector_image

    built = ensure_injector_image(log=log)
    return WebhookImage(name=built.name, archive=built.archive)


def pod_report(cluster: NodeCluster, namespace: str) -> str:
    """Pods, events and each pod's log tail in ``namespace``, for a failure message."""
    parts = [cluster.kubectl("get", "pods,events", "-n", namespace, "-o", "wide", check=False).stdout]
    names = cluster.kubectl("get", "pods", "-n", namespace, "-o", "name", check=False).stdout.split()
    for name in names:
        for previous in ("--previous=true", "--previous=false"):
            out = cluster.kubectl("logs", "-n", namespace, name, previous, "--tail=30", check=False)
            parts.append(f"--- kubectl logs {name} {previous} ---\n{out.stdout}{out.stderr}")
    return "\n".join(parts)
