"""The sandbox org's records: one table per sObject, indexed by Id and by external-ID value,
so every single-record operation costs the same however many records the org holds.

The twin serves requests on one event loop and no write awaits mid-way, so no locks are needed.
"""

from __future__ import annotations

import itertools
import string
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from handoff.connectors.salesforce.twin_schema import (
    SANDBOX_USER_ID,
    SOBJECTS,
    SalesforceApiError,
    SObjectType,
    format_datetime,
    not_found,
    sobject_type,
)

_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
_SUFFIX_CHARS = string.ascii_uppercase + "012345"
_POD = "RO0"

ROLLED_BACK = SalesforceApiError(
    "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "Record rolled back because not all records were valid and the request was using "
    "AllOrNone header",
)


def salesforce_id(key_prefix: str, number: int) -> str:
    """An 18-character id: key prefix, pod, a base-62 counter and the case-safe suffix."""
    digits = ""
    while number:
        number, rest = divmod(number, 62)
        digits = _BASE62[rest] + digits
    return case_safe_id(key_prefix + _POD + digits.rjust(9, "0"))


def case_safe_id(id15: str) -> str:
    """The 18-character form: a suffix that keeps ids apart in case-insensitive tools."""
    suffix = ""
    for start in (0, 5, 10):
        bits = sum(1 << i for i, ch in enumerate(id15[start:start + 5]) if ch.isupper())
        suffix += _SUFFIX_CHARS[bits]
    return id15 + suffix


class ModstampClock:
    """Millisecond stamps that strictly increase, even for writes within one millisecond."""

    def __init__(self) -> None:
        self._last = datetime.min.replace(tzinfo=UTC)

    def tick(self) -> datetime:
        now = datetime.now(UTC)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        self._last = max(now, self._last + timedelta(milliseconds=1))
        return self._last


class MultipleMatches(SalesforceApiError):
    """Several records carry the external-ID value: REST answers 300 with their URLs."""

    def __init__(self, sobject_name: str, field_name: str, record_ids: list[str]) -> None:
        super().__init__(
            "DUPLICATE_EXTERNAL_ID",
            f"{field_name}: more than one record found for external id field: {record_ids}",
            [field_name],
            status=300,
        )
        self.sobject_name = sobject_name
        self.record_ids = record_ids


@dataclass(frozen=True, slots=True)
class Write:
    """One saved record and what it looked like before, so a batch can be rolled back."""

    table: Table
    record_id: str
    created: bool
    before: dict[str, Any] | None


