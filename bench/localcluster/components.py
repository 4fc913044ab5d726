"""Command lines, configs and readiness probes of the control-plane components.

Pure functions: ports, paths and endpoints in, argv or file text out. The control plane
(:mod:`bench.localcluster.controlplane`) decides where things live and starts them; the
node-enabled cluster reuses the same functions inside its namespaces.
"""

from __future__ import annotations

import http.client
import json
import ssl
import textwrap
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path


def jaeger_config(
    *,
    otlp_grpc: int,
    otlp_http: int,
    query_http: int,
    query_grpc: int,
    max_traces: int = 100_000,
    otlp_host: str = "127.0.0.1",
) -> str:
    """Jaeger v2 config with every listener on 127.0.0.1 and bounded in-memory storage.

    The OTLP receivers listen on ``otlp_host`` instead: a node-enabled cluster puts them
    on the node address, which pods reach (127.0.0.1 in a pod is the pod's own). Shared
    by the control plane and the benchmarks, so both run the same Jaeger."""
    # Every listener is named explicitly: Jaeger's built-in all-in-one config would open
    # 4317/4318/16686/8888/13133/... on all interfaces and clash with a collector.
    return textwrap.dedent(
        f"""\
        service:
          extensions: [jaeger_storage, jaeger_query]
          pipelines:
            traces:
              receivers: [otlp]
              processors: [batch]
              exporters: [jaeger_storage_exporter]
          telemetry:
            resource:
              service.name: jaeger
            metrics:
              level: none
            logs:
              level: info
        extensions:
          jaeger_storage:
            backends:
              memstore:
                memory:
                  max_traces: {max_traces}
          jaeger_query:
            storage:
              traces: memstore
            # On by default in v2: Jaeger would send its own spans to localhost:4317.
            enable_tracing: false
            http:
              endpoint: 127.0.0.1:{query_http}
            grpc:
              endpoint: 127.0.0.1:{query_grpc}
        receivers:
          otlp:
            protocols:
              grpc:
                endpoint: {otlp_host}:{otlp_grpc}
              http:
                endpoint: {otlp_host}:{otlp_http}
        processors:
          batch:
            timeout: 200ms
        exporters:
          jaeger_storage_exporter:
            trace_storage: memstore
        """
    )


def etcd_argv(etcd: Path, *, data_dir: Path, client: int, peer: int, otlp_grpc_endpoint: str) -> list[str]:
    """etcd on 127.0.0.1 with its server-side spans (distributed tracing, every request
    sampled) sent to ``otlp_grpc_endpoint`` (``host:port``)."""
    client_url, peer_url = f"http://127.0.0.1:{client}", f"http://127.0.0.1:{peer}"
    return [
        str(etcd),
        "--name=bench",
        f"--data-dir={data_dir}",
        f"--listen-client-urls={client_url}",
        f"--advertise-client-urls={client_url}",
        f"--listen-peer-urls={peer_url}",
        f"--initial-advertise-peer-urls={peer_url}",
        f"--initial-cluster=bench={peer_url}",
        "--initial-cluster-state=new",
        "--unsafe-no-fsync",
        "--log-level=warn",
        # etcd 3.6 names; the --experimental- spellings are deprecated there.
        "--enable-distributed-tracing",
        f"--distributed-tracing-address={otlp_grpc_endpoint}",
        "--distributed-tracing-service-name=etcd",
        "--distributed-tracing-sampling-rate=1000000",
    ]


def etcd_ready(client: int) -> Callable[[], bool]:
    """etcd's /health says healthy."""

    def ready() -> bool:
        conn = http.client.HTTPConnection("127.0.0.1", client, timeout=2)
        try:
            conn.request("GET", "/health")
            resp = conn.getresponse()
            return resp.status == 200 and json.loads(resp.read()).get("health") == "true"
        finally:
            conn.close()

    return ready


def apiserver_tracing_config(otlp_grpc_endpoint: str) -> str:
    """The apiserver's TracingConfiguration. The endpoint is host:port for OTLP/gRPC
    without TLS; a URL fails validation."""
    return (
        "apiVersion: apiserver.config.k8s.io/v1\n"
        "kind: TracingConfiguration\n"
        f"endpoint: {otlp_grpc_endpoint}\n"
        # Controllers send no traceparent, so only sampling everything traces the pod
        # creations they make.
        "samplingRatePerMillion: 1000000\n"
    )


