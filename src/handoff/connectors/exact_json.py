"""JSON with exact decimals: numbers are read as `Decimal` and Decimals are written digit
for digit as JSON numbers, so money never passes through a float on the way to or from a
vendor (NetSuite's `jobPrice` 1234567.89 stays 1234567.89). Shared by the connectors and
twins that speak JSON through handoff's own HTTP client."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import orjson


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=_exact_number)


def loads(data: bytes | str) -> Any:
    return json.loads(data, parse_float=Decimal)


def _exact_number(value: Any) -> orjson.Fragment:
    if isinstance(value, Decimal) and value.is_finite():
        # Fixed-point text, never exponent form: 1E+2 would be valid JSON but reads as odd money.
        return orjson.Fragment(format(value, "f"))
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
