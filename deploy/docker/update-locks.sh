#!/usr/bin/env bash
# Regenerate the hash-pinned lock files the Dockerfile installs from:
#   requirements.lock                        runtime dependencies of pyproject.toml (no extras)
#   deploy/docker/build-requirements.lock    the build backend for the project wheel
# Both are resolved for the image's CPython 3.11 (Debian bookworm's python3) on manylinux,
# binary wheels only, so the builder stage needs no compilers. Uses uv from the project venv unless UV is set.
set -euo pipefail
cd "$(dirname "$0")/../.."
uv="${UV:-.venv/bin/uv}"
common=(--generate-hashes --only-binary :all: --python-version 3.11 --python-platform x86_64-manylinux_2_28)

lock() {
    local input=$1 output=$2
    "$uv" pip compile "$input" "${common[@]}" \
        --custom-compile-command "uv pip compile $input ${common[*]} -o $output" \
        -o "$output"
}

lock pyproject.toml requirements.lock
lock deploy/docker/build-requirements.in deploy/docker/build-requirements.lock
