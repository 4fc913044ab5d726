"""Fuzzing ``otel-injector serve`` (issue 9): raw request bytes and structured reviews.

Two hypothesis targets against one real server over TLS:

* **structured**: a valid AdmissionReview of a traced pod with one to three fields, from
  the envelope down to an env var, replaced by an arbitrary JSON value (deep, long, odd
  types), or override annotations set to arbitrary text;
* **raw**: a valid request with its bytes cut, spliced, repeated or corrupted, header
  lines added, and arbitrary request lines, on a fresh connection each.

Every answer must be an HTTP answer below 500 (or a closed connection for bytes that are
not HTTP), within a latency bound, and the server must stay healthy. CI runs a bounded
number of cases (``FUZZ_EXAMPLES``, default 60 per target). The longer run in the notes:

    FUZZ_EXAMPLES=3000 .venv/bin/pytest tests/adversarial/test_fuzz.py -s -p no:randomly

prints cases run, 5xx count, worst latency and the server's peak RSS.
"""

from __future__ import annotations

import contextlib
import copy
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.adversarial import attacks
from tests.adversarial.probe import Server, connect, get, http_post, read_answer

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "60"))
MAX_LATENCY = 10.0
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
    database=None,
)


@dataclass
class Tally:
    cases: int = 0
    server_errors: int = 0
    worst: float = 0.0
    statuses: dict[int, int] = field(default_factory=dict)

    def add(self, status: int, seconds: float) -> None:
        self.cases += 1
        self.server_errors += status >= 500
        self.worst = max(self.worst, seconds)
        self.statuses[status] = self.statuses.get(status, 0) + 1


