"""SapConnector: handoff's ErpConnector and ErpSnapshotSource over SAP S/4HANA's OData v2 APIs
(business partner, enterprise project, billing document, operational journal entry items).

Where handoff's keys live (SAP has no external-id field on these records), see mapping.py:

    customer   A_BusinessPartner.BusinessPartnerIDByExtSystem = HO-C-… (shortened past 20)
    project    A_EnterpriseProject.Project = HO-P-<deal>, upper case
    milestone  A_EnterpriseProjectElement.ProjectElement = HO-P-<deal>.<milestone>, upper case

Writes look first (`$filter` on the key), then create with one deep insert or update only what
differs, so a call repeated after a lost response finds what the first one made. A create SAP
refuses is looked up again (a racing create may have won); threads sharing the connector take
a lock per key. Updates carry the record's ETag in `If-Match`; on 412 (changed meanwhile) the
record is read again and the changes planned again. Several writes to one project (its fields,
new WBS elements, its status) go in one `$batch` change set: one call, all or nothing.

Every write carries the CSRF token fetched (`HEAD <service root>/` with `x-csrf-token: Fetch`)
for its service, with the session cookies that came with it; a 403 "CSRF token required" drops
the session, fetches a new token and sends the write once more.

Billing: S/4HANA makes billing documents in its own billing run (from the sales order's billing
plan), and `A_BillingDocument` is read-only over the API. handoff makes no invoice in SAP, so
this is no BillingConnector (no `issue_invoice`): it reads billing documents back
(`read_invoice`, `document_figures`), their payment state from the customer's open items.

The HTTP client is handoff's `KeepAliveClient`: every call carries `traceparent` and, within a
deal's lifecycle, X-Correlation-Id.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import urlsplit

from handoff.connectors.budget import paced
from handoff.connectors.keepalive import KeepAliveClient, Reply, TransportError
from handoff.connectors.ports import DocumentFigures, ProjectFigures, RateBudget, UpsertResult
from handoff.connectors.sap.errors import from_response, is_csrf_refusal, translate
from handoff.connectors.sap.mapping import (
    DOCUMENT_FIELDS,
    ELEMENT_FIELDS,
    OPEN_ITEM_FIELDS,
    PARTNER_FIELDS,
    PROJECT_FIELDS,
    deal_of_project_key,
    document_figures_from,
    element_bodies,
    element_changes,
    invoice_from,
    is_cancellation,
    partner_body,
    partner_changes,
    partner_key,
    project_changes,
    project_create_body,
    project_fields,
    project_figures_from,
    project_key,
    status_change,
)
from handoff.connectors.sap.odata import (
    BatchRequest,
    any_of,
    batch_body,
    guid_literal,
    literal,
    parse_batch_answer,
    query,
)
from handoff.connectors.sap.settings import SYSTEM, SapSettings
from handoff.domain import Customer, Invoice, Project
from handoff.domain.ids import PROJECT_PREFIX
from handoff.errors import BusinessRuleError, DataError, PermanentError, TransientError

__all__ = ["SapConnector", "SapSettings"]

ODATA = "sap/opu/odata/sap"
BUSINESS_PARTNER = f"{ODATA}/API_BUSINESS_PARTNER"
ENTERPRISE_PROJECT = f"{ODATA}/API_ENTERPRISE_PROJECT_SRV;v=0002"
BILLING_DOCUMENT = f"{ODATA}/API_BILLING_DOCUMENT_SRV"
OPEN_ITEMS = f"{ODATA}/API_OPLACCTGDOCITEMCUBE_SRV"
WRITE_ATTEMPTS = 3  # plans of one update: the first, and two more after a 412

_PARTNER_SELECT = ",".join(("BusinessPartner", "BusinessPartnerUUID", "BusinessPartnerIDByExtSystem",
                            *PARTNER_FIELDS))
_ELEMENTS = "to_EnterpriseProjectElement"
_PROJECT_SELECT = ",".join(("ProjectUUID", "Project", "ProcessingStatus", "ProjectCurrency", *PROJECT_FIELDS,
                            *(f"{_ELEMENTS}/{f}" for f in ("ProjectElementUUID", "ProjectElement",
                                                            *ELEMENT_FIELDS))))


@dataclass(frozen=True, slots=True)
class _Write:
    """One write of an update; `etag` goes into If-Match."""

    method: str
    path: str
    body: Mapping[str, Any] | None = None
    etag: str | None = None


class SapConnector:
    """Keep-alive connections, the Gateway session and its CSRF tokens shared by the worker
    threads; safe to share."""

    system = SYSTEM

    def __init__(self, settings: SapSettings) -> None:
        self.settings = settings
        credentials = base64.b64encode(f"{settings.user}:{settings.password}".encode()).decode()
        self._headers = {"Authorization": f"Basic {credentials}", "Accept": "application/json",
                         "Accept-Encoding": "gzip"}
        # No retries (handoff's engine owns them) and no redirects (answered as errors, never
        # followed with the credentials).
        self._http = KeepAliveClient(settings.base_url, timeout=settings.timeout,
                                     max_idle=settings.max_connections)
        self._prefix = urlsplit(settings.base_url).path.rstrip("/")
        self._origin = "{0.scheme}://{0.netloc}".format(urlsplit(settings.base_url))
        self._session = _Session()
        self._fetching = threading.Lock()
        self._locks = _KeyLocks()
        self._partner_uuids: dict[str, str] = {}  # BusinessPartner -> BusinessPartnerUUID
        self._limiter = paced(vendor_budget(settings), settings.budget, SYSTEM)  # learns from 429s
        self.budget = self._limiter.budget

    # --- ErpConnector ------------------------------------------------------------------------

    def upsert_customer(self, external_id: str, customer: Customer) -> UpsertResult:
        """A business partner in the customer roles; target id = its BusinessPartner number.
        An existing one gets its name lines updated only (its company and sales data are
        SAP's to keep from then on)."""
        key = partner_key(external_id)
        body = partner_body(key, customer, self.settings)
        with self._locks.hold(("partner", key)):
            current = self._find_partner(key)
            if current is None:
                current, created = self._create(BUSINESS_PARTNER, "A_BusinessPartner", body,
                                                lambda: self._find_partner(key))
                if created:
                    return UpsertResult(str(current["BusinessPartner"]), created=True)

            def plan(record: dict[str, Any]) -> list[_Write]:
                changes = partner_changes(record, body)
                path = f"A_BusinessPartner({literal(record['BusinessPartner'])})"
                return [_Write("PATCH", path, changes, _etag(record))] if changes else []

            self._apply(BUSINESS_PARTNER, current, lambda: self._found(self._find_partner(key), key), plan)
            return UpsertResult(str(current["BusinessPartner"]), created=False)

    def upsert_project(self, project: Project, customer_target_id: str) -> UpsertResult:
        """An enterprise project for the customer (target id = its ProjectUUID), with a billing
        WBS element per milestone of its schedule. An existing one gets what differs: its
        fields, missing elements, renamed ones, a status further on; elements of milestones no
        longer in the schedule are left for a person (they may carry postings)."""
        key = project_key(project.external_id)
        status = self._status_code(project)
        elements = element_bodies(project, key, self.settings)
        fields = project_fields(project, "", self.settings)  # refused here, before any call
        fields["CustomerUUID"] = self._partner_uuid(customer_target_id)
        with self._locks.hold(("project", key)):
            current = self._find_project(key)
            if current is None:
                body = project_create_body(project, key, fields, self.settings)
                current, created = self._create(ENTERPRISE_PROJECT, "A_EnterpriseProject", body,
                                                lambda: self._find_project(key))
                change = status_change(current.get("ProcessingStatus"), status, self.settings)
                if created and change is None:
                    return UpsertResult(str(current["ProjectUUID"]), created=True)
                if created:  # the deep insert made the elements: only the status is left
                    self._write(ENTERPRISE_PROJECT, [_status_write(current, change)])
                    return UpsertResult(str(current["ProjectUUID"]), created=True)

            def plan(record: dict[str, Any]) -> list[_Write]:
                return _project_writes(record, fields, elements, status, self.settings)

            self._apply(ENTERPRISE_PROJECT, current, lambda: self._found(self._find_project(key), key), plan)
            return UpsertResult(str(current["ProjectUUID"]), created=False)

    # --- billing documents (read only) ----------------------------------------------------------

    def read_invoice(self, target_id: str) -> Invoice:
        """A billing document (its number is the target id) as SAP shows it now, its amount
        due from the customer's open items."""
        path = f"A_BillingDocument({literal(target_id)})?{query({'$select': ','.join(DOCUMENT_FIELDS)})}"
        reply = self._request("GET", BILLING_DOCUMENT, path, missing_ok=True)
        if reply.status == 404:
            raise PermanentError(f"SAP has no billing document {target_id}", system=SYSTEM)
        document = _json(reply)["d"]
        return invoice_from(document, self._customer_items([document]), self.settings)

    # --- ErpSnapshotSource -------------------------------------------------------------------

    def project_figures(self) -> Iterator[ProjectFigures]:
        """Every handoff project (Project ID starting HO-P-), paged; no value (see mapping)."""
        params = {"$filter": f"startswith(Project,{literal(PROJECT_PREFIX)}) eq true",
                  "$select": "Project,ProjectCurrency", "$orderby": "Project"}
        for row in self._pages(ENTERPRISE_PROJECT, "A_EnterpriseProject", params):
            yield project_figures_from(row)

    def document_figures(self) -> Iterator[DocumentFigures]:
        """Every billing document with an item on a handoff project or one of its WBS
        elements, whoever made it, with its deal; cancellation documents are left out (the
        document they cancel shows as cancelled). Reads: the projects with their elements, the
        billing items on them, then the documents and their customer items a chunk at a time."""
        deals = self._wbs_deals()
        documents: dict[str, str] = {}  # billing document -> deal of its first handoff item
        params = {"$filter": f"startswith(WBSElement,{literal(PROJECT_PREFIX)}) eq true",
                  "$select": "BillingDocument,BillingDocumentItem,WBSElement",
                  "$orderby": "BillingDocument,BillingDocumentItem"}
        for item in self._pages(BILLING_DOCUMENT, "A_BillingDocumentItem", params):
            deal = deals.get(item.get("WBSElement") or "")
            if deal is not None:
                documents.setdefault(item["BillingDocument"], deal)
        for chunk in _chunks(sorted(documents), self.settings.filter_chunk):
            params = {"$filter": any_of("BillingDocument", chunk), "$select": ",".join(DOCUMENT_FIELDS)}
            headers = [d for d in self._pages(BILLING_DOCUMENT, "A_BillingDocument", params)
                       if not is_cancellation(d, self.settings)]
            items = self._customer_items(headers)
            for document in headers:
                yield document_figures_from(document, items, documents[document["BillingDocument"]],
                                            self.settings)

    # --- look-ups ------------------------------------------------------------------------------

    def get_customer(self, external_id: str) -> dict[str, Any] | None:
        return self._find_partner(partner_key(external_id))

    def get_project(self, external_id: str) -> dict[str, Any] | None:
        return self._find_project(project_key(external_id))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SapConnector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- reads ---------------------------------------------------------------------------------

    def _find_partner(self, key: str) -> dict[str, Any] | None:
        params = {"$filter": f"BusinessPartnerIDByExtSystem eq {literal(key)}", "$select": _PARTNER_SELECT,
                  "$top": 2}
        return self._only(self._list(BUSINESS_PARTNER, "A_BusinessPartner", params), key,
                          "BusinessPartnerIDByExtSystem")

    def _find_project(self, key: str) -> dict[str, Any] | None:
        params = {"$filter": f"Project eq {literal(key)}", "$expand": _ELEMENTS, "$select": _PROJECT_SELECT,
                  "$top": 2}
        return self._only(self._list(ENTERPRISE_PROJECT, "A_EnterpriseProject", params), key, "Project")

    def _partner_uuid(self, business_partner: str) -> str:
        """The partner's GUID, the project's CustomerUUID (never changes: kept once read)."""
        if business_partner not in self._partner_uuids:
            path = f"A_BusinessPartner({literal(business_partner)})?$select=BusinessPartnerUUID"
            reply = self._request("GET", BUSINESS_PARTNER, path, missing_ok=True)
            if reply.status == 404:
                raise DataError(f"SAP has no business partner {business_partner}", system=SYSTEM,
                                field="CustomerUUID")
            self._partner_uuids[business_partner] = str(_json(reply)["d"]["BusinessPartnerUUID"])
        return self._partner_uuids[business_partner]

    def _wbs_deals(self) -> dict[str, str]:
        """Project and WBS element IDs of handoff's projects -> their deal."""
        deals: dict[str, str] = {}
        params = {"$filter": f"startswith(Project,{literal(PROJECT_PREFIX)}) eq true",
                  "$expand": _ELEMENTS, "$select": f"Project,{_ELEMENTS}/ProjectElement",
                  "$orderby": "Project"}
        for project in self._pages(ENTERPRISE_PROJECT, "A_EnterpriseProject", params):
            deal = deal_of_project_key(project["Project"])
            deals[project["Project"]] = deal
            for element in _results(project.get(_ELEMENTS)):
                deals[element["ProjectElement"]] = deal
        return deals

    def _customer_items(self, documents: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Customer line items of the documents' accounting documents and those referring to
        them (residual items, partial payments), per company code, a chunk at a time."""
        numbers: dict[str, set[str]] = {}
        for document in documents:
            if document.get("AccountingDocument"):
                numbers.setdefault(document["CompanyCode"], set()).add(document["AccountingDocument"])
        items: list[dict[str, Any]] = []
        for company, held in numbers.items():
            for chunk in _chunks(sorted(held), max(1, self.settings.filter_chunk // 2)):
                either = " or ".join(f"AccountingDocument eq {literal(n)} or InvoiceReference eq {literal(n)}"
                                     for n in chunk)
                params = {"$filter": f"CompanyCode eq {literal(company)} and FinancialAccountType eq 'D' "
                                     f"and ({either})", "$select": ",".join(OPEN_ITEM_FIELDS)}
                items += self._pages(OPEN_ITEMS, "A_OperationalAcctgDocItemCube", params)
        return items

    def _list(self, service: str, entity_set: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        return list(_results(_json(self._request("GET", service, f"{entity_set}?{query(params)}"))["d"]))

    def _pages(self, service: str, entity_set: str, params: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        """Every row, `page_size` at a time ($top/$skip); within a page, SAP's own server-side
        paging is followed (`__next`, a `$skiptoken` link on the same origin)."""
        top, skip = self.settings.page_size, 0
        while True:
            path: str | None = f"{entity_set}?{query({**params, '$top': top, '$skip': skip or None})}"
            seen = 0
            while path:
                page = _json(self._request("GET", service, path))["d"]
                rows = _results(page)
                yield from rows
                seen += len(rows)
                path = self._next_path(service, page.get("__next"))
            if seen < top:
                return
            skip += seen

    def _next_path(self, service: str, link: str | None) -> str | None:
        """A `__next` link as a path within the service; a link elsewhere is refused."""
        if not link:
            return None
        parts = urlsplit(link)
        if parts.netloc and f"{parts.scheme}://{parts.netloc}" != self._origin:
            raise PermanentError(f"SAP's next-page link leaves {self._origin}: {link}", system=SYSTEM)
        root = f"{self._prefix}/{service}/"
        if parts.path.startswith("/"):
            if not parts.path.startswith(root):
                raise PermanentError(f"SAP's next-page link leaves the service: {link}", system=SYSTEM)
            relative = parts.path[len(root):]
        else:
            relative = parts.path
        params = "&".join(p for p in parts.query.split("&") if p and not p.startswith("sap-client="))
        return f"{relative}?{params}" if params else relative

    @staticmethod
    def _only(rows: list[dict[str, Any]], key: str, field: str) -> dict[str, Any] | None:
        if len(rows) > 1:
            raise DataError(f"{len(rows)} SAP records carry {field} {key!r}; one must go", system=SYSTEM,
                            field=field)
        return rows[0] if rows else None

    @staticmethod
    def _found(record: dict[str, Any] | None, key: str) -> dict[str, Any]:
        if record is None:
            raise TransientError(f"{key} was there a moment ago but cannot be read now", system=SYSTEM)
        return record

    def _status_code(self, project: Project) -> str:
        if project.status not in self.settings.status_codes:
            raise DataError(f"no SAP processing status configured for {project.status!r}", system=SYSTEM,
                            field="status")
        return self.settings.status_codes[project.status]

    # --- writes --------------------------------------------------------------------------------

    def _create(self, service: str, entity_set: str, body: Mapping[str, Any],
                find: Callable[[], dict[str, Any] | None]) -> tuple[dict[str, Any], bool]:
        """POST the record; (record, True). A create SAP refuses is looked up again: a racing
        create may have won ("already exists"), and its record is the answer, (record, False)."""
        try:
            reply = self._request("POST", service, entity_set, body=_dumps(body))
        except (BusinessRuleError, DataError):
            winner = find()
            if winner is None:
                raise
            return winner, False
        return _json(reply)["d"], True

    def _apply(self, service: str, record: dict[str, Any], read: Callable[[], dict[str, Any]],
               plan: Callable[[dict[str, Any]], list[_Write]]) -> None:
        """Bring the record to what handoff wants: `plan` says which writes; on 412 (SAP's copy
        changed since it was read) read it again and plan again."""
        for attempt in range(WRITE_ATTEMPTS):
            writes = plan(record)
            if not writes or self._write(service, writes):
                return
            if attempt + 1 < WRITE_ATTEMPTS:
                record = read()
        raise TransientError(f"SAP's record kept changing while handoff updated it ({WRITE_ATTEMPTS} "
                             "attempts answered 412)", system=SYSTEM)

    def _write(self, service: str, writes: Sequence[_Write]) -> bool:
        """One write as itself, several as one `$batch` change set. False on 412."""
        if len(writes) == 1:
            write = writes[0]
            headers = {"If-Match": write.etag} if write.etag else {}
            body = _dumps(write.body) if write.body is not None else b""
            reply = self._request(write.method, service, write.path, body=body, headers=headers,
                                  allow=(412,))
            return reply.status != 412
        changeset = [BatchRequest(w.method, w.path, _part_headers(w), _dumps(w.body) if w.body else b"")
                     for w in writes]
        content_type, body = batch_body((), changeset)
        reply = self._request("POST", service, "$batch", body=body, headers={"Content-Type": content_type})
        for answer in parse_batch_answer(reply.headers.get("Content-Type", ""), reply.data):
            if answer.status == 412:
                return False
            if answer.status >= 300:
                raise from_response(answer.status, _Headers(answer.headers), answer.body,
                                    user=self.settings.user)
        return True

    # --- one call ------------------------------------------------------------------------------

    def _request(self, method: str, service: str, path: str, *, body: bytes | None = None,
                 headers: Mapping[str, str] | None = None, missing_ok: bool = False,
                 allow: tuple[int, ...] = ()) -> Reply:
        """One call, its body read in full; every failure leaves as a handoff error. A write
        refused for its CSRF token is sent once more with a fresh one. `missing_ok`: a 404 is
        returned instead of raised; `allow`: these statuses too."""
        unsafe = method not in ("GET", "HEAD")
        for attempt in (1, 2):
            extra = dict(headers or {})
            generation = 0
            if unsafe:
                extra["x-csrf-token"], generation = self._token(service)
            reply = self._send(method, service, path, body, extra)
            if not (unsafe and attempt == 1 and is_csrf_refusal(reply.status, reply.headers, reply.data)):
                break
            self._session.drop(generation)
        status = reply.status
        if status >= 300 and status not in allow and not (missing_ok and status == 404):
            raise from_response(status, reply.headers, reply.data, user=self.settings.user)
        return reply

    def _token(self, service: str) -> tuple[str, int]:
        """The session's CSRF token for the service, fetched when there is none."""
        with self._fetching:
            token, generation = self._session.token(service)
            if token:
                return token, generation
            reply = self._send("HEAD", service, "", None, {"x-csrf-token": "Fetch"})
            token = reply.headers.get("x-csrf-token") or ""
            if reply.status in (401, 403) or reply.status >= 429 and not token:
                raise from_response(reply.status, reply.headers, reply.data, user=self.settings.user)
            if not token or token.lower() == "required":
                # Seen under load and behind proxies that drop headers: asked again, it comes;
                # a gateway that never sends one runs out of retries and dead-letters.
                raise TransientError(f"SAP sent no CSRF token for {service} (HTTP {reply.status})",
                                     system=SYSTEM)
            return token, self._session.set_token(service, token)

    def _send(self, method: str, service: str, path: str, body: bytes | None,
              headers: Mapping[str, str]) -> Reply:
        target = f"{service}/{path}"
        if self.settings.sap_client:
            target += f"{'&' if '?' in target else '?'}sap-client={self.settings.sap_client}"
        sent = dict(self._headers)
        if body is not None:
            sent["Content-Type"] = "application/json"
        cookie = self._session.cookie_header()
        if cookie:
            sent["Cookie"] = cookie
        sent.update(headers)
        with self._limiter.slot():  # a 429 raised in it slows the connector down
            try:
                reply = self._http.request(method, target, body=body, headers=sent)
            except TransportError as exc:
                raise translate(exc) from exc
            self._session.keep(reply.headers.get_all("Set-Cookie") or ())
            if reply.status == 429:
                raise from_response(reply.status, reply.headers, reply.data, user=self.settings.user)
        return reply


def vendor_budget(settings: SapSettings) -> RateBudget:
    """S/4HANA publishes no OData rate limit; a 429 comes only from an API Management quota
    where the customer set one. handoff holds itself to its connection pool."""
    return RateBudget(requests=None, window_seconds=None, concurrency=settings.max_connections,
                      source="SAP S/4HANA: no published OData rate limit (429 only from SAP API "
                             "Management quotas where configured); [systems.sap] max_connections")


def _project_writes(record: Mapping[str, Any], fields: Mapping[str, Any],
                    elements: Sequence[Mapping[str, Any]], status: str,
                    settings: SapSettings) -> list[_Write]:
    """The writes that bring a project as SAP holds it to what handoff wants."""
    project = f"A_EnterpriseProject({guid_literal(record['ProjectUUID'])})"
    writes = []
    changes = project_changes(record, fields)
    if changes:
        writes.append(_Write("PATCH", project, changes, _etag(record)))
    held = {e["ProjectElement"]: e for e in _results(record.get(_ELEMENTS))}
    for body in elements:
        element = held.get(body["ProjectElement"])
        if element is None:
            writes.append(_Write("POST", f"{project}/{_ELEMENTS}", body))
        elif element_changes(element, body):
            path = f"A_EnterpriseProjectElement({guid_literal(element['ProjectElementUUID'])})"
            writes.append(_Write("PATCH", path, element_changes(element, body), _etag(element)))
    change = status_change(record.get("ProcessingStatus"), status, settings)
    if change:
        writes.append(_status_write(record, change))
    return writes


def _status_write(record: Mapping[str, Any], status: str) -> _Write:
    """Function import parameters travel in the URL (OData v2), never in a body."""
    params = query({"ProjectUUID": guid_literal(record["ProjectUUID"]), "ProcessingStatus": literal(status)})
    return _Write("POST", f"ChangeEntProjProcgStatus?{params}")


def _part_headers(write: _Write) -> dict[str, str]:
    headers = {"Accept": "application/json"}
    if write.body:
        headers["Content-Type"] = "application/json"
    if write.etag:
        headers["If-Match"] = write.etag
    return headers


def _etag(record: Mapping[str, Any]) -> str:
    """The ETag SAP gave the record (`__metadata.etag`); `*` where it gives none."""
    metadata = record.get("__metadata")
    return str(metadata.get("etag") or "*") if isinstance(metadata, dict) else "*"


def _results(value: Any) -> list[dict[str, Any]]:
    """An OData v2 collection: `{"results": [...]}` (`[]` for a deferred navigation)."""
    return list(value.get("results") or ()) if isinstance(value, dict) else []


def _json(reply: Reply) -> dict[str, Any]:
    try:
        document = json.loads(reply.data)
    except ValueError:
        raise TransientError(f"SAP answered {reply.status} with a body that is not JSON: "
                             f"{reply.data[:120]!r}", system=SYSTEM) from None
    if not isinstance(document, dict) or "d" not in document:
        raise PermanentError(f"SAP answered {reply.status} without an OData `d`: {reply.data[:120]!r}",
                             system=SYSTEM)
    return document


def _dumps(body: Mapping[str, Any] | None) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def _chunks(values: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


class _Headers(dict[str, str]):
    """A `$batch` part's headers (stored lower case) read case-insensitively, like HTTPMessage."""

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(key.lower(), default)


class _Session:
    """The Gateway session: its cookies and the CSRF token of each service. A token refused
    drops the whole session once, whichever thread notices first (`generation` tells)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cookies: dict[str, str] = {}
        self._tokens: dict[str, str] = {}
        self._generation = 0

    def cookie_header(self) -> str:
        with self._lock:
            return "; ".join(f"{name}={value}" for name, value in self._cookies.items())

    def keep(self, set_cookies: Sequence[str]) -> None:
        """Every cookie SAP sets is replayed (KBA 3048103: never rely on their names)."""
        for header in set_cookies:
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(header)
            except CookieError:
                continue
            with self._lock:
                for name, morsel in jar.items():
                    if morsel["max-age"] == "0" or not morsel.value:
                        self._cookies.pop(name, None)
                    else:
                        self._cookies[name] = morsel.value

    def token(self, service: str) -> tuple[str | None, int]:
        with self._lock:
            return self._tokens.get(service), self._generation

    def set_token(self, service: str, token: str) -> int:
        with self._lock:
            self._tokens[service] = token
            return self._generation

    def drop(self, generation: int) -> None:
        with self._lock:
            if generation == self._generation:
                self._cookies.clear()
                self._tokens.clear()
                self._generation += 1


class _KeyLocks:
    """A lock per key, made on first use and dropped when no thread holds or waits for it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[Hashable, tuple[threading.Lock, int]] = {}

    @contextmanager
    def hold(self, key: Hashable) -> Iterator[None]:
        with self._lock:
            lock, users = self._held.get(key, (threading.Lock(), 0))
            self._held[key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._lock:
                lock, users = self._held[key]
                if users == 1:
                    del self._held[key]
                else:
                    self._held[key] = (lock, users - 1)
