"""The HubSpot connector: handoff's CRM port, on the official SDK hubspot-api-client.

One `HubSpotConnector` is meant to be shared by every worker thread: the SDK's API objects
are made once (each owns a urllib3 pool, which is thread-safe) and the only state the
connector changes — its pacing windows and the won stages, read once — is kept under locks.

Every call passes the connector's adaptive limiter first (pacing_adaptive.py), so handoff stays
under the account's burst limit by itself (and search under its own rate gate); a 429 that
still comes back is a ThrottledError with the wait HubSpot asked for, and slows the limiter
down until successes win the budget back.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

import urllib3
from hubspot import HubSpot

from handoff.connectors.budget import BudgetOverride
from handoff.connectors.hubspot.errors import API_EXCEPTIONS, ObjectNotFound, batch_errors, translate
from handoff.connectors.hubspot.mapping import (
    DEAL_TO_PRIMARY_COMPANY,
    MODIFIED,
    company_properties_to_read,
    customer_event_data,
    deal_figures,
    deal_properties_to_read,
    figure_properties,
    ms_epoch,
    opportunity_event_data,
    parse_timestamp,
    primary_company,
    won_stages_from_pipelines,
    write_back_fields,
    write_back_properties,
)
from handoff.connectors.hubspot.settings import HubSpotSettings
from handoff.connectors.pacing import RateGate
from handoff.connectors.pacing_adaptive import AdaptiveLimiter
from handoff.connectors.ports import CrmStatusUpdate, DealFigures, RateBudget
from handoff.errors import DataError, HandoffError, PermanentError

T = TypeVar("T")

# Connection failures are retried (nothing was sent); a response cut off is not (it may have
# committed: the engine decides), and 429s are never slept on inside urllib3.
_RETRY = urllib3.Retry(total=2, connect=2, read=False, redirect=0, status=0, other=0,
                       respect_retry_after_header=False, raise_on_status=False)
_TRANSPORT_ERRORS = (*API_EXCEPTIONS, urllib3.exceptions.HTTPError, OSError)



class HubSpotConnector:
    system = "hubspot"
    budget = RateBudget(requests=190, window_seconds=10.0, concurrency=None,
                        source="HubSpot: 190 requests per 10 s per private app (Professional and "
                               "Enterprise); search 4 requests/s of its own")

    def __init__(self, settings: HubSpotSettings) -> None:
        self.settings = settings
        self.props = settings.properties
        client = HubSpot(access_token=settings.access_token, host=settings.base_url.rstrip("/"),
                         retry=_RETRY, ssl_ca_cert=settings.ca_file,
                         connection_pool_maxsize=settings.max_connections)
        crm = client.crm  # every attribute access below builds a new API client: keep them
        self._deals = crm.deals.basic_api
        self._deal_batch = crm.deals.batch_api
        self._deal_search = crm.deals.search_api
        self._companies = crm.companies.basic_api
        self._company_search = crm.companies.search_api
        self._association_batch = crm.associations.v4.batch_api
        self._associations = crm.associations.v4.basic_api
        self._pipelines = crm.pipelines.pipelines_api
        self._apis = (self._deals, self._deal_batch, self._deal_search, self._companies,
                      self._company_search, self._association_batch, self._associations,
                      self._pipelines)
        self.budget = configured_budget(settings)
        self._limiter = AdaptiveLimiter(self.budget, system=self.system)
        self._search_gate = RateGate.per_second(settings.search_requests_per_second)
        self._won = frozenset(settings.won_stages) if settings.won_stages is not None else None
        self._won_lock = threading.Lock()
        self._timeout = {"_request_timeout": settings.timeout}

    def close(self) -> None:
        for api in self._apis:
            api.api_client.close()
            api.api_client.rest_client.pool_manager.clear()

    def __enter__(self) -> HubSpotConnector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the CRM port ---------------------------------------------------------------------

    def write_back(self, update: CrmStatusUpdate) -> None:
        """Set the provisioning fields on the deal. Idempotent: a PATCH of values."""
        error = self._update_one(update)
        if error is not None:
            raise error

    def write_back_many(self, updates: Sequence[CrmStatusUpdate]) -> list[HandoffError | None]:
        """Write back in batch updates of up to 100 deals (no deal twice in one batch); one
        outcome per update, in order (None = saved). A batch refused as a whole for one
        record's fault (a value HubSpot rejects, a deal that is gone) is retried one deal at
        a time, so only that deal fails; one refused for any other reason (throttled, token)
        marks its updates and all later ones with that error, and nothing after it is sent."""
        outcomes: list[HandoffError | None] = []
        for chunk in self._chunks(updates):
            try:
                outcomes += self._update_batch(chunk)
            except HandoffError as exc:
                return outcomes + [exc] * (len(updates) - len(outcomes))
        return outcomes

    # --- reading changes ------------------------------------------------------------------

    def changed_opportunities(self, since: datetime) -> Iterator[dict[str, Any]]:
        """Canonical event data of every deal modified after `since`, oldest first."""
        properties = self._properties("opportunity", deal_properties_to_read(self.props))
        for page in self._changed(self._deal_search, properties, since):
            companies = self._companies_of([r["id"] for r in page])
            won = self.won_stages()
            for record in page:
                yield self._mapped("opportunity", record, opportunity_event_data(
                    record, companies.get(record["id"]), won, self.props))

    def changed_accounts(self, since: datetime) -> Iterator[dict[str, Any]]:
        """Canonical customer event data of every company modified after `since`."""
        properties = self._properties("customer", company_properties_to_read(self.props))
        for page in self._changed(self._company_search, properties, since):
            for record in page:
                yield self._mapped("customer", record, customer_event_data(record, self.props))

    # --- reconciliation -------------------------------------------------------------------

    def deal_figures(self) -> Iterator[DealFigures]:
        """Every deal's sale and billing figures, by the paged list of deals (100 a page)."""
        properties = figure_properties(self.props)
        after: str | None = None
        while True:
            page = self._call(lambda after=after: self._deals.get_page(
                limit=self.settings.page_size, after=after, properties=properties,
                archived=False, **self._timeout))
            won = self.won_stages()
            for obj in page.results or ():
                yield deal_figures(_record(obj), won, self.props)
            after = _next_after(page)
            if after is None:
                return

    def won_stages(self) -> frozenset[str]:
        """The deal stage ids that count as won: configured, else read once from the deal
        pipelines (closed stages with probability 1)."""
        if self._won is None:
            with self._won_lock:
                if self._won is None:
                    pipelines = self._call(lambda: self._pipelines.get_all("deals", **self._timeout))
                    self._won = won_stages_from_pipelines(
                        {"id": p.id, "stages": [{"id": s.id, "metadata": s.metadata or {}}
                                                for s in p.stages or ()]}
                        for p in pipelines.results or ())
        return self._won

    def get_opportunity(self, opportunity_id: str) -> dict[str, Any]:
        """The deal's properties as HubSpot holds them (those handoff reads and writes)."""
        properties = deal_properties_to_read(self.props) + write_back_properties(self.props)
        obj = self._call(lambda: self._deals.get_by_id(opportunity_id, properties=properties,
                                                       **self._timeout))
        return dict(obj.properties or {})

    def opportunity_event_data(self, opportunity_id: str) -> dict[str, Any]:
        """One deal as canonical event data, with its primary company (two calls)."""
        properties = self._properties("opportunity", deal_properties_to_read(self.props))
        obj = self._call(lambda: self._deals.get_by_id(opportunity_id, properties=properties,
                                                       **self._timeout))
        record = _record(obj)
        return self._mapped("opportunity", record, opportunity_event_data(
            record, self.company_of(opportunity_id), self.won_stages(), self.props))

    def customer_event_data(self, company_id: str) -> dict[str, Any]:
        properties = self._properties("customer", company_properties_to_read(self.props))
        obj = self._call(lambda: self._companies.get_by_id(company_id, properties=properties,
                                                           **self._timeout))
        record = _record(obj)
        return self._mapped("customer", record, customer_event_data(record, self.props))

    def _properties(self, obj: str, built_in: list[str]) -> list[str]:
        return list(dict.fromkeys([*built_in, *self.settings.field_map.sources(obj)]))

    def _mapped(self, obj: str, record: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        """The configured field mapping over the built-in one (connectors/fieldmap.py)."""
        return self.settings.field_map.apply(obj, record.get("properties") or {}, data)

    def company_of(self, opportunity_id: str) -> str | None:
        """The id of the deal's primary company, if it has one."""
        return self._companies_of([opportunity_id]).get(opportunity_id)

    # --- seeding (demos and tests) --------------------------------------------------------

    def create_opportunity(self, fields: Mapping[str, Any], company_id: str | None = None) -> str:
        """Create a deal from HubSpot properties (see mapping.deal_properties), as the primary
        deal of `company_id` when given; returns the id."""
        body: dict[str, Any] = {"properties": dict(fields)}
        if company_id:
            body["associations"] = [{"to": {"id": company_id}, "types": [
                {"associationCategory": "HUBSPOT_DEFINED",
                 "associationTypeId": DEAL_TO_PRIMARY_COMPANY}]}]
        obj = self._call(lambda: self._deals.create(body, **self._timeout))
        return str(obj.id)

    def create_account(self, fields: Mapping[str, Any]) -> str:
        """Create a company from HubSpot properties (see mapping.company_properties)."""
        body = {"properties": dict(fields)}
        return str(self._call(lambda: self._companies.create(body, **self._timeout)).id)

    def update_opportunity(self, opportunity_id: str, fields: Mapping[str, Any]) -> None:
        body = {"properties": dict(fields)}
        self._call(lambda: self._deals.update(opportunity_id, body, **self._timeout))

    def update_account(self, account_id: str, fields: Mapping[str, Any]) -> None:
        body = {"properties": dict(fields)}
        self._call(lambda: self._companies.update(account_id, body, **self._timeout))

    def associate(self, opportunity_id: str, company_id: str) -> None:
        """Associate the deal with the company (HubSpot's default, unlabelled association)."""
        self._call(lambda: self._associations.create_default(
            "deals", opportunity_id, "companies", company_id, **self._timeout))

    # --- plumbing -------------------------------------------------------------------------

    def _chunks(self, updates: Sequence[CrmStatusUpdate]) -> Iterator[list[CrmStatusUpdate]]:
        """Consecutive batches of at most batch_size updates, none naming a deal twice (a
        later update of the same deal starts the next batch, so order is kept)."""
        chunk: list[CrmStatusUpdate] = []
        ids: set[str] = set()
        for update in updates:
            if len(chunk) == self.settings.batch_size or update.opportunity_id in ids:
                yield chunk
                chunk, ids = [], set()
            chunk.append(update)
            ids.add(update.opportunity_id)
        if chunk:
            yield chunk

    def _update_batch(self, chunk: Sequence[CrmStatusUpdate]) -> list[HandoffError | None]:
        inputs = [{"id": u.opportunity_id, "properties": write_back_fields(u, self.props)}
                  for u in chunk]
        try:
            response = self._call(lambda: self._deal_batch.update({"inputs": inputs}, **self._timeout))
        except (DataError, ObjectNotFound) as exc:
            if len(chunk) == 1:
                return [exc]
            return [self._update_one(u) for u in chunk]
        saved = {str(obj.id) for obj in response.results or ()}
        failed: dict[str, HandoffError] = {}
        errors = batch_errors(getattr(response, "errors", None) or ())
        for ids, error in errors:
            for deal_id in ids:
                failed.setdefault(deal_id, error)
        unexplained = errors[0][1] if errors else PermanentError(
            "the deal is missing from HubSpot's batch result", system=self.system)
        return [failed.get(u.opportunity_id) or (None if u.opportunity_id in saved else unexplained)
                for u in chunk]

    def _update_one(self, update: CrmStatusUpdate) -> HandoffError | None:
        body = {"properties": write_back_fields(update, self.props)}
        try:
            self._call(lambda: self._deals.update(update.opportunity_id, body, **self._timeout))
        except HandoffError as exc:
            return exc
        return None

    def _changed(self, search_api: Any, properties: list[str],
                 since: datetime) -> Iterator[list[dict[str, Any]]]:
        """Pages of the objects modified after `since`, oldest first, none twice.

        Keyset paging: each page is a new search from the newest modification date read so far
        (GTE, skipping the objects already read at that millisecond), so an object edited while
        the feed is read cannot shift an unread one out of an offset page, and no query comes
        near the search's result cap. Only a page wholly within one millisecond is continued
        with HubSpot's `after` cursor."""
        floor, operator = ms_epoch(since), "GT"
        seen_at_floor: set[str] = set()
        after: str | None = None
        while True:
            body: dict[str, Any] = {
                "filterGroups": [{"filters": [
                    {"propertyName": MODIFIED, "operator": operator, "value": str(floor)}]}],
                "sorts": [{"propertyName": MODIFIED, "direction": "ASCENDING"}],
                "properties": properties, "limit": self.settings.page_size,
            }
            if after is not None:
                body["after"] = after
            page = self._call(lambda body=body: search_api.do_search(body, **self._timeout),
                              search=True)
            records = [_record(obj) for obj in page.results or ()]
            fresh = [r for r in records if not (_stamp(r) == floor and r["id"] in seen_at_floor)]
            if fresh:
                yield fresh
            after = _next_after(page)
            if after is None or not records:
                return
            newest = _stamp(records[-1])
            if newest > floor:
                floor, operator, after = newest, "GTE", None
                seen_at_floor = {r["id"] for r in records if _stamp(r) == newest}
            else:
                seen_at_floor |= {r["id"] for r in records}
                if after.isdigit() and int(after) >= self.settings.search_result_cap:
                    raise PermanentError(
                        f"more than {self.settings.search_result_cap} objects share the "
                        f"modification time {floor} ms; the search cannot page through them",
                        system=self.system)

    def _companies_of(self, deal_ids: Sequence[str]) -> dict[str, str]:
        """Each deal's primary company, by one v4 batch read of deal→company associations
        (deals without a company are left out)."""
        if not deal_ids:
            return {}
        body = {"inputs": [{"id": deal_id} for deal_id in deal_ids]}
        response = self._call(lambda: self._association_batch.get_page(
            "deals", "companies", body, **self._timeout))
        companies = {}
        for result in response.results or ():
            targets = [{"toObjectId": t.to_object_id,
                        "associationTypes": [{"typeId": a.type_id} for a in t.association_types or ()]}
                       for t in result.to or ()]
            company = primary_company(targets)
            if company is not None:
                companies[str(result._from.id)] = company
        return companies

    def _call(self, operation: Callable[[], T], search: bool = False) -> T:
        """Run one SDK call after its pacing gates; every vendor error leaves here translated."""
        if search:
            self._search_gate.wait()
        with self._limiter.slot():
            try:
                return operation()
            except _TRANSPORT_ERRORS as exc:
                raise translate(exc) from exc


def configured_budget(settings: HubSpotSettings) -> RateBudget:
    """HubSpot's published budget, under the older pacing keys where set, under
    `[systems.hubspot.budget]` where set."""
    older = BudgetOverride(requests=settings.requests_per_window, window_seconds=settings.window_seconds)
    return settings.budget.applied_to(older.applied_to(HubSpotConnector.budget, "hubspot"), "hubspot")


def _record(obj: Any) -> dict[str, Any]:
    """An SDK object model as the wire object mapping reads."""
    return {"id": str(obj.id), "properties": dict(obj.properties or {}),
            "updatedAt": getattr(obj, "updated_at", None)}


def _stamp(record: Mapping[str, Any]) -> int:
    value = record["properties"].get(MODIFIED) or record.get("updatedAt")
    return ms_epoch(parse_timestamp(value))


def _next_after(page: Any) -> str | None:
    paging = getattr(page, "paging", None)
    following = getattr(paging, "next", None) if paging is not None else None
    after = getattr(following, "after", None) if following is not None else None
    return str(after) if after else None
