"""One ``otel-injector serve`` process for the catalogue, with short HTTP deadlines so the
slow-client attacks finish quickly (the defaults are 10 s and 20 s; the tests check the
mechanism, the settings test checks the defaults)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.adversarial.probe import Server, make_certs

HEADER_TIMEOUT = 2.0
BODY_TIMEOUT = 3.0


@pytest.fixture(scope="session")
def adversarial_tls(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_certs(tmp_path_factory.mktemp("adversarial-tls"))


@pytest.fixture(scope="module")
def target(adversarial_tls: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("adversarial") / "serve.log"
    server = Server(
        adversarial_tls,
        log,
        env={
            "OTEL_INJECTOR_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT),
            "OTEL_INJECTOR_BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT),
            "OTEL_INJECTOR_LOG_LEVEL": "DEBUG",
        },
        as_limit_gib=2,
    )
    try:
        yield server
    finally:
        server.stop()
