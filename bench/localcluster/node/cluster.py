"""A control plane with real nodes, all inside network and mount namespaces of the run.

``NodeCluster`` is a :class:`~bench.localcluster.controlplane.ControlPlane` whose every
process runs inside the run's namespaces (:mod:`bench.localcluster.node.namespaces`), plus,
per node, containerd (runc, CNI bridge), kubelet and kube-proxy, and once per cluster
kube-scheduler and CoreDNS. The images a pod needs are built here and imported into each
node's containerd before kubelet starts; nothing is ever pulled.

The machine's own namespace sees only loopback relays (:mod:`bench.localcluster.node.relay`)
on the same port numbers as inside: the apiserver, the Jaeger query API, the readiness
endpoints the bench probes, and anything :meth:`NodeCluster.expose` adds. So the printed
kubeconfig and Jaeger URL work from any shell, and no packet of the bench leaves loopback
or the run's namespaces.

Runs are serialised by a file lock: two node runs on one machine would fight over the
machine-wide sysctls kubelet sets. Teardown stops every process, kills what is left in the
pods' cgroups and the containerd shims, removes the cgroups, unpins the namespaces and
writes the sysctls back (:mod:`bench.localcluster.node.hoststate`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.localcluster import binaries as _binaries
from bench.localcluster import components
from bench.localcluster.controlplane import ControlPlane, ControlPlaneError, ManagedProcess, free_port
from bench.localcluster.node import addons, cni, containerd, hoststate, kubelet, runrecord
from bench.localcluster.node.namespaces import NODE_ADDRESSES, NamespaceError, RunNamespaces

if TYPE_CHECKING:
    from collections.abc import Sequence

    from bench.localcluster.images import Image

#: Binaries a node-enabled cluster needs on top of the control plane's.
NODE_BINARIES = (
    "kubelet",
    "kube-scheduler",
    "kube-proxy",
    "containerd",
    "containerd-shim-runc-v2",
    "ctr",
    "coredns",
    *cni.PLUGINS,
)
#: Controllers a cluster with nodes needs on top of the control plane's.
NODE_CONTROLLERS = (
    "node-lifecycle-controller",
    "pod-garbage-collector-controller",
    "endpointslice-controller",
    "serviceaccount-controller",
    # kube-root-ca.crt in every namespace: part of each pod's projected token volume.
    "root-ca-certificate-publisher-controller",
    # PodDisruptionBudget status: without it disruptionsAllowed stays 0 and every
    # eviction (kubectl drain) is refused.
    "disruption-controller",
)
MAX_NODES = len(NODE_ADDRESSES)
LOCK_NAME = "node-run.lock"
RECORD_NAME = "node-run.json"


@dataclass(frozen=True)
class Node:
    """One running node: its name, address and where its pieces keep their state."""

    index: int
    name: str
    address: str
    containerd: containerd.ContainerdPaths
    kubelet: kubelet.KubeletPaths
    cgroup_root: str


def node_support_problem() -> str | None:
    """Why this machine cannot run a node (one line), or None when it can."""
    if os.geteuid() != 0:
        return "not root: a node needs network/mount namespaces, cgroups and mounts"
    missing = [t for t in ("unshare", "nsenter", "ip", "iptables", "mount") if shutil.which(t) is None]
    if missing:
        return f"missing host tools: {', '.join(missing)} (make node-tools installs them)"
    if not Path(containerd.RUNC).is_file():
        return f"{containerd.RUNC} is missing (make node-tools installs Debian's runc)"
    if not Path("/proc/self/ns/net").exists():
        return "this kernel has no network namespaces"
    return None


@contextlib.contextmanager
def run_lock(log: Callable[[str], None]) -> Iterator[None]:
    """Hold the machine-wide lock for node runs (one at a time)."""
    root = _binaries.cache_root()
    root.mkdir(parents=True, exist_ok=True)
    with (root / LOCK_NAME).open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"[node] waiting for another node run to finish (lock {root / LOCK_NAME})")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class NodeCluster(ControlPlane):
    """A running cluster with ``nodes`` real nodes; use as ``with NodeCluster() as c: ...``.

    On top of :class:`ControlPlane`'s attributes: ``nodes`` (list of :class:`Node`),
    ``namespaces`` (:class:`RunNamespaces`), ``images`` (what ``build_images()`` returned:
    ``pause``, ``collector``, ``demo_app``) and ``node_address``. ``extra_images`` (e.g.
    ``[ensure_injector_image()]``, built before the node lock is taken) are imported into
    every node's containerd after those three, before kubelet starts.
    """

    def __init__(
        self, *, nodes: int = 1, extra_images: Sequence[Image] = (), capture_host_state: bool = False, **kwargs: Any
    ) -> None:
        """``capture_host_state``: snapshot the machine (:attr:`host_state_before`) once the
        node lock is held, so a teardown check compares with what this run found, not with
        another run's state that was still there while this one waited for the lock."""
        if not 1 <= nodes <= MAX_NODES:
            raise ValueError(f"nodes must be between 1 and {MAX_NODES}")
        super().__init__(**kwargs)
        self._node_count = nodes
        self.nodes: list[Node] = []
        self._lock: contextlib.ExitStack | None = None
        self._record: runrecord.RunRecord | None = None
        self._namespaces: RunNamespaces | None = None
        self._relays: list[ManagedProcess] = []
        self._extra_images = tuple(extra_images)
        self._capture_host_state = capture_host_state
        self.host_state_before: hoststate.HostState | None = None

    # -- hooks of ControlPlane ----------------------------------------------------------

    @property
    def namespaces(self) -> RunNamespaces:
        if self._namespaces is None:
            raise ControlPlaneError("the cluster has not been started")
        return self._namespaces

    @property
    def node_address(self) -> str:
        """The first node's address: Jaeger's OTLP receivers and CoreDNS listen there."""
        return NODE_ADDRESSES[0]

    def required_binaries(self) -> tuple[str, ...]:
        return (*super().required_binaries(), *NODE_BINARIES)

    def otlp_host(self) -> str:
        # Pods reach the node address through their bridge's gateway; 127.0.0.1 would be
        # the pod's own loopback.
        return self.node_address

    def controllers(self) -> tuple[str, ...]:
        return (*super().controllers(), *NODE_CONTROLLERS)

    def authorization_modes(self) -> tuple[str, ...]:
        # The Node authorizer lets each kubelet read only what its own pods need.
        return ("Node", "RBAC")

    def apiserver_node_args(self) -> list[str]:
        pki = self.workdir / "pki"
        client = self.certificate_authority.issue(
            "kube-apiserver-kubelet-client", organizations=["system:masters"], client=True
        )
        cert, key = client.write(pki, "apiserver-kubelet-client")
        return [
            "--enable-admission-plugins=NodeRestriction",
            f"--kubelet-client-certificate={cert}",
            f"--kubelet-client-key={key}",
            # The node's name would go to the machine's resolver; its address is known.
            "--kubelet-preferred-address-types=InternalIP",
        ]

    def apiserver_pod_address(self) -> str | None:
        # Pods (the chart's injector) reach it as 10.0.0.1:443 through kube-proxy.
        return self.node_address

    def controller_manager_args(self) -> list[str]:
        # The CA the root-ca publisher writes into kube-root-ca.crt of every namespace.
        return [f"--root-ca-file={self.ca_cert_path}"]

    def launch_argv(self, argv: list[str]) -> list[str]:
        return self.namespaces.argv(argv)

    def prepare(self, ports: list[int]) -> None:
        """Before the first component: lock, snapshot, namespaces, images, relays."""
        problem = node_support_problem()
        if problem is not None:
            raise ControlPlaneError(f"cannot run a node here: {problem}")
        stack = contextlib.ExitStack()
        stack.enter_context(run_lock(self._log))
        self._lock = stack
        left = runrecord.reap(self._record_path)
        if left is not None:
            self._log(f"[node] cleaned up after a run that did not finish: {left.workdir}")
        if self._capture_host_state:
            self.host_state_before = hoststate.capture()
        self._record = runrecord.RunRecord(workdir=str(self.workdir), sysctls=hoststate.read_sysctls())
        self._record.save(self._record_path)
        self._namespaces = RunNamespaces(self.workdir)
        try:
            self._namespaces.create()
        except NamespaceError as exc:
            raise ControlPlaneError(f"cannot create the run's namespaces: {exc}") from exc
        self._extra_ports = {
            "kube-scheduler": free_port(),
            "coredns-ready": free_port(),
            **{f"kubelet-{i}": free_port() for i in range(self._node_count)},
            "kube-proxy-0": free_port(),
        }
        self.expose(*ports, *self._extra_ports.values())
        from bench.localcluster.images import build_images

        started = time.monotonic()
        self.images = build_images(log=self._log)
        self._log(
            f"[node] images ready in {time.monotonic() - started:.1f}s: {self.images.pause.name}, "
            f"{self.images.collector.name}, {self.images.demo_app.name}"
        )

    def expose(self, *ports: int) -> None:
        """Relay 127.0.0.1:``port`` of the machine to the same port inside the run."""
        import sys

        name = f"relay-{len(self._relays)}"
        argv = [sys.executable, "-m", "bench.localcluster.node.relay", f"--netns={self.namespaces.net}"]
        argv += [str(p) for p in ports]
        repo = Path(__file__).resolve().parents[3]
        env = {"PYTHONPATH": os.pathsep.join(filter(None, (str(repo), os.environ.get("PYTHONPATH"))))}
        relay = ManagedProcess(
            name,
            argv,
            log_path=self.workdir / f"{name}.log",
            env=env,
            ready=lambda: "relay:" in (self.workdir / f"{name}.log").read_text(encoding="utf-8"),
            timeout=30,
        )
        relay.start()
        self._relays.append(relay)

    def start_extras(self) -> None:
        """After the controller-manager: scheduler, nodes, CoreDNS; wait for Ready."""
        started = time.monotonic()
        self._start_scheduler()
        node_bin = self._node_bin_dir()
        for index in range(self._node_count):
            self._start_node(index, node_bin)
        self._start_coredns()
        self._wait_nodes_ready()
        self._log(f"[node] {self._node_count} node(s) Ready in {time.monotonic() - started:.1f}s")

    @property
    def _record_path(self) -> Path:
        return _binaries.cache_root() / RECORD_NAME

    def stop_extras(self) -> None:
        """After every managed process stopped: pods, shims, cgroups, namespaces, sysctls
        (the same undo a later run applies after a crash, see runrecord)."""
        for relay in reversed(self._relays):
            relay.stop()
        self._relays.clear()
        if self._record is not None:
            problems = runrecord.undo(self._record)
            if problems:
                self._log(f"[node] teardown could not undo: {', '.join(problems)}")
            else:
                with contextlib.suppress(FileNotFoundError):
                    self._record_path.unlink()
            self._record = None
        elif self._namespaces is not None:
            self._namespaces.destroy()
        self._namespaces = None
        self.nodes.clear()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    # -- components ---------------------------------------------------------------------

    def _client_kubeconfig(self, stem: str, common_name: str, organizations: tuple[str, ...] = ()) -> Path:
        pki = self.workdir / "pki"
        pair = self.certificate_authority.issue(common_name, organizations=list(organizations), client=True)
        cert, key = pair.write(pki, stem)
        path = self.workdir / f"{stem}.kubeconfig"
        text = self.kubeconfig_text(common_name, {"client-certificate": str(cert), "client-key": str(key)})
        path.write_text(text, encoding="utf-8")
        return path

    def _node_bin_dir(self) -> Path:
        """One directory with the shim and the CNI plugins, as containerd looks them up."""
        directory = self.workdir / "node-bin"
        directory.mkdir(exist_ok=True)
        for name in ("containerd-shim-runc-v2", *cni.PLUGINS):
            (directory / name).symlink_to(self.binaries.path(name))
        return directory

    def _start_scheduler(self) -> None:
        port = self._extra_ports["kube-scheduler"]
        config = self._client_kubeconfig("kube-scheduler", "system:kube-scheduler")
        argv = addons.scheduler_argv(
            self.binaries.path("kube-scheduler"), kubeconfig=config, port=port, cert_dir=self.workdir / "sched-certs"
        )
        self._start_managed(
            "kube-scheduler", argv, ready=components.http_ok(port, tls=True), timeout=60, cwd=self.workdir
        )

    def _start_node(self, index: int, node_bin: Path) -> None:
        name = f"node-{index + 1}"
        base = self.workdir / name
        node = Node(
            index=index,
            name=name,
            address=NODE_ADDRESSES[index],
            containerd=containerd.ContainerdPaths(base / "containerd"),
            kubelet=kubelet.KubeletPaths(base / "kubelet"),
            cgroup_root=f"otel-injector-{self.workdir.name}-{name}",
        )
        self._start_containerd(node, node_bin)
        self._start_kubelet(node)
        if index == 0:
            # All nodes share the run's one network namespace, hence one set of iptables
            # rules: a second kube-proxy would only rewrite the same chains.
            self._start_kube_proxy(node)
        self.nodes.append(node)

    def _start_containerd(self, node: Node, node_bin: Path) -> None:
        paths = node.containerd
        paths.base.mkdir(parents=True, exist_ok=True)
        cni_conf = paths.base / "net.d"
        cni.write_conflist(cni_conf, node.index)
        paths.config.write_text(
            containerd.config_toml(
                paths, cni_bin_dir=node_bin, cni_conf_dir=cni_conf, pause_image=self.images.pause.name
            ),
            encoding="utf-8",
        )
        ctr = self.binaries.path("ctr")
        enter = self.namespaces.argv([])
        env = {
            "PATH": f"{node_bin}{os.pathsep}{os.environ.get('PATH', '')}",
            **containerd.tracing_env(self.jaeger_otlp_grpc_endpoint, f"containerd-{node.name}"),
        }
        self._start_managed(
            f"containerd-{node.name}",
            containerd.argv(self.binaries.path("containerd"), paths),
            env=env,
            ready=lambda: containerd.ready(ctr, paths, enter=enter),
            timeout=60,
            cwd=paths.base,
        )
        for image in (self.images.pause, self.images.collector, self.images.demo_app, *self._extra_images):
            started = time.monotonic()
            containerd.import_image(ctr, paths, image.archive, enter=enter)
            self._log(f"[node] {node.name}: imported {image.name} in {time.monotonic() - started:.1f}s")

    def _start_kubelet(self, node: Node) -> None:
        paths = node.kubelet
        paths.base.mkdir(parents=True, exist_ok=True)
        for directory in (paths.root, paths.pod_logs, paths.volume_plugins, paths.cert_dir):
            directory.mkdir(parents=True, exist_ok=True)
        if self._record is not None:
            # Recorded before it exists, so a crash in between still removes it.
            self._record.cgroup_roots.append(node.cgroup_root)
            self._record.save(self._record_path)
        hoststate.create_cgroup_root(node.cgroup_root)
        config_path = self._client_kubeconfig(f"kubelet-{node.name}", f"system:node:{node.name}", ("system:nodes",))
        shutil.copyfile(config_path, paths.kubeconfig)
        port = self._extra_ports[f"kubelet-{node.index}"]
        config = kubelet.configuration(
            paths,
            node_address=node.address,
            runtime_socket=node.containerd.socket,
            client_ca=self.ca_cert_path,
            cluster_dns=self.node_address,
            cgroup_root=f"/{node.cgroup_root}",
            healthz_port=port,
            otlp_grpc_endpoint=self.jaeger_otlp_grpc_endpoint,
        )
        kubelet.write_configuration(paths, config)
        argv = kubelet.argv(self.binaries.path("kubelet"), paths, node_name=node.name, node_address=node.address)
        self._start_managed(f"kubelet-{node.name}", argv, ready=components.http_ok(port), timeout=90, cwd=paths.base)

    def _start_kube_proxy(self, node: Node) -> None:
        port = self._extra_ports[f"kube-proxy-{node.index}"]
        kubeconfig = self._client_kubeconfig(f"kube-proxy-{node.name}", "system:kube-proxy")
        document = addons.kube_proxy_configuration(
            kubeconfig=kubeconfig,
            node_name=node.name,
            cluster_cidr="10.88.0.0/16",
            healthz_port=port,
            metrics_port=free_port(),
        )
        config = addons.write_json(self.workdir / node.name / "kube-proxy.json", document)
        argv = addons.kube_proxy_argv(self.binaries.path("kube-proxy"), config)
        self._start_managed(f"kube-proxy-{node.name}", argv, ready=components.http_ok(port), timeout=60)

    def _start_coredns(self) -> None:
        port = self._extra_ports["coredns-ready"]
        corefile = self.workdir / "Corefile"
        corefile.write_text(
            addons.corefile(
                address=self.node_address,
                kubeconfig=self.kubeconfig,
                ready_port=port,
                reverse_zones=("88.10.in-addr.arpa", "0.0.10.in-addr.arpa"),
            ),
            encoding="utf-8",
        )
        argv = addons.coredns_argv(self.binaries.path("coredns"), corefile)
        self._start_managed("coredns", argv, ready=components.http_ok(port, "/ready"), timeout=60, cwd=self.workdir)

    def _wait_nodes_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            result = self.kubectl("get", "nodes", "-o", "json", check=False)
            ready = 0
            if result.returncode == 0:
                for item in json.loads(result.stdout).get("items", []):
                    conditions = item.get("status", {}).get("conditions", [])
                    ready += any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
            if ready >= self._node_count:
                return
            if time.monotonic() > deadline:
                raise ControlPlaneError(self.failure_report(f"{self._node_count} node(s) not Ready in {timeout:.0f}s"))
            time.sleep(0.25)
