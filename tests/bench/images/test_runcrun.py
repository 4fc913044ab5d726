"""Running an image under Debian's runc with the chart's securityContext."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.localcluster.images import build_debian_base
from bench.localcluster.images.runcrun import Mount, image_argv, run_to_completion, runc_spec

_BASE_SPEC: dict[str, Any] = {
    "process": {"user": {"uid": 0, "gid": 0}, "capabilities": {"bounding": ["CAP_KILL"]}},
    "root": {"path": "rootfs", "readonly": False},
    "mounts": [],
    "linux": {},
}


def test_spec_is_the_charts_security_context(tmp_path: Path) -> None:
    config = {"User": "65532:65532", "Env": ["A=1"], "Entrypoint": ["app"], "Cmd": ["serve"]}
    spec = runc_spec(_BASE_SPEC, config, image_argv(config, None), [Mount(tmp_path, "/certs")], "/cg/id")
    assert spec["root"]["readonly"] is True
    assert spec["process"]["user"] == {"uid": 65532, "gid": 65532}
    assert spec["process"]["args"] == ["app", "serve"]
    assert spec["process"]["noNewPrivileges"] is True
    assert all(v == [] for v in spec["process"]["capabilities"].values())
    mounts = {m["destination"]: m for m in spec["mounts"]}
    assert mounts["/tmp"]["type"] == "tmpfs"
    assert "ro" in mounts["/certs"]["options"]
    assert spec["linux"]["cgroupsPath"] == "/cg/id"
    assert _BASE_SPEC["root"]["readonly"] is False  # the base is not modified


def test_argv_follows_docker_run_rules() -> None:
    config = {"Entrypoint": ["otel-injector"], "Cmd": ["serve"]}
    assert image_argv(config, None) == ["otel-injector", "serve"]
    assert image_argv(config, ["--version"]) == ["otel-injector", "--version"]
    assert image_argv(config, ["-c", "1"], ["python3"]) == ["python3", "-c", "1"]


def test_a_real_container_has_a_read_only_root_and_its_own_network(tmp_path: Path) -> None:
    base = build_debian_base(packages=("python3",))
    probe = (
        "import socket\n"
        "print([n for _, n in socket.if_nameindex()])\n"
        "try:\n    open('/etc/x', 'w')\nexcept OSError as exc:\n    print(exc.strerror)\n"
        "open('/tmp/ok', 'w').write('fine')\nprint('tmp writable')\n"
    )
    done = run_to_completion(base.archive, tmp_path, [], entrypoint=["python3", "-c", probe])
    assert done.returncode == 0, done.output
    assert done.output.splitlines() == ["['lo']", "Read-only file system", "tmp writable"]
