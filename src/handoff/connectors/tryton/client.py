"""TrytonConnector: handoff's ErpConnector and BillingConnector over Tryton's JSON-RPC.

Tryton has no upsert, so every write looks before it creates: the record is searched by the
external id handoff gave it (a party's code, unique in Tryton's schema; a work's comment
marker, see mapping.py), and created only when absent. A create whose answer was lost is
found by the next look. Invoicing follows the same rule: a billing task that already has an
invoice line is never invoiced again.

For reconciliation it lists handoff's projects and their invoices in bulk: pages of
search_read, and invoices read by id in batches, never a call per record.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from handoff.connectors.budget import paced
from handoff.connectors.ports import DocumentFigures, ProjectFigures, UpsertResult
from handoff.connectors.tryton.errors import SYSTEM
from handoff.connectors.tryton.jsonrpc import TrytonRpc, vendor_budget
from handoff.connectors.tryton.mapping import (
    DONE_MILESTONES,
    HANDOFF_PROJECTS,
    INVOICE_FIELDS,
    INVOICED_WORK_FIELDS,
    PAGE,
    PROGRESS_FIELDS,
    PROJECT_FIELDS,
    TASK_FIELDS,
    creation_values,
    document_figures_from,
    external_id_clause,
    invoice_from,
    marker,
    milestone_progress_data,
    party_values,
    planned_task_values,
    project_deal,
    project_figures_from,
    project_values,
    task_values,
    work_ancestry,
)
from handoff.connectors.tryton.settings import TrytonSettings
from handoff.domain import Customer, Invoice, InvoiceRequest, InvoiceStatus, Project
from handoff.domain.ids import billing_task_external_id
from handoff.errors import BusinessRuleError, DataError, PermanentError

__all__ = ["TrytonConnector", "TrytonSettings"]


@dataclass(frozen=True, slots=True)
class Company:
    """What the integration user works as: read once from its preferences."""

    id: int
    currency: str
    product_id: int


class TrytonConnector:
    system = SYSTEM

    def __init__(self, settings: TrytonSettings) -> None:
        self.settings = settings
        limiter = paced(vendor_budget(settings.max_concurrency), settings.budget, SYSTEM)
        self.budget = limiter.budget
        self.rpc = TrytonRpc(settings, limiter)
        self._company: Company | None = None
        self._lock = threading.Lock()

    # --- ErpConnector ----------------------------------------------------------------------

    def upsert_customer(self, external_id: str, customer: Customer) -> UpsertResult:
        return self._upsert("party.party", external_id, party_values(customer))

    def upsert_project(self, project: Project, customer_target_id: str) -> UpsertResult:
        company = self.company()
        if project.value.currency != company.currency:
            raise DataError(f"Tryton invoices projects in the company currency {company.currency}; "
                            f"the deal is in {project.value.currency}", system=SYSTEM,
                            field="currency")
        values = project_values(project, int(customer_target_id), company.id)
        result = self._upsert("project.work", project.external_id, values)
        self._plan_milestones(project, int(result.target_id))
        return result

    # --- BillingConnector ------------------------------------------------------------------

    def issue_invoice(self, request: InvoiceRequest, project_target_id: str) -> Invoice:
        project_id = int(project_target_id)
        task = self._billing_task(request, project_id)
        invoice_id = _invoice_of(task)
        if invoice_id is None:
            priced = {"progress": 1.0, "list_price": request.line.amount.amount}
            changed = {k: v for k, v in priced.items() if task[k] != v}
            if changed:  # a planned milestone gets its price only now, when it may be billed
                self.rpc.call("model.project.work.write", [task["id"]], changed)
            self.rpc.call("model.project.work.invoice", [project_id])
            invoice_id = _invoice_of(self._read_one("project.work", task["id"], TASK_FIELDS))
            if invoice_id is None:
                raise BusinessRuleError(f"Tryton made no invoice line for billing task "
                                        f"{task['id']} of project {project_id}", system=SYSTEM)
        return self._posted(invoice_id, request)

    def read_invoice(self, target_id: str) -> Invoice:
        record = self._read_one("account.invoice", int(target_id), INVOICE_FIELDS)
        return invoice_from(record, record.get("reference") or "")

    # --- DeliveryFeed ----------------------------------------------------------------------

    def changed_milestones(self, since: datetime) -> Iterator[dict[str, Any]]:
        """Planned milestone tasks delivery set done since `since`, as progress event data
        (Tryton sends no event when a task is done)."""
        self.company()
        moment = since.astimezone(UTC)
        changed = ["OR", ("write_date", ">=", moment), ("create_date", ">=", moment)]
        records = self.rpc.call("model.project.work.search_read", [*DONE_MILESTONES, changed],
                                0, None, [("id", "ASC")], list(PROGRESS_FIELDS))
        for record in records:
            data = milestone_progress_data(record)
            if data is not None:
                yield data

    # --- ErpSnapshotSource ------------------------------------------------------------------

    def project_figures(self) -> Iterator[ProjectFigures]:
        """Every project carrying handoff's marker, with the value and currency handoff wrote
        in its comment (see `project_figures_from`)."""
        self.company()
        for page in self._pages("project.work", HANDOFF_PROJECTS, PROJECT_FIELDS):
            for record in page:
                figures = project_figures_from(record)
                if figures is not None:  # the search's own condition: never None in practice
                    yield figures

    def document_figures(self) -> Iterator[DocumentFigures]:
        """Every invoice and credit note of handoff's projects, whatever its state, with its
        deal: a page of projects at a time, the invoices of the works below them."""
        self.company()
        for page in self._pages("project.work", HANDOFF_PROJECTS, PROJECT_FIELDS):
            deals = {r["id"]: deal for r in page if (deal := project_deal(r["comment"])) is not None}
            if deals:
                yield from self._documents(deals)

    # --- lookups ---------------------------------------------------------------------------

    def company(self) -> Company:
        """The user's company, its currency and the service product; read on first use."""
        with self._lock:
            if self._company is None:
                self._company = self._read_company()
            return self._company

    def find(self, model: str, external_id: str) -> int | None:
        """The record carrying handoff's external id; two would be a duplicate made by hand."""
        ids = self.rpc.call(f"model.{model}.search", [external_id_clause(model, external_id)],
                            0, 2, None)
        if len(ids) > 1:
            raise DataError(f"{len(ids)} {model} records carry {external_id!r}", system=SYSTEM,
                            field=external_id_clause(model, external_id)[0])
        return ids[0] if ids else None

    def close(self) -> None:
        self.rpc.close()

    def __enter__(self) -> TrytonConnector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- plumbing --------------------------------------------------------------------------

    def _read_company(self) -> Company:
        prefs = self.rpc.call("model.res.user.get_preferences", True)
        if not prefs.get("company"):
            raise PermanentError(f"Tryton user {self.settings.user!r} has no company", system=SYSTEM)
        company = self._read_one("company.company", prefs["company"], ("currency.code",))
        self.rpc.context = {**self.rpc.context, "company": prefs["company"],
                            "employee": prefs.get("employee")}
        product_id = self._product(self.settings.product_code)
        return Company(prefs["company"], company["currency."]["code"], product_id)

    def _product(self, code: str) -> int:
        ids = self.rpc.call("model.product.product.search", [("code", "=", code)], 0, 1, None)
        if not ids:
            raise PermanentError(f"Tryton has no product with code {code!r} to bill with "
                                 "with", system=SYSTEM)
        return ids[0]

    def _upsert(self, model: str, external_id: str, values: dict[str, Any]) -> UpsertResult:
        """Write the values on the record carrying `external_id`, or create it with them."""
        self.company()  # the company goes into every call's context
        existing = self.find(model, external_id)
        if existing is None:
            return self._create(model, external_id, values)
        held = self._read_one(model, existing, tuple(values))
        changed = {k: v for k, v in values.items() if held.get(k) != v}
        if changed:  # only what differs: Tryton locks some fields once a record is in use
            self.rpc.call(f"model.{model}.write", [existing], changed)
        return UpsertResult(str(existing), created=False)

    def _create(self, model: str, external_id: str, values: dict[str, Any]) -> UpsertResult:
        try:
            [created] = self.rpc.call(f"model.{model}.create",
                                      [values | creation_values(model, external_id)])
        except BusinessRuleError:
            winner = self.find(model, external_id)  # a racing create may have won
            if winner is None:
                raise
            return UpsertResult(str(winner), created=False)
        return UpsertResult(str(created), created=True)

    def _plan_milestones(self, project: Project, project_id: int) -> None:
        """A task per milestone of the schedule, made once: one search finds those there."""
        if not project.milestones:
            return
        company = self.company()
        held = self.rpc.call("model.project.work.search_read", [
            ("parent", "=", project_id), ("comment", "like", "[handoff HO-M-%")], 0, None, None,
            ["comment"])
        known = {record["comment"].partition("\n")[0] for record in held}
        missing = [planned_task_values(project, m, project_id, company.id, company.product_id)
                   for m in project.milestones if marker(billing_task_external_id(
                       project.opportunity_id, m.id)) not in known]
        if missing:
            self.rpc.call("model.project.work.create", missing)

    def _billing_task(self, request: InvoiceRequest, project_id: int) -> dict[str, Any]:
        company = self.company()
        external_id = billing_task_external_id(request.opportunity_id, request.line.id)
        task_id = self.find("project.work", external_id)
        if task_id is None:
            values = task_values(request, project_id, company.id, company.product_id)
            task_id = int(self._create("project.work", external_id, values).target_id)
        return self._read_one("project.work", task_id, TASK_FIELDS)

    def _posted(self, invoice_id: int, request: InvoiceRequest) -> Invoice:
        record = self._read_one("account.invoice", invoice_id, INVOICE_FIELDS)
        if invoice_from(record, request.external_id).status is InvoiceStatus.DRAFT:
            if record["state"] == "draft" and record.get("reference") != request.external_id:
                self.rpc.call("model.account.invoice.write", [invoice_id], {
                    "reference": request.external_id, "invoice_date": request.invoice_date})
            if not request.post:  # finance reviews and posts it in Tryton
                return invoice_from(self._read_one("account.invoice", invoice_id, INVOICE_FIELDS),
                                    request.external_id)
            self.rpc.call("model.account.invoice.post", [invoice_id])
            record = self._read_one("account.invoice", invoice_id, INVOICE_FIELDS)
        return invoice_from(record, request.external_id)

    def _pages(self, model: str, domain: list[Any], fields: tuple[str, ...],
               ) -> Iterator[list[dict[str, Any]]]:
        """Every record the domain finds, PAGE at a time in id order. Each page starts after
        the last id of the one before (not at an offset, which would skip a record when one
        before it is deleted meanwhile, and makes the database count past every earlier
        page)."""
        last = 0
        while True:
            page = self.rpc.call(f"model.{model}.search_read", [*domain, ("id", ">", last)], 0, PAGE,
                                 [("id", "ASC")], list(fields))
            if page:
                yield page
            if len(page) < PAGE:
                return
            last = page[-1]["id"]

    def _documents(self, deals: dict[int, str]) -> Iterator[DocumentFigures]:
        """The invoices of the works below these projects (the projects included), each once:
        the way Tryton's own Open Invoice finds a project's invoices (a work's invoice line's
        invoice). A work belongs to its nearest project in `deals`; all of handoff's billing
        tasks hang right under their project, but a task someone added deeper is counted too."""
        invoiced: dict[int, str] = {}  # invoice id → deal
        domain = [("parent", "child_of", list(deals)), ("invoice_line", "!=", None)]
        for page in self._pages("project.work", domain, INVOICED_WORK_FIELDS):
            for work in page:
                invoice = (work.get("invoice_line.") or {}).get("invoice")
                project = next((i for i in work_ancestry(work) if i in deals), None)
                if project is None:
                    raise DataError(f"work {work['id']} is below none of the projects it was found "
                                    f"under (path {work.get('path')!r})", system=SYSTEM, field="path")
                if invoice is not None:  # a line taken off its invoice bills nothing
                    invoiced.setdefault(invoice, deals[project])
        ids = sorted(invoiced)
        for start in range(0, len(ids), PAGE):
            batch = ids[start:start + PAGE]
            records = self.rpc.call("model.account.invoice.read", batch, list(INVOICE_FIELDS))
            if len(records) != len(batch):
                raise DataError("Tryton did not return every invoice of handoff's projects",
                                system=SYSTEM, field="invoice")
            for record in records:
                yield document_figures_from(record, invoiced[record["id"]])

    def _read_one(self, model: str, record_id: int, fields: tuple[str, ...]) -> dict[str, Any]:
        records = self.rpc.call(f"model.{model}.read", [record_id], list(fields))
        if not records:
            raise PermanentError(f"{model} {record_id} does not exist in Tryton", system=SYSTEM)
        return records[0]


def _invoice_of(task: dict[str, Any]) -> int | None:
    line = task.get("invoice_line.")
    return line["invoice"] if line else None