@pytest.fixture(scope="module")
def target(adversarial_tls: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The server for fuzzing: deadlines of half a second, since most raw cases are requests
    cut short that wait for one."""
    server = Server(
        adversarial_tls,
        tmp_path_factory.mktemp("fuzz") / "serve.log",
        env={"OTEL_INJECTOR_HEADER_TIMEOUT_SECONDS": "0.5", "OTEL_INJECTOR_BODY_TIMEOUT_SECONDS": "0.5"},
        as_limit_gib=2,
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def tally(target: Server) -> Iterator[dict[str, Tally]]:
    tallies = {"structured": Tally(), "raw": Tally()}
    yield tallies
    for name, t in tallies.items():
        print(
            f"\nfuzz {name}: {t.cases} cases, {t.server_errors} 5xx, worst latency {t.worst * 1000:.0f} ms, "
            f"statuses {dict(sorted(t.statuses.items()))}"
        )
    print(f"fuzz: server peak RSS {target.peak_kib() / 1024:.0f} MiB, now {target.rss_kib() / 1024:.0f} MiB")
    report = os.environ.get("FUZZ_REPORT")
    if report:
        with open(report, "a", encoding="utf-8") as out:
            for name, t in tallies.items():
                out.write(f"{name}: {t.cases} cases, {t.server_errors} 5xx, worst {t.worst * 1000:.0f} ms, "
                          f"statuses {dict(sorted(t.statuses.items()))}\n")  # fmt: skip
            out.write(f"server peak RSS {target.peak_kib() / 1024:.0f} MiB\n")


json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.sampled_from(["", "Pod", "CREATE", "otel-collector", "tracing", "enabled", "1n", "0", "4317", "$(X)", "%"]),
    st.integers(1, 100_000).map(lambda n: "x" * n),
)
json_value = st.recursive(
    json_leaf,
    lambda children: st.one_of(
        st.lists(children, max_size=6), st.dictionaries(st.text(max_size=12), children, max_size=6)
    ),
    max_leaves=25,
)
deep_value = st.integers(50, 1200).map(attacks.deep)

PATHS = [
    ("kind",), ("apiVersion",), ("request",), ("request", "uid"), ("request", "kind"),
    ("request", "kind", "group"), ("request", "kind", "kind"), ("request", "namespace"), ("request", "name"),
    ("request", "operation"), ("request", "userInfo"), ("request", "userInfo", "username"), ("request", "dryRun"),
    ("request", "object"), ("request", "object", "kind"), ("request", "object", "metadata"),
    ("request", "object", "metadata", "name"), ("request", "object", "metadata", "generateName"),
    ("request", "object", "metadata", "labels"), ("request", "object", "metadata", "labels", "app"),
    ("request", "object", "metadata", "annotations"), ("request", "object", "metadata", "ownerReferences"),
    ("request", "object", "metadata", "ownerReferences", 0, "name"), ("request", "object", "spec"),
    ("request", "object", "spec", "containers"), ("request", "object", "spec", "containers", 0),
    ("request", "object", "spec", "containers", 0, "name"), ("request", "object", "spec", "containers", 0, "env"),
    ("request", "object", "spec", "containers", 0, "env", 0), ("request", "object", "spec", "containers", 0, "env", 0,
                                                                "value"),
    ("request", "object", "spec", "containers", 0, "ports"), ("request", "object", "spec", "initContainers"),
    ("request", "object", "spec", "volumes"), ("request", "object", "spec", "hostNetwork"),
]  # fmt: skip
OVERRIDES = [
    "service-name", "sidecar-mode", "cpu-request", "cpu-limit", "memory-request", "memory-limit", "image", "config",
    "containers", "status", "bogus",
]  # fmt: skip


def base_review() -> dict[str, Any]:
    pod = attacks.pod(
        [{"name": "web", "image": "nginx", "env": [{"name": "OTEL_RESOURCE_ATTRIBUTES", "value": "a=b"}],
          "ports": [{"containerPort": 8080}]}],
        labels={"app": "web", "pod-template-hash": "abc"},
        ownerReferences=[{"kind": "ReplicaSet", "name": "web-abc", "controller": True}],
    )  # fmt: skip
    return attacks.review(pod)


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> None:
    """Put ``value`` at ``path`` in ``doc`` if the path exists down to its parent."""
    *parents, last = path
    for key in parents:
        child = _child(doc, key)
        if not isinstance(child, (dict, list)):
            return
        doc = child
    if isinstance(doc, dict) and isinstance(last, str):
        doc[last] = value
        return
    if isinstance(doc, list) and isinstance(last, int) and last < len(doc):
        doc[last] = value


def _child(doc: Any, key: str | int) -> Any:
    if isinstance(doc, dict) and isinstance(key, str):
        return doc.get(key)
    if isinstance(doc, list) and isinstance(key, int) and key < len(doc):
        return doc[key]
    return None


@st.composite
def structured_reviews(draw: st.DrawFn) -> bytes:
    review = copy.deepcopy(base_review())
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PATHS))
        _set(review, path, draw(st.one_of(json_value, deep_value)))
    if draw(st.booleans()):
        annotations = {
            f"otel-injector.io/{draw(st.sampled_from(OVERRIDES))}": draw(st.one_of(st.text(max_size=30), json_leaf))
            for _ in range(draw(st.integers(1, 4)))
        }
        _set(review, ("request", "object", "metadata", "annotations"), annotations)
    return attacks.body(review)


def _exchange(server: Server, data: bytes) -> tuple[int, float]:
    started = time.monotonic()
    try:
        with connect(server, timeout=MAX_LATENCY) as sock:
            with contextlib.suppress(OSError):
                sock.sendall(data)
            status, _, _, _ = read_answer(sock, started + MAX_LATENCY + 5)
    except OSError:
        status = 0
    return status, time.monotonic() - started


@FUZZ_SETTINGS
@given(body=structured_reviews())
def test_structured_reviews_never_get_a_5xx(target: Server, tally: dict[str, Tally], body: bytes) -> None:
    status, seconds = _exchange(target, http_post(body))
    tally["structured"].add(status, seconds)
    assert 200 <= status < 500, (status, body[:500])
    assert seconds < MAX_LATENCY


REQUEST = http_post(attacks.body(base_review()))
raw_piece = st.one_of(
    st.binary(max_size=64),
    st.sampled_from([b"\r\n", b"\r\n\r\n", b":", b" ", b"\x00", b"Content-Length: 99999999\r\n",
                     b"Transfer-Encoding: chunked\r\n", b"Expect: 100-continue\r\n", b"Connection: close\r\n",
                     b"Content-Type: application/json\r\n", b"GET / HTTP/1.1\r\n", b"POST /mutate HTTP/1.0\r\n",
                     b"X: " + b"y" * 20000 + b"\r\n"]),
)  # fmt: skip


@st.composite
def raw_requests(draw: st.DrawFn) -> bytes:
    data = REQUEST
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        choice = draw(st.integers(0, 3))
        if choice == 0:  # cut
            data = data[:at]
        elif choice == 1:  # insert
            data = data[:at] + draw(raw_piece) + data[at:]
        elif choice == 2:  # overwrite
            piece = draw(raw_piece)
            data = data[:at] + piece + data[at + len(piece) :]
        else:  # repeat a slice (pipelining, duplicated headers)
            end = draw(st.integers(at, min(len(data), at + 200)))
            data = data[:end] + data[at:end] * draw(st.integers(1, 50)) + data[end:]
    return data


@FUZZ_SETTINGS
@given(data=raw_requests())
def test_raw_bytes_never_get_a_5xx(target: Server, tally: dict[str, Tally], data: bytes) -> None:
    status, seconds = _exchange(target, data)
    tally["raw"].add(status, seconds)
    assert status < 500, (status, data[:300])
    # A request cut short waits for the body deadline; nothing waits longer.
    assert seconds < MAX_LATENCY
    assert target.alive()


def test_server_healthy_after_fuzzing(target: Server, tally: dict[str, Tally]) -> None:
    assert target.alive()
    assert get(target, "/healthz")[0] == 200
    errors = [line for line in target.log_path.read_text(errors="replace").splitlines() if '"level":"ERROR"' in line]
    assert not errors, errors[:3]
