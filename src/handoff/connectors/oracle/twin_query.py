"""The collection queries the Oracle twin answers: `q` in both syntaxes, finders, `orderBy`,
`fields` and `expand`.

    q, framework version 1     query by example: Attr=value;Attr2>value (`;` is AND)
    q, framework version 2+    expressions: Attr = 'text' and (Num > 5 or Attr LIKE 'HO-%'),
                               Attr is null, Attr is not null; `=`, `!=`, `<>`, `<`, `<=`, `>`,
                               `>=`, `LIKE` (`%` any run, `_` one character); and/or, brackets
    finder                     Name;Var=value,Var2=value (every variable must equal)
    orderBy                    Attr:asc,Attr2:desc
    fields                     A,B;Child:C,D (a child named is returned, with those attributes)
    expand                     all, or Child,Child2

Only top-level attributes can be queried; an unknown attribute, finder or variable is a 400.
⚠ Oracle's exact error wording for a bad query is unconfirmed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from handoff.connectors.oracle.twin_schema import INTEGER, NUMBER, Resource, TwinFault

Record = dict[str, Any]
Predicate = Callable[[Record], bool]

_TOKEN = re.compile(r"\s*(?:(?P<open>\()|(?P<close>\))|(?P<text>'(?:[^']|'')*')"
                    r"|(?P<op><>|!=|>=|<=|=|>|<)|(?P<word>[^\s()'=<>!]+))")
_COMPARE: Mapping[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b, "!=": lambda a, b: a != b, "<>": lambda a, b: a != b,
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b, "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}


def refused(parameter: str, value: str, why: str) -> TwinFault:
    return TwinFault(400, f"URL request parameter {parameter} with value {value} is not valid. {why}")


@dataclass
class Shape:
    """What of each row to return: top-level attributes (None: all) and children to include
    with their attributes (None: all of a child's)."""

    fields: list[str] | None = None  # [] (`fields=;Child:A`): none of the parent's
    children: dict[str, list[str] | None] = field(default_factory=dict)


def select(resource: Resource, rows: list[Record], params: Mapping[str, str], version: int) -> list[Record]:
    """The rows `q` and `finder` keep, in `orderBy` order (default: by key)."""
    kept = rows
    if params.get("q"):
        predicate = (by_example(resource, params["q"]) if version < 2
                     else expression(resource, params["q"]))
        kept = [row for row in kept if predicate(row)]
    if params.get("finder"):
        predicate = finder(resource, params["finder"])
        kept = [row for row in kept if predicate(row)]
    return ordered(resource, kept, params.get("orderBy"))


def by_example(resource: Resource, q: str) -> Predicate:
    """Framework version 1: `Attr=value;Attr2=value`."""
    tests = []
    for part in filter(None, q.split(";")):
        match = re.fullmatch(r"\s*(\w+)\s*(<>|!=|>=|<=|=|>|<)\s*(.*?)\s*", part)
        if not match:
            raise refused("q", q, f"Cannot read {part!r} (framework version 1 takes Attr=value;…).")
        name, op, raw = match.groups()
        tests.append((_attribute(resource, name, "q", q), op,
                      _typed(resource, name, raw.strip("'"), "q", q)))
    return lambda row: all(_holds(row.get(name), op, value) for name, op, value in tests)


def expression(resource: Resource, q: str) -> Predicate:
    """Framework version 2 and later."""
    tokens = _tokens(q)
    parser = _Parser(resource, q, tokens)
    predicate = parser.disjunction()
    if parser.position != len(tokens):
        raise refused("q", q, f"Unexpected {tokens[parser.position][1]!r}.")
    return predicate


def finder(resource: Resource, spec: str) -> Predicate:
    name, _, variables = spec.partition(";")
    if name not in resource.finders:
        raise refused("finder", spec, f"The finder {name} is not defined for {resource.name}; "
                      f"it has {', '.join(resource.finders)}.")
    tests = []
    for pair in filter(None, variables.split(",")):
        variable, _, value = pair.partition("=")
        if variable not in resource.finders[name]:
            raise refused("finder", spec, f"The finder {name} has no variable {variable}.")
        tests.append((variable, _typed(resource, variable, value, "finder", spec)))
    return lambda row: all(_holds(row.get(variable), "=", value) for variable, value in tests)


def ordered(resource: Resource, rows: list[Record], order_by: str | None) -> list[Record]:
    keys: list[tuple[str, bool]] = []
    for part in filter(None, (order_by or "").split(",")):
        name, _, direction = part.partition(":")
        if direction not in ("", "asc", "desc"):
            raise refused("orderBy", order_by or "", f"Unknown direction {direction!r}.")
        keys.append((_attribute(resource, name, "orderBy", order_by or ""), direction == "desc"))
    result = sorted(rows, key=lambda row: _sortable(row.get(resource.key)))
    for name, descending in reversed(keys):
        result.sort(key=lambda row, name=name: _sortable(row.get(name)), reverse=descending)
    return result


def shape(resource: Resource, params: Mapping[str, str]) -> Shape:
    """`fields` wins over `expand` when both are given, as Oracle documents."""
    if params.get("fields"):
        top, *children = params["fields"].split(";")
        result = Shape([_attribute(resource, name, "fields", params["fields"])
                        for name in filter(None, top.split(","))])
        for part in children:
            child, _, names = part.partition(":")
            if child not in resource.children:
                raise refused("fields", params["fields"], f"{resource.name} has no child {child}.")
            result.children[child] = [_attribute(resource.children[child], name, "fields",
                                                 params["fields"])
                                      for name in filter(None, names.split(","))] or None
        return result
    expand = params.get("expand", "")
    names = list(resource.children) if expand == "all" else [
        name.split(".")[0] for name in filter(None, expand.split(","))]
    for name in names:
        if name not in resource.children:
            raise refused("expand", expand, f"{resource.name} has no child {name}.")
    return Shape(children={name: None for name in names})


class _Parser:
    def __init__(self, resource: Resource, q: str, tokens: list[tuple[str, str]]) -> None:
        self.resource, self.q, self.tokens, self.position = resource, q, tokens, 0

    def disjunction(self) -> Predicate:
        parts = [self.conjunction()]
        while self._word("or"):
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else (lambda row: any(p(row) for p in parts))

    def conjunction(self) -> Predicate:
        parts = [self.atom()]
        while self._word("and"):
            parts.append(self.atom())
        return parts[0] if len(parts) == 1 else (lambda row: all(p(row) for p in parts))

    def atom(self) -> Predicate:
        if self._take("open"):
            inner = self.disjunction()
            if not self._take("close"):
                raise refused("q", self.q, "A bracket is not closed.")
            return inner
        kind, name = self._next()
        if kind != "word":
            raise refused("q", self.q, f"Expected an attribute, not {name!r}.")
        name = _attribute(self.resource, name, "q", self.q)
        if self._word("is"):
            negated = self._word("not")
            if not self._word("null"):
                raise refused("q", self.q, "Expected null after is.")
            return lambda row: (row.get(name) is None) != negated
        if self._word("like"):
            pattern = _like(self._value(name, text_only=True))
            return lambda row: isinstance(row.get(name), str) and bool(pattern.fullmatch(row[name]))
        kind, op = self._next()
        if kind != "op":
            raise refused("q", self.q, f"Expected a comparison after {name}, not {op!r}.")
        value = self._value(name)
        return lambda row: _holds(row.get(name), op, value)

    def _value(self, name: str, text_only: bool = False) -> Any:
        kind, raw = self._next()
        if kind == "text":
            raw = raw[1:-1].replace("''", "'")
        elif kind != "word":
            raise refused("q", self.q, f"Expected a value for {name}, not {raw!r}.")
        return raw if text_only else _typed(self.resource, name, raw, "q", self.q)

    def _next(self) -> tuple[str, str]:
        if self.position >= len(self.tokens):
            raise refused("q", self.q, "The expression ends too soon.")
        self.position += 1
        return self.tokens[self.position - 1]

    def _take(self, kind: str) -> bool:
        if self.position < len(self.tokens) and self.tokens[self.position][0] == kind:
            self.position += 1
            return True
        return False

    def _word(self, word: str) -> bool:
        if (self.position < len(self.tokens) and self.tokens[self.position][0] == "word"
                and self.tokens[self.position][1].lower() == word):
            self.position += 1
            return True
        return False


def _tokens(q: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while position < len(q):
        match = _TOKEN.match(q, position)
        if not match or match.end() == position:
            if q[position:].strip():
                raise refused("q", q, f"Cannot read {q[position:]!r}.")
            break
        tokens.append(next((kind, value) for kind, value in match.groupdict().items() if value))
        position = match.end()
    return tokens


def _attribute(resource: Resource, name: str, parameter: str, value: str) -> str:
    if name not in resource.fields:
        raise refused(parameter, value, f"The attribute {name} is not defined for {resource.name}.")
    return name


def _typed(resource: Resource, name: str, raw: str, parameter: str, value: str) -> Any:
    if resource.fields.get(name) not in (NUMBER, INTEGER):
        return raw
    try:
        number = Decimal(raw)
    except InvalidOperation:
        raise refused(parameter, value, f"{raw!r} is not a number for {name}.") from None
    return number


def _holds(actual: Any, op: str, expected: Any) -> bool:
    if actual is None:
        return op in ("!=", "<>")
    if isinstance(expected, Decimal):
        if isinstance(actual, bool) or not isinstance(actual, int | Decimal):
            return False
    elif not isinstance(actual, str):
        actual = str(actual)
    return _COMPARE[op](actual, expected)


def _like(pattern: str) -> re.Pattern[str]:
    parts = ["." if c == "_" else ".*" if c == "%" else re.escape(c) for c in pattern]
    return re.compile("".join(parts), re.S)


def _sortable(value: Any) -> tuple[int, Any]:
    if value is None:
        return (2, 0)
    return (0, value) if isinstance(value, int | Decimal) else (1, str(value))
