"""Each discrepancy class planted in an otherwise clean snapshot is found, alone, in words."""

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from handoff.reconcile import BillingSummary, CrmDeal, ErpProject, Kind, Snapshot, reconcile

USD = "USD"


def clean(deal_id: str) -> tuple[CrmDeal, ErpProject, BillingSummary]:
    """A contract the three systems agree on: 120000 sold, 40000 invoiced after a 2000 credit,
    10000 paid, 80000 still on the plan."""
    return (CrmDeal(deal_id, USD, Decimal("120000.00"), True, Decimal("40000.00"), Decimal("10000.00"),
                    "posted"),
            ErpProject(deal_id, USD, Decimal("120000.00"), Decimal("80000.00")),
            BillingSummary(deal_id, USD, Decimal("40000.00"), Decimal("40000.00"), Decimal("2000.00"),
                           Decimal("10000.00"), "posted"))


Contract = tuple[CrmDeal | None, ErpProject | None, BillingSummary | None]


def snapshot_of(contracts: list[Contract]) -> Snapshot:
    """Each system's rows of these contracts; None where a system has no row for one."""
    crm, erp, billing = ([row for row in rows if row is not None] for rows in zip(*contracts, strict=True))
    return Snapshot.of(crm, erp, billing)


def snapshot_with(planted: Contract) -> Snapshot:
    return snapshot_of([clean(f"C{i}") for i in range(3)] + [planted])


CRM, ERP, BILLING = clean("P")

PLANTED = {
    Kind.VALUE_MISMATCH: (
        (CRM, replace(ERP, project_value=Decimal("110000.00"), planned_remaining=Decimal("70000.00")),
         BILLING),
        "the CRM sold 120000.00 USD but the ERP project is worth 110000.00 USD"),
    Kind.MISSING_PROJECT: (
        (replace(CRM, invoiced=Decimal(0), paid=Decimal(0), invoice_status="none"), None, None),
        "the CRM approved a deal of 120000.00 USD but the ERP has no project HO-P-P for it"),
    Kind.ORPHAN_PROJECT: (
        (None, ERP, BILLING),
        "the ERP project HO-P-P is worth 120000.00 USD but no CRM deal P exists"),
    Kind.OVER_BILLED: (
        (CRM, replace(ERP, planned_remaining=Decimal("85000.50")), BILLING),
        "invoiced 40000.00 USD before tax (net of 2000.00 USD credited) plus 85000.50 USD still on "
        "the invoice plan is 5000.50 USD more than the project's value of 120000.00 USD"),
    Kind.UNDER_SCHEDULED: (
        (CRM, replace(ERP, planned_remaining=Decimal("79999.99")), BILLING),
        "invoiced 40000.00 USD before tax plus 79999.99 USD still on the invoice plan leaves 0.01 USD of the "
        "project's value of 120000.00 USD never invoiced"),
    Kind.STALE_INVOICE_STATUS: (
        (replace(CRM, paid=Decimal("0.00")), ERP, BILLING),
        "the CRM still shows invoice status 'posted', 40000.00 USD invoiced and 0.00 USD paid, but "
        "the ERP has 'posted', 40000.00 USD invoiced and 10000.00 USD paid"),
    Kind.STATUS_MISMATCH: (
        (replace(CRM, invoice_status="paid"), ERP, BILLING),
        "the CRM shows invoice status 'paid' but the ERP's invoices are 'posted'"),
    Kind.CURRENCY_MISMATCH: (
        (CRM, replace(ERP, currency="EUR"), replace(BILLING, currency="EUR")),
        "the CRM deal is in USD but the ERP project is in EUR and its billing is in EUR, so their "
        "amounts cannot be compared"),
}


@pytest.mark.parametrize("kind", list(Kind))
def test_a_planted_discrepancy_is_found_alone_and_explained(kind: Kind) -> None:
    contract, explanation = PLANTED[kind]
    result = reconcile(snapshot_with(contract))
    assert [(d.deal_id, d.kind) for d in result.discrepancies] == [("P", kind)]
    assert result.discrepancies[0].explanation == explanation
    assert result.counts == {k: int(k == kind) for k in Kind}


