"""Kubernetes resource quantities ("500m", "128Mi", "1e9"), parsed exactly as the apiserver's
grammar allows, so an override the injector accepts is one the apiserver accepts too.

The grammar (k8s.io/apimachinery resource.Quantity)::

    <quantity> ::= <signedNumber><suffix>
    <suffix>   ::= Ki | Mi | Gi | Ti | Pi | Ei | n | u | m | "" | k | M | G | T | P | E
                 | e<signedNumber> | E<signedNumber>
    <number>   ::= digits, optionally with one "." (ASCII digits only)

Why not the ``kubernetes`` package's ``kubernetes.utils.parse_quantity``: it hands the text
before the suffix to ``Decimal()``, which accepts much the apiserver rejects, so a pod
annotation that passed it would make the apiserver refuse the whole pod after our patch.
Checked with kubernetes 37.0.2: it accepts ``NaN``, ``Infinity``, ``-1``, ``1_000``,
``1e400``, Unicode digits (``"١٢٣"`` is 123), an upper-case ``1K`` and a double suffix
(``1e3m`` is 1), all invalid quantities; this module rejects each of them, and negative
values, which no resource may have (tests/unit/core/test_quantity.py). Speed is not the
reason: both take about 1.5 us per call.
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
