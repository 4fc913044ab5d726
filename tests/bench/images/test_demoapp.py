"""The demo app image: its config, its contents and, run from its rootfs, its two commands."""

from __future__ import annotations

import ast
import hashlib
import json
import re
import subprocess
import urllib.request
from pathlib import Path

import pytest

from bench.localcluster.images import Image, build_images
from bench.localcluster.images.demoapp import DEMO_APP_IMAGE, DEMO_APP_UID, build_demo_app
from tests.bench.images.support import (
    extract_rootfs,
    free_port,
    image_env,
    layer_file,
    layer_members,
    otlp_receiver,
    read_archive,
    run_in_rootfs,
    wait_for_port,
)

USER = f"{DEMO_APP_UID}:{DEMO_APP_UID}"
APP_SOURCE = Path(__file__).parents[3] / "bench/localcluster/images/demo_app/app.py"


@pytest.fixture(scope="module")
def demo_app() -> Image:
    return build_images().demo_app


@pytest.fixture(scope="module")
def rootfs(demo_app: Image, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return extract_rootfs(demo_app.archive, tmp_path_factory.mktemp("demo-app") / "rootfs")


def _env(demo_app: Image, **extra: str) -> dict[str, str]:
    """The image's own Env plus what a pod would add."""
    return {**image_env(demo_app.archive), **extra}


def _entrypoint(demo_app: Image) -> list[str]:
    config = read_archive(demo_app.archive).config["config"]
    return [*config["Entrypoint"]]


def test_name_and_runtime_config(demo_app: Image) -> None:
    assert demo_app.name == DEMO_APP_IMAGE
    assert demo_app.name.startswith("localhost/")
    config = read_archive(demo_app.archive).config["config"]
    assert config["User"] == f"{DEMO_APP_UID}:{DEMO_APP_UID}"
    assert config["Entrypoint"][0] == "/usr/local/bin/opentelemetry-instrument"
    assert config["Cmd"] == ["serve"]


def test_configured_only_by_the_environment(demo_app: Image) -> None:
    """No endpoint, service name or resource attribute in code, arguments or image env."""
    config = read_archive(demo_app.archive).config["config"]
    fixed = " ".join([*config["Entrypoint"], *config["Cmd"], *config["Env"]])
    assert "OTEL_" not in fixed
    tree = ast.parse(APP_SOURCE.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.FunctionDef) and node.body and isinstance(node.body[0], ast.Expr)
    }
    literals = [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]
    assert literals, "the check must see the code's strings"
    for text in literals:
        assert not re.search(r"OTEL_|4317|4318|service\.name|k8s\.|otlp|localhost", text), text
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    assert not names & {"Resource", "TracerProvider", "OTLPSpanExporter", "BatchSpanProcessor"}


def test_layer_is_slim_and_holds_no_build_host_state(demo_app: Image) -> None:
    layer = read_archive(demo_app.archive).layers[0]
    members = layer_members(layer)
    assert "usr/bin/python3.11" in members
    assert "opt/demo-app/app.py" in members
    assert not any(m.ischr() or m.isblk() or m.isfifo() for m in members.values())
    assert layer_file(layer, "etc/resolv.conf") == b""
    assert not any(name.startswith(("usr/bin/apt", "bin/sh", "usr/bin/pip")) for name in members)
    assert not [name for name, m in members.items() if m.mtime != members["usr/bin/python3.11"].mtime]
    print(f"demo app image: {demo_app.size / 1e6:.1f} MB")
    assert demo_app.size < 150e6


def test_emit_exports_one_span_over_otlp_from_a_read_only_rootfs(demo_app: Image, rootfs: Path, tmp_path: Path) -> None:
    with otlp_receiver(tmp_path) as receiver:
        env = _env(
            demo_app,
            # As otel-injector writes it (http://localhost:4318), on the receiver's port.
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint.replace("127.0.0.1", "localhost"),
            OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
            OTEL_SERVICE_NAME="emit-test",
            OTEL_RESOURCE_ATTRIBUTES="k8s.pod.name=emit-pod",
        )
        proc = run_in_rootfs(rootfs, [*_entrypoint(demo_app), "emit", "job-span"], env=env, user=USER)
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, out
        spans = receiver.wait_for_spans(1)
    names = [(span["name"], attrs.get("service.name"), attrs.get("k8s.pod.name")) for span, attrs in spans]
    assert ("job-span", "emit-test", "emit-pod") in names, names


