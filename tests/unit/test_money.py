from decimal import Decimal

import pytest

from handoff.domain import Money
from handoff.domain.money import MoneyError


def test_parse_keeps_every_cent() -> None:
    money = Money.parse("1234567.89", "usd")
    assert money == Money(Decimal("1234567.89"), "USD")
    assert str(money) == "1234567.89 USD"


@pytest.mark.parametrize("amount", [1.5, None, True, "12,00", "NaN"])
def test_amounts_that_are_not_money(amount: object) -> None:
    with pytest.raises(MoneyError):
        Money.parse(amount, "USD")


def test_unknown_currency_is_refused() -> None:
    with pytest.raises(MoneyError, match="'XYZ' is not a known ISO 4217 code"):
        Money.parse("10", "XYZ")


def test_more_decimals_than_the_currency_has() -> None:
    with pytest.raises(MoneyError, match="JPY allows"):
        Money.parse("10.5", "JPY")
    assert Money.parse("10.500", "KWD").amount == Decimal("10.500")
