"""nesting_depth: exact on any JSON document, fast on the largest body."""

from __future__ import annotations

import time
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from webhook.admission.jsonbounds import MAX_DEPTH, nested_deeper_than, nesting_depth, value_count

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.text(alphabet=st.sampled_from('ab[]{}"\\\n,:'), max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4),
    max_leaves=40,
)


def depth_of(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth_of(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth_of(v) for v in value), default=0)
    return 0


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_depth_matches_the_decoded_document(value: Any) -> None:
    assert nesting_depth(orjson.dumps(value)) == depth_of(value)


def test_brackets_inside_strings_and_escapes_do_not_count() -> None:
    assert nesting_depth(b'["[[[[", "\\"[[", "\\\\", {"]": "{"}]') == 2
    assert nesting_depth(b'"[[[["') == 0
    assert nesting_depth(b"12") == 0


def test_deep_and_wide_bodies_are_measured_quickly() -> None:
    wide = b'{"a":[' + b",".join([b'{"name":"c1","image":"i"}'] * 200_000) + b"]}"
    deep = b"[" * 5000 + b"]" * 5000
    started = time.perf_counter()
    assert nesting_depth(wide) == 3
    assert nesting_depth(deep) == 5000
    assert time.perf_counter() - started < 2.0


def test_nested_deeper_than_agrees_with_the_depth() -> None:
    assert not nested_deeper_than(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH)
    assert nested_deeper_than(b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1))
    wide = b"[" + b",".join([b"[]"] * 500) + b"]"
    assert not nested_deeper_than(wide)
    assert nested_deeper_than(b'{"a":' * 101 + b"1" + b"}" * 101)


def test_value_count_bounds_what_decoding_builds() -> None:
    body = orjson.dumps({"a": [{"name": "x", "value": "y"}] * 10, "b": "s"})
    decoded_values = 1 + 1 + 10 * (1 + 2) + 1  # objects, arrays and string values
    assert value_count(body) >= decoded_values
    assert value_count(b"123") == 0


def test_depth_is_exact_across_the_scan_s_chunks() -> None:
    # Strings full of brackets, cut by the 64 KiB chunks at every possible place.
    value = [{"k": "]]]{{{[" * 5000, "deep": [[[["x" * 7]]]]} for _ in range(40)]
    body = orjson.dumps({"a": value, "z": [[["]" * 70_000]]]})
    assert len(body) > 4 * 64 * 1024
    assert nesting_depth(body) == depth_of(orjson.loads(body))


@settings(max_examples=300, deadline=None)
@given(json_values, st.integers(0, 6))
def test_peeling_answers_as_the_scan_does(value: Any, limit: int) -> None:
    body = orjson.dumps(value)
    assert nested_deeper_than(body, limit) == (nesting_depth(body) > limit)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=40).map(lambda raw: bytes(b'[]{}"\\ab'[c % 8] for c in raw)), st.integers(0, 4))
def test_peeling_answers_as_the_scan_does_on_invalid_json_too(body: bytes, limit: int) -> None:
    assert nested_deeper_than(body, limit) == (nesting_depth(body) > limit)
