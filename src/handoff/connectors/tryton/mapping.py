"""handoff's records ↔ Tryton's. Pure functions.

    customer   party.party       code = HO-C-<account>  (unique in Tryton's schema)
    project    project.work      type project, invoiced on effort; comment starts with
                                 "[handoff HO-P-<deal>]"
    milestone  project.work      a task per milestone of the approved schedule, planned with
                                 the project and without a price, so Tryton's Invoice button
                                 never bills it on its own; delivery sets it done (progress
                                 1), the poll reports it achieved; comment
                                 "[handoff HO-M-<deal>-<m>]\nMilestone <m> of …"
    document   project.work      one task per billing document (a milestone, a fixed fee, a
                                 period of time, a true-up), one hour at the document's
                                 amount — negative for a credit note — progress 1 once
                                 billable; comment "[handoff HO-M-<deal>-<document>]"
    invoice    account.invoice   made by the project's Invoice button from the done task,
                                 reference = HO-I-<deal>-<document> (HO-CN-… for a credit
                                 note, which Tryton keeps as an invoice with a negative
                                 total), then posted; found again from the project's works
                                 (their invoice line's invoice), as Tryton's own Open Invoice
                                 finds a project's invoices

A work's `number` would be the natural place for the external id, but Tryton numbers works
itself and refuses writes to it over RPC; the comment's first line is the one searchable
text field left (docs/decisions/0003-tryton-connector.md).
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

from handoff.connectors.ports import DocumentFigures, ProjectFigures
from handoff.domain import (
    Customer,
    Invoice,
    InvoiceRequest,
    InvoiceStatus,
    Milestone,
    Money,
    Project,
)
from handoff.domain.ids import PROJECT_PREFIX, billing_task_external_id

INVOICE_STATUS = {
    "draft": InvoiceStatus.DRAFT, "validated": InvoiceStatus.DRAFT,
    "posted": InvoiceStatus.POSTED, "paid": InvoiceStatus.PAID,
    "cancelled": InvoiceStatus.CANCELLED,
}
INVOICE_FIELDS = ("number", "state", "reference", "invoice_date", "untaxed_amount", "tax_amount",
                  "total_amount", "amount_to_pay", "currency.code", "lines_to_pay.maturity_date")
TASK_FIELDS = ("progress", "invoice_line.invoice", "list_price")
MILESTONE = "Milestone"  # the second line's first word of a planned milestone task
# Planned milestone tasks delivery has set done: what the milestone poll looks for.
DONE_MILESTONES = [("type", "=", "task"), ("progress", "=", 1),
                   ("comment", "like", "[handoff HO-M-%]\nMilestone %")]
PROGRESS_FIELDS = ("comment", "parent.comment", "write_date", "create_date")
DOCUMENT_EFFORT = dt.timedelta(hours=1)  # one hour at the document's amount, whatever the unit
# Reconciliation's listings: every project carrying handoff's marker, and the works below
# them that Tryton invoiced (`path` is Tryton's "<root id>/…/<own id>/" of a work's ancestry).
PAGE = 1000  # records per search_read or read
PROJECT_MARKER = f"[handoff {PROJECT_PREFIX}"
HANDOFF_PROJECTS = [("type", "=", "project"), ("comment", "like", PROJECT_MARKER + "%")]
PROJECT_FIELDS = ("comment",)
INVOICED_WORK_FIELDS = ("path", "invoice_line.invoice")
PROVISIONED = re.compile(r"Provisioned by handoff from opportunity (?P<deal>.+) "
                         r"\((?P<value>-?[0-9]+(?:\.[0-9]+)?) (?P<currency>[A-Z]{3}), [^()]*\)\.")


def party_values(customer: Customer) -> dict[str, Any]:
    return {"name": customer.name}


def marker(external_id: str) -> str:
    """The comment's first line, by which handoff finds the work again."""
    return f"[handoff {external_id}]"


def external_id_clause(model: str, external_id: str) -> tuple[str, str, str]:
    """The search clause finding the record that carries handoff's external id."""
    if model == "party.party":
        return ("code", "=", external_id)
    return ("comment", "like", marker(external_id) + "%")


def creation_values(model: str, external_id: str) -> dict[str, Any]:
    """What only a create sets: the party's code (works carry their marker in the comment
    their values already hold), and the address a customer must have to be invoiced."""
    if model == "party.party":
        return {"code": external_id, "addresses": [["create", [{}]]]}
    return {}


def project_values(project: Project, party_id: int, company_id: int) -> dict[str, Any]:
    return {
        "name": project.name, "type": "project", "company": company_id, "party": party_id,
        "project_invoice_method": "effort",
        "comment": f"{marker(project.external_id)}\nProvisioned by handoff from opportunity "
                   f"{project.opportunity_id} ({project.value.quantized()} "
                   f"{project.value.currency}, {project.billing_method}).",
    }


