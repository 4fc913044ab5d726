"""Class 7 of issue 9: ``otel-injector inject`` on odd YAML, as a user runs it (one process
per input). Every input gives the output or a one-line error, never a traceback; the output
stays proportional to the input, aliases included; time and memory stay bounded."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.adversarial.yaml_attacks import cases, run_inject

CASES = cases(scale=0.25)


@pytest.mark.parametrize("name", sorted(CASES))
def test_inject_answers_every_input_without_a_traceback(name: str, tmp_path: Path) -> None:
    text = CASES[name]
    outcome = run_inject(text, tmp_path, timeout=120)
    assert not outcome.traceback, outcome
    assert outcome.code in (0, 1), outcome
    if outcome.code == 1:
        assert outcome.stderr_lines == 1, outcome
        assert outcome.out_bytes == 0
    # Proportional: aliases expand at most 10 times (webhook.core.yamlbounds), and each pod
    # spec gains a bounded sidecar, volume and status (about 3 KiB) and each container about
    # 700 bytes of env: 20 to 40 times a minimal pod's YAML, never the 470 times of a string
    # alias written out 1,500 times (issue 9).
    assert outcome.out_bytes <= 40 * outcome.in_bytes + 64 * 1024, outcome
    assert outcome.seconds < 60, outcome
    assert outcome.peak_rss_mib < 250, outcome
