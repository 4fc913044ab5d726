"""otel-injector installed on a local :class:`~bench.localcluster.controlplane.ControlPlane`.

The same pieces a cluster gets, wired for loopback:

* TLS from ``otel-injector certs`` (the manual path), for ``127.0.0.1``;
* ``otel-injector serve`` as a managed process, tracing itself to the bench's Jaeger and
  running the ConfigMap reconciler against the local apiserver;
* the injector namespace and the source collector ConfigMap (from ``deploy/collector``,
  exporting to the bench's Jaeger);
* the ``MutatingWebhookConfiguration`` from ``deploy/kustomize/base``, the very object a
  cluster gets, with ``clientConfig.service`` replaced by a ``url:`` and the caBundle.
"""

from __future__ import annotations

import copy
import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench.localcluster.controlplane import ControlPlane, ControlPlaneError, ManagedProcess, free_port
from webhook.core import names

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY_DIR = REPO_ROOT / "deploy"
WEBHOOK_MANIFEST = DEPLOY_DIR / "kustomize" / "base" / "mutatingwebhookconfiguration.yaml"
COLLECTOR_CONFIG = DEPLOY_DIR / "collector" / "config.yaml"
EXPORTER_PLACEHOLDER = "${env:OTEL_INJECTOR_EXPORTER_ENDPOINT}"
INJECTOR_NAMESPACE = "otel-injector"
PROCESS_NAME = "otel-injector"


def _require(path: Path) -> Path:
    if not path.is_file():
        raise ControlPlaneError(
            f"{path} is missing: the local install uses the project's own deploy/ manifests, "
            "so run it from a checkout of the repository"
        )
    return path


def collector_config(exporter_endpoint: str) -> str:
    """The default sidecar config from ``deploy/collector``, exporting to ``exporter_endpoint``
    (``host:port`` of an OTLP gRPC receiver)."""
    text = _require(COLLECTOR_CONFIG).read_text(encoding="utf-8")
    if EXPORTER_PLACEHOLDER not in text:
        raise ControlPlaneError(f"{COLLECTOR_CONFIG} no longer has the {EXPORTER_PLACEHOLDER} placeholder")
    return text.replace(EXPORTER_PLACEHOLDER, exporter_endpoint)


def webhook_configuration(url: str, ca_bundle: str, *, name: str | None = None) -> dict[str, Any]:
    """The deploy/ MutatingWebhookConfiguration, pointed at ``url`` with ``ca_bundle``.

    Only ``clientConfig`` changes: selectors, rules, policies and timeouts stay exactly
    as a cluster gets them."""
    manifest = yaml.safe_load(_require(WEBHOOK_MANIFEST).read_text(encoding="utf-8"))
    if not isinstance(manifest, dict) or manifest.get("kind") != "MutatingWebhookConfiguration":
        raise ControlPlaneError(f"{WEBHOOK_MANIFEST} does not hold a MutatingWebhookConfiguration")
    manifest = copy.deepcopy(manifest)
    if name:
        manifest["metadata"]["name"] = name
    manifest["metadata"].pop("annotations", None)  # cert-manager injection does not apply here
    for hook in manifest["webhooks"]:
        path = hook["clientConfig"].get("service", {}).get("path", "/mutate")
        hook["clientConfig"] = {"url": url.rstrip("/") + path, "caBundle": ca_bundle}
    return manifest


@dataclass
class LocalInjector:
    """A running webhook on the control plane."""

    process: ManagedProcess
    url: str
    tls_dir: Path
    ca_bundle: str
    webhook_config_name: str

    def ssl_context(self) -> ssl.SSLContext:
        """Trusts the webhook's CA, for calling it directly."""
        return ssl.create_default_context(cafile=str(self.tls_dir / "ca.crt"))


def serve_argv(port: int, tls_cert: str | Path, tls_key: str | Path) -> list[str]:
    """The command line of ``otel-injector serve`` on 127.0.0.1:``port`` with this
    interpreter and the given serving cert and key."""
    return [
        sys.executable,
        "-m",
        "webhook",
        "serve",
        "--port",
        str(port),
        "--bind-address",
        "127.0.0.1",
        "--tls-cert",
        str(tls_cert),
        "--tls-key",
        str(tls_key),
    ]


