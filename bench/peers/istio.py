"""istiod's sidecar injector, out of cluster, against the bench's control plane.

What it takes (measured on this machine, see issue 13):

* a working directory with ``var/lib/istio/inject/{config,values}`` and
  ``etc/istio/config/mesh``, taken from ``helm template`` of the module's own chart
  ``manifests/charts/istio-control/istio-discovery`` (istiod reads these relative paths);
* a serving certificate for 127.0.0.1 in ``var/run/secrets/istiod/tls`` (istiod uses it
  instead of minting its own when the three files are there);
* the CRDs of ``manifests/charts/base/files/crd-all.gen.yaml`` and the ``istio-system``
  namespace;
* env ``POD_NAMESPACE=istio-system REVISION=default`` and empty webhook configuration
  names, so istiod patches no webhook configuration: the bench registers its own, by URL;
* every listening address on 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from bench.peers.builds import ISTIO_VERSION, module_dir
from bench.peers.webhooks import PEER_LABEL, SHAPES, Peer, bench_configuration, create_namespace, process_tree

NAMESPACE = "peer-istio"
CHART = Path("manifests/charts/istio-control/istio-discovery")
CRDS = Path("manifests/charts/base/files/crd-all.gen.yaml")


def helm_files(helm: Path, source: Path) -> dict[str, str]:
    """The injection config, its values and the mesh config from ``helm template`` of the
    chart in ``source`` (the istio module), by their path under istiod's working dir."""
    done = subprocess.run(
        [str(helm), "template", "istiod", str(source / CHART), "--namespace", "istio-system"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"helm template of the istiod chart failed: {done.stderr[-1000:]}")
    maps = {
        doc["metadata"]["name"]: doc.get("data") or {}
        for doc in yaml.safe_load_all(done.stdout)
        if isinstance(doc, dict) and doc.get("kind") == "ConfigMap"
    }
    try:
        return {
            "var/lib/istio/inject/config": maps["istio-sidecar-injector"]["config"],
            "var/lib/istio/inject/values": maps["istio-sidecar-injector"]["values"],
            "etc/istio/config/mesh": maps["istio"]["mesh"],
        }
    except KeyError as err:
        raise RuntimeError(f"the istiod chart no longer renders {err}") from err


def _ready(url: str) -> Callable[[], bool]:
    def probe() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:  # noqa: S310 - loopback URL we built
                return bool(reply.status == 200)
        except OSError:
            return False

    return probe


def start_istiod(cp: Any, binary: Path, tls_dir: Path, ca_bundle: str, log: Callable[[str], None]) -> Peer:
    """Start pilot-discovery on loopback, register its ``/inject`` by URL, and return it."""
    from bench.localcluster import binaries
    from bench.localcluster.controlplane import free_port

    source = module_dir("istio")
    helm = binaries.ensure_binaries(["helm"], log=log).helm
    home = cp.workdir / "istiod"
    for rel, text in helm_files(helm, source).items():
        (home / rel).parent.mkdir(parents=True, exist_ok=True)
        (home / rel).write_text(text, encoding="utf-8")
    certs = home / "var/run/secrets/istiod/tls"
    certs.mkdir(parents=True, exist_ok=True)
    for name in ("tls.crt", "tls.key", "ca.crt"):
        shutil.copy(tls_dir / name, certs / name)

    create_namespace(cp, "istio-system", {})
    # create, not apply: the CRDs are too big for the last-applied annotation.
    cp.kubectl("create", "-f", str(source / CRDS), timeout=300)
    http_port, https_port, grpc, secure_grpc, monitoring, ctrlz = (free_port() for _ in range(6))
    argv = [
        str(binary),
        "discovery",
        "--kubeconfig",
        str(cp.kubeconfig),
        f"--httpAddr=127.0.0.1:{http_port}",
        f"--httpsAddr=127.0.0.1:{https_port}",
        f"--grpcAddr=127.0.0.1:{grpc}",
        f"--secureGRPCAddr=127.0.0.1:{secure_grpc}",
        f"--monitoringAddr=127.0.0.1:{monitoring}",
        "--ctrlz_address=127.0.0.1",
        f"--ctrlz_port={ctrlz}",
        "--domain=cluster.local",
        "--log_output_level=default:warn",
    ]
    env = {
        **os.environ,
        "POD_NAMESPACE": "istio-system",
        "POD_NAME": "istiod-bench",
        "REVISION": "default",
        "INJECTION_WEBHOOK_CONFIG_NAME": "",
        "VALIDATION_WEBHOOK_CONFIG_NAME": "",
        "PILOT_ENABLE_GATEWAY_API": "false",
        "PILOT_ENABLE_ANALYSIS": "false",
        "CLUSTER_ID": "Kubernetes",
        # As the chart sets it from the pod's CPU limit; the machine has 2 cores.
        "GOMAXPROCS": str(os.cpu_count() or 2),
    }
    log(f"[istio] starting pilot-discovery, webhooks on 127.0.0.1:{https_port}")
    process = cp.start_process(
        "istiod", argv, env=env, ready=_ready(f"http://127.0.0.1:{http_port}/ready"), timeout=180, cwd=home
    )
    url = f"https://127.0.0.1:{https_port}/inject"
    cp.kubectl("apply", "-f", "-", input=yaml.safe_dump(bench_configuration("istio", url, ca_bundle, "istio")))
    create_namespace(cp, NAMESPACE, {PEER_LABEL: "istio"})
    return Peer(
        name="istio",
        version=ISTIO_VERSION,
        namespaces=dict.fromkeys(SHAPES, NAMESPACE),
        endpoints=dict.fromkeys(SHAPES, url),
        pids=lambda: process_tree(process.pid) if process.pid else [],
        context=ssl.create_default_context(cafile=str(tls_dir / "ca.crt")),
        marker=b'"istio-proxy"',
        hook_names=["istio.peers.bench.otel-injector.io"],
    )


if __name__ == "__main__":  # pragma: no cover - a manual check of the chart rendering
    from bench.localcluster import binaries as _b

    for path, text in helm_files(_b.ensure_binaries(["helm"]).helm, module_dir("istio")).items():
        print(f"{path}: {len(text)} bytes", file=sys.stderr)
