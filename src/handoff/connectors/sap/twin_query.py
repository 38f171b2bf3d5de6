"""How the SAP twin reads OData v2 URIs and values: resource paths (`Set`, `Set(key)`,
`Set(key)/nav`, `Set/$count`, function imports), URI literals (`'text'`, `guid'…'`,
`datetime'…'`, `12.5M`, `7L`, `true`, `null`), `$filter` (eq ne gt ge lt le, and or not,
parentheses, startswith endswith substringof toupper tolower length, `startswith(…) eq true`),
`$orderby`, `$select`, `$expand`, and JSON values in both directions.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from handoff.connectors.sap.odata import (
    date_value,
    datetime_offset_value,
    decimal_value,
    parse_decimal,
    parse_moment,
)
from handoff.connectors.sap.twin_schema import (
    BOOLEAN,
    DATETIME,
    DATETIMEOFFSET,
    DECIMAL,
    GUID,
    INT32,
    MALFORMED,
    STRING,
    EntityType,
    Prop,
    TwinFault,
    invalid,
)

Record = dict[str, Any]
Predicate = Callable[[Record], Any]

_TOKEN = re.compile(r"""
    \s*(?:
      (?P<prefixed>(?:guid|datetimeoffset|datetime|time|X|binary)'[^']*')
    | (?P<string>'(?:[^']|'')*')
    | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[MmLlDdFf]?)
    | (?P<punct>[(),])
    | (?P<word>[A-Za-z_$][A-Za-z0-9_/.$]*)
    )""", re.X)
_COMPARISONS = {"eq", "ne", "gt", "ge", "lt", "le"}
_GUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")


def malformed(message: str) -> TwinFault:
    return TwinFault(400, MALFORMED, message)


# --- literals --------------------------------------------------------------------------------

def parse_literal(text: str) -> Any:
    """One URI literal as a Python value (datetimes aware, in UTC)."""
    text = text.strip()
    if text.startswith("'") and text.endswith("'") and len(text) >= 2:
        return text[1:-1].replace("''", "'")
    prefix, quote, rest = text.partition("'")
    if quote and rest.endswith("'"):
        value = rest[:-1]
        if prefix == "guid" and _GUID.fullmatch(value):
            return value.lower()
        if prefix in ("datetime", "datetimeoffset"):
            return _moment(value)
        raise malformed(f"Invalid URI literal {text}")
    if text in ("true", "false"):
        return text == "true"
    if text == "null":
        return None
    number = text.rstrip("MmLlDdFf")
    try:
        return int(number) if re.fullmatch(r"-?\d+", number) else Decimal(number)
    except InvalidOperation:
        raise malformed(f"Invalid URI literal {text}") from None


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise malformed(f"Invalid date/time literal '{text}'") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_key(entity: EntityType, text: str) -> tuple[Any, ...]:
    """`('1')`, `(guid'…')` or `(A='1',B='2')` as the key's values in the type's key order."""
    parts = _split_outside_quotes(text, ",")
    if len(parts) == 1 and "=" not in _outside_quotes(parts[0]):
        if len(entity.keys) != 1:
            raise malformed(f"Key of {entity.entity_set} needs {', '.join(entity.keys)}")
        return (parse_literal(parts[0]),)
    named = {}
    for part in parts:
        name, _, value = part.partition("=")
        named[name.strip()] = parse_literal(value)
    if set(named) != set(entity.keys):
        raise malformed(f"Key of {entity.entity_set} needs {', '.join(entity.keys)}")
    return tuple(named[name] for name in entity.keys)


def key_text(entity: EntityType, record: Record) -> str:
    """The key as it appears in a URI."""
    def one(name: str) -> str:
        value = record[name]
        if entity.props[name].edm == GUID:
            return f"guid'{value}'"
        return "'" + str(value).replace("'", "''") + "'"
    if len(entity.keys) == 1:
        return f"({one(entity.keys[0])})"
    return "(" + ",".join(f"{name}={one(name)}" for name in entity.keys) + ")"


# --- resource paths --------------------------------------------------------------------------

@dataclass(frozen=True)
class Resource:
    """`name` is an entity set or a function import; `key` its key text (with parentheses);
    `navigation` a navigation property or `$count`."""

    name: str
    key: str | None = None
    navigation: str | None = None


def parse_resource(path: str) -> Resource:
    segments = [s for s in _split_outside_quotes(path, "/") if s]
    if not segments or len(segments) > 2:
        raise malformed(f"Resource path '{path}' not supported by the twin")
    match = re.fullmatch(r"([A-Za-z_$][\w$]*)(\(.*\))?", segments[0], re.S)
    if match is None:
        raise malformed(f"Invalid resource path segment '{segments[0]}'")
    key = match[2][1:-1] if match[2] else None
    return Resource(match[1], key, segments[1] if len(segments) > 1 else None)


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    parts, current, quoted = [], [], False
    for char in text:
        if char == "'":
            quoted = not quoted
        if char == separator and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _outside_quotes(text: str) -> str:
    return re.sub(r"'(?:[^']|'')*'", "", text)


# --- query options ---------------------------------------------------------------------------

@dataclass
class Options:
    filter: str | None = None
    select: list[str] = field(default_factory=list)
    expand: list[str] = field(default_factory=list)
    orderby: str | None = None
    top: int | None = None
    skip: int = 0
    skiptoken: int = 0
    inlinecount: bool = False

    @classmethod
    def of(cls, params: Mapping[str, str]) -> Options:
        unknown = {p for p in params if p.startswith("$")} - {
            "$filter", "$select", "$expand", "$orderby", "$top", "$skip", "$skiptoken", "$inlinecount",
            "$format"}
        if unknown:
            raise malformed(f"System query option {sorted(unknown)[0]} is not supported")
        if params.get("$format", "json") != "json":
            raise TwinFault(415, MALFORMED, "The twin answers $format=json only")
        inline = params.get("$inlinecount", "none")
        if inline not in ("allpages", "none"):
            raise malformed(f"Invalid value '{inline}' for $inlinecount")
        return cls(params.get("$filter"), _names(params.get("$select")), _names(params.get("$expand")),
                   params.get("$orderby"), _count(params, "$top"), _count(params, "$skip") or 0,
                   _count(params, "$skiptoken") or 0, inline == "allpages")


def _names(value: str | None) -> list[str]:
    return [name.strip() for name in value.split(",") if name.strip()] if value else []


def _count(params: Mapping[str, str], name: str) -> int | None:
    raw = params.get(name)
    if raw is None:
        return None
    if not raw.isdigit():
        raise malformed(f"Invalid value '{raw}' for system query option {name}")
    return int(raw)


def ordered(entity: EntityType, rows: list[Record], orderby: str | None) -> list[Record]:
    if not orderby:
        return rows
    for clause in reversed(orderby.split(",")):
        name, _, direction = clause.strip().partition(" ")
        if name not in entity.props:
            raise malformed(f"Property '{name}' not found in type '{entity.type_name}'")
        present = [r for r in rows if r.get(name) is not None]
        missing = [r for r in rows if r.get(name) is None]
        present.sort(key=lambda r, n=name: r[n], reverse=direction.strip().lower() == "desc")
        rows = missing + present
    return rows


# --- $filter ---------------------------------------------------------------------------------

def compile_filter(entity: EntityType, text: str) -> Predicate:
    """A predicate over a record; properties are checked against the type."""
    return _Parser(entity, text).parse()


class _Parser:
    def __init__(self, entity: EntityType, text: str) -> None:
        self.entity = entity
        self.text = text
        self.tokens = self._tokens(text)
        self.at = 0

    def _tokens(self, text: str) -> list[tuple[str, str]]:
        tokens, position = [], 0
        while position < len(text):
            if text[position:].strip() == "":
                break
            match = _TOKEN.match(text, position)
            if match is None or match.end() == position:
                raise malformed(f"Invalid filter expression at '{text[position:position + 20]}'")
            kind = match.lastgroup or ""
            tokens.append((kind, match[kind]))
            position = match.end()
        return tokens

    def parse(self) -> Predicate:
        predicate = self._or()
        if self.at != len(self.tokens):
            raise malformed(f"Invalid filter expression '{self.text}'")
        return predicate

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def _take(self, value: str | None = None) -> tuple[str, str]:
        token = self._peek()
        if token is None or (value is not None and token[1] != value):
            raise malformed(f"Invalid filter expression '{self.text}': expected {value or 'more'}")
        self.at += 1
        return token

    def _word(self, *words: str) -> str | None:
        token = self._peek()
        if token and token[0] == "word" and token[1] in words:
            self.at += 1
            return token[1]
        return None

    def _or(self) -> Predicate:
        left = self._and()
        while self._word("or"):
            right = self._and()
            left = (lambda a, b: lambda r: bool(a(r)) or bool(b(r)))(left, right)
        return left

    def _and(self) -> Predicate:
        left = self._not()
        while self._word("and"):
            right = self._not()
            left = (lambda a, b: lambda r: bool(a(r)) and bool(b(r)))(left, right)
        return left

    def _not(self) -> Predicate:
        if self._word("not"):
            inner = self._not()
            return lambda r: not inner(r)
        return self._comparison()

    def _comparison(self) -> Predicate:
        left = self._operand()
        operator = self._word(*_COMPARISONS)
        if operator is None:
            return left
        right = self._operand()
        return lambda r: _compare(operator, left(r), right(r))

    def _operand(self) -> Predicate:
        kind, value = self._take()
        if value == "(":
            inner = self._or()
            self._take(")")
            return inner
        if kind == "word" and self._peek() == ("punct", "("):
            return self._function(value)
        if kind == "word" and value not in ("true", "false", "null"):
            if value not in self.entity.props:
                raise malformed(f"Property '{value}' not found in type '{self.entity.type_name}'")
            guid = self.entity.props[value].edm == GUID
            return lambda r, n=value: (r.get(n) or "").lower() if guid and r.get(n) else r.get(n)
        constant = parse_literal(value)
        return lambda r: constant

    def _function(self, name: str) -> Predicate:
        self._take("(")
        args = [self._or()]
        while self._peek() == ("punct", ","):
            self._take(",")
            args.append(self._or())
        self._take(")")
        functions: dict[str, tuple[int, Callable[..., Any]]] = {
            "startswith": (2, lambda a, b: isinstance(a, str) and isinstance(b, str) and a.startswith(b)),
            "endswith": (2, lambda a, b: isinstance(a, str) and isinstance(b, str) and a.endswith(b)),
            "substringof": (2, lambda a, b: isinstance(a, str) and isinstance(b, str) and a in b),
            "toupper": (1, lambda a: a.upper() if isinstance(a, str) else a),
            "tolower": (1, lambda a: a.lower() if isinstance(a, str) else a),
            "length": (1, lambda a: len(a) if isinstance(a, str) else None),
        }
        if name not in functions or functions[name][0] != len(args):
            raise malformed(f"Function '{name}' with {len(args)} argument(s) is not supported")
        function = functions[name][1]
        return lambda r: function(*(arg(r) for arg in args))


def _compare(operator: str, left: Any, right: Any) -> bool:
    if operator in ("eq", "ne"):
        equal = left == right
        return equal if operator == "eq" else not equal
    if left is None or right is None:
        return False
    try:
        return {"gt": left > right, "ge": left >= right, "lt": left < right, "le": left <= right}[operator]
    except TypeError:
        raise malformed(f"Cannot compare {left!r} and {right!r}") from None


# --- JSON values -------------------------------------------------------------------------------

def encode(prop: Prop, value: Any) -> Any:
    """A stored value as SAP's JSON has it."""
    if value is None:
        return None
    if prop.edm == DATETIME:
        return date_value(value.date()) if value == _midnight(value) else _datetime_value(value)
    if prop.edm == DATETIMEOFFSET:
        return datetime_offset_value(value)
    if prop.edm == DECIMAL:
        return decimal_value(value.quantize(Decimal(1).scaleb(-prop.scale)))
    return value


