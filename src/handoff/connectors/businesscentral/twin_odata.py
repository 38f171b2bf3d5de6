"""The OData query options the Business Central twin answers: `$filter`, `$select`, `$expand`,
`$top`, `$skip`, `$skiptoken` and `Prefer: odata.maxpagesize`.

    $filter   <property> eq|ne|gt|ge|lt|le <literal>, startswith|endswith|contains(<property>,'…'),
              joined by `and`. Literals: 'text' ('' for a quote), GUIDs and numbers bare,
              true/false, dates (2025-03-10). A Code field's literal is upper-cased and must fit
              the field, as BC's filters on Code fields do (Application_FilterErrorException).
    paging    the server's page (20 000 online, `max_page_size` in the twin's settings) or the
              client's `odata.maxpagesize`; more rows → `@odata.nextLink` with an opaque
              `$skiptoken`. `$top`/`$skip` take a window of the filtered rows first.

`or`, parentheses, `not`, `in`, lambda operators and nested functions are refused as the twin's
limits (⚠ BC itself takes `or` on one field and `in` under $schemaversion=2.1).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from handoff.connectors.businesscentral.twin_schema import (
    EntitySet,
    Record,
    TwinFault,
    bad_request,
    unknown_property,
)

_LITERAL = r"'(?:[^']|'')*'|[0-9a-fA-F]{8}-[0-9a-fA-F-]{27}|\d{4}-\d{2}-\d{2}|-?\d+(?:\.\d+)?|true|false"
_TERM = re.compile(
    rf"\s*(?:(?P<func>startswith|endswith|contains)\(\s*(?P<ffield>\w+)\s*,\s*(?P<fvalue>'(?:[^']|'')*')\s*\)"
    rf"|(?P<field>\w+)\s+(?P<op>eq|ne|gt|ge|lt|le)\s+(?P<value>{_LITERAL}))\s*")
_AND = re.compile(r"and\s+")
_COMPARE: Mapping[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b, "lt": lambda a, b: a < b, "le": lambda a, b: a <= b}
_FUNCTIONS: Mapping[str, Callable[[str, str], bool]] = {
    "startswith": str.startswith, "endswith": str.endswith, "contains": lambda a, b: b in a}
Predicate = Callable[[Record], bool]


def refused(detail: str) -> TwinFault:
    return bad_request(f"The sandbox twin cannot evaluate this $filter: {detail}. It knows "
                       "eq, ne, gt, ge, lt, le, startswith, endswith and contains, joined by 'and'.")


def parse_filter(text: str | None, entity: EntitySet) -> Predicate:
    """A predicate over rendered records for `$filter`; no filter keeps every record."""
    if not text or not text.strip():
        return lambda record: True
    terms: list[Predicate] = []
    position = 0
    while True:
        match = _TERM.match(text, position)
        if match is None:
            raise refused(f"not understood at position {position} of {text!r}")
        terms.append(_term(match, entity))
        position = match.end()
        if position == len(text):
            return lambda record: all(term(record) for term in terms)
        joined = _AND.match(text, position)
        if joined is None:
            raise refused(f"expected 'and' at position {position} of {text!r}")
        position = joined.end()


def _term(match: re.Match[str], entity: EntitySet) -> Predicate:
    name = match["ffield"] or match["field"]
    prop = entity.props.get(name)
    if prop is None:
        raise unknown_property(entity, name)
    literal = _literal(match["fvalue"] or match["value"])
    if prop.kind == "code" and isinstance(literal, str):
        literal = literal.upper()
        if prop.length and len(literal) > prop.length:
            raise TwinFault(400, "Application_FilterErrorException",
                            f"The filter \"'{literal}'\" is not valid for the {prop.caption} field on "
                            f"the {entity.table} table. The length of the string is {len(literal)}, "
                            f"but it must be less than or equal to {prop.length} characters. "
                            f"Value: {literal}")
    if prop.kind == "guid" and isinstance(literal, str):
        literal = literal.lower()
    if match["func"]:
        function = _FUNCTIONS[match["func"]]
        return lambda record: function(_comparable(record.get(name), prop.kind), literal)
    compare = _COMPARE[match["op"]]

    def holds(record: Record) -> bool:
        try:
            return compare(_comparable(record.get(name), prop.kind), literal)
        except TypeError:
            raise bad_request(f"A binary operator with incompatible types was detected. Found "
                              f"operand types for '{name}' and {literal!r}.") from None
    return holds


def _literal(token: str) -> Any:
    if token.startswith("'"):
        return token[1:-1].replace("''", "'")
    if token in ("true", "false"):
        return token == "true"
    if re.fullmatch(r"-?\d+(?:\.\d+)?", token):
        return Decimal(token)
    return token  # a GUID or a date: compared as their text


def _comparable(value: Any, kind: str) -> Any:
    if kind == "code" and isinstance(value, str):
        return value.upper()
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return Decimal(value)
    return "" if value is None else value


def selected(record: Record, select: str | None, entity: EntitySet,
             expand: str | None = None) -> Record:
    """The record with only the `$select`ed properties (its ETag and expansions kept)."""
    if not select:
        return record
    names = [name.strip() for name in select.split(",") if name.strip()]
    for name in names:
        if name not in entity.props:
            raise unknown_property(entity, name)
    keep = {"@odata.etag", *names, *([expand] if expand else [])}
    return {name: value for name, value in record.items() if name in keep}


def expansion(expand: str | None, entity: EntitySet) -> str | None:
    """The navigation `$expand` names: a document's lines are the only one the twin expands."""
    if not expand:
        return None
    if expand.strip() != entity.lines:
        name = expand.strip().split(",")[0].split("(")[0]
        raise unknown_property(entity, name)
    return entity.lines


@dataclass(frozen=True)
class Page:
    rows: list[Record]
    next_skip: int | None  # where the next page starts, when there is one


def page_of(rows: list[Record], query: Mapping[str, str], page_size: int) -> Page:
    """The rows of this page: `$skip`/`$top` first, then the page size from `$skiptoken`."""
    skip = _whole(query, "$skip", 0)
    top = _whole(query, "$top", None)
    end = len(rows) if top is None else min(len(rows), skip + top)
    start = skip if "$skiptoken" not in query else read_skiptoken(query["$skiptoken"])
    stop = min(end, start + page_size)
    return Page(rows[start:stop], stop if stop < end else None)


def skiptoken(skip: int) -> str:
    """Opaque to clients, as BC's are."""
    return base64.urlsafe_b64encode(json.dumps({"s": skip}).encode()).decode().rstrip("=")


def read_skiptoken(token: str) -> int:
    try:
        skip = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))["s"]
    except (ValueError, KeyError, TypeError):
        raise bad_request("The skip token is not valid.", "BadRequest_InvalidRequestUrl") from None
    if not isinstance(skip, int) or skip < 0:
        raise bad_request("The skip token is not valid.", "BadRequest_InvalidRequestUrl")
    return skip


def max_page_size(prefer: str | None) -> int | None:
    """`odata.maxpagesize=N` from a Prefer header (several preferences may be comma-separated)."""
    for preference in (prefer or "").split(","):
        name, _, value = preference.strip().partition("=")
        if name.strip().lower() == "odata.maxpagesize":
            try:
                size = int(value.strip())
            except ValueError:
                return None
            return size if size > 0 else None
    return None


def _whole(query: Mapping[str, str], name: str, default: int | None) -> Any:
    raw = query.get(name)
    if raw is None:
        return default
    if not raw.isdigit():
        raise bad_request(f"Invalid value '{raw}' for {name} query option found. The {name} query "
                          "option requires a non-negative integer value.")
    return int(raw)
