"""Kyverno's admission controller, out of cluster, with the published ClusterPolicy.

Kyverno runs out of cluster by design: ``--serverIP=127.0.0.1:<port>`` makes it register
its own webhooks by URL with that IP (never a Service or a hostname), and
``--webhookServerHost=127.0.0.1`` keeps its server on loopback. From the module's
``config/install-latest-testing.yaml`` it needs the namespace, the CRDs and the two
ConfigMaps. The ``kyverno`` ConfigMap's ``webhooks`` entry is changed to select only the
bench's Kyverno namespace, so Kyverno is never called for the other webhooks' pods.

Settings that differ from the install manifest, and why:

* ``--admissionReports=false``: otherwise every admission writes a report object to the
  apiserver, load that all the interleaved webhooks would pay for;
* metrics on 127.0.0.1, controller-runtime metrics off (``0``): nothing listens beyond
  loopback; no registry credential helpers (they may call cloud metadata endpoints).
"""

from __future__ import annotations

import json
import os
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from bench.peers.builds import KYVERNO_VERSION, module_dir
from bench.peers.webhooks import PEER_LABEL, SHAPES, Peer, create_namespace, hooks_at, process_tree

NAMESPACE = "peer-kyverno"
INSTALL = Path("config/install-latest-testing.yaml")
POLICY = Path(__file__).resolve().parent / "kyverno-policy.yaml"
#: The kinds of the install manifest that the out-of-cluster controller needs.
NEEDED_KINDS = ("Namespace", "CustomResourceDefinition", "ConfigMap")


def install_objects(text: str) -> list[dict[str, Any]]:
    """The Namespace, CRDs and ConfigMaps of the install manifest; the ``kyverno``
    ConfigMap's webhook namespaceSelector narrowed to ``PEER_LABEL=kyverno``."""
    objects = [doc for doc in yaml.safe_load_all(text) if isinstance(doc, dict) and doc.get("kind") in NEEDED_KINDS]
    for doc in objects:
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == "kyverno":
            doc["data"]["webhooks"] = json.dumps({"namespaceSelector": {"matchLabels": {PEER_LABEL: "kyverno"}}})
    if not any(doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == "kyverno" for doc in objects):
        raise RuntimeError(f"{INSTALL} has no kyverno ConfigMap")
    return objects


