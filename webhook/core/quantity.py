"""Kubernetes resource quantities ("500m", "128Mi", "1e9"), parsed exactly as the apiserver's
grammar allows, so an override the injector accepts is one the apiserver accepts too.
"""

from __future__ import annotations

import re
from decimal import Decimal

_QUANTITY = re.compile(
    r"^(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?$"
)
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "T": Decimal(10**12),
    "P": Decimal(10**15),
    "E": Decimal(10**18),
}


class QuantityError(ValueError):
    """The text is not a Kubernetes quantity."""


def parse_quantity(text: str) -> Decimal:
    """Return the value of a quantity in base units (cores or bytes).

    Raises :class:`QuantityError` for anything the apiserver would reject, and for negative
    values, which no resource request may have.
    """
    match = _QUANTITY.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None or len(text) > 64:
        raise QuantityError(f"{text!r} is not a Kubernetes quantity (e.g. 100m, 128Mi)")
    number = Decimal(match["number"])
    suffix = match["suffix"] or ""
    if number < 0:
        raise QuantityError(f"{text!r} is negative")
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix in _DECIMAL:
        return number * _DECIMAL[suffix]
    if suffix[:1] in ("e", "E"):
        exponent = int(suffix[1:])
        if abs(exponent) > 30:
            raise QuantityError(f"{text!r} has an exponent out of range")
        return number.scaleb(exponent)
    return number


def gomemlimit(memory_limit: str, percent: int) -> str:
    """GOMEMLIMIT for a container with ``memory_limit``: ``percent`` of it, in whole MiB
    (Go accepts the MiB suffix), at least 1 MiB.
    """
    limit_bytes = parse_quantity(memory_limit)
    mib = int(limit_bytes * percent / 100 / 2**20)
    return f"{max(mib, 1)}MiB"
