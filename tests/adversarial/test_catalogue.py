"""The adversarial catalogue of issue 9 against a real ``otel-injector serve`` over TLS.

Every attack asserts the answer's status, that it came within a time bound, that its size
is bounded, that the server is still healthy, that a concurrent ``/healthz`` was never held
up long, and that the request cost little memory. The bounds are generous (several times
the budget in :mod:`webhook.core.bounds`: the machine running CI is shared and slow); the
figures themselves come from ``python -m tests.adversarial.report``.
"""

from __future__ import annotations

import base64
import re
from typing import Any

import orjson
import pytest

from tests.adversarial import attacks
from tests.adversarial.attacks import Attack, MiB
from tests.adversarial.conftest import BODY_TIMEOUT, HEADER_TIMEOUT
from tests.adversarial.probe import Answer, Server, get, measure

# Generous bounds: the budget is ~1 s of CPU and ~64 MiB above idle for the largest request.
MAX_SECONDS = 10.0
MAX_CPU_SECONDS = 4.0
MAX_RSS_MIB = 160.0
MAX_HEALTHZ_MS = 3000.0
# A review answer: the patch of a pod up to 1.5 MiB, base64, plus at most 10 warnings.
MAX_ANSWER_BYTES = 2 * MiB + 64 * 1024
SMALL_ANSWER_BYTES = 4096


def _review(answer: Answer) -> dict[str, Any]:
    result: dict[str, Any] = orjson.loads(answer.body)
    return result


def _warnings(answer: Answer) -> list[str]:
    return list(_review(answer)["response"].get("warnings") or [])


def _check_health(server: Server, answer: Answer, *, seconds: float = MAX_SECONDS) -> None:
    assert server.alive(), f"the server died; log tail:\n{server.log_path.read_text()[-2000:]}"
    assert get(server, "/healthz")[0] == 200
    assert answer.seconds < seconds, answer
    assert answer.cpu_seconds < MAX_CPU_SECONDS, answer
    assert answer.rss_peak_mib < MAX_RSS_MIB, answer
    assert answer.healthz_worst_ms < MAX_HEALTHZ_MS, answer
    tracebacks = [line for line in answer.log_lines if '"exception"' in line or "Traceback" in line]
    assert not tracebacks, tracebacks[:3]
    # Every log line is bounded: echoed input is clipped.
    assert answer.longest_log_line < 4096, answer.longest_log_line
    assert answer.log_bytes < 64 * 1024, answer.log_bytes


def _run(server: Server, attack: Attack, **bounds: float) -> Answer:
    answer = measure(server, attack.send, timeout=60)
    _check_health(server, answer, **bounds)
    return answer


def _ids(cases: list[Attack]) -> list[str]:
    return [case.name for case in cases]


CLASS1 = attacks.class1()
CLASS2 = attacks.class2()


@pytest.mark.parametrize("attack", CLASS1, ids=_ids(CLASS1))
def test_class1_work_is_linear(target: Server, attack: Attack) -> None:
    answer = _run(target, attack)
    assert answer.size < MAX_ANSWER_BYTES
    if answer.status == 413:  # more values than decoding may cost (webhook.admission.jsonbounds)
        assert "JSON values" in orjson.loads(answer.body)["error"]
    else:
        assert answer.status == 200, answer.head[:300]


@pytest.mark.parametrize("attack", CLASS2, ids=_ids(CLASS2))
def test_class2_output_is_bounded(target: Server, attack: Attack) -> None:
    answer = _run(target, attack)
    assert answer.status == 200, answer.head[:300]
    assert answer.rss_peak_mib < 80
    assert answer.size < MAX_ANSWER_BYTES
    review = _review(answer)["response"]
    assert review["allowed"] is True
    warnings = " ".join(review.get("warnings") or [])
    patch = orjson.loads(base64.b64decode(review["patch"])) if review.get("patch") else []
    # Either the pod is left as it is (too large to store), or what was copied was capped.
    if not patch:
        assert "too large" in warnings, warnings
    else:
        assert "longer than Kubernetes allows" in warnings or "too large" in warnings, warnings
        assert max(len(orjson.dumps(op)) for op in patch) < 16 * 1024


HTTP_CASES = [
    # (attack, status, seconds bound)
    ("huge-header", 431, MAX_SECONDS),
    ("many-headers", 431, MAX_SECONDS),
    ("huge-url", 431, MAX_SECONDS),
    ("slow-headers", 408, HEADER_TIMEOUT + 5),
    ("slow-body", 408, BODY_TIMEOUT + 5),
    ("body-over-cap-chunked", 413, MAX_SECONDS),
]


@pytest.mark.parametrize(("name", "status", "seconds"), HTTP_CASES, ids=[c[0] for c in HTTP_CASES])
def test_class3_http_limits(target: Server, name: str, status: int, seconds: float) -> None:
    (attack,) = [a for a in attacks.class3() if a.name == name]
    answer = _run(target, attack, seconds=seconds)
    assert answer.status == status, answer.head[:300]
    assert answer.size < SMALL_ANSWER_BYTES
    assert orjson.loads(answer.body)["error"]


CLASS4 = attacks.class4()


@pytest.mark.parametrize("attack", CLASS4, ids=_ids(CLASS4))
def test_class4_deep_nesting_is_a_400(target: Server, attack: Attack) -> None:
    answer = _run(target, attack)
    assert answer.status == 400, answer.head[:300]
    assert answer.size < SMALL_ANSWER_BYTES
    message = orjson.loads(answer.body)["error"]
    assert "\n" not in message
    assert len(message) < 400


def test_class5_hang_up_mid_body_is_one_debug_line(target: Server) -> None:
    for attack in attacks.class5():
        for _ in range(20):
            answer = measure(target, attack.send, timeout=10, watch_health=False)
            assert not [line for line in answer.log_lines if '"level":"ERROR"' in line], answer.log_lines
            assert not [line for line in answer.log_lines if '"level":"WARNING"' in line], answer.log_lines
            assert answer.log_bytes < 2048
    assert target.alive()
    assert get(target, "/healthz")[0] == 200


CLASS6 = attacks.class6()


@pytest.mark.parametrize("attack", CLASS6, ids=_ids(CLASS6))
def test_class6_echo_is_clipped(target: Server, attack: Attack) -> None:
    answer = _run(target, attack)
    assert answer.status in (200, 400, 415), answer.head[:300]
    assert answer.size < 16 * 1024, answer.size
    if answer.status == 200:
        warnings = _warnings(answer)
        assert len(warnings) <= 10
        assert all(len(w) <= 256 for w in warnings)
    else:
        message = orjson.loads(answer.body)["error"]
        assert len(message) < 400, message
        assert re.search(r"[0-9,]+ (characters|items|keys|bytes)|over|must|expected|Content-Type", message), message
    # No log line carries more than a clipped copy of the input.
    assert answer.longest_log_line < 2048, answer.longest_log_line
    assert answer.log_bytes < 16 * 1024, answer.log_bytes


def test_class8_one_log_line_per_admission(target: Server) -> None:
    obj = attacks.review(attacks.pod())
    answer = measure(target, attacks.post(obj), watch_health=False)
    assert answer.status == 200
    admissions = [line for line in answer.log_lines if '"logger":"webhook.admission.handler"' in line]
    assert len(admissions) == 1, answer.log_lines
    assert not [line for line in answer.log_lines if "uvicorn.access" in line], answer.log_lines
