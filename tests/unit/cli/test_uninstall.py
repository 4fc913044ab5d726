"""``otel-injector uninstall``: its flags, and a failed API call is exit 1 with one line."""

from __future__ import annotations

import pytest

from webhook.cli.main import main


def test_phase_is_required_and_checked(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["uninstall", "--phase", "later"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_an_unreachable_apiserver_is_exit_1(tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    from pathlib import Path

    kubeconfig = Path(str(tmp_path)) / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'http://127.0.0.1:9'}}]\n"
        "users: [{name: u, user: {}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n",
        encoding="utf-8",
    )
    assert main(["uninstall", "--phase", "pre-delete", "--kubeconfig", str(kubeconfig)]) == 1
    assert capsys.readouterr().err.startswith("otel-injector: ")
