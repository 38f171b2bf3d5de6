"""Values as vendors send and take them: a number read exactly (never through a float), an
amount written as an exact Decimal (a float refused), a picklist label read as handoff's
value, an empty field read as nothing."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from enum import StrEnum
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


_ALIASES = {"t&m": "time_and_materials", "time_&_materials": "time_and_materials"}


def to_canonical(kind: type[StrEnum], value: str | None) -> str | None:
    """An enumeration value or label as handoff's value ("Time and Materials" →
    "time_and_materials"); unknown values pass through, for canonical validation to refuse
    with the field named."""
    if value is None:
        return None
    key = value.strip().casefold().replace(" ", "_").replace("-", "_")
    key = _ALIASES.get(key, key)
    return key if key in {member.value for member in kind} else value


def text_of(fields: Mapping[str, Any], name: str) -> str | None:
    """A field as text; absent or empty is None."""
    value = fields.get(name)
    return None if value is None or value == "" else str(value)