def https_get(
    port: int, path: str, context: ssl.SSLContext, server_hostname: str | None = None, timeout: float = 5.0
) -> tuple[int, bytes]:
    """GET ``path`` from 127.0.0.1:``port`` on a new TLS connection verified with ``context``
    for ``server_hostname`` (default 127.0.0.1), as the apiserver calls a webhook.

    Returns (HTTP status, 0 when the answer is not HTTP; the peer certificate in DER)."""
    hostname = server_hostname or "127.0.0.1"
    with (
        socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw,
        context.wrap_socket(raw, server_hostname=hostname) as tls,
    ):
        peer = tls.getpeercert(binary_form=True) or b""
        tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {hostname}\r\nConnection: close\r\n\r\n".encode())
        response = b""
        while chunk := tls.recv(65536):
            response += chunk
    status = int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/") else 0
    return status, peer


def https_ready(
    port: int,
    context: Callable[[], ssl.SSLContext | None],
    *,
    server_hostname: str | None = None,
    path: str = "/readyz",
    timeout: float = 2.0,
) -> Callable[[], bool]:
    """A readiness probe for :meth:`ControlPlane.start_process`: ``path`` answers 200 over
    TLS verified with the context ``context()`` returns (``None``: not known yet, so not
    ready); see :func:`https_get`."""

    def ready() -> bool:
        verified = context()
        if verified is None:
            return False
        try:
            status, _ = https_get(port, path, verified, server_hostname, timeout=timeout)
        except OSError:
            return False
        return status == 200

    return ready


def install(
    cp: ControlPlane,
    *,
    extra_env: Mapping[str, str] | None = None,
    register: bool = True,
    log: Callable[[str], None] = lambda message: print(message, file=sys.stderr),
) -> LocalInjector:
    """Create the injector namespace and source config, start ``otel-injector serve`` and
    register the webhook. Returns once the webhook answers ``/readyz``."""
    tls_dir = cp.workdir / "webhook-tls"
    port = free_port()
    certs = subprocess.run(
        [
            sys.executable,
            "-m",
            "webhook",
            "certs",
            "--out",
            str(tls_dir),
            "--dns-name",
            "localhost",
            "--ip",
            "127.0.0.1",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if certs.returncode != 0:
        raise ControlPlaneError(f"otel-injector certs failed: {certs.stderr.strip()}")
    ca_bundle = certs.stdout.strip()

    cp.kubectl("create", "namespace", INJECTOR_NAMESPACE)
    source = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "otel-injector-collector-config", "namespace": INJECTOR_NAMESPACE},
        "data": {names.CONFIG_KEY: collector_config(cp.jaeger_otlp_grpc_endpoint)},
    }
    cp.kubectl("apply", "-f", "-", input=yaml.safe_dump(source))

    env = {
        "KUBECONFIG": str(cp.kubeconfig),
        "POD_NAMESPACE": INJECTOR_NAMESPACE,
        "OTEL_INJECTOR_RECONCILE": "true",
        # As the chart: namespace defaults, named collector configs and envFrom values.
        "OTEL_INJECTOR_CLUSTER_CONTEXT": "true",
        "OTEL_INJECTOR_LOG_LEVEL": "INFO",
        "OTEL_SERVICE_NAME": "otel-injector",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_ENDPOINT": cp.jaeger_otlp_http_endpoint,
        # Short batches, so a demo or a test sees its spans in Jaeger within a second.
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        **(extra_env or {}),
    }
    url = f"https://127.0.0.1:{port}"
    context = ssl.create_default_context(cafile=str(tls_dir / "ca.crt"))
    argv = serve_argv(port, tls_dir / "tls.crt", tls_dir / "tls.key")
    # Inside a node-enabled cluster the webhook runs in the run's network namespace; the
    # relay lets this process (and its readiness probe) reach it on the same port.
    cp.expose(port)
    log(f"[otel-injector] starting the webhook at {url}")
    process = cp.start_process(
        PROCESS_NAME, argv, env={**os.environ, **env}, ready=https_ready(port, lambda: context), timeout=60
    )
    injector = LocalInjector(process=process, url=url, tls_dir=tls_dir, ca_bundle=ca_bundle, webhook_config_name="")
    if register:
        manifest = webhook_configuration(url, ca_bundle)
        cp.kubectl("apply", "-f", "-", input=yaml.safe_dump(manifest))
        injector.webhook_config_name = manifest["metadata"]["name"]
        log(f"[otel-injector] registered MutatingWebhookConfiguration {injector.webhook_config_name}")
    return injector


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 30.0, interval: float = 0.25) -> Any:
    """Poll ``probe`` until it returns something truthy; raise with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise ControlPlaneError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
