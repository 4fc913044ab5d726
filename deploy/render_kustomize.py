#!/usr/bin/env python3
"""Render the Helm chart into the plain manifests under deploy/kustomize.

The chart (deploy/helm/otel-injector) is the single source of truth. This script runs
``helm template`` and writes one object per file, so ``kubectl apply -k`` users and tools
that load a single object (the local e2e harness reads
``base/mutatingwebhookconfiguration.yaml``) get exactly what the chart renders:

    deploy/kustomize/base/<kind>.yaml               default values, one object per file
    deploy/kustomize/base/kustomization.yaml        lists them in Helm's install order
    deploy/kustomize/overlays/cert-manager/cert-manager-resources.yaml
                                                    the Issuers and Certificates of
                                                    certs.mode=cert-manager (the overlay's
                                                    patches are written by hand)

Usage:
    python deploy/render_kustomize.py            # rewrite the files
    python deploy/render_kustomize.py --check    # exit 1 if the committed files are stale

helm is taken from --helm, else $HELM, else bench.localcluster.binaries (which builds it
into the cache if needed), else the newest ~/.cache/otel-injector/bin/helm-*/helm.
"""

from __future__ import annotations

import argparse
import difflib
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parent
REPO = DEPLOY.parent
CHART = DEPLOY / "helm" / "otel-injector"
BASE = DEPLOY / "kustomize" / "base"
CERT_MANAGER_OVERLAY = DEPLOY / "kustomize" / "overlays" / "cert-manager"
CERT_MANAGER_RESOURCES = "cert-manager-resources.yaml"

RELEASE = "otel-injector"
NAMESPACE = "otel-injector"
# Rendered for the oldest Kubernetes the chart supports (Chart.yaml kubeVersion); helm's
# built-in default depends on how the binary was built.
KUBE_VERSION = "1.30.0"

HEADER = (
    "# Generated from deploy/helm/otel-injector by deploy/render_kustomize.py{args}.\n"
    "# Do not edit: change the chart and re-run the script.\n"
)


class RenderError(RuntimeError):
    """helm could not be found or failed; the message says why."""


def find_helm(explicit: str | None = None) -> Path:
    """Locate helm (see the module docstring for the order)."""
    candidate = explicit or os.environ.get("HELM")
    if candidate:
        path = Path(candidate).expanduser()
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise RenderError(f"helm {path} (from --helm or $HELM) is not an executable file")
        return path
    try:
        sys.path.insert(0, str(REPO))
        from bench.localcluster.binaries import ensure_binaries
    except ImportError:
        pass
    else:
        return Path(ensure_binaries({"helm"}).helm)
    cache = Path(os.environ.get("OTEL_INJECTOR_CACHE_DIR") or Path.home() / ".cache" / "otel-injector")
    found = sorted(cache.glob("bin/helm-*/helm"), key=lambda p: p.stat().st_mtime)
    if found:
        return found[-1]
    raise RenderError(
        "helm not found: set HELM=/path/to/helm or build it with python -m bench.localcluster.binaries helm"
    )


def helm_template(helm: Path, *set_values: str) -> str:
    """``helm template`` of the chart with the default release name and namespace."""
    argv = [str(helm), "template", RELEASE, str(CHART), "--namespace", NAMESPACE, "--kube-version", KUBE_VERSION]
    # The uninstall hooks only mean something to helm: applied by kubectl, the pre-delete
    # Job would delete the webhook configuration at once.
    argv.append("--no-hooks")
    for value in set_values:
        argv += ["--set", value]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
    if proc.returncode != 0:
        raise RenderError(f"{' '.join(argv)} failed:\n{proc.stderr.strip()}")
    return proc.stdout


def split_documents(stream: str) -> list[tuple[dict[str, object], str]]:
    """The non-empty documents of a rendered stream as (parsed object, text without the
    ``# Source:`` comment)."""
    documents = []
    for chunk in stream.split("\n---\n"):
        lines = [line for line in chunk.splitlines() if not line.startswith("# Source: ")]
        text = "\n".join(lines).strip("\n")
        if text in ("", "---"):
            continue
        text = text.removeprefix("---\n")
        obj = yaml.safe_load(text)
        if not obj:
            continue
        documents.append((obj, text + "\n"))
    return documents


def file_names(objects: Sequence[dict[str, object]]) -> list[str]:
    """``<kind>.yaml``, or ``<kind>-<name>.yaml`` when a kind occurs more than once."""
    kinds = [str(o["kind"]).lower() for o in objects]
    names = []
    for kind, obj in zip(kinds, objects, strict=True):
        metadata = obj.get("metadata")
        name = metadata.get("name") if isinstance(metadata, dict) else None
        names.append(f"{kind}.yaml" if kinds.count(kind) == 1 else f"{kind}-{name}.yaml")
    return names


def render(helm: Path) -> dict[Path, str]:
    """Every generated file, by path relative to deploy/kustomize, with its content."""
    files: dict[Path, str] = {}
    documents = split_documents(helm_template(helm))
    names = file_names([obj for obj, _ in documents])
    header = HEADER.format(args="")
    for name, (_, text) in zip(names, documents, strict=True):
        files[Path("base") / name] = header + text
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": names,
    }
    files[Path("base") / "kustomization.yaml"] = header + yaml.safe_dump(kustomization, sort_keys=False)

    cert_manager = [
        text
        for obj, text in split_documents(helm_template(helm, "certs.mode=cert-manager"))
        if str(obj.get("apiVersion", "")).startswith("cert-manager.io/")
    ]
    files[Path("overlays") / "cert-manager" / CERT_MANAGER_RESOURCES] = HEADER.format(
        args=" (certs.mode=cert-manager)"
    ) + "---\n".join(cert_manager)
    return files


def stale(files: dict[Path, str], root: Path) -> list[str]:
    """Differences between ``files`` and what is under ``root``, as unified diffs."""
    problems = []
    for rel, text in sorted(files.items()):
        path = root / rel
        current = path.read_text(encoding="utf-8") if path.is_file() else ""
        if current != text:
            problems.append(
                "".join(
                    difflib.unified_diff(
                        current.splitlines(keepends=True),
                        text.splitlines(keepends=True),
                        f"committed/{rel}",
                        f"rendered/{rel}",
                    )
                )
                or f"{rel}: differs\n"
            )
    generated_base = {rel.name for rel in files if rel.parent == Path("base")}
    for extra in sorted((root / "base").glob("*.yaml")):
        if extra.name not in generated_base:
            problems.append(f"base/{extra.name}: no longer rendered by the chart; delete it\n")
    return problems


def write(files: dict[Path, str], root: Path) -> None:
    """Write ``files`` under ``root`` and remove base files the chart no longer renders."""
    generated_base = {rel.name for rel in files if rel.parent == Path("base")}
    (root / "base").mkdir(parents=True, exist_ok=True)
    for extra in (root / "base").glob("*.yaml"):
        if extra.name not in generated_base:
            extra.unlink()
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, delete=False) as tmp:
            tmp.write(text)
        os.chmod(tmp.name, 0o644)
        os.replace(tmp.name, path)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--helm", help="path to the helm binary")
    parser.add_argument("--check", action="store_true", help="only report whether the files are stale")
    args = parser.parse_args(argv)
    try:
        files = render(find_helm(args.helm))
    except RenderError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    root = DEPLOY / "kustomize"
    if args.check:
        problems = stale(files, root)
        if problems:
            sys.stdout.write("".join(problems))
            print("deploy/kustomize is stale: run python deploy/render_kustomize.py", file=sys.stderr)
            return 1
        return 0
    write(files, root)
    print(f"wrote {len(files)} files under {root.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
