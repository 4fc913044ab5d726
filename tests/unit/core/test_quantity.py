"""Kubernetes quantities: the apiserver's grammar, exact values, GOMEMLIMIT."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webhook.core.quantity import QuantityError, gomemlimit, parse_quantity


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("100m", Decimal("0.1")),
        ("0.5", Decimal("0.5")),
        ("1e3", Decimal(1000)),
        ("1E3", Decimal(1000)),
        ("1e-3", Decimal("0.001")),
        ("2E", Decimal(2 * 10**18)),
        ("1Ki", Decimal(1024)),
        ("128Mi", Decimal(128 * 2**20)),
        ("1.5Gi", Decimal(3 * 2**29)),
        ("1Ti", Decimal(2**40)),
        ("1Pi", Decimal(2**50)),
        ("1Ei", Decimal(2**60)),
        ("+1", Decimal(1)),
        (".5", Decimal("0.5")),
        ("5.", Decimal(5)),
        ("0", Decimal(0)),
        ("250n", Decimal("0.00000025")),
        ("3u", Decimal("0.000003")),
        ("1k", Decimal(1000)),
        ("64M", Decimal(64_000_000)),
        ("1G", Decimal(10**9)),
        ("1T", Decimal(10**12)),
        ("1P", Decimal(10**15)),
        (" 100m ", Decimal("0.1")),
    ],
)
def test_valid(text: str, value: Decimal) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize(
    "text",
    ["1.2.3", "Mi", "1 Mi", "1mi", "", " ", "1KI", "1ki", "1K", "abc", "1e", "e3", ".", "+", "1Mi1", "0x10", "1_000"],
)
def test_rejected(text: str) -> None:
    with pytest.raises(QuantityError) as info:
        parse_quantity(text)
    assert str(info.value) == f"{text!r} is not a Kubernetes quantity (e.g. 100m, 128Mi)"


@pytest.mark.parametrize("text", ["-1", "-100m", "-0.5Gi"])
def test_negative_rejected(text: str) -> None:
    with pytest.raises(QuantityError) as info:
        parse_quantity(text)
    assert str(info.value) == f"{text!r} is negative"


def test_exponent_out_of_range() -> None:
    with pytest.raises(QuantityError, match="exponent out of range"):
        parse_quantity("1e31")
    assert parse_quantity("1e30") == Decimal(10) ** 30


def test_too_long_rejected() -> None:
    with pytest.raises(QuantityError):
        parse_quantity("1" * 65)
    assert parse_quantity("1" * 64) == Decimal("1" * 64)


def test_not_a_string_rejected() -> None:
    with pytest.raises(QuantityError):
        parse_quantity(128)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("limit", "percent", "expected"),
    [
        ("256Mi", 80, "204MiB"),
        ("256Mi", 100, "256MiB"),
        ("1Gi", 80, "819MiB"),
        ("512M", 50, "244MiB"),
        ("1Mi", 10, "1MiB"),  # rounded down to 0, floored at 1 MiB
        ("1", 80, "1MiB"),
    ],
)
def test_gomemlimit(limit: str, percent: int, expected: str) -> None:
    assert gomemlimit(limit, percent) == expected


_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
_DECIMAL = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


@given(st.integers(min_value=0, max_value=10**12), st.sampled_from(sorted(_BINARY)))
def test_binary_suffix_round_trip(number: int, suffix: str) -> None:
    assert parse_quantity(f"{number}{suffix}") == number * _BINARY[suffix]


@given(st.integers(min_value=0, max_value=10**12), st.sampled_from(sorted(_DECIMAL)))
def test_decimal_suffix_round_trip(number: int, suffix: str) -> None:
    assert parse_quantity(f"{number}{suffix}") == number * _DECIMAL[suffix]


@given(st.integers(min_value=0, max_value=10**9))
def test_milli_round_trip(millis: int) -> None:
    assert parse_quantity(f"{millis}m") * 1000 == millis


@given(
    st.decimals(min_value=0, max_value=10**9, places=3, allow_nan=False, allow_infinity=False),
    st.integers(min_value=-9, max_value=9),
)
def test_exponent_round_trip(number: Decimal, exponent: int) -> None:
    assert parse_quantity(f"{number:f}e{exponent}") == number.scaleb(exponent)


@given(st.text(max_size=12))
def test_never_raises_anything_but_quantity_error(text: str) -> None:
    try:
        value = parse_quantity(text)
    except QuantityError:
        return
    assert value >= 0


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-1", "1_000", "1e400", "\u0661\u0662\u0663", "1K", "1e3m"])
def test_rejects_what_the_kubernetes_client_parser_accepts(text: str) -> None:
    """The reason this module exists (see its docstring): the client's parse_quantity takes
    these, the apiserver does not. If the client ever refuses them, the reason is gone."""
    from kubernetes.utils.quantity import parse_quantity as client_parse_quantity

    client_parse_quantity(text)  # type: ignore[no-untyped-call]  # accepted there
    with pytest.raises(QuantityError):
        parse_quantity(text)
