"""Command lines of the control-plane components (pure)."""

from __future__ import annotations

from pathlib import Path

from bench.localcluster import components


def test_etcd_traces_its_server_side_with_the_36_flag_names(tmp_path: Path) -> None:
    argv = components.etcd_argv(tmp_path / "etcd", data_dir=tmp_path, client=1, peer=2, otlp_grpc_endpoint="h:4317")
    assert "--enable-distributed-tracing" in argv
    assert "--distributed-tracing-address=h:4317" in argv
    assert "--distributed-tracing-sampling-rate=1000000" in argv
    assert not any(a.startswith("--experimental-") for a in argv)


def test_apiserver_authorizers_are_one_flag(tmp_path: Path) -> None:
    pki = {k: tmp_path / k for k in ("ca", "cert", "key", "sa_public", "sa_private")}
    argv = components.apiserver_argv(
        tmp_path / "apiserver",
        etcd_url="http://127.0.0.1:1",
        port=2,
        workdir=tmp_path,
        pki=pki,
        server_url="https://127.0.0.1:2",
        service_cidr="10.0.0.0/24",
        tracing_config=tmp_path / "t.yaml",
        authorization_modes=("Node", "RBAC"),
        extra=["--x=1"],
    )
    # The flag is a list: given twice, the apiserver refuses to start.
    assert [a for a in argv if a.startswith("--authorization-mode")] == ["--authorization-mode=Node,RBAC"]
    assert argv[-1] == "--x=1"


def test_jaeger_otlp_receivers_follow_the_host_and_the_query_api_stays_on_loopback() -> None:
    text = components.jaeger_config(otlp_grpc=1, otlp_http=2, query_http=3, query_grpc=4, otlp_host="10.200.0.1")
    assert "endpoint: 10.200.0.1:1" in text
    assert "endpoint: 10.200.0.1:2" in text
    assert "endpoint: 127.0.0.1:3" in text


def test_kubeconfig_names_server_ca_and_user(tmp_path: Path) -> None:
    import json

    config = json.loads(
        components.kubeconfig("https://s", tmp_path / "ca", "u", {"token": "t"}, cluster="c", context="x")
    )
    assert config["clusters"][0]["cluster"] == {"server": "https://s", "certificate-authority": str(tmp_path / "ca")}
    assert config["users"] == [{"name": "u", "user": {"token": "t"}}]
    assert config["current-context"] == "x"
