"""The sandbox environment's Dataverse: accounts, opportunities and transaction currencies with
Dataverse's column rules, lookups, alternate keys, row versions, and the query language of the
Web API (`$select`, `$filter`, `$orderby`, paging cookies).

Values are kept as Python values (Decimal for Currency columns, `YYYY-MM-DD` for Date only,
ISO-8601 UTC in whole seconds for Date and Time, `(table, id)` for lookups). `modifiedon`
keeps whole seconds, as Dataverse does, so many writes share one; `versionnumber` (the ETag)
rises with every write. The twin serves requests on one event loop and no write awaits
mid-way, so no locks are needed.
"""

from __future__ import annotations

import copy
import functools
import html
import itertools
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote, unquote

from handoff.connectors.dynamics.mapping import FORMATTED, LOOKUP_TABLE, parse_timestamp

NAVIGATION = "@Microsoft.Dynamics.CRM.associatednavigationproperty"
MONEY_LIMIT = Decimal("922337203685477")
TYPE_NAMES = {"string": "Edm.String", "memo": "Edm.String", "money": "Edm.Decimal", "integer": "Edm.Int32",
              "choice": "Edm.Int32", "state": "Edm.Int32", "status": "Edm.Int32", "date": "Edm.Date",
              "datetime": "Edm.DateTimeOffset", "guid": "Edm.Guid"}


class DataverseError(Exception):
    """A refusal in Dataverse's words: `{"error": {"code": "0x…", "message": …}}` with the
    HTTP status it comes with."""

    def __init__(self, status: int, code: str, message: str, *, retry_after: int | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.retry_after = retry_after  # seconds, sent as Retry-After when set
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}


def bad_request(message: str, code: str = "0x0") -> DataverseError:
    return DataverseError(400, code, message)


def unknown_segment(name: str) -> DataverseError:
    return DataverseError(404, "0x8006088a", f"Resource not found for the segment '{name}'.")


def no_property(name: str, table: str) -> DataverseError:
    return bad_request(f"Could not find a property named '{name}' on type 'Microsoft.Dynamics.CRM.{table}'.")


def does_not_exist(table: str, row_id: str, code: str = "0x80040217") -> DataverseError:
    return DataverseError(404, code, f"{table} With Id = {row_id} Does Not Exist")


def validation(message: str, code: str = "0x80044331") -> DataverseError:
    return bad_request(f"A validation error occurred.  {message}", code)


# --- schema ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Column:
    name: str
    type: str  # guid string memo money integer choice state status date datetime lookup
    max_length: int = 100
    options: Mapping[int, str] = field(default_factory=dict)   # choice, state, status: value -> label
    navigation: Mapping[str, str] = field(default_factory=dict)  # lookup: bind name -> target table
    read_only: bool = False
    minimum: int = -2_147_483_648
    maximum: int = 2_147_483_647

    @property
    def property_name(self) -> str:
        """How the Web API shows it: a lookup as `_name_value`."""
        return f"_{self.name}_value" if self.type == "lookup" else self.name


@dataclass(frozen=True)
class Table:
    logical: str                           # opportunity
    entity_set: str                        # opportunities
    primary: str                           # opportunityid
    primary_name: str                      # name
    columns: Mapping[str, Column]
    keys: tuple[str, ...] = ()             # single-column alternate keys
    states: Mapping[int, tuple[int, ...]] = field(default_factory=dict)  # statecode -> its statuscodes

    def by_property(self, name: str) -> Column | None:
        """The column a `$select`/`$filter`/`$orderby` name means (`_x_value` for lookups)."""
        for column in self.columns.values():
            if column.property_name == name:
                return column
        return None

    def navigation(self, name: str) -> tuple[Column, str] | None:
        """The lookup column and target table of a bind name (`parentaccountid`)."""
        for column in self.columns.values():
            if name in column.navigation:
                return column, column.navigation[name]
        return None


def _text(name: str, length: int = 100) -> Column:
    return Column(name, "string", length)


def _memo(name: str, length: int = 2000) -> Column:
    return Column(name, "memo", length)