def test_without_any_otel_variable_emit_still_exits_zero(demo_app: Image, rootfs: Path) -> None:
    """Fail-open: a pod the webhook did not inject still runs its app to completion."""
    proc = run_in_rootfs(rootfs, [*_entrypoint(demo_app), "emit", "untraced"], env=_env(demo_app), user=USER)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    assert "emitted span 'untraced'" in out


def test_emit_without_a_name_is_a_usage_error(demo_app: Image, rootfs: Path) -> None:
    proc = run_in_rootfs(rootfs, [*_entrypoint(demo_app), "emit"], env=_env(demo_app), user=USER)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 2, out
    assert "usage:" in out


def _serve(demo_app: Image, rootfs: Path, port: int, endpoint: str, name: str, **extra: str) -> subprocess.Popen[str]:
    env = _env(
        demo_app,
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_SERVICE_NAME=name,
        OTEL_PROPAGATORS="tracecontext,baggage",
        HOST="127.0.0.1",
        PORT=str(port),
        **extra,
    )
    return run_in_rootfs(rootfs, [*_entrypoint(demo_app), "serve"], env=env, user=USER)


def test_serve_calls_downstream_and_one_trace_spans_both(demo_app: Image, rootfs: Path, tmp_path: Path) -> None:
    back_port, front_port = free_port(), free_port()
    with otlp_receiver(tmp_path) as receiver:
        backend = _serve(demo_app, rootfs, back_port, receiver.endpoint, "backend")
        frontend = _serve(
            demo_app, rootfs, front_port, receiver.endpoint, "frontend", DOWNSTREAM_URL=f"http://127.0.0.1:{back_port}/"
        )
        try:
            wait_for_port(back_port, timeout=60)
            wait_for_port(front_port, timeout=60)
            with urllib.request.urlopen(f"http://127.0.0.1:{front_port}/", timeout=30) as answer:
                body = json.loads(answer.read())
        finally:
            for proc in (frontend, backend):
                proc.terminate()  # SIGTERM: the app flushes its spans on the way out
            outputs = [proc.communicate(timeout=60)[0] for proc in (frontend, backend)]
        assert [proc.returncode for proc in (frontend, backend)] == [0, 0], outputs
        trace_id = body["trace_id"]
        assert trace_id, body
        assert body["downstream"]["trace_id"] == trace_id, body
        assert body["downstream"]["received_traceparent"].startswith(f"00-{trace_id}-"), body
        spans = receiver.wait_for_spans(3)
    services = {attrs.get("service.name") for span, attrs in spans if _hex_trace_id(span) == trace_id}
    assert services == {"frontend", "backend"}, spans
    kinds = {(attrs.get("service.name"), span["kind"]) for span, attrs in spans if _hex_trace_id(span) == trace_id}
    # The frontend's server and client spans, the backend's server span.
    assert {("frontend", 2), ("frontend", 3), ("backend", 2)} <= kinds, kinds


def _hex_trace_id(span: dict[str, object]) -> str:
    return str(span.get("traceId", "")).lower()


def test_digest_is_stable_across_two_builds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two builds from scratch (Debian rootfs, pip, bytecode) give the same bytes.

    The second one downloads every wheel again, into an empty pip cache: what pip writes
    must not depend on where the wheels came from.
    """
    ids, digests = [], []
    for run in ("one", "two"):
        workdir = tmp_path / run
        workdir.mkdir()
        if run == "two":
            monkeypatch.setenv("PIP_CACHE_DIR", str(tmp_path / "pip-cache"))
        ids.append(build_demo_app(workdir, workdir / "image.tar", print))
        digests.append(hashlib.sha256((workdir / "image.tar").read_bytes()).hexdigest())
    assert ids[0] == ids[1], "image IDs differ: a Debian or PyPI update between the builds, or non-determinism"
    assert digests[0] == digests[1]
