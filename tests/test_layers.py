"""The package's layering, checked by import-linter: imports only run downwards.

``lint-imports`` reads the contracts in pyproject.toml. The negative control runs it with
the layers reversed, which must fail, so a broken checker cannot pass silently.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", *args], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )


def test_layer_contracts_are_kept() -> None:
    result = _run()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken." in result.stdout


def test_a_reversed_layering_is_caught(tmp_path: Path) -> None:
    config = tmp_path / "reversed.toml"
    config.write_text(
        "[tool.importlinter]\n"
        'root_packages = ["webhook"]\n'
        "[[tool.importlinter.contracts]]\n"
        'name = "reversed"\n'
        'type = "layers"\n'
        'layers = ["webhook.core", "webhook.cli"]\n'
    )
    result = _run("--config", str(config))
    assert result.returncode != 0
    assert "webhook.cli" in result.stdout
