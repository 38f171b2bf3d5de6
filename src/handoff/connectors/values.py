"""Values as vendors send and take them, exact both ways: a number read as decimal text
(never through a float), an amount written as an exact Decimal (a float refused)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from handoff.errors import DataError


def finite_decimal(value: Any) -> Decimal | None:
    """The number a vendor sent (as text or a number), or None for empty or no number."""
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def exact_amount(value: Any, system: str, field: str = "amount") -> Decimal:
    """An amount to send: an exact Decimal; a float (whose digits are not the amount) or
    anything that is no number is refused, naming the field."""
    if isinstance(value, float):
        raise DataError(f"{field} {value!r} is a float; give exact decimal text", system=system,
                        field=field)
    number = finite_decimal(value)
    if number is None:
        raise DataError(f"{field} {value!r} is not a number", system=system, field=field)
    return number
