"""kubelet's configuration: nothing that reaches outside the run."""

from __future__ import annotations

from pathlib import Path

from bench.localcluster.node import kubelet


def _config(tmp_path: Path) -> dict[str, object]:
    return kubelet.configuration(
        kubelet.KubeletPaths(tmp_path),
        node_address="10.200.0.1",
        runtime_socket=tmp_path / "c.sock",
        client_ca=tmp_path / "ca.crt",
        cluster_dns="10.200.0.1",
        cgroup_root="/otel-injector-x",
        healthz_port=7,
        otlp_grpc_endpoint="10.200.0.1:4317",
    )


def test_dns_is_coredns_only(tmp_path: Path) -> None:
    config = _config(tmp_path)
    assert config["resolvConf"] == ""
    assert config["clusterDNS"] == ["10.200.0.1"]


def test_listens_only_on_the_node_address_and_loopback(tmp_path: Path) -> None:
    config = _config(tmp_path)
    assert config["address"] == "10.200.0.1"
    assert config["healthzBindAddress"] == "127.0.0.1"
    assert config["readOnlyPort"] == 0


def test_cgroup_v1_and_own_cgroup_root(tmp_path: Path) -> None:
    config = _config(tmp_path)
    assert config["failCgroupV1"] is False
    assert config["cgroupDriver"] == "cgroupfs"
    assert config["cgroupRoot"] == "/otel-injector-x"


def test_traces_everything(tmp_path: Path) -> None:
    assert _config(tmp_path)["tracing"] == {"endpoint": "10.200.0.1:4317", "samplingRatePerMillion": 1_000_000}


def test_argv_names_the_node(tmp_path: Path) -> None:
    argv = kubelet.argv(
        tmp_path / "kubelet", kubelet.KubeletPaths(tmp_path), node_name="node-1", node_address="10.200.0.1"
    )
    assert "--hostname-override=node-1" in argv
    assert "--node-ip=10.200.0.1" in argv