def decode(prop: Prop, name: str, value: Any) -> Any:
    """A value of a request body as the twin stores it; refused with the property named."""
    if value is None:
        return None
    if prop.edm == STRING:
        if not isinstance(value, str):
            raise invalid(name, value, "a string is expected")
        if prop.length is not None and len(value) > prop.length:
            raise TwinFault(400, "/IWBEP/CM_MGW_RT/022",
                            f"Value '{value}' of property '{name}' is longer than {prop.length} characters",
                            name)
        return value.upper() if prop.upper else value
    if prop.edm == GUID:
        if not (isinstance(value, str) and _GUID.fullmatch(value)):
            raise invalid(name, value, "a GUID is expected")
        return str(uuid.UUID(value))
    if prop.edm in (DATETIME, DATETIMEOFFSET):
        try:
            return parse_moment(value)
        except ValueError:
            raise invalid(name, value, "/Date(<ms>)/ is expected") from None
    if prop.edm == DECIMAL:
        try:
            return parse_decimal(value)
        except ValueError:
            raise invalid(name, value, "a decimal is expected as a string") from None
    if prop.edm == BOOLEAN:
        if not isinstance(value, bool):
            raise invalid(name, value, "true or false is expected")
        return value
    if prop.edm == INT32:
        if isinstance(value, bool) or not isinstance(value, int):
            raise invalid(name, value, "an integer is expected")
        return value
    raise invalid(name, value)


def _midnight(value: datetime) -> datetime:
    return value.replace(hour=0, minute=0, second=0, microsecond=0)


def _datetime_value(value: datetime) -> str:
    return datetime_offset_value(value).replace("+0000)", ")")
