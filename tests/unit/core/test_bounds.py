"""clip, describe, cap: echo of user input costs a bounded message, whatever the input."""

from __future__ import annotations

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
    started = time.perf_counter()
    assert describe(nested(100_000)) == "a list of 1 items"
    assert len(describe(["k" * 10] * 1_000_000)) < 40
    assert len(describe("x" * 10_000_000)) < MAX_ECHO + 40
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize(
    ("value", "name"),
    [(None, "null"), (True, "boolean"), (1, "number"), (1.0, "number"), ("", "string"), ({}, "object"), ([], "list")],
)
def test_json_type(value: object, name: str) -> None:
    assert json_type(value) == name


def test_cap() -> None:
    assert cap("abc", 2) == "ab"
    assert cap("abc", 3) == "abc"
