"""The command line: inject, certs, and serve's fast failures. Errors are one line."""

from __future__ import annotations

import base64
import io
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509

from tests.support import restored_logging
from webhook import __version__
from webhook.cli.main import main

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: app
        image: nginx:1.27
"""


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A private os.environ without the injector's variables: serve exports its flags there."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_INJECTOR_") and k != "POD_NAMESPACE"}
    monkeypatch.setattr(os, "environ", environ)
    # serve sets up JSON logging before it checks the TLS files; undo that for other tests.
    with restored_logging():
        yield


def one_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0]


def sidecar_names(output: str) -> list[str]:
    (document,) = yaml.safe_load_all(output)
    return [c["name"] for c in document["spec"]["template"]["spec"].get("initContainers", [])]


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: otel-injector")
    for command in ("serve", "inject", "certs"):
        assert command in err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"otel-injector {__version__}\n"


def test_unknown_flag_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["inject", "--bogus"])
    assert info.value.code == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


# --- inject ---


def test_inject_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "deploy.yaml"
    path.write_text(DEPLOYMENT, encoding="utf-8")
    assert main(["inject", "-f", str(path)]) == 0
    captured = capsys.readouterr()
    assert sidecar_names(captured.out) == ["otel-collector"]
    assert captured.err == ""


def test_inject_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(DEPLOYMENT))
    assert main(["inject"]) == 0
    assert sidecar_names(capsys.readouterr().out) == ["otel-collector"]


def test_inject_namespace_flag(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(DEPLOYMENT))
    assert main(["inject", "-f", "-", "-n", "kube-system"]) == 0
    captured = capsys.readouterr()
    assert sidecar_names(captured.out) == []
    assert one_line(captured.err) == (
        "Deployment/web: otel-injector: sidecar not injected: namespace kube-system is a system namespace"
    )


def test_inject_reads_settings_from_config_and_env(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "deploy.yaml"
    source.write_text(DEPLOYMENT, encoding="utf-8")
    config = tmp_path / "settings.yaml"
    config.write_text("sidecar_image: example.com/otelcol:9\n", encoding="utf-8")
    os.environ["OTEL_INJECTOR_SIDECAR_MODE"] = "container"
    assert main(["inject", "-f", str(source), "--config", str(config)]) == 0
    (document,) = yaml.safe_load_all(capsys.readouterr().out)
    containers: list[dict[str, Any]] = document["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["app", "otel-collector"]
    assert containers[1]["image"] == "example.com/otelcol:9"


def test_inject_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.yaml"
    assert main(["inject", "-f", str(missing)]) == 1
    captured = capsys.readouterr()
    assert one_line(captured.err) == f"otel-injector: cannot read {missing}: No such file or directory"
    assert captured.out == ""


def test_inject_binary_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "image.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    assert main(["inject", "-f", str(path)]) == 1
    assert one_line(capsys.readouterr().err) == f"otel-injector: {path} is not UTF-8 text"


def test_inject_bad_yaml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("kind: [Pod\n  x: {\n", encoding="utf-8")
    assert main(["inject", "-f", str(path)]) == 1
    captured = capsys.readouterr()
    assert one_line(captured.err).startswith("otel-injector: invalid YAML: ")
    assert captured.out == ""


def test_inject_bad_settings_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "settings.yaml"
    config.write_text("sidecar_imag: x\n", encoding="utf-8")
    assert main(["inject", "-f", str(tmp_path / "unused.yaml"), "--config", str(config)]) == 2
    assert one_line(capsys.readouterr().err) == f"otel-injector: config file {config}: unknown settings sidecar_imag"


def test_inject_bad_env_setting_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    os.environ["OTEL_INJECTOR_SIDECAR_MEMORY_LIMIT"] = "lots"
    assert main(["inject"]) == 2
    assert one_line(capsys.readouterr().err).startswith("otel-injector: sidecar_memory_limit: 'lots' is not")


# --- certs ---


def test_certs_writes_files_and_prints_ca_bundle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "tls"
    assert main(["certs", "--out", str(out), "--dns-name", "svc.ns.svc", "--ip", "127.0.0.1", "--days", "7"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert base64.b64decode(one_line(captured.out)) == (out / "ca.crt").read_bytes()
    cert = x509.load_pem_x509_certificate((out / "tls.crt").read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["svc.ns.svc"]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days == 7
    assert stat.S_IMODE((out / "tls.key").stat().st_mode) == 0o600


def test_certs_without_sans(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["certs", "--out", str(tmp_path / "tls")]) == 2
    captured = capsys.readouterr()
    assert one_line(captured.err) == "otel-injector: a serving cert needs at least one --dns-name or --ip"
    assert captured.out == ""
    assert not (tmp_path / "tls").exists()


def test_certs_bad_ip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["certs", "--out", str(tmp_path), "--ip", "999.1.1.1"]) == 2
    assert one_line(capsys.readouterr().err) == (
        "otel-injector: '999.1.1.1' does not appear to be an IPv4 or IPv6 address"
    )
    assert list(tmp_path.iterdir()) == []


def test_certs_bad_days(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["certs", "--out", str(tmp_path), "--dns-name", "x", "--days", "0"]) == 2
    assert one_line(capsys.readouterr().err) == "otel-injector: --days must be at least 1"


def test_certs_out_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    assert main(["certs", "--out", str(blocker), "--dns-name", "x"]) == 1
    assert one_line(capsys.readouterr().err).startswith(f"otel-injector: cannot write to {blocker}: ")


def test_certs_requires_out(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["certs", "--dns-name", "x"])
    assert info.value.code == 2
    assert "--out" in capsys.readouterr().err


# --- serve: only the failures that happen before a server starts ---


def test_serve_without_tls_cert(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve"]) == 2
    assert one_line(capsys.readouterr().err) == (
        "otel-injector: --tls-cert and --tls-key are required: the webhook only serves HTTPS"
    )


def test_serve_without_tls_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cert = tmp_path / "tls.crt"
    cert.write_text("x", encoding="utf-8")
    assert main(["serve", "--tls-cert", str(cert)]) == 2
    assert one_line(capsys.readouterr().err) == (
        "otel-injector: --tls-cert and --tls-key are required: the webhook only serves HTTPS"
    )


def test_serve_with_missing_cert_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    key.write_text("x", encoding="utf-8")
    assert main(["serve", "--tls-cert", str(cert), "--tls-key", str(key), "--port", "18443"]) == 2
    assert one_line(capsys.readouterr().err) == f"otel-injector: --tls-cert {cert}: no such file"


def test_serve_with_unloadable_cert(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert.write_text("not a cert", encoding="utf-8")
    key.write_text("not a key", encoding="utf-8")
    assert main(["serve", "--tls-cert", str(cert), "--tls-key", str(key)]) == 2
    assert one_line(capsys.readouterr().err).startswith(
        f"otel-injector: cannot load the TLS cert {cert} with key {key}"
    )


def test_serve_bad_port_setting(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--port", "70000"]) == 2
    assert one_line(capsys.readouterr().err) == "otel-injector: port must be 1-65535, not 70000"


def test_serve_tls_cert_from_environment(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "env.crt"
    os.environ["OTEL_INJECTOR_TLS_CERT"] = str(missing)
    os.environ["OTEL_INJECTOR_TLS_KEY"] = str(tmp_path / "env.key")
    assert main(["serve"]) == 2
    assert one_line(capsys.readouterr().err) == f"otel-injector: --tls-cert {missing}: no such file"
