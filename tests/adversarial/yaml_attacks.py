"""Odd YAML for ``otel-injector inject`` (defect class 7 of issue 9), and a runner that
measures one ``inject`` process: exit code, stderr lines, output size, time, peak RSS."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

POD = """apiVersion: v1
kind: Pod
metadata:
  name: web{i}
  namespace: shop
  labels: {{app: web}}
spec:
  containers:
  - name: web
    image: nginx
    env:
    - {{name: A, value: b}}
"""


def _alias_bomb(levels: int = 7, width: int = 9) -> str:
    lines = ['a0: &a0 ["' + "x" * 64 + '"]']
    for level in range(1, levels):
        refs = ", ".join([f"*a{level - 1}"] * width)
        lines.append(f"a{level}: &a{level} [{refs}]")
    body = "\n".join(f"  {line}" for line in lines)
    return (
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: bomb\n  annotations:\n    note: hi\n"
        f"spec:\n  containers:\n  - name: web\n    image: nginx\n  bomb:\n{body}\n"
    )


def _alias_containers(count: int = 300) -> str:
    env = "\n".join(f"    - {{name: V{i}, value: v}}" for i in range(count))
    refs = "\n".join(f"  - {{name: c{i}, image: i, env: *env}}" for i in range(1, count))
    return (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: shared}\nspec:\n  containers:\n"
        f"  - name: c0\n    image: i\n    env: &env\n{env}\n{refs}\n"
    )


def _big_list(pods: int) -> str:
    items = [yaml.safe_load(POD.format(i=i)) for i in range(pods)]
    return yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items})


def cases(scale: float = 1.0) -> dict[str, str]:
    """Name -> YAML text."""
    deployment = (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web, labels: {{tracing: enabled}}}}\n"
        "spec:\n  template:\n    metadata: {meta}\n    spec:\n      containers: [{{name: web, image: nginx}}]\n"
    )
    return {
        "deep-flow": "[" * 10_000 + "]" * 10_000 + "\n",
        "deep-block": "".join("  " * i + "a:\n" for i in range(3000)) + "  " * 3000 + "b\n",
        "deep-in-pod": "apiVersion: v1\nkind: Pod\nmetadata: {name: d}\nspec:\n  containers: [{name: w, x: "
        + "[" * 5000
        + "]" * 5000
        + "}]\n",
        "int-5000-digits": "apiVersion: v1\nkind: Pod\nmetadata: {name: n}\nspec:\n  x: " + "9" * 5000 + "\n"
        "  containers: [{name: w}]\n",
        "template-metadata-list": deployment.format(meta="[1, 2]"),
        "template-labels-string": deployment.format(meta="{labels: oops}"),
        "template-labels-int": deployment.format(meta="{labels: 7}"),
        "workload-labels-string": deployment.format(meta="{}").replace("labels: {tracing: enabled}", "labels: x"),
        "cronjob-jobtemplate-string": "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: c}\n"
        "spec:\n  schedule: '* * * * *'\n  jobTemplate: nope\n",
        "pod-metadata-null": "apiVersion: v1\nkind: Pod\nmetadata: null\nspec:\n  containers: [{name: w}]\n",
        "pod-metadata-list": "apiVersion: v1\nkind: Pod\nmetadata: []\nspec:\n  containers: [{name: w}]\n",
        "pod-spec-string": "apiVersion: v1\nkind: Pod\nmetadata: {name: s}\nspec: hello\n",
        "annotations-int-keys": "apiVersion: v1\nkind: Pod\nmetadata:\n  name: k\n  annotations: {1: a, b: c}\n"
        "spec:\n  containers: [{name: w}]\n",
        "env-item-string": "apiVersion: v1\nkind: Pod\nmetadata: {name: e}\nspec:\n  containers:\n"
        "  - {name: w, env: [oops]}\n",
        "containers-null-items": "apiVersion: v1\nkind: Pod\nmetadata: {name: n}\nspec:\n  containers: [null, 3]\n",
        "list-items-string": "apiVersion: v1\nkind: List\nitems: nope\n",
        "kind-list": "apiVersion: v1\nkind: [Pod]\nmetadata: {name: x}\n",
        "binary": "\x00\x01\x02 not yaml \x7f",
        "tabs-and-garbage": "a:\n\t- b: [\n",
        "alias-bomb": _alias_bomb(),
        "alias-string": "apiVersion: v1\nkind: Pod\nmetadata:\n  name: s\n  annotations:\n    a: &s '"
        + "x" * 10_000
        + "'\nspec:\n  containers: [{name: w}]\n  x: ["
        + ", ".join(["*s"] * 1500)
        + "]\n",
        "alias-containers": _alias_containers(int(300 * scale) or 2),
        "big-list": _big_list(int(4000 * scale) or 1),
    }


@dataclass
class Outcome:
    code: int
    seconds: float
    out_bytes: int
    stderr_lines: int
    first_error: str
    traceback: bool
    peak_rss_mib: float
    in_bytes: int


def run_inject(text: str, workdir: Path, timeout: float = 300) -> Outcome:
    path = workdir / "input.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    out_path = workdir / "out.yaml"
    err_path = workdir / "err.txt"
    started = time.monotonic()
    with out_path.open("wb") as out, err_path.open("wb") as err:
        # A fresh child per run, so its peak RSS is its own (ru_maxrss of waited children).
        code = subprocess.call(
            [sys.executable, os.path.join(os.path.dirname(__file__), "_maxrss.py"), "-m", "webhook", "inject", "-f",
             str(path)],
            stdout=out, stderr=err, timeout=timeout,
        )  # fmt: skip
    seconds = time.monotonic() - started
    stderr = err_path.read_text(errors="replace").splitlines()
    rss_line = next((line for line in stderr if line.startswith("maxrss-kib=")), "maxrss-kib=0")
    stderr = [line for line in stderr if not line.startswith("maxrss-kib=")]
    return Outcome(
        code=code,
        seconds=seconds,
        out_bytes=out_path.stat().st_size,
        stderr_lines=len(stderr),
        first_error=(stderr[-1] if stderr else "")[:160],
        traceback=any(line.startswith("Traceback") for line in stderr),
        peak_rss_mib=int(rss_line.split("=")[1]) / 1024,
        in_bytes=len(text.encode(errors="surrogateescape")),
    )


_ = resource  # imported for the helper script's sake
