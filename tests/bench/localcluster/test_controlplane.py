"""End-to-end checks of the local control plane and the other bench binaries."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import pytest

from bench.localcluster import binaries as bins
from bench.localcluster.controlplane import ControlPlane
from tests.support import wait_for

pytestmark = pytest.mark.e2e


def test_apiserver_reports_pinned_version(control_plane: ControlPlane) -> None:
    status, body = control_plane.api_get("/version")
    assert status == 200
    assert json.loads(body)["gitVersion"] == bins.K8S_VERSION

    out = json.loads(control_plane.kubectl("version", "-o", "json").stdout)
    assert out["clientVersion"]["gitVersion"] == bins.K8S_VERSION
    assert out["serverVersion"]["gitVersion"] == bins.K8S_VERSION


def test_deployment_creates_a_pending_pod(control_plane: ControlPlane) -> None:
    control_plane.kubectl("create", "namespace", "cp-smoke")
    control_plane.kubectl("-n", "cp-smoke", "create", "deployment", "web", "--image=nginx", "--replicas=1")

    def pods() -> list[dict[str, Any]]:
        out = control_plane.kubectl("-n", "cp-smoke", "get", "pods", "-l", "app=web", "-o", "json").stdout
        items: list[dict[str, Any]] = json.loads(out)["items"]
        return items

    found = wait_for("a Pod created by the deployment's ReplicaSet", pods, timeout=60, interval=0.5)
    pod = found[0]
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet"
    # No scheduler and no kubelet: the pod exists but never runs.
    assert pod["status"].get("phase", "Pending") == "Pending"
    assert not pod["spec"].get("nodeName")


def test_apiserver_traces_reach_jaeger(control_plane: ControlPlane) -> None:
    def services() -> list[str]:
        control_plane.kubectl("get", "namespaces")  # make sure there are fresh spans
        data: list[str] = control_plane.jaeger_api("/api/services", timeout=5)["data"] or []
        return data if "apiserver" in data else []

    assert "apiserver" in wait_for("service 'apiserver' in Jaeger", services, timeout=60, interval=1)


def test_jaeger_binds_only_the_ports_it_was_given(control_plane: ControlPlane) -> None:
    proc = control_plane.processes["jaeger"]
    assert proc.pid is not None
    listening = _listening_ports(proc.pid)
    expected = {
        int(control_plane.jaeger_query_url.rsplit(":", 1)[1]),
        int(control_plane.jaeger_otlp_grpc_endpoint.rsplit(":", 1)[1]),
        int(control_plane.jaeger_otlp_http_endpoint.rsplit(":", 1)[1]),
    }
    assert expected <= {port for _, port in listening}
    assert all(host == "127.0.0.1" for host, _ in listening), listening


def _listening_ports(pid: int) -> set[tuple[str, int]]:
    """(address, port) of the TCP sockets process ``pid`` listens on, read from /proc."""
    inodes: set[str] = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    result: set[tuple[str, int]] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table, encoding="ascii") as handle:
            next(handle)
            for line in handle:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state != "0A" or inode not in inodes:  # 0A = LISTEN
                    continue
                addr_hex, port_hex = local.split(":")
                if len(addr_hex) == 8:
                    addr = ".".join(str(int(addr_hex[i : i + 2], 16)) for i in (6, 4, 2, 0))
                else:
                    addr = addr_hex
                result.add((addr, int(port_hex, 16)))
    return result


@pytest.mark.parametrize(
    ("name", "argv", "expected"),
    [
        ("etcd", ["--version"], bins.ETCD_VERSION.removeprefix("v")),
        ("otelcol", ["--version"], bins.OTELCOL_VERSION),
        ("helm", ["version", "--short"], bins.HELM_VERSION),
        ("jaeger", ["version"], bins.JAEGER_RELEASE),
    ],
)
def test_other_binaries_run(name: str, argv: list[str], expected: str) -> None:
    path = bins.ensure_binaries([name]).path(name)
    result = subprocess.run([str(path), *argv], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout + result.stderr


def test_otelcol_has_the_sidecar_components() -> None:
    otelcol = bins.ensure_binaries(["otelcol"]).otelcol
    result = subprocess.run([str(otelcol), "components"], capture_output=True, text=True, timeout=60, check=True)
    for kind, names in bins.OTELCOL_COMPONENTS.items():
        for component in names:
            assert f"name: {component}" in result.stdout, (kind, component)
