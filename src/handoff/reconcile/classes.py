"""The eight discrepancy classes: the rule that catches each one (a SQL condition over one
`contract` row of the engine), the amounts it involves, and its words for a person.

The rules do not overlap, so no finding is an echo of another:
- A project with no CRM deal is an orphan and nothing else; an approved deal with no
  project is a missing project, and no plan is checked for it (there is none).
- Currencies that differ between the systems are a currency mismatch, and none of that
  deal's amounts are compared: they are in different units.
- The value check (CRM vs project) and the plan check (invoiced + remaining plan vs the
  project's value) are independent: one deal can fail both, and needs both repairs.
- Over-billed and under-scheduled exclude each other (more vs less than the value).
- Invoice status, ranked none < posted < paid: the CRM behind the ERP, or at the same
  status with other invoiced/paid figures, is a stale status; the CRM ahead of the ERP or
  with a status the ERP does not have is a status mismatch.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Kind(enum.StrEnum):
    VALUE_MISMATCH = "value_mismatch"
    MISSING_PROJECT = "missing_project"
    ORPHAN_PROJECT = "orphan_project"
    OVER_BILLED = "over_billed"
    UNDER_SCHEDULED = "under_scheduled"
    STALE_INVOICE_STATUS = "stale_invoice_status"
    STATUS_MISMATCH = "status_mismatch"
    CURRENCY_MISMATCH = "currency_mismatch"


@dataclass(frozen=True)
class DiscrepancyClass:
    kind: Kind
    rule: str                   # SQL condition over one contract row
    amounts: tuple[str, ...]    # the contract's amounts this class is about
    explanation: str            # str.format template over the row, amounts as "120000.00 USD"
    repair: str


COMPARABLE = "in_crm AND in_erp AND currencies_agree"

CLASSES = (
    DiscrepancyClass(
        Kind.ORPHAN_PROJECT, "in_erp AND NOT in_crm", ("project_value",),
        "the ERP project HO-P-{deal_id} is worth {project_value} but no CRM deal {deal_id} exists",
        "link the project to its deal in the CRM, or close the project in the ERP"),
    DiscrepancyClass(
        Kind.MISSING_PROJECT, "in_crm AND approved AND NOT in_erp", ("sold_value",),
        "the CRM approved a deal of {sold_value} but the ERP has no project HO-P-{deal_id} for it",
        "provision the project for this deal (re-run handoff for it)"),
    DiscrepancyClass(
        Kind.CURRENCY_MISMATCH, "in_crm AND NOT currencies_agree", (),
        "the CRM deal is in {crm_currency} but {other_currencies}, so their amounts cannot be compared",
        "correct the currency in the system that is wrong; amounts are never converted to compare"),
    DiscrepancyClass(
        Kind.VALUE_MISMATCH, f"{COMPARABLE} AND sold_value <> project_value",
        ("sold_value", "project_value"),
        "the CRM sold {sold_value} but the ERP project is worth {project_value}",
        "open an amendment to bring the project to the approved value, or correct the CRM"),
    DiscrepancyClass(
        Kind.OVER_BILLED, f"{COMPARABLE} AND over_plan > 0",
        ("project_value", "untaxed", "credited", "planned_remaining", "over_plan"),
        "invoiced {untaxed} before tax (net of {credited} credited) plus {planned_remaining} still on the "
        "invoice plan is {over_plan} more than the project's value of {project_value}",
        "take the excess off the invoice plan, or credit it if it is already invoiced"),
    DiscrepancyClass(
        Kind.UNDER_SCHEDULED, f"{COMPARABLE} AND over_plan < 0",
        ("project_value", "untaxed", "planned_remaining", "unscheduled"),
        "invoiced {untaxed} before tax plus {planned_remaining} still on the invoice plan leaves "
        "{unscheduled} of the project's value of {project_value} never invoiced",
        "add the missing {unscheduled} to the project's invoice plan"),
    DiscrepancyClass(
        Kind.STALE_INVOICE_STATUS,
        "in_crm AND (crm_rank < erp_rank OR (crm_status = erp_status AND currencies_agree "
        "AND (crm_invoiced <> invoiced OR crm_paid <> paid)))",
        ("crm_invoiced", "crm_paid", "invoiced", "paid"),
        "the CRM still shows invoice status '{crm_status}', {crm_invoiced} invoiced and {crm_paid} "
        "paid, but the ERP has '{erp_status}', {invoiced} invoiced and {paid} paid",
        "write the ERP's invoice status and figures back to the CRM"),
    DiscrepancyClass(
        Kind.STATUS_MISMATCH,
        "in_crm AND crm_status <> erp_status AND NOT coalesce(crm_rank < erp_rank, false)",
        ("crm_invoiced", "invoiced"),
        "the CRM shows invoice status '{crm_status}' but the ERP's invoices are '{erp_status}'",
        "check the invoices in the ERP, which is the record of billing, and correct the CRM's status"),
)