def _system(primary: str) -> list[Column]:
    bind = {"transactioncurrencyid": "transactioncurrency"}
    currency = [] if primary == "transactioncurrencyid" else [
        Column("transactioncurrencyid", "lookup", navigation=bind)]
    return [Column(primary, "guid", read_only=True), Column("createdon", "datetime", read_only=True),
            Column("modifiedon", "datetime", read_only=True),
            Column("versionnumber", "integer", read_only=True, maximum=2**62),
            Column("ownerid", "lookup", navigation={"ownerid": "systemuser"}, read_only=True),
            Column("modifiedby", "lookup", read_only=True), *currency]


ACTIVE_STATES = ({0: "Active", 1: "Inactive"}, {1: "Active", 2: "Inactive"}, {0: (1,), 1: (2,)})
OPPORTUNITY_STATES = {0: "Open", 1: "Won", 2: "Lost"}
OPPORTUNITY_STATUSES = {1: "In Progress", 2: "On Hold", 3: "Won", 4: "Canceled", 5: "Out-Sold"}
OPPORTUNITY_PAIRS = {0: (1, 2), 1: (3,), 2: (4, 5)}


def _table(logical: str, entity_set: str, primary_name: str, columns: list[Column],
           keys: tuple[str, ...] = (), states: tuple[Any, Any, Any] = ACTIVE_STATES) -> Table:
    state_labels, status_labels, pairs = states
    every = [*_system(f"{logical}id"), Column("statecode", "state", options=state_labels),
             Column("statuscode", "status", options=status_labels), *columns]
    return Table(logical, entity_set, f"{logical}id", primary_name, {c.name: c for c in every}, keys, pairs)


TABLES = {t.entity_set: t for t in (
    _table("account", "accounts", "name", [
        _text("name", 160), _text("accountnumber", 20), _memo("description"), _text("handoff_key"),
        _text("handoff_taxjurisdiction"), _text("handoff_legalentity"), _text("handoff_validationstatus"),
    ], keys=("handoff_key", "accountnumber")),
    _table("opportunity", "opportunities", "name", [
        _text("name", 300), _memo("description"), Column("estimatedvalue", "money"),
        Column("actualvalue", "money"), Column("estimatedclosedate", "date"),
        Column("actualclosedate", "date"), Column("closeprobability", "integer", minimum=0, maximum=100),
        _text("stepname", 200),
        Column("parentaccountid", "lookup", navigation={"parentaccountid": "account"}),
        Column("customerid", "lookup", navigation={"customerid_account": "account"}),
        _text("handoff_key"), _text("handoff_billingmethod"), _text("handoff_contractstatus"),
        _text("handoff_sowstatus"), _text("handoff_legalentity"), _text("handoff_projectid"),
        _text("handoff_status"), _memo("handoff_statusdetail"), Column("handoff_invoicedamount", "money"),
        Column("handoff_paidamount", "money"), Column("handoff_openbalance", "money"),
        Column("handoff_daysoverdue", "integer", minimum=0), _memo("handoff_invoicenumbers"),
        _memo("handoff_billingstatus"),
    ], keys=("handoff_key",), states=(OPPORTUNITY_STATES, OPPORTUNITY_STATUSES, OPPORTUNITY_PAIRS)),
    _table("transactioncurrency", "transactioncurrencies", "currencyname", [
        _text("isocurrencycode", 5), _text("currencyname"), _text("currencysymbol", 10),
        Column("exchangerate", "money"),
    ], keys=("isocurrencycode",)),
)}
BY_LOGICAL = {t.logical: t for t in TABLES.values()}

USER_ID = "5a1e0001-0000-4000-8000-00000000a11c"   # the application user every token stands for
BUSINESS_UNIT_ID = "5a1e0002-0000-4000-8000-0000000000b0"
ORGANIZATION_ID = "5a1e0003-0000-4000-8000-0000000000c0"
CURRENCY_SEED = (  # (id, ISO code, name, symbol, rate): USD is the base currency
    ("5a1e0c00-0000-4000-8000-000000000840", "USD", "US Dollar", "$", Decimal("1")),
    ("5a1e0c00-0000-4000-8000-000000000978", "EUR", "Euro", "€", Decimal("0.92")),
    ("5a1e0c00-0000-4000-8000-000000000826", "GBP", "Pound Sterling", "£", Decimal("0.79")),
    ("5a1e0c00-0000-4000-8000-000000000392", "JPY", "Yen", "¥", Decimal("151")),
)
BASE_CURRENCY = CURRENCY_SEED[0][0]


