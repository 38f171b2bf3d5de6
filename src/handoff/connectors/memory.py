"""In-memory CRM and ERP for unit and flow tests. They keep the same promises as the real
connectors (idempotent upsert by external id) and pass the same contract tests; a script
of errors lets a test make any call fail the way a real system would."""

from __future__ import annotations

import dataclasses
import itertools
import threading
from collections import deque
from collections.abc import Iterable, Sequence
from datetime import timedelta

from handoff.connectors.ports import CrmStatusUpdate, UpsertResult
from handoff.domain import Customer, Invoice, InvoiceRequest, InvoiceStatus, Money, Project
from handoff.errors import HandoffError


class ScriptedFaults:
    """Errors to raise, in order, before calls succeed; `after_commit` ones raise after
    the change is made (a lost response)."""

    def __init__(self) -> None:
        self._before: deque[HandoffError] = deque()
        self._after: deque[HandoffError] = deque()
        self._lock = threading.Lock()

    def fail_next(self, errors: Iterable[HandoffError], *, after_commit: bool = False) -> None:
        with self._lock:
            (self._after if after_commit else self._before).extend(errors)

    def before(self) -> None:
        with self._lock:
            error = self._before.popleft() if self._before else None
        if error:
            raise error

    def after(self) -> None:
        with self._lock:
            error = self._after.popleft() if self._after else None
        if error:
            raise error


class MemoryErp:
    system = "memory-erp"

    def __init__(self) -> None:
        self.customers: dict[str, dict[str, object]] = {}
        self.projects: dict[str, dict[str, object]] = {}
        self.invoices: dict[str, Invoice] = {}  # by external id
        self.faults = ScriptedFaults()
        self.calls = 0
        self._ids = itertools.count(1000)
        self._lock = threading.Lock()

    def upsert_customer(self, external_id: str, customer: Customer) -> UpsertResult:
        return self._upsert(self.customers, external_id, {"name": customer.name,
                                                          "currency": customer.currency})

    def upsert_project(self, project: Project, customer_target_id: str) -> UpsertResult:
        return self._upsert(self.projects, project.external_id, {
            "name": project.name, "parent": customer_target_id, "value": project.value})

    def issue_invoice(self, request: InvoiceRequest, project_target_id: str) -> Invoice:
        """Posted at once, untaxed, due in 30 days; numbered INV/0001, INV/0002, … in order of
        creation (credit notes too, with negative totals)."""
        self.faults.before()
        with self._lock:
            self.calls += 1
            if request.external_id not in self.invoices:
                amount = request.line.amount
                self.invoices[request.external_id] = Invoice(
                    request.external_id, str(next(self._ids)), f"INV/{len(self.invoices) + 1:04d}",
                    InvoiceStatus.POSTED if request.post else InvoiceStatus.DRAFT, amount,
                    Money.parse(0, amount.currency), amount, amount, request.invoice_date,
                    request.invoice_date + timedelta(days=30))
            invoice = self.invoices[request.external_id]
        self.faults.after()
        return invoice

    def read_invoice(self, target_id: str) -> Invoice:
        self.faults.before()
        return next(i for i in self.invoices.values() if i.target_id == target_id)

    def post(self, external_id: str) -> None:
        """Finance posts a draft (a test's doing, as in the ERP's UI)."""
        with self._lock:
            self.invoices[external_id] = dataclasses.replace(self.invoices[external_id],
                                                             status=InvoiceStatus.POSTED)

    def pay(self, external_id: str, amount: str) -> None:
        """The customer pays `amount` of the invoice (a test's doing, as in the ERP's UI)."""
        with self._lock:
            invoice = self.invoices[external_id]
            due = invoice.amount_due.amount - Money.parse(amount, invoice.total.currency).amount
            self.invoices[external_id] = dataclasses.replace(
                invoice, amount_due=Money(due, invoice.total.currency),
                status=InvoiceStatus.PAID if due == 0 else InvoiceStatus.POSTED)

    def _upsert(self, table: dict[str, dict[str, object]], external_id: str,
                fields: dict[str, object]) -> UpsertResult:
        self.faults.before()
        with self._lock:
            self.calls += 1
            created = external_id not in table
            record = table.setdefault(external_id, {"id": str(next(self._ids))})
            record.update(fields)
        self.faults.after()
        return UpsertResult(str(record["id"]), created)


class MemoryCrm:
    system = "memory-crm"

    def __init__(self) -> None:
        self.records: dict[str, CrmStatusUpdate] = {}
        self.rejects: dict[str, HandoffError] = {}
        self.faults = ScriptedFaults()
        self.calls = 0
        self._lock = threading.Lock()

    def write_back_many(self, updates: Sequence[CrmStatusUpdate]) -> list[HandoffError | None]:
        """One call for the batch; `rejects` refuses single records the way a CRM would."""
        self.faults.before()
        outcomes: list[HandoffError | None] = []
        with self._lock:
            self.calls += 1
            for update in updates:
                error = self.rejects.pop(update.opportunity_id, None)
                if error is None:
                    self.records[update.opportunity_id] = update
                outcomes.append(error)
        self.faults.after()
        return outcomes
