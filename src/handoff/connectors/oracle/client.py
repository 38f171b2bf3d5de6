"""OracleConnector: handoff's ErpConnector, BillingConnector and ErpSnapshotSource over Oracle
Fusion Cloud's REST APIs (ERP and Project Management under /fscmRestApi, accounts under
/crmRestApi).

Where handoff's external ids are kept, and how records are found by them:

    customer   accounts (an organization party): SourceSystem = `settings.source_system`,
               SourceSystemReferenceValue = HO-C-…, Oracle's own external-reference pair.
               target_id = the account's PartyNumber.
    project    projects: SourceApplicationCode = `settings.source_system`,
               SourceProjectReference = HO-P-…, Oracle's own pair. target_id = ProjectId.
    invoice    receivablesInvoices / receivablesCreditMemos have no external-id field:
               handoff's document id (HO-I-… / HO-CN-…) is kept in CrossReference, which `q`
               filters on. target_id = CustomerTransactionId.

All three are found with `q` (expression syntax, REST framework version 2+). An upsert looks
the record up and PATCHes it (If-Match: its changeIndicator), or POSTs it with
`Upsert-Mode: true`; a POST whose answer was lost is found by the retry's look-up, so a call
repeated after a lost response leaves one record. ⚠ Whether Upsert-Mode matches on the
source-system reference is unconfirmed: handoff never relies on it alone. A document is looked
up first and created only when absent; a posted document is never written again
(docs/decisions/0005), only completed when handoff asked for it posted.

⚠ Oracle's REST APIs create the party only, not a Receivables customer account and bill-to
site: an invoice bills BillToCustomerNumber = the party's number, so the pod needs a customer
account numbered like its party (docs/connectors/oracle.md, set-up).

The HTTP client is handoff's `KeepAliveClient`, like NetSuite's: every call carries
`traceparent` and, within a deal's lifecycle, `X-Correlation-Id`.
"""

from __future__ import annotations

import base64
import heapq
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from handoff.connectors import exact_json
from handoff.connectors.budget import paced, paced_request
from handoff.connectors.keepalive import KeepAliveClient, Reply
from handoff.connectors.oracle.errors import SYSTEM, from_response, translate
from handoff.connectors.oracle.mapping import (
    ACCOUNTS,
    COMPLETE,
    CREDIT_MEMOS,
    DOCUMENT_FIELDS,
    INCOMPLETE,
    INVOICES,
    LINES,
    PILLARS,
    PROJECT_FIELDS,
    PROJECTS,
    customer_body,
    customer_changes,
    customer_query,
    deal_of_document,
    document_body,
    document_figures_from,
    document_query,
    document_resource,
    handoff_documents_query,
    handoff_projects_query,
    invoice_from,
    lines_of,
    project_body,
    project_changes,
    project_figures_from,
    project_query,
)
from handoff.connectors.oracle.settings import OracleSettings
from handoff.connectors.ports import DocumentFigures, ProjectFigures, RateBudget, UpsertResult
from handoff.domain import Customer, Invoice, InvoiceRequest, Project
from handoff.domain.ids import deal_of_project
from handoff.errors import BusinessRuleError, DataError, PermanentError, TransientError

__all__ = ["OracleConnector", "OracleSettings"]

ITEM_MEDIA_TYPE = "application/vnd.oracle.adf.resourceitem+json"