def apiserver_argv(
    apiserver: Path,
    *,
    etcd_url: str,
    port: int,
    workdir: Path,
    pki: dict[str, Path],
    server_url: str,
    service_cidr: str,
    tracing_config: Path,
    authorization_modes: Sequence[str],
    extra: Sequence[str],
    pod_address: str | None = None,
) -> list[str]:
    """kube-apiserver on 127.0.0.1:``port``; ``pki`` holds ``ca``, ``cert``, ``key``,
    ``sa_public`` and ``sa_private``.

    With ``pod_address`` (a cluster with nodes, all inside the run's network namespace)
    pods reach it too, as in a cluster: it listens on every address of that namespace,
    advertises ``pod_address`` as the endpoint of the ``kubernetes`` Service (so
    kube-proxy sends 10.0.0.1:443 there), and the ServiceAccount admission plugin mounts
    each pod's token, which the chart's Deployment uses to talk to it."""
    in_cluster = pod_address is not None
    return [
        str(apiserver),
        f"--etcd-servers={etcd_url}",
        f"--bind-address={'0.0.0.0' if in_cluster else '127.0.0.1'}",  # noqa: S104 (only the run's namespace)
        f"--advertise-address={pod_address or '127.0.0.1'}",
        f"--secure-port={port}",
        f"--cert-dir={workdir / 'apiserver-certs'}",
        f"--tls-cert-file={pki['cert']}",
        f"--tls-private-key-file={pki['key']}",
        f"--client-ca-file={pki['ca']}",
        f"--service-account-issuer={server_url}",
        f"--service-account-key-file={pki['sa_public']}",
        f"--service-account-signing-key-file={pki['sa_private']}",
        f"--service-cluster-ip-range={service_cidr}",
        f"--authorization-mode={','.join(authorization_modes)}",
        "--allow-privileged=true",
        # Without it every namespace needs a "default" ServiceAccount (made by a
        # controller not run here) before a pod can be created in it.
        *([] if in_cluster else ["--disable-admission-plugins=ServiceAccount"]),
        f"--tracing-config-file={tracing_config}",
        "--profiling=false",
        # The default reconciler keeps rejecting 127.0.0.1 as an endpoint of the
        # "kubernetes" Service (loopback is not allowed there); nothing here needs it.
        f"--endpoint-reconciler-type={'lease' if in_cluster else 'none'}",
        *extra,
    ]


def controller_manager_argv(
    kcm: Path,
    *,
    kubeconfig: Path,
    controllers: Sequence[str],
    port: int,
    cert_dir: Path,
    extra: Sequence[str] = (),
) -> list[str]:
    """kube-controller-manager running ``controllers``, serving on 127.0.0.1:``port``."""
    return [
        str(kcm),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        # The apiserver has no front-proxy (requestheader) CA to look up; without
        # this the controller-manager logs an error about it every few seconds.
        "--authentication-skip-lookup=true",
        f"--controllers={','.join(controllers)}",
        "--leader-elect=false",
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        f"--cert-dir={cert_dir}",
        "--profiling=false",
        *extra,
    ]


def http_ok(port: int, path: str = "/healthz", *, tls: bool = False) -> Callable[[], bool]:
    """A probe: GET 127.0.0.1:``port``/``path`` answers 200. With ``tls`` the server's
    self-signed certificate is not verified: components serve /healthz (in their
    always-allowed paths) on one, and only its status matters."""
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE

    def ready() -> bool:
        conn: http.client.HTTPConnection = (
            http.client.HTTPSConnection("127.0.0.1", port, context=insecure, timeout=2)
            if tls
            else http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        )
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            resp.read()
            return resp.status == 200
        finally:
            conn.close()

    return ready


def jaeger_ready(query_http: int) -> Callable[[], bool]:
    """Jaeger's query API lists services."""

    def ready() -> bool:
        conn = http.client.HTTPConnection("127.0.0.1", query_http, timeout=2)
        try:
            conn.request("GET", "/api/services")
            resp = conn.getresponse()
            body = resp.read()
            return resp.status == 200 and "data" in json.loads(body)
        finally:
            conn.close()

    return ready


def kubeconfig(
    server_url: str, ca_cert: Path, user: str, credentials: Mapping[str, str], *, cluster: str, context: str
) -> str:
    """A kubeconfig for ``server_url`` with one ``user`` and its ``credentials``."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster, "cluster": {"server": server_url, "certificate-authority": str(ca_cert)}}],
        "users": [{"name": user, "user": dict(credentials)}],
        "contexts": [{"name": context, "context": {"cluster": cluster, "user": user}}],
        "current-context": context,
    }
    # JSON is valid YAML, so no YAML writer is needed.
    return json.dumps(config, indent=2) + "\n"
