"""containerd's generated config: parsed back with tomllib, the settings the node needs."""

from __future__ import annotations

import tomllib
from pathlib import Path

from bench.localcluster.node import containerd


def _config(tmp_path: Path) -> dict[str, object]:
    paths = containerd.ContainerdPaths(tmp_path)
    text = containerd.config_toml(
        paths, cni_bin_dir=tmp_path / "bin", cni_conf_dir=tmp_path / "net.d", pause_image="x/pause:1"
    )
    return tomllib.loads(text)


def test_every_path_is_under_the_node_directory(tmp_path: Path) -> None:
    config = _config(tmp_path)
    plugins = config["plugins"]
    assert isinstance(plugins, dict)
    assert config["root"] == str(tmp_path / "root")
    assert config["state"] == str(tmp_path / "state")
    assert plugins["io.containerd.server.v1.grpc"]["address"] == str(tmp_path / "containerd.sock")
    runc = plugins["io.containerd.cri.v1.runtime"]["containerd"]["runtimes"]["runc"]["options"]
    assert runc["Root"] == str(tmp_path / "runc")
    assert runc["BinaryName"] == containerd.RUNC


def test_node_settings(tmp_path: Path) -> None:
    plugins = _config(tmp_path)["plugins"]
    assert isinstance(plugins, dict)
    runtime = plugins["io.containerd.cri.v1.runtime"]
    assert runtime["restrict_oom_score_adj"] is True
    assert runtime["netns_mounts_under_state_dir"] is True
    assert runtime["cni"]["bin_dirs"] == [str(tmp_path / "bin")]
    assert plugins["io.containerd.cri.v1.images"]["pinned_images"]["sandbox"] == "x/pause:1"
    assert plugins["io.containerd.grpc.v1.cri"]["stream_server_address"] == "127.0.0.1"


def test_tracing_env_names_a_grpc_endpoint() -> None:
    env = containerd.tracing_env("10.200.0.1:4317")
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://10.200.0.1:4317"
    assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "grpc"
    assert env["OTEL_TRACES_SAMPLER_ARG"] == "1.0"
