"""A real Kubernetes control plane on loopback: etcd, kube-apiserver, controller-manager, Jaeger.

``ControlPlane`` is a context manager. Entering it builds or finds the binaries (see
:mod:`bench.localcluster.binaries`), creates a temporary work directory, generates a
throw-away PKI and starts, each on free ports of 127.0.0.1 only:

* Jaeger v2 with in-memory storage, receiving OTLP over gRPC and HTTP and serving the
  query HTTP API; the apiserver sends its traces there;
* etcd (``--unsafe-no-fsync``: the data is thrown away anyway);
* kube-apiserver with RBAC, client-certificate auth and tracing at a 100 % sampling rate;
* kube-controller-manager running the deployment, replicaset, job, cronjob, namespace
  and garbage-collector controllers, so workloads turn into Pod objects. There is no
  scheduler and no kubelet: pods stay Pending, which is all an admission webhook needs.

Leaving the context stops every managed process (SIGTERM, then SIGKILL after a bound) and
removes the work directory unless ``OTEL_INJECTOR_KEEP_WORKDIR=1``. Every wait is bounded;
a component that does not become ready raises :class:`ControlPlaneError`, whose message
carries the tail of every component's log.

``python -m bench.localcluster.controlplane`` starts one and keeps it running until
Ctrl-C, printing how to reach it.
"""

from __future__ import annotations

import contextlib
import ctypes
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from bench.localcluster import binaries as _binaries
from bench.localcluster.pki import CertificateAuthority, service_account_key_pair

KEEP_WORKDIR_ENV = "OTEL_INJECTOR_KEEP_WORKDIR"

#: How long a stopping process gets between SIGTERM and SIGKILL.
STOP_GRACE_SECONDS = 10.0
#: Lines of each component's log quoted in a ControlPlaneError.
LOG_TAIL_LINES = 40

#: Controllers the controller-manager runs: enough for Deployments, Jobs and CronJobs to
#: create Pods, for namespaces to be deleted and for owned objects to be collected.
CONTROLLERS = (
    "deployment-controller",
    "replicaset-controller",
    "job-controller",
    "cronjob-controller",
    "namespace-controller",
    "garbage-collector-controller",
)

SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
#: First address of SERVICE_CLUSTER_IP_RANGE: the ``kubernetes`` Service's ClusterIP,
#: which the serving certificate must name.
_KUBERNETES_SERVICE_IP = "10.0.0.1"


class ControlPlaneError(RuntimeError):
    """A control-plane component failed to start or died; the message has the log tails."""


class KubectlError(subprocess.CalledProcessError):
    """kubectl exited non-zero; unlike CalledProcessError, str() includes its stderr."""

    def __str__(self) -> str:
        return f"{super().__str__()}\nstderr:\n{self.stderr}\nstdout:\n{self.output}"