def table_of(entity_set: str) -> Table:
    found = TABLES.get(entity_set)
    if found is None:
        raise unknown_segment(entity_set)
    return found


# --- rows -----------------------------------------------------------------------------------

@dataclass
class Row:
    table: Table
    values: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.values[self.table.primary])

    @property
    def etag(self) -> str:
        return f'W/"{self.values["versionnumber"]}"'


class Clock:
    """Now, in whole seconds (Dataverse keeps no milliseconds), unless frozen at a moment."""

    def __init__(self) -> None:
        self.frozen: str | None = None

    def now(self) -> datetime:
        if self.frozen:
            return parse_timestamp(self.frozen).replace(microsecond=0)
        return datetime.now(UTC).replace(microsecond=0)


@dataclass
class Store:
    clock: Clock = field(default_factory=Clock)
    versions: Iterator[int] = field(default_factory=lambda: itertools.count(1_000_001))
    rows: dict[str, dict[str, Row]] = field(default_factory=lambda: {name: {} for name in TABLES})

    def __post_init__(self) -> None:
        for currency_id, code, name, symbol, rate in CURRENCY_SEED:
            self.create(TABLES["transactioncurrencies"], {
                "isocurrencycode": code, "currencyname": name, "currencysymbol": symbol,
                "exchangerate": rate}, row_id=currency_id)

    # --- single rows ----------------------------------------------------------------------

    def find(self, table: Table, key: tuple[str, str]) -> Row | None:
        """By ("id", guid) or (key column, value)."""
        kind, value = key
        if kind == "id":
            return self.rows[table.entity_set].get(value.lower())
        return next((r for r in self.rows[table.entity_set].values() if r.values.get(kind) == value), None)

    def get(self, table: Table, key: tuple[str, str]) -> Row:
        found = self.find(table, key)
        if found is None:
            raise does_not_exist(table.logical, key[1] if key[0] == "id" else f"{key[0]}={key[1]}")
        return found

    def create(self, table: Table, body: Mapping[str, Any], row_id: str | None = None,
               key: tuple[str, str] | None = None) -> Row:
        changes = self.checked(table, body, creating=True)
        if key is not None and key[0] != "id":
            changes[key[0]] = key[1]
        row_id = (row_id or str(uuid.uuid4())).lower()
        if row_id in self.rows[table.entity_set]:
            raise DataverseError(412, "0x80040237", "A record with matching key values already exists.")
        values: dict[str, Any] = {name: None for name in table.columns}
        first_state = min(table.states)
        values |= {table.primary: row_id, "statecode": first_state,
                   "statuscode": table.states[first_state][0], "ownerid": ("systemuser", USER_ID)}
        if table.entity_set != "transactioncurrencies":
            values["transactioncurrencyid"] = ("transactioncurrency", BASE_CURRENCY)
        changes.pop("statecode", None)  # a row starts in its first state
        self._check_keys(table, changes, None)
        values |= changes
        self._check_status(table, values)
        row = Row(table, values)
        stamp = self._stamp()
        row.values["createdon"] = stamp
        self._touch(row, stamp)
        self.rows[table.entity_set][row_id] = row
        return row

    def update(self, row: Row, body: Mapping[str, Any]) -> Row:
        changes = self.checked(row.table, body, creating=False)
        self._check_keys(row.table, changes, row.id)
        values = row.values | changes
        if "statecode" in changes and "statuscode" not in changes:
            values["statuscode"] = row.table.states.get(values["statecode"], (None,))[0]
        self._check_status(row.table, values)
        row.values = values
        self._touch(row, self._stamp())
        return row

    def delete(self, row: Row) -> None:
        del self.rows[row.table.entity_set][row.id]

    def snapshot(self) -> dict[str, dict[str, Row]]:
        return copy.deepcopy(self.rows, memo={id(t): t for t in TABLES.values()})

    def restore(self, rows: dict[str, dict[str, Row]]) -> None:
        self.rows = rows

    # --- values ---------------------------------------------------------------------------

    def checked(self, table: Table, body: Mapping[str, Any], creating: bool) -> dict[str, Any]:
        """A request body as column values, or Dataverse's refusal. Read-only columns are
        ignored (unconfirmed: Dataverse may refuse some of them)."""
        if not isinstance(body, Mapping):
            raise bad_request("The request body must be a JSON object.")
        changes: dict[str, Any] = {}
        for name, value in body.items():
            if name.startswith("@"):
                continue
            if name.endswith("@odata.bind"):
                nav = name[: -len("@odata.bind")]
                found = table.navigation(nav)
                if found is None:
                    raise bad_request(
                        f"An error occurred while validating input parameters: Microsoft.OData."
                        f"ODataException: An undeclared property '{nav}' which only has property "
                        f"annotations in the payload but no property value was found in the payload. In "
                        f"OData, only declared navigation properties and declared named streams can be "
                        f"represented as properties without values.")
                column, target = found
                changes[column.name] = None if value is None else self._bind(target, value)
                continue
            column = table.columns.get(name)
            if column is None or column.type == "lookup":
                raise bad_request(
                    f"An error occurred while validating input parameters: Microsoft.OData.ODataException: "
                    f"The property '{name}' does not exist on type 'Microsoft.Dynamics.CRM.{table.logical}'. "
                    f"Make sure to only use property names that are defined by the type or mark the type "
                    f"as open type.")
            if column.read_only or (creating and name == "statecode" and table.logical == "opportunity"):
                continue
            changes[name] = _value(table, column, value)
        return changes

    def _bind(self, target: str, value: Any) -> tuple[str, str]:
        """`/accounts(<guid>)` (or `accounts(…)`, or an absolute URL) naming a row of `target`."""
        match = re.search(r"(?:^|/)([A-Za-z_]+)\(([0-9A-Fa-f-]{36})\)\s*$", str(value))
        table = BY_LOGICAL.get(target)
        if match is None or table is None or match.group(1) != table.entity_set:
            raise bad_request(f"'{value}' is not a valid reference to a {target} record "
                              f"(expected /{table.entity_set if table else target}(<id>)).")
        row_id = match.group(2).lower()
        if row_id not in self.rows[table.entity_set]:
            raise does_not_exist(target, row_id)
        return target, row_id

    def _check_keys(self, table: Table, changes: Mapping[str, Any], own_id: str | None) -> None:
        for key in table.keys:
            value = changes.get(key)
            if value is None:
                continue
            holder = self.find(table, (key, value))
            if holder is not None and holder.id != own_id:
                raise DataverseError(
                    412, "0x80060892", f"A record that has the attribute values {value} already exists. "
                    f"The entity key {key} requires that this set of attributes contains unique values. "
                    "Select unique values and try again.")

    def _check_status(self, table: Table, values: Mapping[str, Any]) -> None:
        allowed = table.states.get(values.get("statecode"), ())
        if values.get("statuscode") not in allowed:
            raise validation(f"{values.get('statuscode')} is not a valid status code for state code "
                             f"{table.logical}State.{values.get('statecode')} on {table.logical} with "
                             f"Id {values.get(table.primary)}.", "0x8004431a")

    def _stamp(self) -> str:
        return self.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")

    def _touch(self, row: Row, stamp: str) -> None:
        row.values |= {"modifiedon": stamp, "versionnumber": next(self.versions),
                       "modifiedby": ("systemuser", USER_ID)}

    # --- queries --------------------------------------------------------------------------

    def query(self, table: Table, where: Callable[[Row], bool] | None,
              order: list[tuple[Column, bool]]) -> list[Row]:
        """The rows matching `where`, in `order` (column, descending) then the primary key."""
        rows = [r for r in self.rows[table.entity_set].values() if where is None or where(r)]
        return sorted(rows, key=lambda r: sort_key(r, order))

    def primary_name(self, target: str, row_id: str) -> str | None:
        table = BY_LOGICAL.get(target)
        row = self.rows[table.entity_set].get(row_id) if table else None
        return str(row.values.get(table.primary_name)) if row and table else None


