"""The SOQL the twin understands, a subset large enough for change polling and look-ups:

    SELECT f1, f2 FROM Obj [WHERE f op value [AND ...]] [ORDER BY f [ASC|DESC]] [LIMIT n]

with `= != <> > >= < <=` and `IN (v1, v2)`. Literals follow SOQL: strings in single quotes,
dates and datetimes unquoted (`2026-11-26`, `2026-11-26T10:00:00Z`), numbers, true/false,
null. String comparison is case-insensitive, as in Salesforce. Anything else is refused with
MALFORMED_QUERY (or INVALID_FIELD / INVALID_TYPE for names the org does not have).
"""

from __future__ import annotations

import itertools
import operator
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from handoff.connectors.salesforce.twin_schema import (
    Field,
    SalesforceApiError,
    SObjectType,
    sobject_type,
)

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>'(?:[^'\\]|\\.)*')
    | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:?\d{2}))
    | (?P<date>\d{4}-\d{2}-\d{2})
    | (?P<number>-?\d+(?:\.\d+)?)
    | (?P<op>!=|<>|>=|<=|=|<|>)
    | (?P<punct>[(),])
    | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
    )""",
    re.VERBOSE,
)

_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq, "!=": operator.ne, "<>": operator.ne,
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
}
# Which literal kinds each field kind accepts.
_LITERALS_FOR = {
    "datetime": {"datetime"}, "date": {"date"}, "currency": {"number"}, "boolean": {"boolean"},
}


def malformed(message: str) -> SalesforceApiError:
    return SalesforceApiError("MALFORMED_QUERY", message)


@dataclass(frozen=True, slots=True)
class Condition:
    field: Field
    op: str
    values: tuple[Any, ...]  # one value, or the list of an IN

    def holds(self, record: Mapping[str, Any]) -> bool:
        actual = _comparable(record[self.field.name])
        if self.op == "IN":
            return actual in self.values
        expected = self.values[0]
        if actual is None or expected is None:
            return _OPERATORS[self.op](actual, expected) if self.op in ("=", "!=", "<>") else False
        return _OPERATORS[self.op](actual, expected)


@dataclass(frozen=True, slots=True)
class Query:
    sobject: SObjectType
    fields: tuple[str, ...]
    conditions: tuple[Condition, ...]
    order_by: str | None = None
    descending: bool = False
    limit: int | None = None

    def run(self, records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        found = [r for r in records if all(c.holds(r) for c in self.conditions)]
        if self.order_by:
            found.sort(key=self._sort_key, reverse=self.descending)
        return found[: self.limit] if self.limit is not None else found

    def _sort_key(self, record: Mapping[str, Any]) -> tuple[bool, Any]:
        # Salesforce puts nulls first when ascending and last when descending.
        value = record[self.order_by or "Id"]
        return (value is not None, "" if value is None else _comparable(value))


def _comparable(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


class _Tokens:
    def __init__(self, soql: str) -> None:
        self.items: list[tuple[str, str]] = []
        position, soql = 0, soql.strip()
        while position < len(soql):
            match = _TOKEN.match(soql, position)
            if not match or match.end() == position:
                raise malformed(f"unexpected token at: {soql[position:position + 20]!r}")
            kind = match.lastgroup or ""
            self.items.append((kind, match.group(kind)))
            position = match.end()
        self.index = 0

    def peek(self) -> tuple[str, str]:
        return self.items[self.index] if self.index < len(self.items) else ("end", "")

    def take(self) -> tuple[str, str]:
        token = self.peek()
        self.index += 1
        return token

    def keyword(self, *words: str) -> bool:
        """Consume the words if they come next (case-insensitive)."""
        count = len(words)
        upcoming = self.items[self.index:self.index + count]
        if [v.upper() for _, v in upcoming] == list(words):
            self.index += count
            return True
        return False

    def expect(self, *words: str) -> None:
        if not self.keyword(*words):
            raise malformed(f"expected {' '.join(words)} near {self.peek()[1]!r}")

    def word(self) -> str:
        kind, value = self.take()
        if kind != "word":
            raise malformed(f"expected a name near {value!r}")
        return value


def parse(soql: str) -> Query:
    tokens = _Tokens(soql)
    tokens.expect("SELECT")
    names = [tokens.word()]
    while tokens.peek() == ("punct", ","):
        tokens.take()
        names.append(tokens.word())
    tokens.expect("FROM")
    sobject = _sobject(tokens.word())
    fields = tuple(_field(sobject, n).name for n in names)
    conditions = _conditions(tokens, sobject) if tokens.keyword("WHERE") else ()
    order_by, descending = (
        _order(tokens, sobject) if tokens.keyword("ORDER", "BY") else (None, False)
    )
    limit = _limit(tokens) if tokens.keyword("LIMIT") else None
    if tokens.peek()[0] != "end":
        raise malformed(f"unexpected token: {tokens.peek()[1]!r}")
    return Query(sobject, fields, conditions, order_by, descending, limit)


def _sobject(name: str) -> SObjectType:
    try:
        return sobject_type(name)
    except SalesforceApiError:
        raise SalesforceApiError(
            "INVALID_TYPE", f"sObject type '{name}' is not supported."
        ) from None


def _field(sobject: SObjectType, name: str) -> Field:
    found = sobject.field(name)
    if found is None:
        raise SalesforceApiError(
            "INVALID_FIELD", f"No such column '{name}' on entity '{sobject.name}'.", [name]
        )
    return found


def _conditions(tokens: _Tokens, sobject: SObjectType) -> tuple[Condition, ...]:
    conditions = [_condition(tokens, sobject)]
    while tokens.keyword("AND"):
        conditions.append(_condition(tokens, sobject))
    return tuple(conditions)


def _condition(tokens: _Tokens, sobject: SObjectType) -> Condition:
    field = _field(sobject, tokens.word())
    if tokens.keyword("IN"):
        return Condition(field, "IN", tuple(_in_list(tokens, field)))
    kind, op = tokens.take()
    if kind != "op":
        raise malformed(f"expected an operator after {field.name}, got {op!r}")
    return Condition(field, op, (_literal(tokens, field),))


def _in_list(tokens: _Tokens, field: Field) -> list[Any]:
    if tokens.take() != ("punct", "("):
        raise malformed("expected ( after IN")
    values = [_literal(tokens, field)]
    while tokens.peek() == ("punct", ","):
        tokens.take()
        values.append(_literal(tokens, field))
    if tokens.take() != ("punct", ")"):
        raise malformed("expected ) to close IN")
    return values


def _literal(tokens: _Tokens, field: Field) -> Any:
    kind, text = tokens.take()
    if kind == "word" and text.lower() in ("true", "false", "null"):
        kind = "null" if text.lower() == "null" else "boolean"
    if kind == "null":
        return None
    if kind not in _LITERALS_FOR.get(field.kind, {"string"}):
        raise malformed(
            f"value of filter criterion for field '{field.name}' must be of type {field.kind} "
            "and should not be enclosed in quotes" if kind == "string"
            else f"invalid value {text!r} for field '{field.name}' of type {field.kind}"
        )
    return _comparable(_LITERAL_VALUE[kind](text))


def _parse_datetime(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


_LITERAL_VALUE: dict[str, Callable[[str], Any]] = {
    "string": lambda text: re.sub(r"\\(.)", r"\1", text[1:-1]),
    "datetime": _parse_datetime,
    "date": str,
    "number": float,
    "boolean": lambda text: text.lower() == "true",
}


def _order(tokens: _Tokens, sobject: SObjectType) -> tuple[str, bool]:
    name = _field(sobject, tokens.word()).name
    if tokens.keyword("DESC"):
        return name, True
    tokens.keyword("ASC")
    return name, False


def _limit(tokens: _Tokens) -> int:
    kind, text = tokens.take()
    if kind != "number" or not text.isdigit():
        raise malformed(f"LIMIT must be a whole number, not {text!r}")
    return int(text)


def batch_size(query_options: str) -> int:
    """Records per page from a `Sforce-Query-Options` header: a hint between 200 and 2000."""
    options = dict(p.strip().partition("=")[::2] for p in query_options.split(",") if "=" in p)
    asked = options.get("batchSize", "")
    return min(max(int(asked), 200), 2000) if asked.isdigit() else 2000


class Cursors:
    """Query results still being read, paged as Salesforce pages them: `nextRecordsUrl` is
    `/services/data/v{ver}/query/{cursor}-{offset}`. The oldest cursors are forgotten first."""

    def __init__(self, max_open: int = 500) -> None:
        self.max_open = max_open
        self._open: OrderedDict[str, tuple[list[dict[str, Any]], int]] = OrderedDict()
        self._numbers = itertools.count(1)

    def first_page(self, records: list[dict[str, Any]], batch: int, ver: str) -> dict[str, Any]:
        if len(records) <= batch:
            return {"totalSize": len(records), "done": True, "records": records}
        cursor_id = f"01gRO{next(self._numbers):010d}"
        self._open[cursor_id] = (records, batch)
        if len(self._open) > self.max_open:
            self._open.popitem(last=False)
        return self._page(cursor_id, 0, ver)

    def next_page(self, locator: str, ver: str) -> dict[str, Any]:
        cursor_id, _, offset = locator.partition("-")
        if cursor_id not in self._open or not offset.isdigit():
            raise SalesforceApiError("INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._page(cursor_id, int(offset), ver)

    def _page(self, cursor_id: str, offset: int, ver: str) -> dict[str, Any]:
        records, batch = self._open[cursor_id]
        end = offset + batch
        page = {"totalSize": len(records), "done": end >= len(records),
                "records": records[offset:end]}
        if page["done"]:
            del self._open[cursor_id]
        else:
            page["nextRecordsUrl"] = f"/services/data/v{ver}/query/{cursor_id}-{end}"
        return page
