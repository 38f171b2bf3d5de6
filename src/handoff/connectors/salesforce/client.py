"""The Salesforce connector: handoff's CRM port, on the official SDK simple-salesforce.

One `SalesforceConnector` is meant to be shared by every worker thread. Its requests.Session
is used that way in practice (the connection pool hands each thread its own connection); the
only state the connector changes, the logged-in API client, is replaced under a lock.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import requests
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce, SalesforceLogin
from simple_salesforce.exceptions import SalesforceError, SalesforceExpiredSession

from handoff.connectors.budget import NO_OVERRIDE, BudgetOverride, budget_override, paced
from handoff.connectors.fieldmap import NO_MAPPING, FieldMap
from handoff.connectors.ports import CrmStatusUpdate, DealFigures, RateBudget
from handoff.connectors.retry_after import retry_after_seconds
from handoff.connectors.salesforce.errors import record_error, translate
from handoff.connectors.salesforce.mapping import (
    ACCOUNT_FIELDS,
    FIGURE_FIELDS,
    OPPORTUNITY_FIELDS,
    customer_event_data,
    deal_figures,
    opportunity_event_data,
    write_back_fields,
)
from handoff.errors import ConfigError, HandoffError
from handoff.observability import outbound, record_status

T = TypeVar("T")

COLLECTION_LIMIT = 200  # records per sObject Collections call
POOL_SIZE = 32          # connections kept per host: room for ~16 worker threads and paging


@dataclass(frozen=True)
class SalesforceSettings:
    """Where and how to reach Salesforce.

    Either `session_id` (direct mode: `instance_url` is the org's own URL), or `username`,
    `password` and `security_token` (SOAP login posted to `instance_url`: login.salesforce.com,
    test.salesforce.com, a My Domain, or a sandbox twin). `ca_file` is the CA bundle to trust
    instead of the system's; verification is never turned off.
    """

    instance_url: str
    session_id: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    security_token: str | None = field(default=None, repr=False)
    ca_file: str | None = None
    api_version: str = "59.0"
    timeout: float = 30.0
    field_map: FieldMap = NO_MAPPING  # [systems.salesforce.mapping.*]: connectors/fieldmap.py
    budget: BudgetOverride = NO_OVERRIDE  # [systems.salesforce.budget]: connectors/budget.py

    def __post_init__(self) -> None:
        object.__setattr__(self, "budget", budget_override("salesforce", self.budget))
        login = (self.username, self.password, self.security_token)
        if not self.session_id and not all(login):
            raise ConfigError(
                "salesforce: set session_id, or username, password and security_token"
            )

    @property
    def logs_in(self) -> bool:
        return not self.session_id


class _ConnectorSession(requests.Session):
    """A requests.Session with the connector's timeout, CA and pool, that remembers each
    thread's latest Retry-After (simple-salesforce's exceptions keep only the body).

    The environment (proxies, CA bundle) is read once here: requests would scan it on every
    call, and would let REQUESTS_CA_BUNDLE override the CA given to the connector. Every
    request (the SDK's, the login's) carries the current lifecycle's `traceparent`."""

    def __init__(self, settings: SalesforceSettings) -> None:
        super().__init__()
        self.timeout = settings.timeout
        self.proxies.update(requests.utils.get_environ_proxies(settings.instance_url))
        self.verify = (settings.ca_file or os.environ.get("REQUESTS_CA_BUNDLE")
                       or os.environ.get("CURL_CA_BUNDLE") or True)
        self.trust_env = False
        self._latest = threading.local()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=POOL_SIZE)
        self.mount("https://", adapter)
        self.mount("http://", adapter)
        self.hooks["response"].append(self._remember_retry_after)

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        self._latest.retry_after = None
        with outbound(method, url) as tracing:
            kwargs["headers"] = {**(kwargs.get("headers") or {}), **tracing}
            response = super().request(method, url, *args, **kwargs)
            record_status(response.status_code)
            return response

    def _remember_retry_after(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._latest.retry_after = response.headers.get("Retry-After")

    @property
    def retry_after(self) -> float | None:
        return retry_after_seconds(getattr(self._latest, "retry_after", None))


class SalesforceConnector:
    system = "salesforce"
    budget = RateBudget(requests=None, window_seconds=None, concurrency=25,
                        source="Salesforce: 25 long-running (over 20 s) calls at once per org; the "
                               "daily API allocation depends on the edition and licences")

    def __init__(self, settings: SalesforceSettings) -> None:
        self.settings = settings
        self._session = _ConnectorSession(settings)
        self._lock = threading.Lock()
        self._api: Salesforce | None = None
        self._limiter = paced(type(self).budget, settings.budget, self.system)  # learns from 429s
        self.budget = self._limiter.budget

    def close(self) -> None:
        self._session.close()

    # --- the CRM port ---------------------------------------------------------------------

    def write_back(self, update: CrmStatusUpdate) -> None:
        """Set the provisioning fields on the opportunity. Idempotent: a PATCH of values."""
        fields = write_back_fields(update)
        self._call(lambda api: api.Opportunity.update(update.opportunity_id, fields))

    def write_back_many(self, updates: Sequence[CrmStatusUpdate]) -> list[HandoffError | None]:
        """Write back in sObject Collections calls of 200; one outcome per update, in order
        (None = saved). A call refused as a whole marks its updates and all later ones with
        that error, and nothing after it is sent."""
        outcomes: list[HandoffError | None] = []
        for start in range(0, len(updates), COLLECTION_LIMIT):
            try:
                outcomes += self._update_collection(updates[start:start + COLLECTION_LIMIT])
            except HandoffError as exc:
                return outcomes + [exc] * (len(updates) - len(outcomes))
        return outcomes

    # --- reading changes ------------------------------------------------------------------

    def changed_opportunities(self, since: datetime) -> Iterator[dict[str, Any]]:
        """Canonical event data of every opportunity modified after `since`, oldest first."""
        for record in self._changed("Opportunity", self._fields("opportunity", OPPORTUNITY_FIELDS), since):
            yield self._opportunity(record)

    def changed_accounts(self, since: datetime) -> Iterator[dict[str, Any]]:
        """Canonical customer event data of every account modified after `since`."""
        for record in self._changed("Account", self._fields("customer", ACCOUNT_FIELDS), since):
            yield self._customer(record)

    # --- reconciliation -------------------------------------------------------------------

    def deal_figures(self) -> Iterator[DealFigures]:
        """Every opportunity's sale and billing figures, by one paged SOQL query."""
        for record in self._query_all(f"SELECT {', '.join(FIGURE_FIELDS)} FROM Opportunity ORDER BY Id"):
            yield deal_figures(record)

    def get_opportunity(self, opportunity_id: str) -> dict[str, Any]:
        """The opportunity as Salesforce holds it, every field (no `attributes`)."""
        record = self._call(lambda api: api.Opportunity.get(opportunity_id))
        return {k: v for k, v in record.items() if k != "attributes"}

    def get_account(self, account_id: str) -> dict[str, Any]:
        record = self._call(lambda api: api.Account.get(account_id))
        return {k: v for k, v in record.items() if k != "attributes"}

    def opportunity_event_data(self, opportunity_id: str) -> dict[str, Any]:
        """One opportunity as canonical event data (one REST GET)."""
        return self._opportunity(self.get_opportunity(opportunity_id))

    def customer_event_data(self, account_id: str) -> dict[str, Any]:
        return self._customer(self.get_account(account_id))

    def _opportunity(self, record: Mapping[str, Any]) -> dict[str, Any]:
        return self.settings.field_map.apply("opportunity", record, opportunity_event_data(record))

    def _customer(self, record: Mapping[str, Any]) -> dict[str, Any]:
        return self.settings.field_map.apply("customer", record, customer_event_data(record))

    def _fields(self, obj: str, built_in: Sequence[str]) -> list[str]:
        return list(dict.fromkeys([*built_in, *self.settings.field_map.sources(obj)]))

    # --- seeding (demos and tests) --------------------------------------------------------

    def create_opportunity(self, fields: Mapping[str, Any]) -> str:
        """Create from Salesforce fields (see mapping.opportunity_record); returns the id."""
        return self._create("Opportunity", fields)

    def create_account(self, fields: Mapping[str, Any]) -> str:
        """Create from Salesforce fields (see mapping.account_record); returns the id."""
        return self._create("Account", fields)

    def update_opportunity(self, opportunity_id: str, fields: Mapping[str, Any]) -> None:
        self._call(lambda api: api.Opportunity.update(opportunity_id, dict(fields)))

    def update_account(self, account_id: str, fields: Mapping[str, Any]) -> None:
        self._call(lambda api: api.Account.update(account_id, dict(fields)))

    # --- plumbing -------------------------------------------------------------------------

    def _create(self, sobject: str, fields: Mapping[str, Any]) -> str:
        result = self._call(lambda api: getattr(api, sobject).create(dict(fields)))
        return str(result["id"])

    def _update_collection(self, updates: Sequence[CrmStatusUpdate]) -> list[HandoffError | None]:
        records = [
            {"attributes": {"type": "Opportunity"}, "id": u.opportunity_id} | write_back_fields(u)
            for u in updates
        ]
        body = {"allOrNone": False, "records": records}
        results = self._call(
            lambda api: api.restful("composite/sobjects", method="PATCH", json=body)
        )
        return [None if r.get("success") else record_error(r.get("errors", [])) for r in results]

    def _changed(self, sobject: str, fields: Sequence[str], since: datetime) -> Iterator[dict]:
        return self._query_all(f"SELECT {', '.join(fields)} FROM {sobject} "
                               f"WHERE SystemModstamp > {soql_datetime(since)} ORDER BY SystemModstamp ASC")

    def _query_all(self, soql: str) -> Iterator[dict]:
        """Every record of a query, page by page (`nextRecordsUrl` until `done`)."""
        page = self._call(lambda api: api.query(soql))
        yield from page["records"]
        while not page["done"]:
            next_url = page["nextRecordsUrl"]
            page = self._call(lambda api, url=next_url: api.query_more(url, identifier_is_url=True))
            yield from page["records"]

    def _call(self, operation: Callable[[Salesforce], T]) -> T:
        """Run one SDK call; every vendor error leaves here translated. An expired session is
        renewed once when the connector logs in itself."""
        with self._limiter.slot():  # a ThrottledError raised in it slows the connector down
            try:
                api = self._client()
                try:
                    return operation(api)
                except SalesforceExpiredSession:
                    if not self.settings.logs_in:
                        raise
                    return operation(self._renew(api))
            except (SalesforceError, requests.RequestException) as exc:
                raise translate(exc, self._session.retry_after) from exc

    def _client(self) -> Salesforce:
        with self._lock:
            if self._api is None:
                self._api = self._connect()
            return self._api

    def _renew(self, expired: Salesforce) -> Salesforce:
        with self._lock:
            if self._api is expired:  # another thread may have renewed it already
                self._api = self._connect()
            return self._api

    def _connect(self) -> Salesforce:
        s = self.settings
        options: dict[str, Any] = {"session": self._session, "version": s.api_version,
                                   "parse_float": Decimal, "object_pairs_hook": dict}
        if not s.logs_in:
            return Salesforce(session_id=s.session_id, instance_url=s.instance_url, **options)
        session_id, instance = SalesforceLogin(
            username=s.username, password=s.password, security_token=s.security_token,
            sf_version=s.api_version, session=self._session,
            scratch_url=s.instance_url.rstrip("/"),
        )
        return Salesforce(session_id=session_id, instance=instance, **options)


def soql_datetime(moment: datetime) -> str:
    """A SOQL datetime literal. SOQL takes whole seconds: flooring re-reads at most a second
    of changes and never misses one."""
    if moment.tzinfo is None:
        raise ValueError("a naive datetime is ambiguous; give a timezone")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