def every_class_planted() -> list[Contract]:
    """Clean contracts and one of each class, its deal id named after the class."""
    planted = [tuple(row and replace(row, deal_id=kind.value) for row in rows)
               for kind, (rows, _) in PLANTED.items()]
    return [clean(f"C{i}") for i in range(5)] + planted


def test_every_class_planted_at_once_is_found_exactly() -> None:
    result = reconcile(snapshot_of(every_class_planted()))
    assert {(d.deal_id, d.kind) for d in result.discrepancies} == {(k.value, k) for k in Kind}
    assert result.total == len(Kind)


def test_a_clean_snapshot_reports_nothing() -> None:
    result = reconcile(snapshot_with(clean("P")))
    assert result.discrepancies == [] and result.total == 0


def test_a_deal_not_approved_needs_no_project_and_unbilled_deals_are_clean() -> None:
    open_deal = CrmDeal("O", USD, Decimal("5000.00"), False)
    unbilled = (replace(CRM, invoiced=Decimal(0), paid=Decimal(0), invoice_status="none"),
                replace(ERP, planned_remaining=Decimal("120000.00")), None)
    assert reconcile(snapshot_with((open_deal, None, None))).total == 0
    assert reconcile(snapshot_with(unbilled)).total == 0


def test_the_crm_behind_the_erp_on_status_is_stale_not_a_mismatch() -> None:
    paid_in_erp = replace(BILLING, paid=Decimal("40000.00"), invoice_status="paid")
    result = reconcile(snapshot_with((CRM, ERP, paid_in_erp)))
    assert [d.kind for d in result.discrepancies] == [Kind.STALE_INVOICE_STATUS]


def test_a_value_mismatch_and_a_short_plan_are_two_findings() -> None:
    short_project = replace(ERP, project_value=Decimal("110000.00"))
    result = reconcile(snapshot_with((CRM, short_project, BILLING)))
    assert {d.kind for d in result.discrepancies} == {Kind.VALUE_MISMATCH, Kind.OVER_BILLED}


def test_the_plan_is_compared_before_tax_and_the_crm_status_after() -> None:
    taxed = replace(BILLING, invoiced=Decimal("48000.00"), paid=Decimal("10000.00"))
    crm_sees_tax = replace(CRM, invoiced=Decimal("48000.00"))
    assert reconcile(snapshot_with((crm_sees_tax, ERP, taxed))).total == 0
    assert [d.kind for d in reconcile(snapshot_with((CRM, ERP, taxed))).discrepancies] == [
        Kind.STALE_INVOICE_STATUS]


def test_amounts_come_back_as_decimal_exact_to_the_cent_in_the_contract_currency() -> None:
    found = reconcile(snapshot_with(PLANTED[Kind.OVER_BILLED][0])).discrepancies[0]
    assert found.currency == USD
    assert found.amounts == {"project_value": Decimal("120000.00"), "untaxed": Decimal("40000.00"),
                             "credited": Decimal("2000.00"), "planned_remaining": Decimal("85000.50"),
                             "over_plan": Decimal("5000.50")}
    assert all(type(a) is Decimal and a.as_tuple().exponent == -2 for a in found.amounts.values())


def test_three_decimal_currencies_keep_their_third_decimal() -> None:
    crm, erp, billing = (replace(row, currency="KWD") for row in clean("K"))
    found = reconcile(Snapshot.of([crm], [replace(erp, project_value=Decimal("120000.005"))],
                                  [billing])).discrepancies
    assert found[0].amounts["project_value"] == Decimal("120000.005")
    assert "120000.005 KWD" in found[0].explanation


def test_a_snapshot_saved_as_parquet_reconciles_the_same(tmp_path: Path) -> None:
    original = snapshot_of(every_class_planted())
    original.save(tmp_path / "snapshot")
    assert reconcile(Snapshot.load(tmp_path / "snapshot")) == reconcile(original)
