#!/usr/bin/env bash
# Regenerate deploy/kustomize from the Helm chart (see deploy/render_kustomize.py).
# Pass --check to only verify that the committed files are up to date.
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-.venv/bin/python}"
[[ -x "$python" ]] || python=python3
exec "$python" deploy/render_kustomize.py "$@"
