"""The Dynamics 365 Sales connector: handoff's CRM port over the Dataverse Web API, on httpx.

One `DynamicsConnector` is meant to be shared by every worker thread: its httpx.Client (a
thread-safe connection pool) is made once, and the only state the connector changes — its
pacing window, its count of calls in flight and the currency table, read once — is kept under
locks.

Every call passes two gates first, so handoff stays under Dataverse's service protection
limits by itself: a sliding window (`requests_per_window` per `window_seconds`, under 6,000
per 300 s) and a bound on calls in flight (`max_concurrency`, under 52). A 429 that still comes
back is a ThrottledError with the wait Dataverse asked for (Retry-After). Every call carries
the current lifecycle's `traceparent` and X-Correlation-Id (handoff.observability.outbound).

Write-back goes out as `$batch` requests of up to `batch_size` PATCHes: Dataverse counts a
batch as one request against the 6,000-per-300-s limit (api-limits: "A batch can contain up to
1000 operations and will avoid the number of requests limit"), so a hundred write-backs cost one
call instead of a hundred. Each PATCH stands alone in the batch, not in a change set, with
`Prefer: odata.continue-on-error`: a change set is atomic, so one refused record would roll the
others back; alone, each update gets its own answer. A single update is a plain PATCH.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import httpx

from handoff.connectors.budget import BudgetOverride
from handoff.connectors.dynamics import batch
from handoff.connectors.dynamics.errors import (
    PreconditionFailed,
    RecordNotFound,
    from_response,
    read_body,
    translate,
)
from handoff.connectors.dynamics.mapping import (
    ACCOUNT_ID,
    ACCOUNTS,
    CURRENCIES,
    CURRENCY_ID,
    MODIFIED,
    OPPORTUNITIES,
    OPPORTUNITY_ID,
    account_columns_to_read,
    checked_guid,
    customer_event_data,
    deal_figures,
    dumps,
    entity_id,
    figure_columns,
    key_segment,
    loads,
    odata_datetime,
    opportunity_columns_to_read,
    opportunity_event_data,
    write_back_columns,
    write_back_fields,
)
from handoff.connectors.dynamics.settings import DynamicsSettings
from handoff.connectors.pacing_adaptive import AdaptiveLimiter
from handoff.connectors.ports import CrmStatusUpdate, DealFigures, RateBudget
from handoff.errors import DataError, HandoffError, PermanentError, TransientError
from handoff.observability import outbound, record_status

ANNOTATIONS = 'odata.include-annotations="*"'
_RECORD_ERRORS = (DataError, RecordNotFound, PreconditionFailed)  # one record's fault



class DynamicsConnector:
    system = "dynamics"
    budget = RateBudget(requests=6000, window_seconds=300.0, concurrency=52,
                        source="Dataverse service protection, per user and web server: 6,000 "
                               "requests per sliding 300 s (a $batch counts once), 52 concurrent "
                               "requests, 20 minutes of execution time per 300 s")

    def __init__(self, settings: DynamicsSettings) -> None:
        self.settings = settings
        self.cols = settings.columns
        self._root = settings.api_root
        verify: ssl.SSLContext | bool = (ssl.create_default_context(cafile=settings.ca_file)
                                         if settings.ca_file else True)
        self._limiter = AdaptiveLimiter(configured_budget(settings), system=self.system)  # learns from 429s
        self.budget = self._limiter.budget
        pool = self.budget.concurrency  # Dataverse publishes one; a configured one is whole
        self._http = httpx.Client(
            verify=verify, timeout=settings.timeout, follow_redirects=False, trust_env=False,
            limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool),
            headers={"Authorization": f"Bearer {settings.access_token}",
                     "Accept": "application/json", "OData-MaxVersion": "4.0", "OData-Version": "4.0"})
        self._currencies: dict[str, str] | None = None  # transactioncurrencyid -> ISO code
        self._unknown_currencies: set[str] = set()
        self._currency_lock = threading.Lock()

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> DynamicsConnector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the CRM port ---------------------------------------------------------------------

    def write_back(self, update: CrmStatusUpdate) -> None:
        """Set the provisioning fields on the opportunity. Idempotent: a PATCH of values."""
        [outcome] = self.write_back_many([update])
        if outcome is not None:
            raise outcome

    def write_back_many(self, updates: Sequence[CrmStatusUpdate]) -> list[HandoffError | None]:
        """Write back in `$batch` requests of up to `batch_size` PATCHes (a single update: one
        PATCH); one outcome per update, in order (None = saved). Every PATCH carries `If-Match:
        *`, so an opportunity deleted meanwhile is a RecordNotFound, never re-created empty by
        an upsert. An update naming no GUID is refused without a call. A batch refused as a
        whole (throttled, token, no answer) marks its updates and all later ones with that
        error, and nothing after it is sent."""
        outcomes: list[HandoffError | None] = []
        size = self.settings.batch_size
        for start in range(0, len(updates), size):
            try:
                outcomes += self._write_chunk(updates[start:start + size])
            except HandoffError as exc:
                return outcomes + [exc] * (len(updates) - len(outcomes))
        return outcomes

    # --- reading changes ------------------------------------------------------------------

    def changed_opportunities(self, since: datetime) -> Iterator[dict[str, Any]]:
        """Canonical event data of every opportunity modified after `since`, oldest first."""
        columns = self._columns("opportunity", opportunity_columns_to_read(self.cols))
        for record in self._changed(OPPORTUNITIES, OPPORTUNITY_ID, columns, since):
            yield self._opportunity(record)

    def changed_accounts(self, since: datetime) -> Iterator[dict[str, Any]]:
        """Canonical customer event data of every account modified after `since`."""
        columns = self._columns("customer", account_columns_to_read(self.cols))
        for record in self._changed(ACCOUNTS, ACCOUNT_ID, columns, since):
            yield self._customer(record)

    # --- reading one record (webhooks' fetch-then-event) --------------------------------------

    def opportunity_event_data(self, opportunity_id: str) -> dict[str, Any]:
        """One opportunity as canonical event data, exactly as the change feed gives it."""
        columns = self._columns("opportunity", opportunity_columns_to_read(self.cols))
        return self._opportunity(self._read(OPPORTUNITIES, opportunity_id, columns))

    def customer_event_data(self, account_id: str) -> dict[str, Any]:
        """One account as canonical customer event data."""
        columns = self._columns("customer", account_columns_to_read(self.cols))
        return self._customer(self._read(ACCOUNTS, account_id, columns))

    # --- reconciliation -------------------------------------------------------------------

    def deal_figures(self) -> Iterator[DealFigures]:
        """Every opportunity's sale and billing figures, by one paged query (`page_size` a
        page, in opportunityid order)."""
        query = {"$select": ",".join(figure_columns(self.cols)), "$orderby": f"{OPPORTUNITY_ID} asc"}
        for record in self._query(OPPORTUNITIES, query):
            yield deal_figures(record, self._currency_codes(record), self.cols)

    def get_opportunity(self, opportunity_id: str) -> dict[str, Any]:
        """The opportunity's columns as Dataverse holds them (those handoff reads and writes;
        no annotations)."""
        columns = opportunity_columns_to_read(self.cols) + write_back_columns(self.cols)
        record = self._read(OPPORTUNITIES, opportunity_id, columns)
        return {k: v for k, v in record.items() if "@" not in k}

    def get_account(self, account_id: str) -> dict[str, Any]:
        record = self._read(ACCOUNTS, account_id, account_columns_to_read(self.cols))
        return {k: v for k, v in record.items() if "@" not in k}

    def currencies(self) -> dict[str, str]:
        """The environment's transaction currencies, id → ISO code (read once)."""
        with self._currency_lock:
            if self._currencies is None:
                self._currencies = self._read_currencies()
            return dict(self._currencies)

    def currency_ids(self) -> dict[str, str]:
        """ISO code → transactioncurrencyid, for seeding (`mapping.opportunity_columns`)."""
        return {code: currency_id for currency_id, code in self.currencies().items()}

    def who_am_i(self) -> dict[str, Any]:
        """`WhoAmI`: the application user the token stands for (a set-up check)."""
        return self._json(self._send("GET", f"{self._root}/WhoAmI"))

    # --- seeding (demos and tests) --------------------------------------------------------

    def create_opportunity(self, fields: Mapping[str, Any], account_id: str | None = None) -> str:
        """Create from Dataverse columns (see mapping.opportunity_columns), bound to
        `account_id` as its account and potential customer when given; returns the id."""
        body = dict(fields)
        if account_id:
            account = f"/{ACCOUNTS}({checked_guid(account_id, 'account_id')})"
            body |= {"parentaccountid@odata.bind": account, "customerid_account@odata.bind": account}
        return self._create(OPPORTUNITIES, body)

    def create_account(self, fields: Mapping[str, Any]) -> str:
        """Create from Dataverse columns (see mapping.account_columns); returns the id."""
        return self._create(ACCOUNTS, dict(fields))

    def upsert_account(self, key: str, fields: Mapping[str, Any], only: str | None = None) -> str:
        """Create or update the account whose alternate key (`columns.account_key`) is `key`:
        `PATCH accounts(handoff_key='…')`, so a call repeated after a lost response leaves one
        account. `only="create"` sends `If-None-Match: *` (an existing account is a
        PreconditionFailed), `only="update"` sends `If-Match: *` (a missing one is a
        RecordNotFound). Returns the account's id."""
        return self._upsert(ACCOUNTS, ACCOUNT_ID, self.cols.account_key, key, fields, only)

    def upsert_opportunity(self, key: str, fields: Mapping[str, Any], only: str | None = None) -> str:
        """As `upsert_account`, for the opportunity whose `columns.opportunity_key` is `key`."""
        return self._upsert(OPPORTUNITIES, OPPORTUNITY_ID, self.cols.opportunity_key, key, fields, only)

    def update_opportunity(self, opportunity_id: str, fields: Mapping[str, Any]) -> None:
        self._update(OPPORTUNITIES, opportunity_id, fields)

    def update_account(self, account_id: str, fields: Mapping[str, Any]) -> None:
        self._update(ACCOUNTS, account_id, fields)

    def win_opportunity(self, opportunity_id: str, subject: str = "Won", status: int = 3) -> None:
        """Close the opportunity as won: the `WinOpportunity` action with an opportunityclose."""
        target = f"/{OPPORTUNITIES}({checked_guid(opportunity_id, 'opportunity_id')})"
        body = {"Status": status, "OpportunityClose": {"subject": subject,
                                                       "opportunityid@odata.bind": target}}
        self._send("POST", f"{self._root}/WinOpportunity", body=body)

    # --- plumbing -------------------------------------------------------------------------

    def _opportunity(self, record: dict[str, Any]) -> dict[str, Any]:
        data = opportunity_event_data(record, self._currency_codes(record), self.cols)
        return self.settings.field_map.apply("opportunity", record, data)

    def _customer(self, record: dict[str, Any]) -> dict[str, Any]:
        data = customer_event_data(record, self._currency_codes(record), self.cols)
        return self.settings.field_map.apply("customer", record, data)

    def _columns(self, obj: str, built_in: list[str]) -> list[str]:
        """The built-in columns and those the configured field mapping reads (fieldmap.py)."""
        return list(dict.fromkeys([*built_in, *self.settings.field_map.sources(obj)]))

    def _write_chunk(self, chunk: Sequence[CrmStatusUpdate]) -> list[HandoffError | None]:
        outcomes: list[HandoffError | None] = [None] * len(chunk)
        patches: list[tuple[int, str, bytes]] = []  # (position, row path, body)
        for n, update in enumerate(chunk):
            try:
                path = f"{OPPORTUNITIES}({checked_guid(update.opportunity_id, 'opportunity_id')})"
                patches.append((n, path, dumps(write_back_fields(update, self.cols))))
            except DataError as exc:
                outcomes[n] = exc
        if len(patches) == 1:
            [(n, path, body)] = patches
            try:
                self._send("PATCH", f"{self._root}/{path}", content=body, headers={
                    "Content-Type": "application/json; charset=utf-8", "If-Match": "*"})
            except _RECORD_ERRORS as exc:
                outcomes[n] = exc
        elif patches:
            api_path = urlsplit(self._root).path
            requests = [batch.Request("PATCH", f"{api_path}/{path}", {
                "Content-Type": "application/json; charset=utf-8", "If-Match": "*"}, body)
                for _, path, body in patches]
            for (n, _, _), result in zip(patches, self._batch(requests), strict=True):
                outcomes[n] = result
        return outcomes

    def _batch(self, requests: Sequence[batch.Request]) -> list[HandoffError | None]:
        """One `$batch` of independent requests (no change set), continuing past failures;
        one outcome per request. Raises when the batch as a whole is refused."""
        boundary = batch.new_boundary()
        response = self._send(
            "POST", f"{self._root}/$batch", content=batch.encode_requests(requests, boundary),
            headers={"Content-Type": f"multipart/mixed; boundary={boundary}",
                     "Prefer": "odata.continue-on-error"}, check=False)
        content_type = response.headers.get("content-type")
        if not batch.is_multipart(content_type):
            raise from_response(response.status_code, response.content, response.headers)
        try:
            answers = batch.decode_responses(content_type, response.content)
        except ValueError as exc:
            raise TransientError(f"unreadable $batch response: {exc}", system=self.system) from exc
        outcomes: list[HandoffError | None] = []
        for n in range(len(requests)):
            if n >= len(answers):
                outcomes.append(TransientError("the $batch response has no answer for this update",
                                               system=self.system))
                continue
            answer = answers[n]
            outcomes.append(None if answer.status < 300 else
                            from_response(answer.status, answer.body, answer.headers))
        return outcomes

    def _changed(self, entity_set: str, key: str, columns: list[str],
                 since: datetime) -> Iterator[dict[str, Any]]:
        """The rows modified after `since`, oldest first: `modifiedon gt …` ordered by
        modifiedon and then the primary key, page by page along `@odata.nextLink`. Dataverse's
        paging cookie carries the last row's sort values, so each page starts after the last
        row read: a row edited while the feed is read moves to the end (and is read again),
        and no unread row is skipped."""
        query = {"$select": ",".join(columns), "$filter": f"{MODIFIED} gt {odata_datetime(since)}",
                 "$orderby": f"{MODIFIED} asc,{key} asc"}
        return self._query(entity_set, query)

    def _query(self, entity_set: str, query: Mapping[str, str]) -> Iterator[dict[str, Any]]:
        """Every row of a query, following `@odata.nextLink` verbatim with the same page size."""
        prefer = f"{ANNOTATIONS},odata.maxpagesize={self.settings.page_size}"
        url: str | None = f"{self._root}/{entity_set}?{_query_string(query)}"
        while url is not None:
            page = self._json(self._send("GET", url, headers={"Prefer": prefer}))
            yield from page.get("value") or ()
            link = page.get("@odata.nextLink")
            url = self._same_environment(str(link)) if link else None

    def _same_environment(self, link: str) -> str:
        """The next link's path and query on the configured environment URL: the token never
        goes to another host, and a host alias (`<org>.api.crm…` for `<org>.crm…`) is no stop."""
        parts = urlsplit(link)
        if not parts.path.startswith(urlsplit(self._root).path + "/"):
            raise PermanentError(f"@odata.nextLink leaves the Web API ({link}); not following it",
                                 system=self.system)
        return f"{self.settings.base_url}{parts.path}?{parts.query}"

    def _read(self, entity_set: str, row_id: str, columns: list[str]) -> dict[str, Any]:
        path = f"{entity_set}({checked_guid(row_id, 'id')})"
        url = f"{self._root}/{path}?{_query_string({'$select': ','.join(columns)})}"
        return self._json(self._send("GET", url, headers={"Prefer": ANNOTATIONS}))

    def _create(self, entity_set: str, body: dict[str, Any]) -> str:
        response = self._send("POST", f"{self._root}/{entity_set}", body=body)
        created = entity_id(response.headers.get("OData-EntityId") or response.headers.get("Location"))
        if created is None:
            raise PermanentError(f"Dataverse created a row in {entity_set} without saying which "
                                 "(no OData-EntityId)", system=self.system)
        return created

    def _upsert(self, entity_set: str, primary: str, key_column: str, key: str,
                fields: Mapping[str, Any], only: str | None) -> str:
        if only not in (None, "create", "update"):
            raise ValueError("only must be None, 'create' or 'update'")
        if not str(key).strip():
            raise DataError("an alternate key value must not be empty", system=self.system,
                            field=key_column)
        url = f"{self._root}/{entity_set}({key_segment(key_column, key)})"
        headers = {"If-None-Match": "*"} if only == "create" else {"If-Match": "*"} if only else {}
        response = self._send("PATCH", url, body=dict(fields), headers=headers)
        found = entity_id(response.headers.get("OData-EntityId"))
        if found is not None:
            return found
        # OData-EntityId on a creating upsert is unconfirmed for Dataverse: read the id back.
        record = self._json(self._send("GET", f"{url}?$select={primary}"))
        return str(record[primary])

    def _update(self, entity_set: str, row_id: str, fields: Mapping[str, Any]) -> None:
        url = f"{self._root}/{entity_set}({checked_guid(row_id, 'id')})"
        self._send("PATCH", url, body=dict(fields), headers={"If-Match": "*"})

    def _currency_codes(self, record: Mapping[str, Any]) -> dict[str, str]:
        """The currency table, read again once when the record names a currency it lacks
        (one added since it was read); a currency still missing then costs no further reads."""
        codes = self.currencies()
        wanted = str(record.get("_transactioncurrencyid_value") or "").lower()
        if wanted and wanted not in codes and wanted not in self._unknown_currencies:
            with self._currency_lock:
                self._currencies = self._read_currencies()
                codes = dict(self._currencies)
                if wanted not in codes:  # unreadable: read the table again for it never more
                    self._unknown_currencies.add(wanted)
        return codes

    def _read_currencies(self) -> dict[str, str]:
        query = {"$select": f"{CURRENCY_ID},isocurrencycode", "$orderby": f"{CURRENCY_ID} asc"}
        return {str(r[CURRENCY_ID]).lower(): str(r.get("isocurrencycode") or "").upper()
                for r in self._query(CURRENCIES, query)}

    def _send(self, method: str, url: str, *, body: Any = None, content: bytes | None = None,
              headers: Mapping[str, str] | None = None, check: bool = True) -> httpx.Response:
        """One call after the pacing gates, with the lifecycle's trace headers; every failure
        leaves here translated (an HTTP error status too, unless `check` is off)."""
        sent = dict(headers or {})
        if body is not None:
            content = dumps(body)
            sent.setdefault("Content-Type", "application/json; charset=utf-8")
        with self._limiter.slot(), outbound(method, url) as tracing:
            try:
                response = self._http.request(method, url, content=content, headers=sent | tracing)
            except httpx.HTTPError as exc:
                raise translate(exc) from exc
            record_status(response.status_code)
            if response.status_code == 429 or (check and response.status_code >= 400):
                raise from_response(response.status_code, response.content, response.headers)
        return response

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        try:
            body = loads(response.content)
        except ValueError as exc:
            raise TransientError(f"unreadable answer ({response.status_code}): "
                                 f"{read_body(response.content).get('message', '')}",
                                 system=self.system) from exc
        if not isinstance(body, dict):
            raise PermanentError("the answer is no JSON object", system=self.system)
        return body


def _query_string(query: Mapping[str, str]) -> str:
    """OData query options as Dataverse's own examples write them: `$select=a,b&$filter=x gt
    2026-11-26T10:00:00Z` with spaces as %20 and the `$`, commas, quotes and colons left as they
    are."""
    return urlencode(query, safe="$,':()/", quote_via=quote)


def configured_budget(settings: DynamicsSettings) -> RateBudget:
    """Dataverse's published budget, under the older pacing keys where set, under
    `[systems.dynamics.budget]` where set."""
    older = BudgetOverride(requests=settings.requests_per_window, window_seconds=settings.window_seconds,
                           concurrency=settings.max_concurrency)
    return settings.budget.applied_to(older.applied_to(DynamicsConnector.budget, "dynamics"), "dynamics")
