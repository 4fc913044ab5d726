"""A real Kubernetes control plane on loopback: etcd, kube-apiserver, controller-manager, Jaeger.

``ControlPlane`` is a context manager. Entering it builds or finds the binaries (see
:mod:`bench.localcluster.binaries`), creates a temporary work directory, generates a
throw-away PKI and starts, each on free ports of 127.0.0.1 only:

* Jaeger v2 with in-memory storage, receiving OTLP over gRPC and HTTP and serving the
  query HTTP API; the apiserver sends its traces there;
* etcd (``--unsafe-no-fsync``: the data is thrown away anyway), tracing its server side;
* kube-apiserver with RBAC, client-certificate auth and tracing at a 100 % sampling rate;
* kube-controller-manager running the deployment, replicaset, job, cronjob, namespace
  and garbage-collector controllers, so workloads turn into Pod objects. There is no
  scheduler and no kubelet: pods stay Pending, which is all an admission webhook needs.

Leaving the context stops every managed process (SIGTERM, then SIGKILL after a bound) and
removes the work directory unless ``OTEL_INJECTOR_KEEP_WORKDIR=1``. Every wait is bounded;
a component that does not become ready raises :class:`ControlPlaneError`, whose message
carries the tail of every component's log.

Subclasses add to it through a few hooks (``required_binaries``, ``otlp_host``,
``controllers``, ``authorization_modes``, ``apiserver_node_args``, ``launch_argv``,
``prepare``, ``expose``, ``start_extras``, ``stop_extras``); the node-enabled cluster in
:mod:`bench.localcluster.node.cluster` is one. Processes live in
:mod:`bench.localcluster.process`, command lines in :mod:`bench.localcluster.components`.

``python -m bench.localcluster`` starts one and keeps it running until Ctrl-C, printing
how to reach it (``make cluster`` starts one with a node and the injector).
"""

from __future__ import annotations

import os
import shutil
import ssl
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from bench.localcluster import binaries as _binaries
from bench.localcluster import components
from bench.localcluster.access import ClusterAccess, KubectlError
from bench.localcluster.components import jaeger_config
from bench.localcluster.pki import CertificateAuthority, service_account_key_pair
from bench.localcluster.process import (
    LOG_TAIL_LINES,
    STOP_GRACE_SECONDS,
    ControlPlaneError,
    ManagedProcess,
    free_port,
    free_ports,
    tail,
)

__all__ = [
    "CONTROLLERS",
    "LOG_TAIL_LINES",
    "SERVICE_CLUSTER_IP_RANGE",
    "STOP_GRACE_SECONDS",
    "ControlPlane",
    "ControlPlaneError",
    "KubectlError",
    "ManagedProcess",
    "free_port",
    "jaeger_config",
]

KEEP_WORKDIR_ENV = "OTEL_INJECTOR_KEEP_WORKDIR"


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


