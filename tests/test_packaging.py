"""The wheel holds the product and nothing else: no test bench, no Go module templates.

The bench (``bench/``: local cluster, demo, performance suite) lives in the checkout only;
shipping it would put 2,000 lines of test rig and its Go recipes into every install and
image. This builds the real wheel with pip and reads its file list.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_wheel_holds_only_the_webhook_package(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(tmp_path), str(REPO)],
        check=True,
        timeout=300,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("otel_injector-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/", 1)[0] for name in names}
    assert top == {"webhook", next(t for t in top if t.endswith(".dist-info"))}
    assert not [n for n in names if "localcluster" in n or n.endswith((".tmpl", ".mod"))]
    packages = {name.rsplit("/", 1)[0] for name in names if name.startswith("webhook/")}
    assert {"webhook/core", "webhook/admission", "webhook/http", "webhook/cluster", "webhook/cli"} <= packages
    assert "webhook/py.typed" in names
