"""NetSuiteConnector: handoff's ErpConnector and BillingConnector over NetSuite's REST
record service.

Writes are `PUT /record/v1/<type>/eid:<externalId>` upserts: one call, and a call repeated
after a lost response leaves exactly one record. The internal id comes from `Location`;
NetSuite does not document `Location` on PUT, so when it is absent the record is read back
by external id. An invoice (or credit memo) is looked up by external id first and written
only when absent: a posted document is never written again (docs/decisions/0005).

The HTTP client is handoff's `KeepAliveClient` on plain sockets: a worker is bound by client
CPU, and it needs about 40 % of `http.client`'s CPU per call (a fifth of urllib3's).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

from handoff.connectors import exact_json
from handoff.connectors.budget import paced_request
from handoff.connectors.keepalive import KeepAliveClient, Reply
from handoff.connectors.netsuite.errors import SYSTEM, from_response, is_missing_record, translate
from handoff.connectors.netsuite.mapping import (
    CREDIT_MEMO,
    DOCUMENT_QUERY,
    INVOICE,
    JOB_IDS_QUERY,
    PROJECT_QUERY,
    checked_external_id,
    customer_body,
    document_external_id,
    document_figures_from,
    document_type,
    invoice_body,
    invoice_from,
    project_body,
    project_figures_from,
)
from handoff.connectors.netsuite.settings import NetSuiteSettings
from handoff.connectors.pacing_adaptive import AdaptiveLimiter
from handoff.connectors.ports import DocumentFigures, ProjectFigures, RateBudget, UpsertResult
from handoff.domain import Customer, Invoice, InvoiceRequest, Project
from handoff.domain.ids import deal_of_project
from handoff.errors import PermanentError, TransientError

__all__ = ["NetSuiteConnector", "NetSuiteSettings"]


class NetSuiteConnector:
    """Keep-alive connections shared by the worker threads; safe to share."""

    system = SYSTEM
    budget = RateBudget(requests=None, window_seconds=None, concurrency=15,
                        source="NetSuite: concurrent requests per account by service tier (5, 15 or "
                               "65 with SuiteCloud Plus licences); 15 is the standard tier")

    def __init__(self, settings: NetSuiteSettings) -> None:
        self.settings = settings
        self._read_headers = {"Authorization": f"Bearer {settings.token}",
                              "Accept": "application/json", "Accept-Encoding": "gzip"}
        self._write_headers = self._read_headers | {"Content-Type": "application/json"}
        # No retries (handoff's engine owns them) and no redirects (answered as errors, never
        # followed with the token). Threads beyond max_connections open a short-lived
        # connection of their own rather than wait.
        self._http = KeepAliveClient(settings.base_url, timeout=settings.timeout,
                                     max_idle=settings.max_connections)
        self.budget = settings.budget.applied_to(type(self).budget, SYSTEM)
        self._limiter = AdaptiveLimiter(self.budget, system=SYSTEM)  # calls in flight, learnt from 429s too

    def upsert_customer(self, external_id: str, customer: Customer) -> UpsertResult:
        body = customer_body(external_id, customer, self.settings)
        return self._upsert("customer", external_id, body)

    def upsert_project(self, project: Project, customer_target_id: str) -> UpsertResult:
        body = project_body(project, customer_target_id, self.settings)
        return self._upsert("job", project.external_id, body)

    def issue_invoice(self, request: InvoiceRequest, project_target_id: str) -> Invoice:
        """NetSuite posts a document when it saves it, so an absent one is written once,
        under its customer and project, and read back for its number and totals."""
        record_type, external_id = document_type(request), document_external_id(request.external_id)
        record = self._find(record_type, external_id)
        if record is None:
            customer = request.customer_target_id or self._customer_of(project_target_id)
            body = invoice_body(request, customer, project_target_id, self.settings)
            self._put(record_type, external_id, body)
            record = self._found(record_type, external_id)
        return invoice_from(record, record_type, self.settings)

    def read_invoice(self, target_id: str) -> Invoice:
        """Invoices and credit memos share NetSuite's transaction ids: the id is one of them."""
        for record_type in (INVOICE, CREDIT_MEMO):
            response = self._request("GET", f"record/v1/{record_type}/{target_id}",
                                     missing_ok=True)
            if response.status != 404:
                return invoice_from(self._read(response), record_type, self.settings)
        raise PermanentError(f"NetSuite has no invoice or credit memo {target_id}", system=SYSTEM)

    def get_customer(self, external_id: str) -> dict[str, Any] | None:
        return self._find("customer", external_id)

    def get_project(self, external_id: str) -> dict[str, Any] | None:
        return self._find("job", external_id)

    def _suiteql(self, query: str) -> Iterator[dict[str, Any]]:
        """Every row of a SuiteQL query, page by page (offset += count while hasMore)."""
        offset, body = 0, exact_json.dumps({"q": query})
        while True:
            path = f"query/v1/suiteql?{urlencode({'limit': self.settings.page_size, 'offset': offset})}"
            page = self._read(self._request("POST", path, body=body, prefer="transient"))
            yield from page["items"]
            if not page["hasMore"]:
                return
            offset += page["count"]

    def list_ids(self, record_type: str) -> Iterator[str]:
        """Every internal id of a record type, page by page (offset += count while hasMore)."""
        offset = 0
        while True:
            query = urlencode({"limit": self.settings.page_size, "offset": offset})
            page = self._read(self._request("GET", f"record/v1/{record_type}?{query}"))
            yield from (item["id"] for item in page["items"])
            if not page["hasMore"]:
                return
            offset += page["count"]

    # --- reconciliation -------------------------------------------------------------------

    def project_figures(self) -> Iterator[ProjectFigures]:
        """Every handoff project (job) with its price, by one paged SuiteQL query."""
        for row in self._suiteql(PROJECT_QUERY):
            yield project_figures_from(row, self.settings)

    def document_figures(self) -> Iterator[DocumentFigures]:
        """Every invoice and credit memo of a handoff project, whoever made it (one made by
        hand counts too: it is billed all the same)."""
        deals = {row["id"]: deal_of_project(row["externalid"]) for row in self._suiteql(JOB_IDS_QUERY)}
        for row in self._suiteql(DOCUMENT_QUERY):
            if row.get("job") in deals:
                yield document_figures_from(row, deals[row["job"]], self.settings)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> NetSuiteConnector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _upsert(self, record_type: str, external_id: str, body: dict[str, Any]) -> UpsertResult:
        location = self._put(record_type, external_id, body).headers.get("Location", "")
        target_id = _id_from_location(location) or str(self._found(record_type, external_id)["id"])
        # NetSuite answers 204 whether the upsert created or updated: `created` stays unknown.
        return UpsertResult(target_id)

    def _put(self, record_type: str, external_id: str, body: dict[str, Any]) -> Reply:
        return self._request("PUT", _by_external_id(record_type, external_id),
                             body=exact_json.dumps(body))

    def _customer_of(self, project_target_id: str) -> str:
        """The customer a project (job) belongs to: the invoice's entity."""
        job = self._read(self._request("GET", f"record/v1/job/{project_target_id}"))
        return str(job["parent"]["id"])

    def _found(self, record_type: str, external_id: str) -> dict[str, Any]:
        """A record just written: absent means NetSuite has not made it readable yet."""
        record = self._find(record_type, external_id)
        if record is None:
            raise TransientError(f"{record_type} {external_id} accepted but not readable yet",
                                 system=SYSTEM)
        return record

    def _find(self, record_type: str, external_id: str) -> dict[str, Any] | None:
        response = self._request("GET", _by_external_id(record_type, external_id),
                                 missing_ok=True)
        return None if response.status == 404 else self._read(response)

    def _request(
        self, method: str, path: str, *, body: bytes | None = None, missing_ok: bool = False,
        prefer: str | None = None,
    ) -> Reply:
        """One call, its body read in full; every failure leaves as a handoff error.
        `missing_ok`: a 404 NONEXISTENT_ID is returned as an answer instead of raised."""
        headers = self._read_headers if body is None else self._write_headers
        if prefer:
            headers = headers | {"Prefer": prefer}

        def answer(response: Reply) -> Reply:
            status = response.status
            if status >= 300 and not (missing_ok and is_missing_record(status, response.data)):
                raise from_response(status, response.headers, response.data)
            return response

        return paced_request(self._http, self._limiter, translate, answer, method, path, body=body,
                             headers=headers)

    @staticmethod
    def _read(response: Reply) -> dict[str, Any]:
        return exact_json.loads(response.data)


def _by_external_id(record_type: str, external_id: str) -> str:
    return f"record/v1/{record_type}/eid:{checked_external_id(external_id)}"


def _id_from_location(location: str) -> str | None:
    """The internal id ending `Location` (absolute or, as some tutorials show, a bare path)."""
    internal_id = location.rstrip("/").rsplit("/", 1)[-1]
    return internal_id if internal_id.isdigit() else None
