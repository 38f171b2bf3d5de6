"""The NetSuite twin's records: dicts indexed by internal id and by external id.

Handlers run on one event loop and never await in the middle of a write, so no lock is
needed. NetSuite numbers entities (customers, jobs) in one id sequence and transactions in
another; the twin uses one for all, so an internal id names one record whatever its type.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from handoff.connectors.netsuite.twin_schema import (
    PREFIX,
    RECORD_TYPES,
    REFERENCE_RECORDS,
    SELECT_LISTS,
    TRANSACTION_TYPES,
    WRITABLE_TYPES,
    TwinFault,
    check_external_id,
    clean_body,
    invalid_value,
    references_in,
    require_values,
)
from handoff.connectors.netsuite.twin_transactions import FIRST_NUMBER, opened, settled

FIRST_ENTITY_ID = 100
ENTITY_TYPES = ("customer", "job")
Record = dict[str, Any]


def not_found() -> TwinFault:
    return TwinFault(404, "NONEXISTENT_ID", "The record instance does not exist. "
                     "Provide a valid record instance ID.")


class RecordStore:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._records: dict[str, dict[str, Record]] = {name: {} for name in RECORD_TYPES}
        self._ids_by_external_id: dict[str, dict[str, str]] = {name: {} for name in RECORD_TYPES}
        self._next_id = FIRST_ENTITY_ID
        self._numbers: Counter[str] = Counter()  # records created, by type (for tranIds)
        for name, rows in REFERENCE_RECORDS.items():
            self._records[name] = {row["id"]: dict(row) for row in rows}

    def read(self, type_name: str, key: str) -> Record:
        """`key` is an internal id or `eid:<externalId>`."""
        if key.startswith("eid:"):
            key = self._ids_by_external_id[type_name].get(key[4:], "")
        record = self._records[type_name].get(key)
        if record is None:
            raise not_found()
        return record

    def records(self, type_name: str) -> list[Record]:
        return list(self._records[type_name].values())

    def create(self, type_name: str, body: Mapping[str, Any]) -> str:
        return self._write(type_name, None, body)

    def update(self, type_name: str, key: str, body: Mapping[str, Any]) -> str:
        return self._write(type_name, self.read(type_name, key), body)

    def upsert(self, type_name: str, external_id: str, body: Mapping[str, Any]) -> str:
        """PUT …/eid:<externalId>: update the holder of the external id, or create it."""
        check_external_id(external_id)
        if body.get("externalId", external_id) != external_id:
            raise invalid_value("externalId", body["externalId"])
        holder = self._ids_by_external_id[type_name].get(external_id)
        current = self._records[type_name][holder] if holder else None
        return self._write(type_name, current, {**body, "externalId": external_id})

    def delete(self, type_name: str, key: str) -> None:
        record = self.read(type_name, key)
        if self._has_dependents(type_name, record["id"]):
            raise TwinFault(400, "USER_ERROR", f"{PREFIX}This record cannot be deleted because "
                            "it has dependent records.")
        del self._records[type_name][record["id"]]
        self._ids_by_external_id[type_name].pop(record.get("externalId"), None)

    def ref_name(self, target: str, internal_id: str) -> str:
        if target in SELECT_LISTS:
            return SELECT_LISTS[target][internal_id]
        record = self._records[target][internal_id]
        names = ("name", "entityId", "itemId", "tranId")
        return str(next((record[name] for name in names if record.get(name)), ""))

    def summary(self) -> dict[str, Any]:
        """Counts the way a reconciliation would, from the records, not from the indexes."""
        holders = {name: Counter(r["externalId"] for r in self.records(name) if "externalId" in r)
                   for name in WRITABLE_TYPES}
        return {
            "counts": {name: len(self._records[name]) for name in ENTITY_TYPES},
            "transactions": {name: len(self._records[name]) for name in TRANSACTION_TYPES},
            "duplicate_external_ids": sum(1 for counts in holders.values()
                                          for held in counts.values() if held > 1),
            "jobs_per_parent": dict(Counter(job["parent"] for job in self.records("job"))),
        }

    def _write(self, type_name: str, current: Record | None, body: Mapping[str, Any]) -> str:
        record_type = WRITABLE_TYPES[type_name]
        values = clean_body(record_type, body, self._resolve)
        record = {k: v for k, v in {**(current or {}), **values}.items() if v is not None}
        require_values(record_type, record)
        self._check_external_id_free(type_name, record.get("externalId"), current)
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if current is None:
            record = self._with_defaults(type_name, record) | {"dateCreated": now}
        if type_name in TRANSACTION_TYPES:
            record = settled(type_name, record, self._records, now)
        if current is None:  # numbered once nothing can refuse it: no gaps in tranIds
            record["id"] = self._new_id()
            self._numbers[type_name] += 1
        record["lastModifiedDate"] = now
        self._store(type_name, record, current)
        return record["id"]

    def _with_defaults(self, type_name: str, record: Record) -> Record:
        """What NetSuite fills in on create; a job takes its customer's currency and subsidiary."""
        if type_name in TRANSACTION_TYPES:
            number = FIRST_NUMBER + self._numbers[type_name]
            return opened(type_name, record, self._records, number, datetime.now(UTC).date())
        if type_name == "job":
            parent = self._records["customer"][record["parent"]]
            defaults = {"altName": record["companyName"], "entityStatus": "2",
                        "subsidiary": parent["subsidiary"], "currency": parent["currency"]}
        else:
            defaults = {"isPerson": False, "entityStatus": "13", "subsidiary": "1", "currency": "1"}
        return {"entityId": record["companyName"], **defaults, **record}

    def _check_external_id_free(self, type_name: str, external_id: str | None,
                                current: Record | None) -> None:
        holder = self._ids_by_external_id[type_name].get(external_id or "")
        if holder is not None and (current is None or holder != current["id"]):
            raise TwinFault(400, "USER_ERROR", f"{PREFIX}This entity already exists.")

    def _store(self, type_name: str, record: Record, current: Record | None) -> None:
        index = self._ids_by_external_id[type_name]
        if current is not None:
            index.pop(current.get("externalId"), None)
        if "externalId" in record:
            index[record["externalId"]] = record["id"]
        self._records[type_name][record["id"]] = record

    def _new_id(self) -> str:
        self._next_id += 1
        return str(self._next_id)

    def _resolve(self, target: str, reference: Mapping[str, Any]) -> str | None:
        """`{"id": …}`, or `{"externalId": …}` for record types."""
        if "id" in reference:
            internal_id = str(reference["id"])
        elif target in self._ids_by_external_id:
            internal_id = self._ids_by_external_id[target].get(str(reference.get("externalId")))
        else:
            return None
        known = SELECT_LISTS.get(target) or self._records[target]
        return internal_id if internal_id in known else None

    def _has_dependents(self, type_name: str, internal_id: str) -> bool:
        return any(internal_id in references_in(other, record, type_name)
                   for other in WRITABLE_TYPES.values()
                   for record in self._records[other.name].values())