def _stderr_log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class ControlPlane(ClusterAccess):
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

    def __enter__(self) -> Self:
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
        try:
            self.stop_extras()
        except Exception as exc:  # the work directory still goes
            self._log(f"[controlplane] teardown of extras failed: {exc}")
        if self._workdir is not None:
            if os.environ.get(KEEP_WORKDIR_ENV) == "1":
                self._log(f"[controlplane] keeping work directory {self._workdir}")
            else:
                shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def _start(self) -> None:
        started = time.monotonic()
        self.binaries = self._given_binaries or _binaries.ensure_binaries(self.required_binaries(), log=self._log)
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
        ) = ports = free_ports(8)

        self._write_pki()
        self.server_url = f"https://127.0.0.1:{api_port}"
        self.etcd_url = f"http://127.0.0.1:{etcd_client}"
        self.jaeger_query_url = f"http://127.0.0.1:{query_http}"
        self.jaeger_otlp_grpc_endpoint = f"{self.otlp_host()}:{otlp_grpc}"
        self.jaeger_otlp_http_endpoint = f"http://{self.otlp_host()}:{otlp_http}"
        self.kubeconfig = self.workdir / "admin.kubeconfig"
        admin = {"client-certificate": str(self.admin_cert_path), "client-key": str(self.admin_key_path)}
        self.kubeconfig.write_text(self.kubeconfig_text("admin", admin), encoding="utf-8")

        self.prepare(ports)
        self._start_jaeger(otlp_grpc=otlp_grpc, otlp_http=otlp_http, query_http=query_http, query_grpc=query_grpc)
        self._start_etcd(etcd_client, etcd_peer)
        self._start_apiserver(api_port)
        self._start_controller_manager(kcm_port)
        self._log(f"[controlplane] ready at {self.server_url} in {time.monotonic() - started:.1f}s")
        self.start_extras()

    # -- hooks for subclasses (a node-enabled cluster) -----------------------------------

    def required_binaries(self) -> tuple[str, ...]:
        """The binaries :meth:`start` makes sure of."""
        return ("etcd", "kube-apiserver", "kube-controller-manager", "kubectl", "jaeger")

    def otlp_host(self) -> str:
        """The address Jaeger's OTLP receivers listen on."""
        return "127.0.0.1"

    def controllers(self) -> tuple[str, ...]:
        """The controllers the controller-manager runs."""
        return CONTROLLERS

    def authorization_modes(self) -> tuple[str, ...]:
        """The apiserver's authorizers, in order."""
        return ("RBAC",)

    def apiserver_node_args(self) -> list[str]:
        """More apiserver flags (a cluster with nodes adds the kubelet client ones)."""
        return []

    def apiserver_pod_address(self) -> str | None:
        """The address pods reach the apiserver at (None: no pods run, loopback only)."""
        return None

    def controller_manager_args(self) -> list[str]:
        """More controller-manager flags."""
        return []

    def launch_argv(self, argv: list[str]) -> list[str]:
        """The command that runs ``argv`` where the cluster lives (here: as it is)."""
        return argv

    def prepare(self, ports: list[int]) -> None:
        """Called with the component ports after the PKI and before the first process."""

    def expose(self, *ports: int) -> None:
        """Make 127.0.0.1:``port`` inside the cluster reachable from this shell (here it
        already is)."""

    def start_extras(self) -> None:
        """Called once the controller-manager is ready."""

    def stop_extras(self) -> None:
        """Called after every managed process stopped, before the work directory goes."""

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

    def failure_report(self, message: str) -> str:
        parts = [message]
        logs = sorted(self.workdir.glob("*.log")) if self._workdir is not None else []
        for log in logs:
            parts.append(f"--- {log.name} (last {LOG_TAIL_LINES} lines) ---\n{tail(log)}")
        if not logs:
            parts.append("(no component logs)")
        return "\n".join(parts)

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

    def _start_managed(
        self,
        name: str,
        argv: Sequence[str],
        *,
        ready: Callable[[], bool] | None,
        timeout: float,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> ManagedProcess:
        """Register and start a process logging to ``workdir/<name>.log`` whose failure
        report carries the log tails of all components."""
        proc = ManagedProcess(
            name,
            self.launch_argv(list(argv)),
            log_path=self.workdir / f"{name}.log",
            env=env,
            ready=ready,
            timeout=timeout,
            cwd=cwd,
            describe_failure=self.failure_report,
        )
        self._processes[name] = proc
        proc.start()
        return proc

    # -- components -----------------------------------------------------------------------

    def _start_jaeger(self, *, otlp_grpc: int, otlp_http: int, query_http: int, query_grpc: int) -> None:
        config = self.workdir / "jaeger.yaml"
        text = jaeger_config(
            otlp_grpc=otlp_grpc,
            otlp_http=otlp_http,
            query_http=query_http,
            query_grpc=query_grpc,
            otlp_host=self.otlp_host(),
        )
        config.write_text(text, encoding="utf-8")
        argv = [str(self.binaries.jaeger), "--config", str(config)]
        ready = components.jaeger_ready(query_http)
        self._start_managed("jaeger", argv, ready=ready, timeout=self._component_timeout, cwd=self.workdir)

    def _start_etcd(self, client: int, peer: int) -> None:
        argv = components.etcd_argv(
            self.binaries.etcd,
            data_dir=self.workdir / "etcd-data",
            client=client,
            peer=peer,
            otlp_grpc_endpoint=self.jaeger_otlp_grpc_endpoint,
        )
        ready = components.etcd_ready(client)
        self._start_managed("etcd", argv, ready=ready, timeout=self._component_timeout, cwd=self.workdir)

    def _start_apiserver(self, port: int) -> None:
        tracing = self.workdir / "apiserver-tracing.yaml"
        tracing.write_text(components.apiserver_tracing_config(self.jaeger_otlp_grpc_endpoint), encoding="utf-8")
        argv = components.apiserver_argv(
            self.binaries.kube_apiserver,
            etcd_url=self.etcd_url,
            port=port,
            workdir=self.workdir,
            pki={
                "ca": self.ca_cert_path,
                "cert": self.apiserver_cert_path,
                "key": self.apiserver_key_path,
                "sa_public": self.service_account_public_key_path,
                "sa_private": self.service_account_key_path,
            },
            server_url=self.server_url,
            service_cidr=SERVICE_CLUSTER_IP_RANGE,
            tracing_config=tracing,
            authorization_modes=self.authorization_modes(),
            extra=[*self.apiserver_node_args(), *self._extra_apiserver_args],
            pod_address=self.apiserver_pod_address(),
        )

        def ready() -> bool:
            status, _ = self.api_get("/readyz", timeout=5)
            return status == 200

        self._start_managed("kube-apiserver", argv, ready=ready, timeout=self._apiserver_timeout, cwd=self.workdir)

    def _start_controller_manager(self, port: int) -> None:
        argv = components.controller_manager_argv(
            self.binaries.kube_controller_manager,
            kubeconfig=self.kubeconfig,
            controllers=self.controllers(),
            port=port,
            cert_dir=self.workdir / "kcm-certs",
            extra=self.controller_manager_args(),
        )
        ready = components.http_ok(port, tls=True)
        self._start_managed("kube-controller-manager", argv, ready=ready, timeout=self._component_timeout)
