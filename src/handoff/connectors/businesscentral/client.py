"""BusinessCentralConnector: handoff's ErpConnector, BillingConnector and ErpSnapshotSource
over Business Central's standard API v2.0 (`…/v2.0/<tenant>/<environment>/api/v2.0`).

The API has no external-id fields and no upsert, so every write looks before it writes, by the
key handoff keeps in a field the API filters on (mapping.py says which and how):

    customer   number (No.)                 `customers?$filter=number eq 'HO-C-…'`
    project    number (No.)                 `projects?$filter=number eq 'HO-P-…'`
    invoice    externalDocumentNumber       `salesInvoices?$filter=externalDocumentNumber eq 'HO-I-…'`
    credit     externalDocumentNumber       `salesCreditMemos?$filter=externalDocumentNumber eq 'HO-CN-…'`

A customer or project is created once: No. is BC's primary key, so a create racing another
(or repeated after a lost answer) meets `Internal_EntityWithSameKeyExists` and the record is
read again. An update is a PATCH with the `If-Match` ETag just read; when another user changed
the record meanwhile (`Request_EntityChanged`) it is read and tried again, up to
`update_attempts` times. A document is found or created as a draft, given its one line unless
it has it, and posted with the bound action `Microsoft.NAV.post` unless the billing policy
keeps drafts (`request.post` False): each step repeated after a lost answer finds what the
first one did, and a posted document is never written again (docs/decisions/0005). External
Document No. is not unique in BC, so two calls for one document at the same moment could make
two drafts; handoff's engine works one deal at a time.

Lists (reconciliation) are read with `Prefer: odata.maxpagesize` and `@odata.nextLink`, which is
followed only on the configured API root: the token is never sent anywhere else. The HTTP
client is handoff's `KeepAliveClient`, so every call carries `traceparent` and X-Correlation-Id.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any
from urllib.parse import quote, urlencode

from handoff.connectors import exact_json
from handoff.connectors.budget import paced, paced_request
from handoff.connectors.businesscentral.errors import (
    SYSTEM,
    from_response,
    is_duplicate_key,
    is_stale_etag,
    read_error,
    translate,
)
from handoff.connectors.businesscentral.mapping import (
    CREDIT_MEMOS,
    INVOICES,
    DocumentKind,
    changed_fields,
    customer_body,
    document_body,
    document_figures_from,
    document_key,
    document_kind,
    entity_number,
    invoice_from,
    line_body,
    odata_string,
    project_body,
    project_figures_from,
)
from handoff.connectors.businesscentral.settings import BusinessCentralSettings
from handoff.connectors.keepalive import KeepAliveClient, Reply
from handoff.connectors.ports import DocumentFigures, ProjectFigures, RateBudget, UpsertResult
from handoff.domain import Customer, Invoice, InvoiceRequest, Project
from handoff.domain.ids import PROJECT_PREFIX
from handoff.errors import PermanentError, TransientError

__all__ = ["BusinessCentralConnector", "BusinessCentralSettings"]

CUSTOMERS, PROJECTS = "customers", "projects"
POST_ACTION = "Microsoft.NAV.post"
DRAFT = "Draft"


class BusinessCentralConnector:
    """Keep-alive connections shared by the worker threads; safe to share."""

    system = SYSTEM
    budget = RateBudget(requests=6000, window_seconds=300.0, concurrency=5,
                        source="Business Central: 6,000 OData requests per 5 minutes per user "
                               "(600/min production in the 2020 limits), 5 processed at once")

    def __init__(self, settings: BusinessCentralSettings) -> None:
        self.settings = settings
        self._company = settings.company_path
        self._read_headers = {"Authorization": f"Bearer {settings.token}",
                              "Accept": "application/json", "Accept-Encoding": "gzip"}
        self._write_headers = self._read_headers | {"Content-Type": "application/json"}
        # No retries (handoff's engine owns them) and no redirects (answered as errors, never
        # followed with the token).
        self._http = KeepAliveClient(settings.base_url, timeout=settings.timeout,
                                     max_idle=settings.max_connections)
        self._limiter = paced(type(self).budget, settings.budget, SYSTEM)  # learns from 429s too
        self.budget = self._limiter.budget

    # --- ErpConnector ---------------------------------------------------------------------

    def upsert_customer(self, external_id: str, customer: Customer) -> UpsertResult:
        return self._upsert(CUSTOMERS, customer_body(external_id, customer, self.settings))

    def upsert_project(self, project: Project, customer_target_id: str) -> UpsertResult:
        """API v2.0 projects have no customer field: `customer_target_id` cannot be written
        (the invoices name the customer)."""
        return self._upsert(PROJECTS, project_body(project, self.settings))

    def get_customer(self, external_id: str) -> dict[str, Any] | None:
        return self._find(CUSTOMERS, "number", entity_number(external_id))

    def get_project(self, external_id: str) -> dict[str, Any] | None:
        return self._find(PROJECTS, "number", entity_number(external_id))

    # --- BillingConnector -----------------------------------------------------------------

    def issue_invoice(self, request: InvoiceRequest, project_target_id: str) -> Invoice:
        """Find the document by its key or draft it; give a draft its line unless it has it;
        post it unless policy keeps drafts. Only the steps still missing are made."""
        kind, line = document_kind(request), line_body(request, self.settings)
        key = document_key(request.external_id)
        document = self._find(kind.entity_set, "externalDocumentNumber", key, expand=kind.lines)
        if document is None:
            document = self._create_document(kind, request, project_target_id)
        path = f"{kind.entity_set}({document['id']})"
        written = False
        if document["status"] == DRAFT and not document.get(kind.lines):
            self._send("POST", f"{path}/{kind.lines}", line)
            written = True
        if request.post and document["status"] == DRAFT:
            # BC checks an action's ETag only when one is sent: none is, the draft may have
            # just gained its line.
            self._request("POST", f"{self._company}/{path}/{POST_ACTION}", body=b"")
            written = True
        if written:
            document = self._read(self._request("GET", f"{self._company}/{path}"))
        return _with_external_id(invoice_from(document, kind), request.external_id)

    def read_invoice(self, target_id: str) -> Invoice:
        """Sales invoices and credit memos are separate entity sets; the id is one of them."""
        for kind in (INVOICES, CREDIT_MEMOS):
            response = self._request("GET", f"{self._company}/{kind.entity_set}({_guid(target_id)})",
                                     missing_ok=True)
            if response.status != 404:
                return invoice_from(self._read(response), kind)
        raise PermanentError(f"Business Central has no sales invoice or credit memo {target_id}",
                             system=SYSTEM)

    # --- ErpSnapshotSource ----------------------------------------------------------------

    def project_figures(self) -> Iterator[ProjectFigures]:
        """Every project whose No. is a handoff key, page by page."""
        for record in self._list(PROJECTS, f"startswith(number,{odata_string(PROJECT_PREFIX)})"):
            yield project_figures_from(record)

    def document_figures(self) -> Iterator[DocumentFigures]:
        """Every sales invoice and credit memo handoff made (its External Document No. is a
        handoff key), page by page, whatever its status."""
        for kind in (INVOICES, CREDIT_MEMOS):
            condition = f"startswith(externalDocumentNumber,{odata_string(kind.key_prefix)})"
            for record in self._list(kind.entity_set, condition):
                yield document_figures_from(record, kind)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> BusinessCentralConnector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the steps --------------------------------------------------------------------------

    def _upsert(self, entity_set: str, body: dict[str, Any]) -> UpsertResult:
        number = body["number"]
        for _ in range(self.settings.update_attempts):
            record = self._find(entity_set, "number", number)
            if record is None:
                created = self._create(entity_set, body)
                if created is not None:
                    return UpsertResult(str(created["id"]), created=True)
                continue  # made meanwhile by another call: update that one
            changes = changed_fields(record, body)
            if not changes or self._update(entity_set, record, changes):
                return UpsertResult(str(record["id"]), created=False)
        raise TransientError(f"{entity_set} {number} kept changing while handoff updated it",
                             system=SYSTEM)

    def _create(self, entity_set: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """The new record; None when one with the same key exists already."""
        response = self._send("POST", entity_set, body, conflict_ok=True)
        return None if response.status >= 300 else self._read(response)

    def _update(self, entity_set: str, record: dict[str, Any], changes: dict[str, Any]) -> bool:
        """False when another user changed the record since it was read (stale ETag)."""
        response = self._send("PATCH", f"{entity_set}({record['id']})", changes,
                              if_match=record["@odata.etag"], conflict_ok=True)
        return response.status < 300

    def _create_document(self, kind: DocumentKind, request: InvoiceRequest,
                         project_target_id: str) -> dict[str, Any]:
        if not request.customer_target_id:
            raise PermanentError(
                f"cannot invoice {request.external_id}: Business Central's API v2.0 projects do "
                "not name their customer, so the customer's id (customer_target_id) must be known",
                system=SYSTEM)
        project = self._read(self._request("GET", f"{self._company}/{PROJECTS}({_guid(project_target_id)})"))
        body = document_body(request, request.customer_target_id, str(project["number"]))
        return self._read(self._send("POST", kind.entity_set, body)) | {kind.lines: []}

    def _find(self, entity_set: str, field: str, value: str,
              expand: str | None = None) -> dict[str, Any] | None:
        """The first record whose `field` equals `value`, or None."""
        query = {"$filter": f"{field} eq {odata_string(value)}"} | ({"$expand": expand} if expand else {})
        found = self._read(self._request("GET", f"{self._company}/{entity_set}?{_query(query)}"))
        return found["value"][0] if found["value"] else None

    def _list(self, entity_set: str, condition: str) -> Iterator[dict[str, Any]]:
        """Every record matching `condition`, following `@odata.nextLink` page by page."""
        path: str | None = f"{self._company}/{entity_set}?{_query({'$filter': condition})}"
        prefer = f"odata.maxpagesize={self.settings.page_size}"
        while path is not None:
            page = self._read(self._request("GET", path, prefer=prefer))
            yield from page["value"]
            next_link = page.get("@odata.nextLink")
            path = self._relative(next_link) if next_link else None

    def _relative(self, next_link: str) -> str:
        root = self.settings.base_url + "/"
        if not next_link.startswith(root):
            raise PermanentError(f"Business Central sent a next page outside {root} ({next_link}); "
                                 "it is not followed with the token", system=SYSTEM)
        return next_link[len(root):]

    def _send(self, method: str, path: str, body: dict[str, Any], *, if_match: str | None = None,
              conflict_ok: bool = False) -> Reply:
        return self._request(method, f"{self._company}/{path}", body=exact_json.dumps(body),
                             if_match=if_match, conflict_ok=conflict_ok)

    def _request(
        self, method: str, path: str, *, body: bytes | None = None, missing_ok: bool = False,
        conflict_ok: bool = False, if_match: str | None = None, prefer: str | None = None,
    ) -> Reply:
        """One call, its body read in full; every failure leaves as a handoff error.
        `missing_ok`: a 404 is returned as an answer. `conflict_ok`: a stale ETag or a key that
        exists already is returned as an answer."""
        headers = self._read_headers if body is None else self._write_headers
        extra = {"If-Match": if_match, "Prefer": prefer}
        headers = headers | {name: value for name, value in extra.items() if value}

        def answer(response: Reply) -> Reply:
            status = response.status
            if status < 300 or (missing_ok and status == 404):
                return response
            if conflict_ok and status in (400, 409, 412):
                error = read_error(status, response.data)
                if is_stale_etag(status, error) or is_duplicate_key(status, error):
                    return response
            raise from_response(status, response.headers, response.data)

        return paced_request(self._http, self._limiter, translate, answer, method, path, body=body,
                             headers=headers)

    @staticmethod
    def _read(response: Reply) -> dict[str, Any]:
        return exact_json.loads(response.data)


def _query(params: dict[str, str]) -> str:
    """OData system query options, percent-encoded ($ and the filter's quotes kept readable)."""
    return urlencode(params, quote_via=quote, safe="$,'()")


def _guid(target_id: str) -> str:
    """An entity key as the URL takes it; anything else would change the path."""
    if not target_id or not all(c.isalnum() or c == "-" for c in target_id):
        raise PermanentError(f"{target_id!r} is not a Business Central id", system=SYSTEM)
    return target_id


def _with_external_id(invoice: Invoice, external_id: str) -> Invoice:
    return replace(invoice, external_id=external_id)
