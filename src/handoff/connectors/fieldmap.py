"""Declarative field mapping: where a firm's CRM keeps a canonical field somewhere else, or in
another form, the configuration says so per system and object, and the connector reads it
that way. The built-in mapping holds for every field not named.

    [systems.salesforce.mapping.opportunity]
    legal_entity   = { from = "Company_Code__c", lookup = { "1000" = "US01", "2000" = "UK01" } }
    billing_method = { constant = "fixed_fee" }
    close_date     = { from = "Close_Text__c", date = "%d.%m.%Y" }
    amount         = { from = "Net_Value__c", number = "comma" }       # "1.234,56" → 1234.56
    currency       = { from = "Currency_Name__c", currency = { "US Dollar" = "USD" } }
    name           = "Project_Name__c"                                 # a plain rename

Transforms: `from` alone renames; `constant` sets a value; `lookup` translates through a table
(a value not in it is refused, naming the field); `date` parses with a strptime format into
ISO; `number` reads "point" (1,234.56) or "comma" (1.234,56) notation into exact decimal text;
`currency` translates a label to an ISO 4217 code (three letters pass through). Everything is
checked when the configuration loads; an error names the line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from handoff.errors import ConfigError, DataError

OBJECTS: dict[str, frozenset[str]] = {
    "opportunity": frozenset({"name", "stage", "amount", "currency", "close_date", "billing_method",
                              "contract_status", "sow_status", "legal_entity", "owner", "description"}),
    "customer": frozenset({"name", "currency", "tax_jurisdiction", "legal_entity", "validation_status"}),
}
TRANSFORMS = ("constant", "lookup", "date", "number", "currency")
ISO_CODE = re.compile(r"^[A-Z]{3}$")
NOTATION = {"point": (",", "."), "comma": (".", ",")}  # (thousands, decimal) separators


@dataclass(frozen=True)
class Rule:
    canonical: str
    source: str | None             # the vendor's field; None for a constant
    convert: Callable[[Any], Any]
    system: str

    def value(self, record: Mapping[str, Any]) -> Any:
        raw = record.get(self.source) if self.source else None
        try:
            return self.convert(raw)
        except (KeyError, ValueError, InvalidOperation) as exc:
            raise DataError(f"{self.source} = {raw!r} cannot be read as {self.canonical}: {exc}",
                            system=self.system, field=self.canonical) from None


@dataclass(frozen=True)
class FieldMap:
    system: str
    rules: Mapping[str, tuple[Rule, ...]] = field(default_factory=dict)

    def sources(self, obj: str) -> list[str]:
        """The vendor fields the rules of an object read (to ask the API for them)."""
        return [rule.source for rule in self.rules.get(obj, ()) if rule.source]

    def apply(self, obj: str, record: Mapping[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        """The canonical data with each configured field taken from the record as configured."""
        rules = self.rules.get(obj, ())
        return data if not rules else data | {rule.canonical: rule.value(record) for rule in rules}


NO_MAPPING = FieldMap("")


def parse_field_map(system: str, tables: Mapping[str, Any], where: Callable[[str], str]) -> FieldMap:
    """`[systems.<system>.mapping.<object>]` tables → a FieldMap. `where(key)` names the
    configuration line of a dotted key, for the error."""
    rules: dict[str, tuple[Rule, ...]] = {}
    for obj, entries in tables.items():
        table = f"systems.{system}.mapping.{obj}"
        if obj not in OBJECTS:
            raise ConfigError(f"{where(table)}[{table}]: no object {obj!r}; known: {', '.join(OBJECTS)}")
        if not isinstance(entries, Mapping):
            raise ConfigError(f"{where(table)}[{table}] must be a table of field = rule")
        rules[obj] = tuple(rule_of(system, obj, name, spec, f"{where(f'{table}.{name}')}{table}.{name}")
                           for name, spec in entries.items())
    return FieldMap(system, rules)


def rule_of(system: str, obj: str, canonical: str, spec: Any, place: str) -> Rule:
    if canonical not in OBJECTS[obj]:
        raise ConfigError(f"{place}: {canonical!r} is not a field of a canonical {obj}; known: "
                          f"{', '.join(sorted(OBJECTS[obj]))}")
    if isinstance(spec, str):
        spec = {"from": spec}
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{place}: a rule is a field name or a table such as "
                          '{ from = "Field__c", lookup = { … } }')
    unknown = set(spec) - {"from", *TRANSFORMS}
    chosen = [name for name in TRANSFORMS if name in spec]
    if unknown or len(chosen) > 1:
        raise ConfigError(f"{place}: unknown key(s) {', '.join(sorted(unknown)) or chosen[1]}; "
                          f"use from with at most one of {', '.join(TRANSFORMS)}")
    source = spec.get("from")
    if (source is None) != (chosen == ["constant"]):
        raise ConfigError(f"{place}: " + ("a constant takes no from" if source else
                                          "name the vendor field: from = \"…\""))
    if source is not None and not (isinstance(source, str) and source):
        raise ConfigError(f"{place}: from must be a field name")
    how = chosen[0] if chosen else "rename"
    return Rule(canonical, source, CONVERTERS[how](spec.get(how), place), system)


def _rename(_arg: Any, _place: str) -> Callable[[Any], Any]:
    return lambda raw: raw


def _constant(value: Any, place: str) -> Callable[[Any], Any]:
    if not isinstance(value, str | int | float | bool):
        raise ConfigError(f"{place}: constant must be a text, number or true/false")
    return lambda _raw: value


def _lookup(table: Any, place: str) -> Callable[[Any], Any]:
    if not isinstance(table, Mapping) or not table:
        raise ConfigError(f"{place}: lookup must be a table of vendor value = canonical value")
    return lambda raw: None if raw is None else table[str(raw)]


def _date(pattern: Any, place: str) -> Callable[[Any], Any]:
    try:
        datetime.strptime(datetime(2026, 11, 26).strftime(str(pattern)), str(pattern))
    except ValueError:
        raise ConfigError(f"{place}: date {pattern!r} is not a strptime format such as "
                          '"%d.%m.%Y"') from None
    return lambda raw: None if raw in (None, "") else datetime.strptime(str(raw), pattern).date().isoformat()


def _number(notation: Any, place: str) -> Callable[[Any], Any]:
    if notation not in NOTATION:
        raise ConfigError(f"{place}: number is \"point\" (1,234.56) or \"comma\" (1.234,56)")
    thousands, decimal = NOTATION[notation]

    def read(raw: Any) -> str | None:
        if raw in (None, ""):
            return None
        text = str(raw).replace(" ", "").replace(thousands, "").replace(decimal, ".")
        return format(Decimal(text), "f")
    return read


def _currency(table: Any, place: str) -> Callable[[Any], Any]:
    if not isinstance(table, Mapping) or not all(ISO_CODE.match(str(v)) for v in table.values()):
        raise ConfigError(f"{place}: currency must be a table of vendor label = ISO 4217 code")

    def code(raw: Any) -> str | None:
        if raw is None:
            return None
        text = str(raw)
        return text if ISO_CODE.match(text) else table[text]
    return code


CONVERTERS: dict[str, Callable[[Any, str], Callable[[Any], Any]]] = {
    "rename": _rename, "constant": _constant, "lookup": _lookup, "date": _date, "number": _number,
    "currency": _currency}


def line_finder(text: str) -> Callable[[str], str]:
    """`where(dotted key)` → "line N: " of the key's table header or assignment in the TOML
    text (tomllib gives no positions); "" when it cannot be found."""
    lines = text.splitlines()

    def where(dotted: str) -> str:
        table, _, key = dotted.rpartition(".")
        header = re.compile(rf"^\s*\[\s*{re.escape(dotted)}\s*\]")
        in_table, found = False, None
        for number, line in enumerate(lines, start=1):
            if header.match(line):
                return f"line {number}: "
            stripped = line.strip()
            if stripped.startswith("["):
                in_table = stripped.strip("[] ") == table
            elif in_table and re.match(rf"^{re.escape(key)}\s*=", stripped):
                found = number
                break
        return f"line {found}: " if found else ""
    return where
