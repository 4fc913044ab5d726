"""buildkitd in namespaces of its own: what a RUN step sees, and what the machine keeps.

Real buildkitd (the bench's cached build) and Debian's runc; needs root. A throwaway
Dockerfile whose RUN step reports its network interfaces and tries to reach an address
off the machine is built against the bench's Debian python3 base; its result is exported
as a local directory and read back.
"""

from __future__ import annotations

import json
import subprocess
import tomllib
from pathlib import Path

import pytest

from bench.localcluster.binaries import ensure_binaries
from bench.localcluster.images import build_debian_base
from bench.localcluster.images.buildkitd import config_toml, namespaced_argv, running_buildkitd
from bench.localcluster.images.ocilayout import oci_layout_of
from bench.localcluster.node import hoststate


def test_config_keeps_the_worker_inside() -> None:
    config = tomllib.loads(
        config_toml(root=Path("/r"), socket=Path("/s/buildkitd.sock"), runc="/usr/sbin/runc", cgroup_parent="/cg")
    )
    assert config["worker"]["oci"]["networkMode"] == "host"  # = buildkitd's own namespace
    assert config["worker"]["oci"]["binary"] == "/usr/sbin/runc"
    assert config["worker"]["oci"]["defaultCgroupParent"] == "/cg"
    assert config["worker"]["containerd"]["enabled"] is False
    assert config["dns"]["nameservers"] == ["127.0.0.1"]
    assert config["grpc"]["address"] == ["unix:///s/buildkitd.sock"]
    assert config["worker"]["oci"]["gc"] is True
    assert config["worker"]["oci"]["maxUsedSpace"] == "3000MB"  # a bounded cache dir


def test_daemon_starts_in_new_network_and_mount_namespaces() -> None:
    argv = namespaced_argv(Path("/b/buildkitd"), Path("/c.toml"))
    assert argv[:6] == ["unshare", "--net", "--mount", "--propagation", "private", "--"]
    assert 'exec "$@"' in argv[8]
    assert argv[-3:] == ["/b/buildkitd", "--config", "/c.toml"]


_PROBE = """\
import json, socket
result = {"links": [name for _, name in socket.if_nameindex()]}
try:
    socket.create_connection(("192.0.2.1", 80), timeout=3)
    result["outside"] = "connected"
except OSError as exc:
    result["outside"] = type(exc).__name__ + ": " + str(exc)
result["resolv"] = open("/etc/resolv.conf").read()
open("/probe.json", "w").write(json.dumps(result))
"""


def test_run_steps_see_only_loopback_and_the_machine_is_left_as_found(tmp_path: Path) -> None:
    binaries = ensure_binaries(["buildkitd", "buildctl"])
    base = build_debian_base(packages=("python3",))
    layout = oci_layout_of(base.archive)
    context = tmp_path / "context"
    context.mkdir()
    (context / "probe.py").write_text(_PROBE)
    stages = [f"FROM {base.name} AS probe", "COPY probe.py /", "RUN python3 /probe.py"]
    stages += ["FROM scratch", "COPY --from=probe /probe.json /"]
    (context / "Dockerfile").write_text("\n".join(stages) + "\n")
    out = tmp_path / "out"
    before = hoststate.capture(run_marker=str(tmp_path / "state"))
    with running_buildkitd(binaries.buildkitd, binaries.buildctl, tmp_path / "state", print) as daemon:
        pid = next(iter(hoststate.processes_mentioning(str(tmp_path / "state" / "run-"))), None)
        assert pid is not None
        assert Path(f"/proc/{pid}/ns/net").resolve() != Path("/proc/self/ns/net").resolve()
        assert Path(f"/proc/{pid}/ns/mnt").resolve() != Path("/proc/self/ns/mnt").resolve()
        done = subprocess.run(
            daemon.buildctl_argv(
                "build",
                "--progress",
                "plain",
                "--frontend",
                "dockerfile.v0",
                "--local",
                f"context={context}",
                "--local",
                f"dockerfile={context}",
                "--oci-layout",
                f"base={layout.path}",
                "--opt",
                f"context:{base.name}=oci-layout://base@{layout.manifest_digest}",
                "--no-cache",
                "--output",
                f"type=local,dest={out}",
            ),
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-4000:]
    after = hoststate.capture(run_marker=str(tmp_path / "state"))
    assert hoststate.differences(before, after) == []
    # runc's default parent would be /buildkit; everything went under the run's own.
    assert [str(h / "buildkit") for h in hoststate.hierarchies() if (h / "buildkit").exists()] == []
    probe = json.loads((out / "probe.json").read_text())
    print(f"RUN step saw: {probe}")
    assert probe["links"] == ["lo"]
    assert "Network is unreachable" in probe["outside"]
    assert [line for line in probe["resolv"].splitlines() if line.startswith("nameserver")] == ["nameserver 127.0.0.1"]


def test_a_daemon_that_cannot_start_fails_with_its_log(tmp_path: Path) -> None:
    from bench.localcluster.images.cache import ImageBuildError

    binaries = ensure_binaries(["buildctl"])
    fake = tmp_path / "buildkitd"
    fake.write_text("#!/bin/sh\necho 'not a buildkitd' >&2\nexit 3\n")
    fake.chmod(0o755)
    with (
        pytest.raises(ImageBuildError, match="not a buildkitd"),
        running_buildkitd(fake, binaries.buildctl, tmp_path / "state", print),
    ):
        pass