def _value(table: Table, column: Column, value: Any) -> Any:
    """A body value as the column keeps it, or Dataverse's refusal."""
    if value is None:
        return None
    kind = column.type
    if kind in ("string", "memo"):
        if not isinstance(value, str):
            raise _not_convertible(value, column)
        if len(value) > column.max_length:
            raise validation(f"The length of the '{column.name}' attribute of the '{table.logical}' entity "
                             f"exceeded the maximum allowed length of '{column.max_length}'.")
        return value
    if kind == "money":
        if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
            raise _not_convertible(value, column)
        number = Decimal(value)
        if abs(number) > MONEY_LIMIT:
            raise validation(f"The value {value} of '{column.name}' on record of type '{table.logical}' "
                             f"is outside the valid range.")
        return number
    if kind in ("integer", "choice", "state", "status"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise _not_convertible(value, column)
        if kind == "integer" and not column.minimum <= value <= column.maximum:
            raise validation(f"The value {value} of '{column.name}' on record of type '{table.logical}' "
                             f"is outside the valid range.")
        if kind != "integer" and value not in column.options:
            accepted = ",".join(str(v) for v in column.options)
            raise validation(f"The value {value} of '{column.name}' on record of type '{table.logical}' "
                             f"is outside the valid range. Accepted Values: {accepted}", "0x8004431a")
        return value
    if kind == "date":
        try:
            return date.fromisoformat(str(value)).isoformat()
        except ValueError:
            raise _not_convertible(value, column) from None
    if kind == "datetime":
        try:
            return parse_timestamp(value).strftime("%Y-%m-%dT%H:%M:%SZ")
        except ValueError:
            raise _not_convertible(value, column) from None
    raise _not_convertible(value, column)


def _not_convertible(value: Any, column: Column) -> DataverseError:
    return bad_request(f"Cannot convert the literal '{value}' to the expected type "
                       f"'{TYPE_NAMES.get(column.type, 'Edm.String')}'.")


# --- rendering ------------------------------------------------------------------------------

def render(store: Store, row: Row, names: list[str] | None, annotations: bool) -> dict[str, Any]:
    """A row as the Web API answers: `@odata.etag`, the selected properties (every one when
    `names` is None) and the primary key; with annotations, choice labels, lookup targets and
    formatted money."""
    table = row.table
    columns = ([table.by_property(n) for n in names] if names is not None else list(table.columns.values()))
    body: dict[str, Any] = {"@odata.etag": row.etag}
    for column in [c for c in columns if c is not None]:
        value = row.values.get(column.name)
        name = column.property_name
        if column.type == "lookup":
            body[name] = value[1] if value else None
            if annotations and value:
                target = value[0]
                body[name + FORMATTED] = store.primary_name(target, value[1])
                body[name + NAVIGATION] = next((n for n, t in column.navigation.items() if t == target),
                                               column.name)
                body[name + LOOKUP_TABLE] = target
            continue
        if column.type == "money" and value is not None:
            body[name] = value.quantize(Decimal("0.0001"))
            if annotations:
                body[name + FORMATTED] = _money_label(store, row, value)
            continue
        body[name] = value
        if annotations and value is not None and column.options:
            body[name + FORMATTED] = column.options.get(value, str(value))
    body[table.primary] = row.id
    return body


def _money_label(store: Store, row: Row, value: Decimal) -> str:
    currency = row.values.get("transactioncurrencyid")
    symbol = ""
    if currency:
        found = store.rows["transactioncurrencies"].get(currency[1])
        symbol = str(found.values.get("currencysymbol") or "") if found else ""
    return f"{symbol}{value:,.2f}"


# --- $select, $orderby, $filter ---------------------------------------------------------------

def selected(table: Table, select: str | None) -> list[str] | None:
    if not select:
        return None
    names = [n.strip() for n in select.split(",") if n.strip()]
    for name in names:
        if table.by_property(name) is None:
            raise no_property(name, table.logical)
    return names


def ordering(table: Table, orderby: str | None) -> list[tuple[Column, bool]]:
    """`$orderby` as (column, descending) pairs, the primary key appended when absent: Dataverse
    adds it so paging is deterministic."""
    order = []
    for part in (orderby or "").split(","):
        words = part.split()
        if not words:
            continue
        column = table.by_property(words[0])
        if column is None:
            raise no_property(words[0], table.logical)
        if len(words) > 2 or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
            raise bad_request(f"Syntax error in '$orderby': '{part.strip()}'.")
        order.append((column, len(words) == 2 and words[1].lower() == "desc"))
    if not any(c.name == table.primary for c, _ in order):
        order.append((table.columns[table.primary], False))
    return order


def comparable(column: Column, value: Any) -> Any:
    """A value in the column's order: dates and moments as such, numbers as Decimal, ids and
    text case-insensitively (SQL Server's collation)."""
    if value is None:
        return None
    if column.type == "lookup":
        return str(value[1] if isinstance(value, tuple) else value).lower()
    if column.type == "datetime":
        return parse_timestamp(value)
    if column.type == "date":
        return str(value)[:10]
    if column.type in ("money", "integer", "choice", "state", "status"):
        return Decimal(str(value))
    return str(value).casefold()


@functools.total_ordering
class _Desc:
    """Reverses the order of the value it wraps (for descending sort keys)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __lt__(self, other: _Desc) -> bool:
        return other.value < self.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and other.value == self.value

    def __hash__(self) -> int:
        return hash(self.value)


def sort_key(row: Row, order: list[tuple[Column, bool]]) -> tuple[Any, ...]:
    """NULLs first ascending, last descending (SQL Server)."""
    key = []
    for column, descending in order:
        value = comparable(column, row.values.get(column.name))
        item = (value is not None, value if value is not None else 0)
        key.append(_Desc(item) if descending else item)
    return tuple(key)


_TOKEN = re.compile(r"""\s*(?:
    (?P<str>'(?:[^']|'')*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2}))
  | (?P<guid>[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<paren>[()])
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
)""", re.VERBOSE)
_COMPARISONS = {"eq", "ne", "gt", "ge", "lt", "le"}


def parse_filter(table: Table, text: str | None) -> Callable[[Row], bool] | None:
    """`$filter` with eq ne gt ge lt le, and, or, not and parentheses over literals (strings,
    numbers, GUIDs, dates, moments, null, true, false); ValueError-free: Dataverse's 400."""
    if not text:
        return None
    tokens, position = [], 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise bad_request(f"Syntax error at position {position} in '{text}'.")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind), match.start(kind)))
        position = match.end()
    parser = _FilterParser(table, text, tokens)
    predicate = parser.expression()
    if parser.at < len(tokens):
        raise bad_request(f"Syntax error at position {tokens[parser.at][2]} in '{text}'.")
    return predicate


