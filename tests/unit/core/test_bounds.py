"""clip, describe, cap: echo of user input costs a bounded message, whatever the input."""

from __future__ import annotations

import statistics
import time
from typing import Any

import pytest

from webhook.core.bounds import MAX_ECHO, cap, clip, describe, json_type


def nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


def test_clip_keeps_short_text_and_names_the_size_of_long_text() -> None:
    assert clip("web") == "web"
    clipped = clip("u" * 5_000_000)
    assert clipped.startswith("u" * MAX_ECHO)
    assert clipped.endswith("... (5,000,000 characters)")
    assert len(clipped) < MAX_ECHO + 40


def test_clip_is_one_line() -> None:
    assert clip("a\nb\rc") == "a b c"


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("Pod", "'Pod'"),
        (None, "null"),
        (True, "true"),
        (3, "3"),
        (1.5, "1.5"),
        ({"a": 1}, "an object of 1 keys"),
        ([1, 2], "a list of 2 items"),
        pytest.param(10**5000, "an integer of 16,610 bits", id="int-of-5000-digits"),
    ],
)
def test_describe(value: object, shown: str) -> None:
    assert describe(value) == shown


def test_describe_is_constant_time_for_deep_and_long_values() -> None:
    """A value 10,000 to 1,000,000 times larger costs about what a small one of the same
    kind costs. The two are timed in the same loop and compared as a ratio (median of
    rounds), so a loaded machine slows both alike; a cost that grew with the size would
    be thousands of times over the bound. The values are built before the clock starts."""
    pairs = [
        (nested(10), nested(100_000)),
        (["k" * 10] * 10, ["k" * 10] * 1_000_000),
        ("x" * (MAX_ECHO + 10), "x" * 10_000_000),  # both long enough to be clipped
    ]
    assert describe(pairs[0][1]) == "a list of 1 items"
    assert len(describe(pairs[1][1])) < 40
    assert len(describe(pairs[2][1])) < MAX_ECHO + 40
    for small, large in pairs:
        ratios = []
        for _ in range(15):
            started = time.perf_counter()
            for _ in range(200):
                describe(small)
            middle = time.perf_counter()
            for _ in range(200):
                describe(large)
            ratios.append((time.perf_counter() - middle) / max(middle - started, 1e-9))
        assert statistics.median(ratios) < 20, (type(large).__name__, sorted(ratios))


@pytest.mark.parametrize(
    ("value", "name"),
    [(None, "null"), (True, "boolean"), (1, "number"), (1.0, "number"), ("", "string"), ({}, "object"), ([], "list")],
)
def test_json_type(value: object, name: str) -> None:
    assert json_type(value) == name


def test_cap() -> None:
    assert cap("abc", 2) == "ab"
    assert cap("abc", 3) == "abc"