def start_kyverno(cp: Any, binary: Path, log: Callable[[str], None]) -> Peer:
    """Start Kyverno, apply the policy and wait until Kyverno has registered its pod
    mutation webhook (it registers webhooks for the kinds its policies match)."""
    from bench.localcluster.controlplane import free_port

    objects = install_objects((module_dir("kyverno") / INSTALL).read_text(encoding="utf-8"))
    manifest = cp.workdir / "kyverno-install.yaml"
    manifest.write_text(yaml.safe_dump_all(objects), encoding="utf-8")
    cp.kubectl("create", "-f", str(manifest), timeout=300)
    cp.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=120s", timeout=180)

    port, metrics = free_port(), free_port()
    argv = [
        str(binary),
        f"--kubeconfig={cp.kubeconfig}",
        f"--serverIP=127.0.0.1:{port}",
        "--webhookServerHost=127.0.0.1",
        f"--webhookServerPort={port}",
        "--caSecretName=kyverno-svc.kyverno.svc.kyverno-tls-ca",
        "--tlsSecretName=kyverno-svc.kyverno.svc.kyverno-tls-pair",
        "--servicePort=443",
        "--backgroundServiceAccountName=system:serviceaccount:kyverno:kyverno-background-controller",
        "--reportsServiceAccountName=system:serviceaccount:kyverno:kyverno-reports-controller",
        "--admissionReports=false",
        "--autoUpdateWebhooks=true",
        "--enableConfigMapCaching=true",
        "--enableDeferredLoading=true",
        "--metricsHost=127.0.0.1",
        f"--metricsPort={metrics}",
        "--controllerRuntimeMetricsAddress=0",
        "--omitEvents=PolicyApplied,PolicySkipped",
        "--enablePolicyException=false",
        "--loggingFormat=text",
        "--v=1",
    ]
    env = {
        **os.environ,
        "INIT_CONFIG": "kyverno",
        "METRICS_CONFIG": "kyverno-metrics",
        "KYVERNO_NAMESPACE": "kyverno",
        "KYVERNO_POD_NAME": "kyverno-admission-controller-bench",
        "KYVERNO_SERVICEACCOUNT_NAME": "kyverno-admission-controller",
        "KYVERNO_ROLE_NAME": "kyverno:admission-controller",
        "KYVERNO_SVC": "kyverno-svc",
        "KYVERNO_DEPLOYMENT": "kyverno-admission-controller",
        "TUF_ROOT": str(cp.workdir / "kyverno-sigstore"),
    }
    base = f"https://127.0.0.1:{port}"
    log(f"[kyverno] starting the admission controller at {base}")
    process = cp.start_process("kyverno", argv, env=env, timeout=60)
    create_namespace(cp, NAMESPACE, {PEER_LABEL: "kyverno"})
    cp.kubectl("apply", "-f", str(POLICY))
    hooks = _wait_for_pod_hook(cp, base, process, timeout=240)
    ca = _ca_bundle(cp, base)
    context = ssl.create_default_context(cadata=ca)
    url = _hook_url(cp, base)
    return Peer(
        name="kyverno",
        version=KYVERNO_VERSION,
        namespaces=dict.fromkeys(SHAPES, NAMESPACE),
        endpoints=dict.fromkeys(SHAPES, url),
        pids=lambda: process_tree(process.pid) if process.pid else [],
        context=context,
        marker=b'"otel-collector"',
        hook_names=hooks,
    )


def _pod_hooks(cp: Any, base: str) -> list[dict[str, Any]]:
    listing = json.loads(cp.kubectl("get", "mutatingwebhookconfigurations", "-o", "json").stdout)
    found = []
    for item in listing.get("items") or []:
        for hook in item.get("webhooks") or []:
            if not str((hook.get("clientConfig") or {}).get("url", "")).startswith(base):
                continue
            if any("pods" in (rule.get("resources") or []) for rule in hook.get("rules") or []):
                found.append(hook)
    return found


def _wait_for_pod_hook(cp: Any, base: str, process: Any, timeout: float) -> list[str]:
    """Until Kyverno has registered its pod hook *and* serves TLS with the CA in it: it
    registers the hooks before its leader has written the serving certificate secret."""
    from bench.localcluster.injector import https_get

    port = int(base.rsplit(":", 1)[1])
    deadline = time.monotonic() + timeout
    last = "no pod webhook registered yet"
    while time.monotonic() < deadline:
        if not process.is_running():
            raise RuntimeError(f"kyverno exited at start:\n{process.log_tail()}")
        if _pod_hooks(cp, base):
            try:
                context = ssl.create_default_context(cadata=_ca_bundle(cp, base))
                status, _ = https_get(port, "/health/readiness", context, timeout=5)
                if status == 200:
                    # All of Kyverno's hooks at this URL: the apiserver labels each by name.
                    return hooks_at(cp, base)
                last = f"/health/readiness answered {status}"
            except (OSError, ValueError) as err:
                last = f"not serving TLS yet: {err}"
        time.sleep(1.0)
    raise RuntimeError(f"kyverno not ready in {timeout:.0f} s ({last}):\n{process.log_tail()}")


def _hook_url(cp: Any, base: str) -> str:
    return str(_pod_hooks(cp, base)[0]["clientConfig"]["url"])


def _ca_bundle(cp: Any, base: str) -> str:
    import base64

    return base64.b64decode(_pod_hooks(cp, base)[0]["clientConfig"]["caBundle"]).decode()
