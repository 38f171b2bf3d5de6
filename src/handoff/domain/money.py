"""Money: a Decimal amount with an ISO 4217 currency. Never a float."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

# Minor units per ISO 4217 for the currencies handoff accepts. A code not listed is refused:
# a typo in a currency must never become a silent mismatch between two systems.
MINOR_UNITS: dict[str, int] = {
    "AED": 2, "AUD": 2, "BRL": 2, "CAD": 2, "CHF": 2, "CNY": 2, "CZK": 2, "DKK": 2,
    "EUR": 2, "GBP": 2, "HKD": 2, "HUF": 2, "ILS": 2, "INR": 2, "JPY": 0, "KRW": 0,
    "MXN": 2, "NOK": 2, "NZD": 2, "PLN": 2, "SAR": 2, "SEK": 2, "SGD": 2, "THB": 2,
    "TRY": 2, "TWD": 2, "USD": 2, "ZAR": 2, "KWD": 3, "BHD": 3,
}


class MoneyError(ValueError):
    """An amount or currency that cannot be money."""


@dataclass(frozen=True, slots=True)
class Money:
    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.amount, float) or not isinstance(self.amount, Decimal):
            raise MoneyError(f"amount must be a Decimal, not {type(self.amount).__name__}")
        if not self.amount.is_finite():
            raise MoneyError(f"amount {self.amount} is not a finite number")
        if self.currency not in MINOR_UNITS:
            raise MoneyError(f"currency {self.currency!r} is not a known ISO 4217 code")
        exponent = self.amount.as_tuple().exponent
        if isinstance(exponent, int) and -exponent > MINOR_UNITS[self.currency]:
            raise MoneyError(
                f"amount {self.amount} has more decimals than {self.currency} allows "
                f"({MINOR_UNITS[self.currency]})"
            )

    @classmethod
    def parse(cls, amount: object, currency: object) -> Money:
        """Build from wire values: amounts as strings or ints (JSON numbers arrive as text)."""
        if isinstance(amount, float | bool) or amount is None:
            raise MoneyError(f"amount {amount!r} must be a decimal string or an integer")
        try:
            value = Decimal(str(amount))
        except InvalidOperation as exc:
            raise MoneyError(f"amount {amount!r} is not a number") from exc
        if not isinstance(currency, str):
            raise MoneyError(f"currency {currency!r} must be a string")
        return cls(value, currency.upper() if len(currency) == 3 else currency)

    @classmethod
    def rounded(cls, amount: Decimal, currency: str) -> Money:
        """An exact computed amount (hours × rate) rounded half up to the currency's minor
        unit, the way an invoice line is."""
        step = Decimal(1).scaleb(-MINOR_UNITS.get(currency, 2))
        return cls(amount.quantize(step, rounding=ROUND_HALF_UP), currency)

    @property
    def minor_units(self) -> int:
        return MINOR_UNITS[self.currency]

    def quantized(self) -> Decimal:
        """The amount with exactly the currency's decimals: 393250.0 GBP → 393250.00."""
        return self.amount.quantize(Decimal(1).scaleb(-self.minor_units))

    @property
    def is_negative(self) -> bool:
        return self.amount < 0

    def __str__(self) -> str:
        return f"{self.quantized()} {self.currency}"