def _stderr_log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _free_ports(count: int) -> list[int]:
    # All sockets stay bound until every port is picked, so the ports are distinct.
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [s.getsockname()[1] for s in socks]
    finally:
        for sock in socks:
            sock.close()


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 256 * 1024))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    return "\n".join(text.splitlines()[-lines:])


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    # A crashed or killed test run must not leave etcd/apiserver behind holding CPU and
    # ports. Linux delivers the signal when the *thread* that started the child exits,
    # so processes should be started from a long-lived thread (normally the main one).
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class ManagedProcess:
    """A child process with a log file, a readiness probe and bounded stop/restart.

    The process runs in its own session (so its whole process group can be signalled),
    with stdout and stderr appended to ``log_path``. :meth:`start` returns once
    ``ready()`` is true and raises :class:`ControlPlaneError` if the process exits or the
    probe stays false for ``timeout`` seconds.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        ready: Callable[[], bool] | None = None,
        timeout: float = 60.0,
        cwd: Path | None = None,
        describe_failure: Callable[[str], str] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.ready = ready if ready is not None else (lambda: True)
        self.timeout = timeout
        self.cwd = cwd
        self._describe_failure = describe_failure or (lambda msg: f"{msg}\n--- {name} log tail ---\n{self.log_tail()}")
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The process id while it has been started and not yet stopped, else None."""
        return self._proc.pid if self._proc is not None else None

    def is_running(self) -> bool:
        """Return whether the process has been started and has not exited."""
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """Return the last ``lines`` lines of the process's log."""
        return _tail(self.log_path, lines)

    def start(self) -> None:
        """Launch the process and wait (bounded by ``timeout``) until it is ready."""
        if self.is_running():
            raise ControlPlaneError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ) if self.env is None else {**os.environ, **self.env}
        with self.log_path.open("ab") as log:
            log.write(f"\n=== {time.strftime('%H:%M:%S')} starting: {' '.join(self.argv)}\n".encode())
            log.flush()
            try:
                self._proc = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=self.cwd,
                    start_new_session=True,
                    preexec_fn=_die_with_parent,  # noqa: PLW1509 - only calls prctl
                )
            except OSError as exc:
                raise ControlPlaneError(self._describe_failure(f"{self.name}: cannot start: {exc}")) from exc
        self.wait_ready()

    def wait_ready(self, timeout: float | None = None) -> None:
        """Poll ``ready()`` until true; raise ControlPlaneError on exit or after ``timeout``."""
        limit = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        last_error = ""
        while True:
            if self._proc is None or self._proc.poll() is not None:
                code = None if self._proc is None else self._proc.returncode
                raise ControlPlaneError(self._describe_failure(f"{self.name} exited with code {code} before ready"))
            try:
                if self.ready():
                    return
            except Exception as exc:  # any probe failure means "not yet"
                last_error = f"{type(exc).__name__}: {exc}"
            if time.monotonic() >= deadline:
                self.stop()
                detail = f" (last probe error: {last_error})" if last_error else ""
                raise ControlPlaneError(self._describe_failure(f"{self.name} not ready within {limit:.0f}s{detail}"))
            time.sleep(0.25)

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> int | None:
        """Stop the process group: SIGTERM, then SIGKILL after ``grace`` seconds.

        Returns the exit code, or None if the process was not started. Idempotent.
        """
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            self._signal_group(proc, signal.SIGTERM)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self._signal_group(proc, signal.SIGKILL)
                proc.wait(timeout=grace)
        # Children that outlived the leader are killed with the rest of the group.
        self._signal_group(proc, signal.SIGKILL)
        self._proc = None
        return proc.returncode

    def restart(self) -> None:
        """Stop the process (if running) and start it again with the same argv."""
        self.stop()
        self.start()

    @staticmethod
    def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)