def task_values(request: InvoiceRequest, project_id: int, company_id: int,
                product_id: int) -> dict[str, Any]:
    line = request.line
    kind = "Credit" if request.is_credit else "Billing line"
    return _task(request.opportunity_id, line, kind, project_id, company_id, product_id) | {
        "list_price": line.amount.amount}


def planned_task_values(project: Project, milestone: Milestone, project_id: int, company_id: int,
                        product_id: int) -> dict[str, Any]:
    """A milestone as delivery's work, before anything may be billed: no price yet."""
    return _task(project.opportunity_id, milestone, MILESTONE, project_id, company_id,
                 product_id) | {"list_price": None}


def milestone_progress_data(record: dict[str, Any]) -> dict[str, Any] | None:
    """`handoff.milestone.changed` data of a planned milestone task delivery set done (read
    with its `comment`, `parent.comment`, `write_date`, `create_date`)."""
    task_id = _marked_id(record["comment"])
    deal = _marked_id((record.get("parent.") or {}).get("comment") or "")
    if task_id is None or deal is None:
        return None
    deal = deal.removeprefix("HO-P-")
    changed = record.get("write_date") or record["create_date"]
    return {"opportunity_id": deal, "id": task_id.removeprefix(f"HO-M-{deal}-"),
            "status": "achieved", "achieved_on": changed.date().isoformat(),
            "version": changed.isoformat()}


def _task(opportunity_id: str, line: Milestone, kind: str, project_id: int, company_id: int,
          product_id: int) -> dict[str, Any]:
    return {
        "name": f"{line.name} ({line.id})", "type": "task", "parent": project_id,
        "company": company_id, "product": product_id, "effort_duration": DOCUMENT_EFFORT,
        "comment": f"{marker(billing_task_external_id(opportunity_id, line.id))}\n"
                   f"{kind} {line.id} of opportunity {opportunity_id}.",
    }


def _marked_id(comment: str) -> str | None:
    first = comment.partition("\n")[0]
    if not (first.startswith("[handoff ") and first.endswith("]")):
        return None
    return first.removeprefix("[handoff ").removesuffix("]")


def invoice_from(record: dict[str, Any], external_id: str) -> Invoice:
    currency = record["currency."]["code"]

    def money(field: str) -> Money:
        return Money(Decimal(record[field] or 0), currency)

    maturities = [line["maturity_date"] for line in record.get("lines_to_pay.") or []
                  if line.get("maturity_date")]
    return Invoice(
        external_id=external_id, target_id=str(record["id"]), number=record.get("number"),
        status=INVOICE_STATUS[record["state"]], untaxed=money("untaxed_amount"),
        tax=money("tax_amount"), total=money("total_amount"), amount_due=money("amount_to_pay"),
        invoice_date=record.get("invoice_date"), due_date=min(maturities, default=None))


def project_deal(comment: str) -> str | None:
    """The deal of a project's marker "[handoff HO-P-<deal>]" (the first line), else None."""
    first = comment.partition("\n")[0]
    if not first.startswith(PROJECT_MARKER):
        return None
    deal = first.removeprefix(PROJECT_MARKER).partition("]")[0]
    return deal or None


def project_figures_from(record: dict[str, Any]) -> ProjectFigures | None:
    """A handoff project (read with its `comment`) as reconciliation compares it; None for a
    work without handoff's project marker.

    Tryton has no field for a project's contract value (a work's list price is a price per
    hour, and an effort-invoiced project has none), so handoff keeps the value in the comment
    it writes: "Provisioned by handoff from opportunity <deal> (<value> <CUR>, <method>)." on
    the second line. A project whose second line does not read so (edited by hand, or naming
    another opportunity) is listed with value and currency None, for reconciliation to report,
    rather than stopping the listing."""
    comment = record.get("comment") or ""
    deal = project_deal(comment)
    if deal is None:
        return None
    lines = comment.splitlines()
    stated = PROVISIONED.fullmatch(lines[1].strip()) if len(lines) > 1 else None
    if stated is None or stated["deal"] != deal:
        return ProjectFigures(deal, None, None)
    return ProjectFigures(deal, stated["currency"], Decimal(stated["value"]))


def work_ancestry(record: dict[str, Any]) -> list[int]:
    """A work's own id and its ancestors' (read with `path`), nearest first."""
    path = record.get("path") or ""
    return [int(part) for part in reversed(path.split("/")) if part] or [record["id"]]


def document_figures_from(record: dict[str, Any], deal_id: str) -> DocumentFigures:
    """An invoice or credit note (read with INVOICE_FIELDS) of a deal's project. Tryton keeps
    a credit note as an invoice with negative amounts, as handoff counts them; a cancelled
    invoice is listed with status 'cancelled' (reconciliation counts posted and paid only)."""
    invoice = invoice_from(record, record.get("reference") or "")
    return DocumentFigures(deal_id, invoice.target_id, invoice.total.currency, invoice.status.value,
                           invoice.total.amount, invoice.untaxed.amount, invoice.amount_due.amount)
