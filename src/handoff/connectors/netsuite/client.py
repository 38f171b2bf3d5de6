"""NetSuiteConnector: handoff's ErpConnector over NetSuite's REST record service.

Writes are `PUT /record/v1/<type>/eid:<externalId>` upserts: one call, and a call repeated
after a lost response leaves exactly one record. The internal id comes from `Location`;
NetSuite does not document `Location` on PUT, so when it is absent the record is read back
by external id.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx

from handoff.connectors.netsuite import exact_json
from handoff.connectors.netsuite.errors import SYSTEM, is_missing_record, translate
from handoff.connectors.netsuite.mapping import checked_external_id, customer_body, project_body
from handoff.connectors.netsuite.settings import NetSuiteSettings
from handoff.connectors.ports import UpsertResult
from handoff.domain import Customer, Project
from handoff.errors import TransientError

__all__ = ["NetSuiteConnector", "NetSuiteSettings"]


class NetSuiteConnector:
    """One keep-alive `httpx.Client`, safe to share between worker threads."""

    system = SYSTEM

    def __init__(
        self, settings: NetSuiteSettings, *, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.settings = settings
        self._http = httpx.Client(
            base_url=settings.base_url.rstrip("/") + "/",
            headers={"Authorization": f"Bearer {settings.token}", "Accept": "application/json"},
            timeout=settings.timeout,
            limits=httpx.Limits(max_connections=settings.max_connections,
                                max_keepalive_connections=settings.max_connections),
            transport=transport,
        )

    def upsert_customer(self, external_id: str, customer: Customer) -> UpsertResult:
        body = customer_body(external_id, customer, self.settings)
        return self._upsert("customer", external_id, body)

    def upsert_project(self, project: Project, customer_target_id: str) -> UpsertResult:
        body = project_body(project, customer_target_id, self.settings)
        return self._upsert("job", project.external_id, body)

    def get_customer(self, external_id: str) -> dict[str, Any] | None:
        return self._find("customer", external_id)

    def get_project(self, external_id: str) -> dict[str, Any] | None:
        return self._find("job", external_id)

    def list_ids(self, record_type: str) -> Iterator[str]:
        """Every internal id of a record type, page by page (offset += count while hasMore)."""
        offset = 0
        while True:
            params = {"limit": self.settings.page_size, "offset": offset}
            page = self._read(self._request("GET", f"record/v1/{record_type}", params=params))
            yield from (item["id"] for item in page["items"])
            if not page["hasMore"]:
                return
            offset += page["count"]

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> NetSuiteConnector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _upsert(self, record_type: str, external_id: str, body: dict[str, Any]) -> UpsertResult:
        response = self._request("PUT", _by_external_id(record_type, external_id),
                                 content=exact_json.dumps(body),
                                 headers={"Content-Type": "application/json"})
        target_id = _id_from_location(response) or self._id_by_external_id(record_type, external_id)
        # NetSuite answers 204 whether the upsert created or updated: `created` stays unknown.
        return UpsertResult(target_id)

    def _id_by_external_id(self, record_type: str, external_id: str) -> str:
        record = self._find(record_type, external_id)
        if record is None:
            raise TransientError(f"{record_type} {external_id} accepted but not readable yet",
                                 system=SYSTEM)
        return str(record["id"])

    def _find(self, record_type: str, external_id: str) -> dict[str, Any] | None:
        response = self._request("GET", _by_external_id(record_type, external_id),
                                 missing_ok=True)
        return None if response.is_error else self._read(response)

    def _request(
        self, method: str, path: str, *, missing_ok: bool = False, **options: Any
    ) -> httpx.Response:
        """One call; every failure leaves as a handoff error. `missing_ok`: a 404
        NONEXISTENT_ID is returned as an answer instead of raised."""
        try:
            response = self._http.request(method, path, **options)
            if not (missing_ok and is_missing_record(response)):
                response.raise_for_status()
        except httpx.HTTPError as exc:
            raise translate(exc) from exc
        return response

    @staticmethod
    def _read(response: httpx.Response) -> dict[str, Any]:
        return exact_json.loads(response.content)


def _by_external_id(record_type: str, external_id: str) -> str:
    return f"record/v1/{record_type}/eid:{checked_external_id(external_id)}"


def _id_from_location(response: httpx.Response) -> str | None:
    """The internal id ending `Location` (absolute or, as some tutorials show, a bare path)."""
    path = httpx.URL(response.headers.get("Location", "")).path.rstrip("/")
    internal_id = path.rsplit("/", 1)[-1]
    return internal_id if internal_id.isdigit() else None