def jaeger_config(
    *, otlp_grpc: int, otlp_http: int, query_http: int, query_grpc: int, max_traces: int = 100_000
) -> str:
    """Jaeger v2 config with every listener on 127.0.0.1 and bounded in-memory storage.

    Shared by the control plane and the benchmarks, so both run the same Jaeger."""
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
                endpoint: 127.0.0.1:{otlp_grpc}
              http:
                endpoint: 127.0.0.1:{otlp_http}
        processors:
          batch:
            timeout: 200ms
        exporters:
          jaeger_storage_exporter:
            trace_storage: memstore
        """
    )


class ControlPlane:
    """A running local control plane; use as ``with ControlPlane() as cp: ...``.

    After entering, these attributes are set: ``workdir``, ``kubeconfig`` (admin, in
    ``system:masters``), ``server_url``, ``ca_cert_path``, ``admin_cert_path``,
    ``admin_key_path``, ``etcd_url``, ``jaeger_query_url`` (``http://127.0.0.1:port``),
    ``jaeger_otlp_grpc_endpoint`` (``127.0.0.1:port``), ``jaeger_otlp_http_endpoint``
    (``http://127.0.0.1:port``) and ``binaries``. Components are started in the order
    Jaeger, etcd, kube-apiserver, kube-controller-manager and stopped in reverse; extra
    processes from :meth:`start_process` are stopped first.
    """

    def __init__(
        self,
        *,
        binaries: _binaries.Binaries | None = None,
        log: Callable[[str], None] = _stderr_log,
        apiserver_timeout: float = 180.0,
        component_timeout: float = 60.0,
        extra_apiserver_args: Iterable[str] = (),
    ) -> None:
        self._given_binaries = binaries
        self._log = log
        self._apiserver_timeout = apiserver_timeout
        self._component_timeout = component_timeout
        self._extra_apiserver_args = list(extra_apiserver_args)
        self._processes: dict[str, ManagedProcess] = {}
        self._started = False
        self._workdir: Path | None = None
        self._ssl: ssl.SSLContext | None = None

    # -- attributes (valid after start) ---------------------------------------------------

    @property
    def workdir(self) -> Path:
        """Temporary directory holding configs, certificates, data and logs."""
        if self._workdir is None:
            raise ControlPlaneError("the control plane has not been started")
        return self._workdir

    @property
    def processes(self) -> Mapping[str, ManagedProcess]:
        """Managed processes by name, in start order."""
        return dict(self._processes)

    # -- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start every component; on any failure stop what was started and re-raise."""
        if self._started:
            raise ControlPlaneError("the control plane is already running")
        self._started = True
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop all managed processes (newest first) and remove the work directory.

        Safe to call more than once. The directory is kept, and its path logged, when
        ``OTEL_INJECTOR_KEEP_WORKDIR=1``.
        """
        for name, proc in reversed(list(self._processes.items())):
            try:
                proc.stop()
            except Exception as exc:  # keep stopping the others
                self._log(f"[controlplane] stopping {name} failed: {exc}")
        self._processes.clear()
        self._started = False
        if self._workdir is not None:
            if os.environ.get(KEEP_WORKDIR_ENV) == "1":
                self._log(f"[controlplane] keeping work directory {self._workdir}")
            else:
                shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def _start(self) -> None:
        started = time.monotonic()
        self.binaries = self._given_binaries or _binaries.ensure_binaries(
            ["etcd", "kube-apiserver", "kube-controller-manager", "kubectl", "jaeger"], log=self._log
        )
        self._workdir = Path(tempfile.mkdtemp(prefix="otel-injector-cp-"))
        self._log(f"[controlplane] work directory {self._workdir}")
        (
            etcd_client,
            etcd_peer,
            api_port,
            kcm_port,
            otlp_grpc,
            otlp_http,
            query_http,
            query_grpc,
        ) = _free_ports(8)

        self._write_pki()
        self.server_url = f"https://127.0.0.1:{api_port}"
        self.etcd_url = f"http://127.0.0.1:{etcd_client}"
        self.jaeger_query_url = f"http://127.0.0.1:{query_http}"
        self.jaeger_otlp_grpc_endpoint = f"127.0.0.1:{otlp_grpc}"
        self.jaeger_otlp_http_endpoint = f"http://127.0.0.1:{otlp_http}"
        self.kubeconfig = self.workdir / "admin.kubeconfig"
        admin = {"client-certificate": str(self.admin_cert_path), "client-key": str(self.admin_key_path)}
        self.kubeconfig.write_text(self.kubeconfig_text("admin", admin), encoding="utf-8")

        self._start_jaeger(otlp_grpc=otlp_grpc, otlp_http=otlp_http, query_http=query_http, query_grpc=query_grpc)
        self._start_etcd(etcd_client, etcd_peer)
        self._start_apiserver(api_port)
        self._start_controller_manager(kcm_port)
        self._log(f"[controlplane] ready at {self.server_url} in {time.monotonic() - started:.1f}s")

    # -- extra processes ------------------------------------------------------------------

    def start_process(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        *,
        ready: Callable[[], bool] | None = None,
        timeout: float = 60.0,
        cwd: Path | None = None,
    ) -> ManagedProcess:
        """Start another managed process, logging to ``workdir/<name>.log``.

        ``env`` entries are added to this process's environment. Returns once ``ready()``
        is true (or at once if no probe is given); raises ControlPlaneError, with the log
        tails of all components, if it exits first or is not ready within ``timeout``.
        The process is stopped with the control plane; it can be stopped or restarted
        earlier through the returned object.
        """
        if not self._started:
            raise ControlPlaneError("start the control plane before adding processes")
        if name in self._processes and self._processes[name].is_running():
            raise ControlPlaneError(f"a process named {name!r} is already running")
        return self._start_managed(name, argv, env=env, ready=ready, timeout=timeout, cwd=cwd)

    def _failure_report(self, message: str) -> str:
        parts = [message]
        logs = sorted(self.workdir.glob("*.log")) if self._workdir is not None else []
        for log in logs:
            parts.append(f"--- {log.name} (last {LOG_TAIL_LINES} lines) ---\n{_tail(log)}")
        if not logs:
            parts.append("(no component logs)")
        return "\n".join(parts)

    # -- kubectl --------------------------------------------------------------------------

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        """Run the built kubectl against this control plane as the admin.

        Returns the completed process with text stdout/stderr. With ``check`` a non-zero
        exit raises :class:`KubectlError` (its message includes stderr). ``timeout``
        bounds the call.
        """
        argv = [str(self.binaries.kubectl), "--kubeconfig", str(self.kubeconfig), *args]
        result = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise KubectlError(result.returncode, argv, result.stdout, result.stderr)
        return result

    # -- HTTP helpers ---------------------------------------------------------------------

    def ssl_context(self) -> ssl.SSLContext:
        """An SSL context that trusts the cluster CA and presents the admin certificate."""
        if self._ssl is None:
            ctx = ssl.create_default_context(cafile=str(self.ca_cert_path))
            ctx.load_cert_chain(str(self.admin_cert_path), str(self.admin_key_path))
            self._ssl = ctx
        return self._ssl

    def api_get(self, path: str, timeout: float = 10.0) -> tuple[int, bytes]:
        """GET ``path`` from the apiserver as the admin; return (status, body)."""
        conn = http.client.HTTPSConnection(
            "127.0.0.1", int(self.server_url.rsplit(":", 1)[1]), context=self.ssl_context(), timeout=timeout
        )
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def jaeger_api(self, path: str, timeout: float = 10.0) -> Any:
        """GET ``path`` (e.g. ``/api/services``) from Jaeger's query API; return the parsed JSON.

        Raises ControlPlaneError for a non-200 answer.
        """
        conn = http.client.HTTPConnection("127.0.0.1", int(self.jaeger_query_url.rsplit(":", 1)[1]), timeout=timeout)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read()
        finally:
            conn.close()
        if resp.status != 200:
            raise ControlPlaneError(f"Jaeger GET {path}: HTTP {resp.status}: {body[:500]!r}")
        return json.loads(body)

    # -- components -----------------------------------------------------------------------

    def _write_pki(self) -> None:
        pki = self.workdir / "pki"
        ca = CertificateAuthority.generate("otel-injector-bench-ca")
        self.ca_cert_path, self.ca_key_path = ca.key_pair.write(pki, "ca")
        serving = ca.issue(
            "kube-apiserver",
            dns_names=[
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ],
            ip_addresses=["127.0.0.1", _KUBERNETES_SERVICE_IP],
            server=True,
        )
        self.apiserver_cert_path, self.apiserver_key_path = serving.write(pki, "apiserver")
        admin = ca.issue("otel-injector-admin", organizations=["system:masters"], client=True)
        self.admin_cert_path, self.admin_key_path = admin.write(pki, "admin")
        self.service_account_public_key_path, self.service_account_key_path = service_account_key_pair().write(
            pki, "service-account"
        )
        self.certificate_authority = ca

    def kubeconfig_text(
        self, user: str, credentials: Mapping[str, str], *, cluster: str = "bench", context: str = "bench"
    ) -> str:
        """A kubeconfig for this control plane with one ``user`` (its ``credentials``, e.g.
        ``{"token": ...}``), named ``cluster`` and ``context``."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": cluster,
                    "cluster": {"server": self.server_url, "certificate-authority": str(self.ca_cert_path)},
                }
            ],
            "users": [{"name": user, "user": dict(credentials)}],
            "contexts": [{"name": context, "context": {"cluster": cluster, "user": user}}],
            "current-context": context,
        }
        # JSON is valid YAML, so no YAML writer is needed.
        return json.dumps(config, indent=2) + "\n"

    def _start_managed(
        self,
        name: str,
        argv: Sequence[str],
        *,
        ready: Callable[[], bool] | None,
        timeout: float,
        cwd: Path | None,
        env: Mapping[str, str] | None = None,
    ) -> ManagedProcess:
        """Register and start a process logging to ``workdir/<name>.log`` whose failure
        report carries the log tails of all components."""
        proc = ManagedProcess(
            name,
            argv,
            log_path=self.workdir / f"{name}.log",
            env=env,
            ready=ready,
            timeout=timeout,
            cwd=cwd,
            describe_failure=self._failure_report,
        )
        self._processes[name] = proc
        proc.start()
        return proc

    def _start_jaeger(self, *, otlp_grpc: int, otlp_http: int, query_http: int, query_grpc: int) -> None:
        config = self.workdir / "jaeger.yaml"
        config.write_text(
            jaeger_config(otlp_grpc=otlp_grpc, otlp_http=otlp_http, query_http=query_http, query_grpc=query_grpc),
            encoding="utf-8",
        )

        def ready() -> bool:
            conn = http.client.HTTPConnection("127.0.0.1", query_http, timeout=2)
            try:
                conn.request("GET", "/api/services")
                resp = conn.getresponse()
                body = resp.read()
                return resp.status == 200 and "data" in json.loads(body)
            finally:
                conn.close()

        self._start_managed(
            "jaeger",
            [str(self.binaries.jaeger), "--config", str(config)],
            ready=ready,
            timeout=self._component_timeout,
            cwd=self.workdir,
        )

    def _start_etcd(self, client: int, peer: int) -> None:
        client_url, peer_url = f"http://127.0.0.1:{client}", f"http://127.0.0.1:{peer}"

        def ready() -> bool:
            conn = http.client.HTTPConnection("127.0.0.1", client, timeout=2)
            try:
                conn.request("GET", "/health")
                resp = conn.getresponse()
                return resp.status == 200 and json.loads(resp.read()).get("health") == "true"
            finally:
                conn.close()

        self._start_managed(
            "etcd",
            [
                str(self.binaries.etcd),
                "--name=bench",
                f"--data-dir={self.workdir / 'etcd-data'}",
                f"--listen-client-urls={client_url}",
                f"--advertise-client-urls={client_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=bench={peer_url}",
                "--initial-cluster-state=new",
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
            ready=ready,
            timeout=self._component_timeout,
            cwd=self.workdir,
        )

    def _start_apiserver(self, port: int) -> None:
        tracing = self.workdir / "apiserver-tracing.yaml"
        # The endpoint is host:port for OTLP/gRPC without TLS; a URL fails validation.
        tracing.write_text(
            "apiVersion: apiserver.config.k8s.io/v1\n"
            "kind: TracingConfiguration\n"
            f"endpoint: {self.jaeger_otlp_grpc_endpoint}\n"
            # Controllers send no traceparent, so only sampling everything traces the
            # pod creations they make.
            "samplingRatePerMillion: 1000000\n",
            encoding="utf-8",
        )
        argv = [
            str(self.binaries.kube_apiserver),
            f"--etcd-servers={self.etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={port}",
            f"--cert-dir={self.workdir / 'apiserver-certs'}",
            f"--tls-cert-file={self.apiserver_cert_path}",
            f"--tls-private-key-file={self.apiserver_key_path}",
            f"--client-ca-file={self.ca_cert_path}",
            f"--service-account-issuer={self.server_url}",
            f"--service-account-key-file={self.service_account_public_key_path}",
            f"--service-account-signing-key-file={self.service_account_key_path}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            "--authorization-mode=RBAC",
            "--allow-privileged=true",
            # Without it every namespace needs a "default" ServiceAccount (made by a
            # controller not run here) before a pod can be created in it.
            "--disable-admission-plugins=ServiceAccount",
            f"--tracing-config-file={tracing}",
            "--profiling=false",
            # The default reconciler keeps rejecting 127.0.0.1 as an endpoint of the
            # "kubernetes" Service (loopback is not allowed there); nothing here needs it.
            "--endpoint-reconciler-type=none",
            *self._extra_apiserver_args,
        ]

        def ready() -> bool:
            status, _ = self.api_get("/readyz", timeout=5)
            return status == 200

        self._start_managed(
            "kube-apiserver",
            argv,
            ready=ready,
            timeout=self._apiserver_timeout,
            cwd=self.workdir,
        )

    def _start_controller_manager(self, port: int) -> None:
        argv = [
            str(self.binaries.kube_controller_manager),
            f"--kubeconfig={self.kubeconfig}",
            f"--authentication-kubeconfig={self.kubeconfig}",
            f"--authorization-kubeconfig={self.kubeconfig}",
            # The apiserver has no front-proxy (requestheader) CA to look up; without
            # this the controller-manager logs an error about it every few seconds.
            "--authentication-skip-lookup=true",
            f"--controllers={','.join(CONTROLLERS)}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            f"--secure-port={port}",
            f"--cert-dir={self.workdir / 'kcm-certs'}",
            "--profiling=false",
        ]
        # The controller-manager serves a self-signed certificate; /healthz is in its
        # always-allowed paths, so an anonymous, unverified GET is the readiness probe.
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE

        def ready() -> bool:
            conn = http.client.HTTPSConnection("127.0.0.1", port, context=insecure, timeout=2)
            try:
                conn.request("GET", "/healthz")
                resp = conn.getresponse()
                resp.read()
                return resp.status == 200
            finally:
                conn.close()

        self._start_managed(
            "kube-controller-manager",
            argv,
            ready=ready,
            timeout=self._component_timeout,
            cwd=self.workdir,
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Start a control plane and keep it running until Ctrl-C or SIGTERM."""
    del argv
    # SIGTERM takes the same clean path as Ctrl-C; SIGINT is re-armed because a shell
    # starts background jobs with it ignored.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with ControlPlane() as cp:
            print(
                textwrap.dedent(
                    f"""\
                    control plane is up (Ctrl-C stops it)
                      export KUBECONFIG={cp.kubeconfig}
                      apiserver:        {cp.server_url}
                      jaeger query API: {cp.jaeger_query_url}/api/services
                      jaeger OTLP gRPC: {cp.jaeger_otlp_grpc_endpoint}
                      jaeger OTLP HTTP: {cp.jaeger_otlp_http_endpoint}
                      logs:             {cp.workdir}/*.log"""
                ),
                flush=True,
            )
            while True:
                for proc in cp.processes.values():
                    if not proc.is_running():
                        raise ControlPlaneError(cp._failure_report(f"{proc.name} exited unexpectedly"))
                time.sleep(1)
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
        return 0
    except ControlPlaneError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