class OracleConnector:
    """Keep-alive connections shared by the worker threads; safe to share."""

    system = SYSTEM
    budget = RateBudget(requests=None, window_seconds=None, concurrency=8,
                        source="Oracle publishes no REST rate limits for Fusion Cloud (⚠ unconfirmed); "
                               "8 calls in flight is handoff's own cap for a shared pod")

    def __init__(self, settings: OracleSettings) -> None:
        self.settings = settings
        if settings.token:
            authorization = f"Bearer {settings.token}"
        else:
            pair = f"{settings.user}:{settings.password}".encode()
            authorization = f"Basic {base64.b64encode(pair).decode('ascii')}"
        self._read_headers = {"Authorization": authorization, "Accept": "application/json",
                              "REST-Framework-Version": str(settings.framework_version)}
        self._write_headers = self._read_headers | {"Content-Type": ITEM_MEDIA_TYPE}
        # No retries (handoff's engine owns them) and no redirects (answered as errors, never
        # followed with the credentials).
        self._http = KeepAliveClient(settings.base_url, timeout=settings.timeout,
                                     max_idle=settings.max_connections)
        self._limiter = paced(type(self).budget, settings.budget, SYSTEM)  # learns from 429s too
        self.budget = self._limiter.budget

    # --- ErpConnector -----------------------------------------------------------------------

    def upsert_customer(self, external_id: str, customer: Customer) -> UpsertResult:
        body = customer_body(external_id, customer, self.settings)
        found = self._find_one(ACCOUNTS, customer_query(external_id, self.settings),
                               "PartyId,PartyNumber,SourceSystemReferenceValue")
        if found is not None:
            record = self._patch(ACCOUNTS, found["PartyNumber"], customer_changes(customer),
                                 _change_indicator(found))
            return UpsertResult(str(record["PartyNumber"]), created=False)
        reply, record = self._create(ACCOUNTS, body)
        return UpsertResult(str(record["PartyNumber"]), created=reply.status == 201)

    def upsert_project(self, project: Project, customer_target_id: str) -> UpsertResult:
        body = project_body(project, customer_target_id, self.settings)
        found = self._find_one(PROJECTS, project_query(project.external_id, self.settings),
                               "ProjectId,ProjectCurrencyCode,SourceProjectReference")
        if found is not None:
            if found.get("ProjectCurrencyCode") not in (None, project.value.currency):
                raise DataError(f"Oracle project {found['ProjectId']} is in "
                                f"{found['ProjectCurrencyCode']}; Oracle cannot change a project's "
                                f"currency to {project.value.currency}", system=SYSTEM, field="currency")
            record = self._patch(PROJECTS, found["ProjectId"], project_changes(project, self.settings),
                                 _change_indicator(found))
            return UpsertResult(str(record["ProjectId"]), created=False)
        reply, record = self._create(PROJECTS, body)
        return UpsertResult(str(record["ProjectId"]), created=reply.status == 201)

    # --- BillingConnector -------------------------------------------------------------------

    def issue_invoice(self, request: InvoiceRequest, project_target_id: str) -> Invoice:
        """An absent document is created once, billed to the project's customer in the
        project's business unit; an invoice asked for posted is then Complete."""
        resource = document_resource(request)
        record = self._find_document(resource, document_query(request.external_id))
        if record is None:
            project = self._project(project_target_id)
            party = request.customer_target_id or _customer_of(project)
            business_unit = str(project.get("BusinessUnitName") or "")  # "": Oracle refuses, naming it
            body = document_body(request, party, business_unit, self.settings)
            _, record = self._create(resource, body)
            if lines_of(record, resource) is None:
                record = self._document(resource, str(record["CustomerTransactionId"]))
        if resource == INVOICES and request.post and record.get("InvoiceStatus") == INCOMPLETE:
            record = self._complete(record)
        return invoice_from(record, resource)

    def read_invoice(self, target_id: str) -> Invoice:
        """Invoices and credit memos share Oracle's CustomerTransactionId: the id is one of them."""
        if target_id.isdigit():
            for resource in (INVOICES, CREDIT_MEMOS):
                reply = self._request("GET", self._item(resource, target_id, expand=LINES[resource]),
                                      missing_ok=True)
                if reply.status != 404:
                    return invoice_from(self._read(reply), resource)
        raise PermanentError(f"Oracle has no receivables invoice or credit memo {target_id}",
                             system=SYSTEM)

    def get_customer(self, external_id: str) -> dict[str, Any] | None:
        return self._find_one(ACCOUNTS, customer_query(external_id, self.settings))

    def get_project(self, external_id: str) -> dict[str, Any] | None:
        return self._find_one(PROJECTS, project_query(external_id, self.settings), expand="ProjectCustomers")

    # --- reconciliation (ErpSnapshotSource) -------------------------------------------------

    def project_figures(self) -> Iterator[ProjectFigures]:
        """Every project carrying a handoff id, by one paged query."""
        for row in self._rows(PROJECTS, handoff_projects_query(self.settings), PROJECT_FIELDS,
                              "ProjectId"):
            yield project_figures_from(row)

    def document_figures(self) -> Iterator[DocumentFigures]:
        """Every invoice and credit memo whose CrossReference names a handoff deal that has a
        project, in id order. Oracle's receivables documents carry no project: one made by
        hand without handoff's reference is not counted (⚠)."""
        deals = {deal_of_project(row["SourceProjectReference"])
                 for row in self._rows(PROJECTS, handoff_projects_query(self.settings),
                                       "ProjectId,SourceProjectReference", "ProjectId")}
        streams = [self._documents_of(resource, deals) for resource in (INVOICES, CREDIT_MEMOS)]
        yield from heapq.merge(*streams, key=lambda figures: int(figures.document_id))

    def _documents_of(self, resource: str, deals: set[str]) -> Iterator[DocumentFigures]:
        for row in self._rows(resource, handoff_documents_query(resource), DOCUMENT_FIELDS[resource],
                              "CustomerTransactionId"):
            deal = deal_of_document(str(row.get("CrossReference") or ""), resource, deals)
            if deal is not None:
                yield document_figures_from(row, resource, deal)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> OracleConnector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- calls ------------------------------------------------------------------------------

    def _rows(self, resource: str, query: str, fields: str, order: str) -> Iterator[dict[str, Any]]:
        """Every row of a query, page by page (offset += count while hasMore)."""
        offset = 0
        while True:
            params = {"q": query, "fields": fields, "onlyData": "true", "orderBy": f"{order}:asc",
                      "limit": self.settings.page_size, "offset": offset}
            page = self._read(self._request("GET", self._collection(resource, params)))
            yield from page["items"]
            if not page.get("hasMore"):
                return
            offset += page["count"]

    def _find_one(self, resource: str, query: str, fields: str | None = None,
                  expand: str | None = None) -> dict[str, Any] | None:
        """The one record a key query finds (with its links: the changeIndicator), or None."""
        params = {"q": query, "limit": 2} | ({"fields": fields} if fields else {}) | (
            {"expand": expand} if expand else {})
        items = self._read(self._request("GET", self._collection(resource, params)))["items"]
        if len(items) > 1:
            raise BusinessRuleError(f"more than one Oracle {resource} record matches {query}: "
                                    "merge them, then handoff can go on", system=SYSTEM)
        return items[0] if items else None

    def _find_document(self, resource: str, query: str) -> dict[str, Any] | None:
        params = {"q": query, "limit": 2, "expand": LINES[resource], "onlyData": "true"}
        items = self._read(self._request("GET", self._collection(resource, params)))["items"]
        if len(items) > 1:
            ids = ", ".join(str(item["CustomerTransactionId"]) for item in items)
            raise BusinessRuleError(f"Oracle documents {ids} both carry {query}: a person must "
                                    "void one", system=SYSTEM)
        return items[0] if items else None

    def _document(self, resource: str, target_id: str) -> dict[str, Any]:
        return self._read(self._request("GET", self._item(resource, target_id, expand=LINES[resource])))

    def _project(self, project_target_id: str) -> dict[str, Any]:
        if not project_target_id.isdigit():
            raise PermanentError(f"Oracle has no project {project_target_id!r} (ids are numbers)",
                                 system=SYSTEM)
        return self._read(self._request("GET", self._item(PROJECTS, project_target_id,
                                                          expand="ProjectCustomers")))

    def _create(self, resource: str, body: dict[str, Any]) -> tuple[Reply, dict[str, Any]]:
        """POST with Upsert-Mode: 201 created (⚠ 200 when an upsert updated)."""
        reply = self._request("POST", self._collection(resource, {}), body=exact_json.dumps(body),
                              extra={"Upsert-Mode": "true"})
        if reply.data:
            return reply, self._read(reply)
        # A 204 (a proxy that asked for no body): read what `Location` names.
        location = urlsplit(reply.headers.get("Location", ""))
        if not location.path:
            raise TransientError(f"{resource} created without a body or a Location", system=SYSTEM)
        return reply, self._read(self._request("GET", location.path.lstrip("/")))

    def _patch(self, resource: str, key: Any, body: dict[str, Any], etag: str | None) -> dict[str, Any]:
        extra = {"If-Match": etag} if etag else {}
        return self._read(self._request("PATCH", self._item(resource, str(key)),
                                        body=exact_json.dumps(body), extra=extra))

    def _complete(self, record: dict[str, Any]) -> dict[str, Any]:
        """InvoiceStatus Complete; the answer has no lines, the record read before has."""
        patched = self._patch(INVOICES, record["CustomerTransactionId"],
                              {"InvoiceStatus": COMPLETE}, None)
        return record | {k: v for k, v in patched.items() if k not in (LINES[INVOICES], "links")}

    def _collection(self, resource: str, params: Mapping[str, Any]) -> str:
        path = f"{PILLARS[resource]}/resources/{self.settings.version}/{resource}"
        return f"{path}?{urlencode(params, quote_via=quote)}" if params else path

    def _item(self, resource: str, key: str, expand: str | None = None) -> str:
        path = self._collection(resource, {}) + "/" + quote(key, safe="")
        return f"{path}?{urlencode({'expand': expand, 'onlyData': 'true'})}" if expand else path

    def _request(self, method: str, path: str, *, body: bytes | None = None,
                 missing_ok: bool = False, extra: Mapping[str, str] | None = None) -> Reply:
        """One call, its body read in full; every failure leaves as a handoff error.
        `missing_ok`: a 404 is returned as an answer instead of raised."""
        headers = self._read_headers if body is None else self._write_headers
        if extra:
            headers = headers | dict(extra)

        def answer(reply: Reply) -> Reply:
            if reply.status >= 300 and not (missing_ok and reply.status == 404):
                raise from_response(reply.status, reply.headers, reply.data)
            return reply

        return paced_request(self._http, self._limiter, translate, answer, method, path, body=body,
                             headers=headers)

    @staticmethod
    def _read(reply: Reply) -> dict[str, Any]:
        try:
            return exact_json.loads(reply.data)
        except ValueError as exc:
            raise TransientError(f"an answer that is not JSON ({reply.status}): "
                                 f"{reply.data[:200]!r}", system=SYSTEM) from exc


def _change_indicator(record: Mapping[str, Any]) -> str | None:
    """The ETag a collection item carries in its self link."""
    for link in record.get("links") or ():
        if link.get("rel") == "self":
            return (link.get("properties") or {}).get("changeIndicator")
    return None


def _customer_of(project: Mapping[str, Any]) -> str:
    customers = project.get("ProjectCustomers")
    if isinstance(customers, Mapping):
        customers = customers.get("items")
    numbers = [c["PartyNumber"] for c in customers or () if c.get("PartyNumber")]
    if not numbers:
        raise BusinessRuleError(f"Oracle project {project.get('ProjectId')} has no customer to "
                                "bill: add one to the project", system=SYSTEM)
    return str(numbers[0])
