"""The bench's smoke tests: its code paths on tiny inputs, no load and no timing."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "bench_smoke: fast checks of the bench's own code (no load, no timing)")
