"""The Oracle twin's records: dicts by Oracle's numeric id (PartyId, ProjectId,
CustomerTransactionId), one id sequence for all, with a version per record for its ETag
(changeIndicator).

Handlers run on one event loop and never await in the middle of a write, so no lock is
needed. `Upsert-Mode: true` matches on the resource's upsert keys in order (the primary key,
then alternate keys such as SourceSystem + SourceSystemReferenceValue); ⚠ which keys a real
pod matches on is unconfirmed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from handoff.connectors.oracle import twin_transactions
from handoff.connectors.oracle.twin_schema import (
    INVALID,
    RESOURCES,
    Resource,
    TwinFault,
    clean_body,
    require,
)

FIRST_ID = 300100170000000
Record = dict[str, Any]
DOCUMENTS = (twin_transactions.INVOICES, twin_transactions.CREDIT_MEMOS)


def not_found(resource: Resource, key: str) -> TwinFault:
    return TwinFault(404, f"The requested resource {resource.name} with key {key} was not found.")


class Store:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._records: dict[str, dict[int, Record]] = {name: {} for name in RESOURCES}
        self._versions: dict[int, int] = {}
        self._next_id = FIRST_ID
        self._numbers: Counter[str] = Counter()

    # --- reads ------------------------------------------------------------------------------

    def items(self, name: str) -> list[Record]:
        return list(self._records[name].values())

    def get(self, name: str, key: str) -> Record:
        """`key` as the URL names the item (PartyNumber for accounts, else the numeric id)."""
        resource = RESOURCES[name]
        if resource.key == "PartyNumber":
            record = next((r for r in self.items(name) if r["PartyNumber"] == key), None)
        else:
            record = self._records[name].get(int(key)) if key.isdigit() else None
        if record is None:
            raise not_found(resource, key)
        return record

    def etag(self, record: Record) -> str:
        return f"ACED0005737200136A6176612E7574696C2E{self._versions[_id_of(record)]:08X}"

    # --- writes -----------------------------------------------------------------------------

    def create(self, name: str, body: Mapping[str, Any]) -> Record:
        resource = RESOURCES[name]
        values = {k: v for k, v in clean_body(resource, body, patch=False).items() if v is not None}
        require(resource, values)
        self._check_unique(resource, values, None)
        return self._store(name, self._opened(name, values))

    def upsert(self, name: str, body: Mapping[str, Any]) -> tuple[Record, bool]:
        """POST with Upsert-Mode: update the row the payload's keys find, or create."""
        resource = RESOURCES[name]
        current = self._match(resource, body)
        if current is None:
            return self.create(name, body), True
        changes = {k: v for k, v in body.items() if v != current.get(k) and k not in resource.children}
        for child, rows in body.items():
            if child in resource.children and not _rows_held(rows, current.get(child) or []):
                raise TwinFault(400, f"An upsert that updates cannot change {child}; use the child "
                                "resource.", f"/{child}", INVALID)
        return self.update(name, self._url_key(resource, current), changes, None), False

    def update(self, name: str, key: str, body: Mapping[str, Any], if_match: str | None) -> Record:
        resource = RESOURCES[name]
        current = self.get(name, key)
        if if_match not in (None, "*", self.etag(current)):
            raise TwinFault(412, "The resource has changed since it was read.",
                            headers={"ETag": self.etag(current)})
        changes = clean_body(resource, body, patch=True)
        record = {k: v for k, v in (current | changes).items() if v is not None}
        require(resource, record)
        self._check_unique(resource, record, current)
        if name in DOCUMENTS:
            record = twin_transactions.changed(current, changes, self._new_id)
        record["LastUpdateDate"] = _now()
        return self._store(name, record)

    def delete(self, name: str, key: str) -> None:
        record = self.get(name, key)
        if record.get("InvoiceStatus") == twin_transactions.COMPLETE:
            raise TwinFault(400, "You can't delete a complete transaction.", code=INVALID)
        del self._records[name][_id_of(record)]

    def receipt(self, transaction_id: int, amount: Decimal) -> Record:
        current = self._records[twin_transactions.INVOICES].get(transaction_id)
        if current is None:
            raise not_found(RESOURCES[twin_transactions.INVOICES], str(transaction_id))
        record = twin_transactions.receipt(current, amount) | {"LastUpdateDate": _now()}
        return self._store(twin_transactions.INVOICES, record)

    def summary(self) -> dict[str, Any]:
        """Counts the way a reconciliation would, from the records themselves."""
        references = Counter(
            (name, *(r.get(k) for k in keys))
            for name, keys in (("accounts", ("SourceSystem", "SourceSystemReferenceValue")),
                               ("projects", ("SourceApplicationCode", "SourceProjectReference")),
                               *((d, ("CrossReference",)) for d in DOCUMENTS))
            for r in self.items(name) if all(r.get(k) for k in keys))
        per_customer = Counter(customer["PartyNumber"] for project in self.items("projects")
                               for customer in project.get("ProjectCustomers", ()))
        return {"counts": {name: len(records) for name, records in self._records.items()},
                "duplicate_references": sum(1 for held in references.values() if held > 1),
                "projects_per_customer": dict(per_customer)}

    # --- inside -----------------------------------------------------------------------------

    def _opened(self, name: str, values: Record) -> Record:
        now = _now()
        self._numbers[name] += 1
        number = self._numbers[name]
        values = values | {"CreationDate": now, "LastUpdateDate": now}
        if name == "accounts":
            return {"PartyId": self._new_id(), "PartyNumber": f"CDRM_{100000 + number}",
                    "Type": "ZCA_CUSTOMER"} | values
        if name == "projects":
            customers = [self._project_customer(n, row)
                         for n, row in enumerate(values.get("ProjectCustomers", []))]
            return {"ProjectId": self._new_id(), "ProjectNumber": f"PRJ-{10000 + number}",
                    "ProjectStatus": "Unapproved"} | values | {"ProjectCustomers": customers}
        record = twin_transactions.opened(name, values, self.items("accounts"), number - 1,
                                          datetime.now(UTC).date(), self._new_id)
        return {"CustomerTransactionId": self._new_id()} | record

    def _project_customer(self, n: int, row: Record) -> Record:
        party = next((a for a in self.items("accounts") if a["PartyNumber"] == row["PartyNumber"]),
                     None)
        if party is None:
            raise TwinFault(400, f"The party {row['PartyNumber']} doesn't exist.",
                            f"/ProjectCustomers/{n}/PartyNumber", INVALID)
        return {"ProjectPartyId": self._new_id(), "PartyId": party["PartyId"],
                "PartyNumber": party["PartyNumber"], "PartyName": party["OrganizationName"]}

    def _match(self, resource: Resource, body: Mapping[str, Any]) -> Record | None:
        for keys in resource.upsert_keys:
            if all(body.get(k) is not None for k in keys):
                found = next((r for r in self.items(resource.name)
                              if all(r.get(k) == body[k] for k in keys)), None)
                if found is not None:
                    return found
        return None

    def _check_unique(self, resource: Resource, record: Mapping[str, Any], current: Record | None) -> None:
        for keys in resource.unique_keys:
            if not all(record.get(k) is not None for k in keys):
                continue
            for other in self.items(resource.name):
                if other is not current and all(other.get(k) == record[k] for k in keys):
                    shown = ", ".join(f"{k}={record[k]}" for k in keys)
                    raise TwinFault(400, f"JBO-25013: Too many objects match the primary key "
                                    f"oracle.jbo.Key[{shown}].", code="JBO-25013")

    def _store(self, name: str, record: Record) -> Record:
        record_id = _id_of(record)
        self._records[name][record_id] = record
        self._versions[record_id] = self._versions.get(record_id, 0) + 1
        return record

    def _url_key(self, resource: Resource, record: Record) -> str:
        return str(record[resource.key])

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id


def _id_of(record: Mapping[str, Any]) -> int:
    for name in ("CustomerTransactionId", "ProjectId", "PartyId"):
        if name in record:
            return int(record[name])
    raise KeyError("record without an id")


def _rows_held(rows: Any, held: list[Record]) -> bool:
    """Every row of an upsert's child is one the record already has (by the values given)."""
    return isinstance(rows, list) and all(
        isinstance(row, Mapping) and any(all(h.get(k) == v for k, v in row.items()) for h in held)
        for row in rows)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")

