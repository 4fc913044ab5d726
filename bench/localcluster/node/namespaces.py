"""The run's own network and mount namespaces, where a node-enabled cluster lives.

``RunNamespaces(workdir).create()`` makes one network namespace and one mount namespace
with ``unshare(1)`` and pins them as files under ``workdir/ns`` (not under
``/run/netns``: nothing of the machine's own is touched to hold them). Every process of
the cluster is started through :meth:`RunNamespaces.argv`, i.e. ``nsenter`` into both:

* **network**: loopback, plus a veth pair whose ends carry the node addresses
  (``10.200.0.1`` for node 1, ``10.200.0.2`` for node 2). A node needs a non-loopback
  address, and this kernel has no ``dummy`` link type. There is no default route, so no
  packet can leave; the only other route sends the Service range onto the veth, where
  kube-proxy's DNAT rewrites it before it would go anywhere.
* **mount**: private propagation, with fresh tmpfs over ``/run``, ``/var/lib`` and
  ``/var/log``. kubelet, containerd, runc and the CNI plugins write fixed paths there
  despite their root/state options (``/var/lib/kubelet/device-plugins``,
  ``/var/log/containers``, ``/run/containerd/s``, ``/run/xtables.lock``...); inside the
  mount namespace those land on tmpfs that disappears with it, and every mount kubelet
  and containerd make (pod volumes, container rootfs, kubelet's bind of its root dir)
  lives and dies there too. The machine's mount table only ever gains the two pins.

:meth:`destroy` unpins both; once the last process inside is gone the kernel frees the
namespaces with everything in them (links, routes, iptables rules, mounts).
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

#: Addresses of the veth ends, one per node; the prefix length is /24.
NODE_ADDRESSES = ("10.200.0.1", "10.200.0.2")
NODE_PREFIX = 24
#: Names of the veth ends inside the namespace.
VETH_NAMES = ("otel0", "otel1")
#: Directories that get a private tmpfs inside the mount namespace (see the module doc).
PRIVATE_TMPFS = ("/run", "/var/lib", "/var/log")
#: Namespaced sysctls set inside (they never change the machine's own values).
NAMESPACE_SYSCTLS = {"net.ipv4.ip_forward": "1"}


class NamespaceError(RuntimeError):
    """The namespaces could not be created or a command inside them failed."""


def _run(argv: Sequence[str], *, timeout: float = 30.0) -> str:
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NamespaceError(f"{' '.join(argv)}: {exc}") from exc
    if done.returncode != 0:
        raise NamespaceError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()}")
    return done.stdout


def missing_tools() -> list[str]:
    """Host commands the namespaces need that are not on PATH."""
    return [tool for tool in ("unshare", "nsenter", "ip", "mount", "umount") if shutil.which(tool) is None]


@dataclass
class RunNamespaces:
    """The pinned namespaces of one run, under ``workdir/ns``; see the module docstring."""

    workdir: Path
    service_cidr: str = "10.0.0.0/24"

    @property
    def net(self) -> Path:
        """The pinned network namespace (a file to ``nsenter --net=``/``setns`` into)."""
        return self.workdir / "ns" / "net"

    @property
    def mnt(self) -> Path:
        """The pinned mount namespace."""
        return self.workdir / "ns" / "mnt"

    @property
    def node_address(self) -> str:
        """The first node's address, where the node's and the pods' traffic is addressed."""
        return NODE_ADDRESSES[0]

    def argv(self, command: Sequence[str]) -> list[str]:
        """``command`` run inside both namespaces. nsenter execs it, so its PID is the
        command's own."""
        return ["nsenter", f"--net={self.net}", f"--mount={self.mnt}", "--", *command]

    def run(self, *command: str, timeout: float = 30.0) -> str:
        """Run ``command`` inside; return its stdout or raise NamespaceError."""
        return _run(self.argv(command), timeout=timeout)

    def create(self) -> None:
        """Create, pin and set up both namespaces; raise NamespaceError on failure
        (after removing whatever was made)."""
        missing = missing_tools()
        if missing:
            raise NamespaceError(f"missing host tools: {', '.join(missing)}")
        self.net.parent.mkdir(parents=True, exist_ok=True)
        for pin in (self.net, self.mnt):
            pin.touch()
        try:
            _run(["unshare", f"--net={self.net}", f"--mount={self.mnt}", "--propagation", "private", "true"])
            self._setup()
        except BaseException:
            self.destroy()
            raise

    def _setup(self) -> None:
        for directory in PRIVATE_TMPFS:
            self.run("mount", "-t", "tmpfs", "-o", "mode=755", "otel-injector-run", directory)
        self.run("ip", "link", "set", "lo", "up")
        a, b = VETH_NAMES
        self.run("ip", "link", "add", a, "type", "veth", "peer", "name", b)
        for name, address in zip(VETH_NAMES, NODE_ADDRESSES, strict=True):
            self.run("ip", "addr", "add", f"{address}/{NODE_PREFIX}", "dev", name)
            self.run("ip", "link", "set", name, "up")
        # Service traffic from the namespace itself (e.g. the apiserver calling a webhook
        # Service) needs a route to be DNATed at all; with none it fails with ENETUNREACH.
        self.run("ip", "route", "add", self.service_cidr, "dev", a)
        for key, value in NAMESPACE_SYSCTLS.items():
            self.run("sysctl", "-q", "-w", f"{key}={value}")

    def destroy(self) -> None:
        """Unpin both namespaces and remove ``workdir/ns``. Idempotent. The kernel frees
        a namespace when its last process has exited, so stop those first."""
        for pin in (self.mnt, self.net):
            if pin.exists() and _is_mount_point(pin):
                with contextlib.suppress(NamespaceError):
                    _run(["umount", str(pin)])
                if _is_mount_point(pin):
                    with contextlib.suppress(NamespaceError):
                        _run(["umount", "--lazy", str(pin)])
        shutil.rmtree(self.net.parent, ignore_errors=True)


def _is_mount_point(path: Path) -> bool:
    target = str(path.resolve())
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        return any(line.split()[4] == target for line in handle)
