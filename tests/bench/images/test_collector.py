"""The collector image: the default sidecar image's name, upstream's layout, the bench's binary."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from bench.localcluster import binaries
from bench.localcluster.images import Image, build_images
from bench.localcluster.images.collector import (
    COLLECTOR_IMAGE,
    COLLECTOR_UID,
    EXPOSED_PORTS,
    build_collector,
    missing_components,
)
from tests.bench.images.support import (
    extract_rootfs,
    in_network_of,
    layer_file,
    layer_members,
    read_archive,
    run_in_rootfs,
)
from webhook.core.settings import DEFAULT_IMAGE

REPO = Path(__file__).parents[3]
#: USER 10001 without a group: a runtime gives such a process gid 0, as here.
USER = f"{COLLECTOR_UID}:0"


@pytest.fixture(scope="module")
def collector() -> Image:
    return build_images().collector


def test_name_is_exactly_the_default_sidecar_image(collector: Image) -> None:
    assert collector.name == COLLECTOR_IMAGE == f"docker.io/{DEFAULT_IMAGE}"
    assert read_archive(collector.archive).manifest[0]["RepoTags"] == [COLLECTOR_IMAGE]


def test_runtime_config_is_upstreams(collector: Image) -> None:
    config = read_archive(collector.archive).config["config"]
    assert config["User"] == str(COLLECTOR_UID) == "10001"
    assert config["Entrypoint"] == ["/otelcol"]
    assert config["Cmd"] == ["--config", "/etc/otelcol/config.yaml"]
    assert sorted(config["ExposedPorts"]) == sorted(EXPOSED_PORTS)
    assert config["Labels"]["org.opencontainers.image.version"] == binaries.OTELCOL_VERSION
    assert config["Labels"]["io.otel-injector.bench.missing-components"] == missing_components()


def test_layer_holds_the_bench_otelcol_config_and_ca_bundle(collector: Image) -> None:
    layer = read_archive(collector.archive).layers[0]
    members = layer_members(layer)
    assert sorted(m for m in members if members[m].isfile()) == [
        "etc/otelcol/config.yaml",
        "etc/ssl/certs/ca-certificates.crt",
        "otelcol",
    ]
    assert members["otelcol"].mode == 0o755
    otelcol = binaries.ensure_binaries(["otelcol"]).otelcol
    # The binary the sidecar runs is the one the bench validates the sidecar config with.
    assert hashlib.sha256(layer_file(layer, "otelcol")).digest() == hashlib.sha256(otelcol.read_bytes()).digest()
    assert b"BEGIN CERTIFICATE" in layer_file(layer, "etc/ssl/certs/ca-certificates.crt")


def test_build_lacks_exactly_the_listed_components() -> None:
    """Every upstream component is either in the binary or listed as missing."""
    otelcol = binaries.ensure_binaries(["otelcol"]).otelcol
    listed = subprocess.run([str(otelcol), "components"], capture_output=True, text=True, timeout=60, check=True)
    components = yaml.safe_load(listed.stdout)
    present = {kind: {c["name"] for c in components.get(kind, [])} for kind in binaries.OTELCOL_COMPONENTS}
    for kind, names in binaries.OTELCOL_COMPONENTS.items():
        assert set(names) <= present[kind], (kind, set(names) - present[kind])
    for kind, names in binaries.OTELCOL_MISSING_COMPONENTS.items():
        assert not set(names) & present.get(kind, set()), (kind, names)


@pytest.fixture(scope="module")
def rootfs(collector: Image, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return extract_rootfs(collector.archive, tmp_path_factory.mktemp("collector") / "rootfs")


def _validate(rootfs: Path, config: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    proc = run_in_rootfs(rootfs, ["/otelcol", "validate", f"--config={config}"], env=env, user=USER)
    out, _ = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, "")


def test_default_config_validates_in_the_image(rootfs: Path) -> None:
    result = _validate(rootfs, "/etc/otelcol/config.yaml", {})
    assert result.returncode == 0, result.stdout


def test_sidecar_config_validates_in_the_image_as_uid_10001(rootfs: Path, tmp_path: Path) -> None:
    sidecar = yaml.safe_load((REPO / "deploy/collector/config.yaml").read_text(encoding="utf-8"))
    assert sidecar["extensions"]["health_check"]["endpoint"].endswith(":13133")
    mounted = rootfs / "tmp-sidecar.yaml"
    # The rootfs is read-only once running; the config is placed before, as a volume would be.
    mounted.write_text((REPO / "deploy/collector/config.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    try:
        env = {"OTEL_INJECTOR_EXPORTER_ENDPOINT": "127.0.0.1:4317", "K8S_POD_NAME": "p", "K8S_NAMESPACE_NAME": "n"}
        env |= {"K8S_POD_UID": "u", "K8S_NODE_NAME": "node"}
        good = _validate(rootfs, "/tmp-sidecar.yaml", env)
        assert good.returncode == 0, good.stdout
        mounted.write_text("receivers: {otlp: {protocols: {nope: {}}}}\n", encoding="utf-8")
        bad = _validate(rootfs, "/tmp-sidecar.yaml", env)
        assert bad.returncode != 0, "a broken config must fail validation"
    finally:
        mounted.unlink()


def test_runs_as_10001_from_a_read_only_rootfs(rootfs: Path) -> None:
    proc = run_in_rootfs(rootfs, ["/otelcol", "--version"], env={}, user=USER)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert binaries.OTELCOL_VERSION in out
    assert os.stat(rootfs / "otelcol").st_uid == 0, "the binary is root-owned, not writable by the collector"


def test_digest_is_stable_across_two_builds(tmp_path: Path) -> None:
    ids, digests = [], []
    for run in ("one", "two"):
        workdir = tmp_path / run
        workdir.mkdir()
        ids.append(build_collector(workdir, workdir / "image.tar", print))
        digests.append(hashlib.sha256((workdir / "image.tar").read_bytes()).hexdigest())
    assert ids[0] == ids[1]
    assert digests[0] == digests[1]


def test_sidecar_config_runs_healthy_as_uid_10001_on_a_read_only_rootfs(rootfs: Path) -> None:
    """The default injection's collector starts in the image and answers its health check."""
    (rootfs / "sidecar.yaml").write_text((REPO / "deploy/collector/config.yaml").read_text(encoding="utf-8"))
    env = {"OTEL_INJECTOR_EXPORTER_ENDPOINT": "127.0.0.1:4317", "K8S_POD_NAME": "p", "K8S_NAMESPACE_NAME": "n"}
    env |= {"K8S_POD_UID": "u", "K8S_NODE_NAME": "node", "GOMEMLIMIT": "204MiB"}
    proc = run_in_rootfs(rootfs, ["/otelcol", "--config=/sidecar.yaml"], env=env, user=USER, private_network=True)
    try:
        probe = "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:13133/', timeout=2).status)"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            answer = in_network_of(proc, probe)
            if answer.stdout.strip() == "200" or proc.poll() is not None:
                break
            time.sleep(0.3)
        assert proc.poll() is None, proc.communicate(timeout=10)[0]
        assert answer.stdout.strip() == "200", answer.stderr
        status = Path(f"/proc/{proc.pid}/status").read_text()
        uids = next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1:]
        assert set(uids) == {str(COLLECTOR_UID)}, status
        assert Path(f"/proc/{proc.pid}/exe").resolve().name == "otelcol"
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
        (rootfs / "sidecar.yaml").unlink()
    assert proc.returncode == 0, out


def test_docstring_names_every_missing_component() -> None:
    from bench.localcluster.images import collector

    doc = " ".join((collector.__doc__ or "").split())
    for names in binaries.OTELCOL_MISSING_COMPONENTS.values():
        for name in names:
            assert name in doc, name