class _FilterParser:
    def __init__(self, table: Table, text: str, tokens: list[tuple[str, str, int]]) -> None:
        self.table, self.text, self.tokens, self.at = table, text, tokens, 0

    def expression(self) -> Callable[[Row], bool]:
        terms = [self.conjunction()]
        while self._word("or"):
            terms.append(self.conjunction())
        return terms[0] if len(terms) == 1 else (lambda row: any(t(row) for t in terms))

    def conjunction(self) -> Callable[[Row], bool]:
        terms = [self.unary()]
        while self._word("and"):
            terms.append(self.unary())
        return terms[0] if len(terms) == 1 else (lambda row: all(t(row) for t in terms))

    def unary(self) -> Callable[[Row], bool]:
        if self._word("not"):
            inner = self.unary()
            return lambda row: not inner(row)
        if self._peek() == ("paren", "("):
            self.at += 1
            inner = self.expression()
            if self._peek() != ("paren", ")"):
                raise self._error()
            self.at += 1
            return inner
        return self.comparison()

    def comparison(self) -> Callable[[Row], bool]:
        kind, name = self._peek()
        if kind != "word":
            raise self._error()
        column = self.table.by_property(name)
        if column is None:
            raise no_property(name, self.table.logical)
        self.at += 1
        kind, operator = self._peek()
        if kind != "word" or operator not in _COMPARISONS:
            raise self._error()
        self.at += 1
        wanted = self._literal(column)

        def test(row: Row) -> bool:
            held = comparable(column, row.values.get(column.name))
            if operator == "eq":
                return held == wanted
            if operator == "ne":
                return held != wanted
            if held is None or wanted is None:
                return False
            return {"gt": held > wanted, "ge": held >= wanted, "lt": held < wanted,
                    "le": held <= wanted}[operator]

        return test

    def _literal(self, column: Column) -> Any:
        if self.at >= len(self.tokens):
            raise self._error()
        kind, text, position = self.tokens[self.at]
        self.at += 1
        if kind == "word" and text in ("null", "true", "false"):
            return None if text == "null" else comparable(column, text == "true")
        if kind == "str":
            value: Any = text[1:-1].replace("''", "'")
        elif kind in ("datetime", "guid", "date", "number"):
            value = text
        else:
            raise bad_request(f"Syntax error at position {position} in '{self.text}'.")
        try:
            return comparable(column, value)
        except (ValueError, InvalidOperation):
            raise bad_request(f"A binary operator with incompatible types was detected. Found operand "
                              f"types '{TYPE_NAMES.get(column.type, 'Edm.String')}' and "
                              f"'Edm.{kind.capitalize()}' for operator kind 'Equal'.") from None

    def _peek(self) -> tuple[str, str]:
        if self.at >= len(self.tokens):
            return ("end", "")
        kind, text, _ = self.tokens[self.at]
        return kind, text

    def _word(self, word: str) -> bool:
        if self._peek() == ("word", word):
            self.at += 1
            return True
        return False

    def _error(self) -> DataverseError:
        position = self.tokens[self.at][2] if self.at < len(self.tokens) else len(self.text)
        return bad_request(f"Syntax error at position {position} in '{self.text}'.")


