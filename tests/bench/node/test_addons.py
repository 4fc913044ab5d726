"""CoreDNS answers the cluster zone only; kube-proxy changes no sysctl of the machine."""

from __future__ import annotations

from pathlib import Path

from bench.localcluster.node import addons


def test_corefile_has_no_forward_and_binds_the_node_address(tmp_path: Path) -> None:
    text = addons.corefile(
        address="10.200.0.1", kubeconfig=tmp_path / "k", ready_port=1234, reverse_zones=("0.0.10.in-addr.arpa",)
    )
    assert not any(line.split()[:1] == ["forward"] for line in text.splitlines()), text
    assert "bind 10.200.0.1" in text
    # One server block, for the cluster zone and the reverse zone: any other name matches
    # no block and CoreDNS answers REFUSED.
    assert text.splitlines()[0] == "cluster.local 0.0.10.in-addr.arpa {"
    assert text.count("{") == 2
    assert "ready 127.0.0.1:1234" in text


def test_kube_proxy_leaves_conntrack_sysctls_alone(tmp_path: Path) -> None:
    config = addons.kube_proxy_configuration(
        kubeconfig=tmp_path / "k", node_name="node-1", cluster_cidr="10.88.0.0/16", healthz_port=1, metrics_port=2
    )
    assert config["conntrack"] == {
        "maxPerCore": 0,
        "min": 0,
        "tcpEstablishedTimeout": "0s",
        "tcpCloseWaitTimeout": "0s",
    }
    assert config["healthzBindAddress"] == "127.0.0.1:1"
    assert config["mode"] == "iptables"


def test_scheduler_serves_on_loopback(tmp_path: Path) -> None:
    argv = addons.scheduler_argv(tmp_path / "s", kubeconfig=tmp_path / "k", port=5, cert_dir=tmp_path)
    assert "--bind-address=127.0.0.1" in argv
    assert "--secure-port=5" in argv
    assert "--leader-elect=false" in argv