class Table:
    def __init__(self, sobject: SObjectType, store: RecordStore) -> None:
        self.sobject = sobject
        self.store = store
        self.live: dict[str, dict[str, Any]] = {}
        self.deleted: dict[str, dict[str, Any]] = {}
        self._external: dict[str, dict[str, set[str]]] = {
            f.name: {} for f in sobject.fields.values() if f.external_id
        }

    def get(self, record_id: str) -> dict[str, Any]:
        if record_id in self.live:
            return self.live[record_id]
        if record_id in self.deleted:
            raise SalesforceApiError("ENTITY_IS_DELETED", "entity is deleted", status=404)
        if len(record_id) not in (15, 18) or not record_id.startswith(self.sobject.key_prefix):
            raise SalesforceApiError(
                "MALFORMED_ID", f"{self.sobject.name} ID: id value of incorrect type: "
                f"{record_id}", ["Id"],
            )
        raise not_found()

    def external_field(self, name: str) -> str:
        f = self.sobject.field(name)
        if f is None:
            raise not_found()
        if not f.external_id:
            raise SalesforceApiError(
                "INVALID_FIELD", f"Field {f.name} is not an External ID or indexed field", [f.name]
            )
        return f.name

    def matching(self, field_name: str, value: str) -> list[str]:
        return sorted(self._external[field_name].get(value.casefold(), ()))

    def records(self, include_deleted: bool = False) -> Iterator[dict[str, Any]]:
        yield from self.live.values()
        if include_deleted:
            yield from self.deleted.values()

    def create(self, body: Mapping[str, Any]) -> Write:
        changes = self._checked_changes(body)
        blank = {name: None for name in self.sobject.fields} | dict(self.sobject.defaults)
        record = self._completed(blank | changes)
        record_id = salesforce_id(self.sobject.key_prefix, next(self.store.numbers))
        record["Id"], record["IsDeleted"] = record_id, False
        record["CreatedDate"] = self._stamp(record)
        self._put(record_id, None, record)
        return Write(self, record_id, True, None)

    def update(self, record_id: str, body: Mapping[str, Any]) -> Write:
        before = self.get(record_id)
        self.store.check_contention(record_id)
        record = self._completed(before | self._checked_changes(body))
        self._stamp(record)
        self._put(record_id, before, record)
        return Write(self, record_id, False, before)

    def upsert(self, field_name: str, body: Mapping[str, Any], update_only: bool = False) -> Write:
        """Create or update the record whose `field_name` equals the body's value for it."""
        value = body.get(field_name)
        if not isinstance(value, str) or not value:
            raise SalesforceApiError(
                "MISSING_ARGUMENT", f"{field_name} not specified in an upsert call", [field_name]
            )
        ids = self.matching(field_name, value)
        if len(ids) > 1:
            raise MultipleMatches(self.sobject.name, field_name, ids)
        if ids:
            return self.update(ids[0], body)
        if update_only:
            raise not_found()
        return self.create(body)

    def delete(self, record_id: str) -> None:
        before = self.get(record_id)
        self.store.check_contention(record_id)
        record = before | {"IsDeleted": True}
        self._stamp(record)
        self._put(record_id, before, None)
        self.deleted[record_id] = record

    def undo(self, write: Write) -> None:
        after = self.live.get(write.record_id)
        self._unindex(write.record_id, after)
        if write.before is None:
            del self.live[write.record_id]
        else:
            self.live[write.record_id] = write.before
            self._index(write.record_id, write.before)

    def _checked_changes(self, body: Mapping[str, Any]) -> dict[str, Any]:
        changes = self.sobject.writable_values(body)
        for name, value in changes.items():
            referenced = self.sobject.fields[name].references
            if value is not None and not self.store.exists(referenced, value):
                raise SalesforceApiError(
                    "INVALID_CROSS_REFERENCE_KEY", f"invalid cross reference id: {value}", [name]
                )
        return changes

    def _completed(self, record: dict[str, Any]) -> dict[str, Any]:
        if self.sobject.derive:
            record |= self.sobject.derive(record)
        missing = self.sobject.missing_required(record)
        if missing:
            raise missing
        return record

    def _stamp(self, record: dict[str, Any]) -> datetime:
        stamp = self.store.clock.tick()
        record["LastModifiedDate"] = record["SystemModstamp"] = stamp
        record["LastModifiedById"] = SANDBOX_USER_ID  # every API session is the sandbox user
        return stamp

    def _put(self, record_id: str, before: dict[str, Any] | None, after: dict[str, Any] | None):
        self._unindex(record_id, before)
        if after is None:
            del self.live[record_id]
            return
        self.live[record_id] = after
        self._index(record_id, after)

    def _index(self, record_id: str, record: Mapping[str, Any]) -> None:
        for name, index in self._external.items():
            if record.get(name):
                index.setdefault(record[name].casefold(), set()).add(record_id)

    def _unindex(self, record_id: str, record: Mapping[str, Any] | None) -> None:
        for name, index in self._external.items():
            if record and record.get(name):
                index.get(record[name].casefold(), set()).discard(record_id)


class RecordStore:
    """Every table of the org, the id counter and the modification clock they share."""

    def __init__(self, contention: Callable[[], bool] = lambda: False) -> None:
        self.clock = ModstampClock()
        self.numbers = itertools.count(1)
        self.contention = contention
        self.tables = {name: Table(sobject, self) for name, sobject in SOBJECTS.items()}
        self._by_prefix = {t.sobject.key_prefix: t for t in self.tables.values()}

    def table(self, sobject_name: str) -> Table:
        return self.tables[sobject_type(sobject_name).name]

    def exists(self, key_prefix: str, record_id: str) -> bool:
        """References to sObjects the twin does not model (users) only need the right shape."""
        table = self._by_prefix.get(key_prefix)
        return table is None or record_id in table.live

    def check_contention(self, record_id: str) -> None:
        if self.contention():
            raise SalesforceApiError(
                "UNABLE_TO_LOCK_ROW",
                f"unable to obtain exclusive access to this record or 1 records: {record_id}",
            )

    def run_batch(
        self, steps: Sequence[Callable[[], Write]], all_or_none: bool
    ) -> list[Write | SalesforceApiError]:
        """Run each step in order; with all_or_none, the first refusal undoes the rest."""
        outcomes: list[Write | SalesforceApiError] = []
        for step in steps:
            try:
                outcomes.append(step())
            except SalesforceApiError as exc:
                if all_or_none:
                    self._undo(o for o in reversed(outcomes) if isinstance(o, Write))
                    return [exc if i == len(outcomes) else ROLLED_BACK for i in range(len(steps))]
                outcomes.append(exc)
        return outcomes

    def _undo(self, writes: Iterable[Write]) -> None:
        for write in writes:
            write.table.undo(write)


def render(
    sobject: SObjectType, record: Mapping[str, Any], fields: Iterable[str], api_version: str
) -> dict[str, Any]:
    """A record as the REST API answers it: `attributes` first, then the asked fields."""
    url = f"/services/data/v{api_version}/sobjects/{sobject.name}/{record['Id']}"
    out: dict[str, Any] = {"attributes": {"type": sobject.name, "url": url}}
    for name in fields:
        value = record[name]
        out[name] = format_datetime(value) if isinstance(value, datetime) else value
    return out