# --- paging cookies ---------------------------------------------------------------------------

def paging_cookie(row: Row, order: list[tuple[Column, bool]], page: int, first: Row) -> str:
    """The `$skiptoken` of the page after the one ending with `row`, in Dataverse's form:
    `<cookie pagenumber="2" pagingcookie="<encoded inner cookie>" istracking="False" />`, the
    inner cookie holding the last row's sort values."""
    parts = []
    for column, _ in order:
        value = row.values.get(column.name)
        if column.name == row.table.primary:
            parts.append(f'<{column.name} last="{{{row.id.upper()}}}" first="{{{first.id.upper()}}}" />')
        elif value is None:
            parts.append(f'<{column.name} lastnull="1" />')
        else:
            raw = value[1] if isinstance(value, tuple) else value
            parts.append(f'<{column.name} last="{html.escape(str(raw), quote=True)}" />')
    inner = f'<cookie page="{page}">{"".join(parts)}</cookie>'
    return f'<cookie pagenumber="{page + 1}" pagingcookie="{quote(inner)}" istracking="False" />'


def after_cookie(table: Table, order: list[tuple[Column, bool]],
                 token: str) -> tuple[int, Callable[[Row], bool]]:
    """The page number a `$skiptoken` asks for, and a test for rows after its last row."""
    outer = re.search(r'pagenumber="(\d+)"', token)
    inner = re.search(r'pagingcookie="([^"]*)"', token)
    if outer is None or inner is None:
        raise bad_request("The paging cookie ($skiptoken) is not valid.", "0x80040203")
    last: dict[str, Any] = {}
    for name, attributes in re.findall(r"<(\w+) ([^>]*)/>", unquote(inner.group(1))):
        if "lastnull=" in attributes:
            last[name] = None
            continue
        found = re.search(r'last="([^"]*)"', attributes)
        if found:
            last[name] = html.unescape(found.group(1)).strip("{}")
    if set(last) != {c.name for c, _ in order}:
        raise bad_request("The paging cookie ($skiptoken) does not match the query's order.", "0x80040203")
    cutoff = tuple(_cookie_item(column, last[column.name], descending) for column, descending in order)

    def after(row: Row) -> bool:
        return sort_key(row, order) > cutoff

    return int(outer.group(1)), after


def _cookie_item(column: Column, value: Any, descending: bool) -> Any:
    item = (value is not None, comparable(column, value) if value is not None else 0)
    return _Desc(item) if descending else item
