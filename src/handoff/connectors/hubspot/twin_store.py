"""The sandbox portal's CRM: deals and companies with HubSpot's property rules, associations
between them, the deal pipeline, and the search HubSpot's CRM search API runs.

Every property value is a string (or null), as HubSpot shows them; `hs_object_id`,
`createdate` and `hs_lastmodifieddate` are kept by the store. The twin serves requests on one
event loop and no write awaits mid-way, so no locks are needed.
"""

from __future__ import annotations

import fnmatch
import itertools
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from handoff.connectors.hubspot.mapping import iso_millis, ms_epoch, parse_timestamp
from handoff.domain import ApprovalStatus, BillingMethod, ProvisioningStatus, ValidationStatus

MODIFIED, CREATED, OBJECT_ID = "hs_lastmodifieddate", "createdate", "hs_object_id"
ALWAYS_IN_SEARCH = (CREATED, MODIFIED, OBJECT_ID)


class HubSpotApiError(Exception):
    """A refusal in HubSpot's words: `{"status": "error", "message", "correlationId",
    "category", …}` with the HTTP status it comes with."""

    def __init__(self, status: int, category: str, message: str, *,
                 context: Mapping[str, list[str]] | None = None,
                 errors: list[dict[str, Any]] | None = None, retry_after: int | None = None,
                 headers: Mapping[str, str] | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.category, self.message = status, category, message
        self.context, self.errors, self.extra = dict(context or {}), errors, extra
        self.retry_after = retry_after  # seconds, sent as Retry-After when set
        self.headers = dict(headers or {})

    def body(self, correlation_id: str) -> dict[str, Any]:
        body: dict[str, Any] = {"status": "error", "message": self.message,
                                "correlationId": correlation_id, "category": self.category}
        if self.context:
            body["context"] = self.context
        if self.errors is not None:
            body["errors"] = self.errors
        return body | self.extra

    def batch_entry(self) -> dict[str, Any]:
        """The error as one entry of a 207 batch response's `errors` (all StandardError fields)."""
        return {"status": "error", "category": self.category, "message": self.message,
                "context": self.context, "links": {}, "errors": self.errors or []}


def not_found(object_id: str) -> HubSpotApiError:
    message = ("Object not found.  objectId are usually numeric." if not object_id.isdigit()
               else f"Object not found. No object with id {object_id}.")
    return HubSpotApiError(404, "OBJECT_NOT_FOUND", message, context={"id": [object_id]})


def validation_error(message: str, **context: list[str]) -> HubSpotApiError:
    return HubSpotApiError(400, "VALIDATION_ERROR", message, context=context or None)


def invalid_properties(problems: list[dict[str, Any]]) -> HubSpotApiError:
    """HubSpot's v3 body for refused property values: the validation results as JSON text
    inside the message (as clients have logged it; `errors[]` is not sent)."""
    return validation_error("Property values were not valid: " + json.dumps(problems))


def _problem(name: str, code: str, message: str) -> dict[str, Any]:
    return {"isValid": False, "message": message, "error": code, "name": name,
            "localizedErrorMessage": message}


# --- schema -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Property:
    name: str
    type: str = "string"           # string | number | enumeration | datetime | bool
    options: tuple[str, ...] = ()  # enumeration values (internal names); empty: any
    read_only: bool = False
    unique: bool = False           # hasUniqueValue: may serve as idProperty

    def normalized(self, value: Any) -> str | None:
        """The value as HubSpot stores it, or ValueError with HubSpot's error code."""
        if value is None or value == "":
            return None  # an empty string clears the value
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if self.type != "string" and text != text.strip():
            raise ValueError("INVALID_VALUE", f"{text!r} has leading or trailing spaces")
        if self.type == "number":
            try:
                number = Decimal(text)
            except InvalidOperation:
                raise ValueError("INVALID_FLOAT", f"{text} is not a valid number") from None
            if not number.is_finite():
                raise ValueError("INVALID_FLOAT", f"{text} is not a valid number")
            return text
        if self.type == "enumeration" and self.options and text not in self.options:
            raise ValueError("INVALID_OPTION", f"{text} was not one of the allowed options: "
                             f"[{', '.join(self.options)}]")
        if self.type == "datetime":
            try:
                return iso_millis(parse_timestamp(text))
            except (ValueError, OverflowError):
                raise ValueError("INVALID_DATE", f"{text} is not a valid date") from None
        if self.type == "bool" and text not in ("true", "false"):
            raise ValueError("INVALID_BOOLEAN", f"{text} is not true or false")
        return text


STAGES = (  # HubSpot's default pipeline: (id, label, probability, closed)
    ("appointmentscheduled", "Appointment Scheduled", "0.2", False),
    ("qualifiedtobuy", "Qualified To Buy", "0.4", False),
    ("presentationscheduled", "Presentation Scheduled", "0.6", False),
    ("decisionmakerboughtin", "Decision Maker Bought-In", "0.8", False),
    ("contractsent", "Contract Sent", "0.9", False),
    ("closedwon", "Closed Won", "1.0", True),
    ("closedlost", "Closed Lost", "0.0", True),
)
_APPROVALS = tuple(s.value for s in ApprovalStatus)
_SYSTEM_PROPERTIES = (
    Property(OBJECT_ID, "number", read_only=True), Property(CREATED, "datetime"),
    Property(MODIFIED, "datetime", read_only=True),
    Property("hs_updated_by_user_id", "number", read_only=True),
    Property("handoff_external_id", unique=True),
)
DEAL_PROPERTIES = {p.name: p for p in (
    *_SYSTEM_PROPERTIES,
    Property("dealname"), Property("amount", "number"), Property("description"),
    Property("dealstage", "enumeration", tuple(s[0] for s in STAGES)),
    Property("pipeline", "enumeration", ("default",)), Property("closedate", "datetime"),
    Property("hubspot_owner_id", "enumeration"), Property("deal_currency_code", "enumeration"),
    Property("hs_is_closed_won", "bool", read_only=True),
    Property("billing_method", "enumeration", tuple(m.value for m in BillingMethod)),
    Property("contract_status", "enumeration", _APPROVALS),
    Property("sow_status", "enumeration", _APPROVALS), Property("legal_entity"),
    Property("handoff_project_id"),
    Property("handoff_status", "enumeration", tuple(s.value for s in ProvisioningStatus)),
    Property("handoff_status_detail"), Property("handoff_invoiced_amount", "number"),
    Property("handoff_paid_amount", "number"), Property("handoff_open_balance", "number"),
    Property("handoff_days_overdue", "number"), Property("handoff_invoice_numbers"),
    Property("handoff_billing_status"),
)}
COMPANY_PROPERTIES = {p.name: p for p in (
    *_SYSTEM_PROPERTIES,
    Property("name"), Property("domain"), Property("billing_currency"),
    Property("tax_jurisdiction"), Property("legal_entity"),
    Property("validation_status", "enumeration", tuple(s.value for s in ValidationStatus)),
)}


@dataclass(frozen=True)
class ObjectType:
    name: str                       # the path segment: deals, companies
    singular: str                   # deal, company
    type_id: str                    # 0-3, 0-2
    properties: Mapping[str, Property]
    defaults: tuple[str, ...]       # what reads return when no `properties` are asked


OBJECT_TYPES = {
    "deals": ObjectType("deals", "deal", "0-3", DEAL_PROPERTIES,
                        ("dealname", "amount", "closedate", "pipeline", "dealstage", CREATED,
                         MODIFIED, OBJECT_ID)),
    "companies": ObjectType("companies", "company", "0-2", COMPANY_PROPERTIES,
                            ("name", "domain", CREATED, MODIFIED, OBJECT_ID)),
}
_TYPE_ALIASES = {"deal": "deals", "0-3": "deals", "company": "companies", "0-2": "companies"}

# Association type ids (HUBSPOT_DEFINED) and their labels; the inverse of each.
ASSOCIATION_TYPES: dict[tuple[str, str], dict[int, str | None]] = {
    ("deals", "companies"): {341: None, 5: "Primary"},
    ("companies", "deals"): {342: None, 6: "Primary"},
}
INVERSE = {341: 342, 342: 341, 5: 6, 6: 5}
UNLABELLED = {("deals", "companies"): 341, ("companies", "deals"): 342}
PRIMARY = {5, 6}


def object_type(name: str) -> ObjectType:
    found = OBJECT_TYPES.get(_TYPE_ALIASES.get(name, name))
    if found is None:
        raise validation_error(f"Unable to infer object type from: {name}")
    return found


# --- records ----------------------------------------------------------------------------------

@dataclass
class CrmObject:
    id: str
    type: ObjectType
    properties: dict[str, str | None]
    created_at: str
    updated_at: str
    archived: bool = False
    archived_at: str | None = None

    def render(self, names: Iterable[str] | None = None) -> dict[str, Any]:
        """As the API answers: the asked properties (those that exist; null when unset)."""
        wanted = self.type.defaults if names is None else names
        props = {n: self.properties.get(n) for n in wanted if n in self.type.properties}
        body: dict[str, Any] = {"id": self.id, "properties": props, "createdAt": self.created_at,
                                "updatedAt": self.updated_at, "archived": self.archived}
        if self.archived_at:
            body["archivedAt"] = self.archived_at
        return body


class Clock:
    """Millisecond stamps that strictly increase, unless frozen at one millisecond (to play
    many writes landing in the same millisecond)."""

    def __init__(self) -> None:
        self._last = datetime.min.replace(tzinfo=UTC)
        self.frozen_ms: int | None = None

    def tick(self) -> datetime:
        if self.frozen_ms is not None:
            return datetime.fromtimestamp(self.frozen_ms / 1000, tz=UTC)
        now = datetime.now(UTC)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        self._last = max(now, self._last + timedelta(milliseconds=1))
        return self._last


@dataclass
class SearchPage:
    total: int
    results: list[CrmObject]
    next_after: str | None


@dataclass
class Store:
    clock: Clock = field(default_factory=Clock)
    numbers: Iterator[int] = field(default_factory=lambda: itertools.count(10_000_001))
    objects: dict[str, dict[str, CrmObject]] = field(
        default_factory=lambda: {name: {} for name in OBJECT_TYPES})
    # (from type, from id, to type) -> {to id: {type ids}}
    links: dict[tuple[str, str, str], dict[str, set[int]]] = field(default_factory=dict)

    # --- single objects -----------------------------------------------------------------------

    def get(self, kind: ObjectType, key: str, id_property: str | None = None,
            archived: bool = False) -> CrmObject:
        found = self._find(kind, key, id_property)
        if found is None or found.archived != archived:
            raise not_found(key)
        return found

    def create(self, kind: ObjectType, properties: Mapping[str, Any],
               associations: Sequence[Mapping[str, Any]] = ()) -> CrmObject:
        values = self.checked(kind, properties)
        links = [self._association_input(kind, a) for a in associations]
        self._check_unique(kind, values, None)
        stamp = iso_millis(self.clock.tick())
        object_id = str(next(self.numbers))
        blank: dict[str, str | None] = {name: None for name in kind.properties}
        record = CrmObject(object_id, kind, blank | values, stamp, stamp)
        record.properties[OBJECT_ID] = object_id
        record.properties[CREATED] = values.get(CREATED) or stamp
        record.properties[MODIFIED] = stamp
        if kind.name == "deals":
            record.properties["pipeline"] = record.properties["pipeline"] or "default"
        self._derive(record)
        self.objects[kind.name][object_id] = record
        for to_type, to_id, type_ids in links:
            self.associate(kind.name, object_id, to_type, to_id, type_ids)
        return record

    def update(self, kind: ObjectType, key: str, properties: Mapping[str, Any],
               id_property: str | None = None) -> CrmObject:
        record = self.get(kind, key, id_property)
        values = self.checked(kind, properties)
        self._check_unique(kind, values, record.id)
        record.properties |= values
        self._touch(record)
        return record

    def archive(self, kind: ObjectType, key: str) -> None:
        record = self._find(kind, key, None)
        if record is None or record.archived:
            return  # archiving is idempotent: 204 either way
        record.archived, record.archived_at = True, iso_millis(self.clock.tick())

    def upsert(self, kind: ObjectType, id_property: str, value: str,
               properties: Mapping[str, Any]) -> tuple[CrmObject, bool]:
        prop = kind.properties.get(id_property)
        if prop is None or not (prop.unique or id_property == OBJECT_ID):
            raise validation_error(f"{id_property} is not a unique identifier property of "
                                   f"{kind.singular} objects", propertyName=[id_property])
        existing = self._find(kind, value, id_property)
        if existing is not None and not existing.archived:
            return self.update(kind, existing.id, properties), False
        if id_property == OBJECT_ID:
            raise not_found(value)
        return self.create(kind, dict(properties) | {id_property: value}), True

    def checked(self, kind: ObjectType, properties: Mapping[str, Any]) -> dict[str, str | None]:
        if not isinstance(properties, Mapping):
            raise validation_error("properties must be an object of property values")
        values, problems = {}, []
        for name, value in properties.items():
            prop = kind.properties.get(name)
            if prop is None:
                problems.append(_problem(name, "PROPERTY_DOESNT_EXIST",
                                         f'Property "{name}" does not exist'))
            elif prop.read_only:
                problems.append(_problem(name, "READ_ONLY_VALUE",
                                         f'Property "{name}" is a read only property; its value '
                                         "cannot be set."))
            else:
                try:
                    values[name] = prop.normalized(value)
                except ValueError as exc:
                    code, message = exc.args
                    problems.append(_problem(name, code, message))
        if problems:
            raise invalid_properties(problems)
        return values

    def records(self, kind: ObjectType, archived: bool = False) -> list[CrmObject]:
        return sorted((r for r in self.objects[kind.name].values() if r.archived == archived),
                      key=lambda r: int(r.id))

    # --- list and search ----------------------------------------------------------------------

    def page(self, kind: ObjectType, after: str | None, limit: int,
             archived: bool = False) -> tuple[list[CrmObject], str | None]:
        """The list API: objects in id order from the cursor (the first id not yet read)."""
        start = int(after) if after and after.isdigit() else 0
        records = [r for r in self.records(kind, archived) if int(r.id) >= start]
        return records[:limit], (records[limit].id if len(records) > limit else None)

    def search(self, kind: ObjectType, request: Mapping[str, Any], offset: int,
               limit: int) -> SearchPage:
        groups = request.get("filterGroups") or []
        matches = [r for r in self.records(kind)
                   if not groups or any(self._matches(kind, r, g) for g in groups)]
        for prop, descending in reversed(_sorts(request.get("sorts"))):
            matches.sort(key=lambda r, p=prop: _sort_key(kind, r, p), reverse=descending)
        results = matches[offset:offset + limit]
        more = offset + limit < len(matches)
        return SearchPage(len(matches), results, str(offset + limit) if more else None)

    def _matches(self, kind: ObjectType, record: CrmObject, group: Mapping[str, Any]) -> bool:
        return all(_test(kind, record, f) for f in group.get("filters") or [])

    # --- associations -------------------------------------------------------------------------

    def associate(self, from_type: str, from_id: str, to_type: str, to_id: str,
                  type_ids: Iterable[int] | None = None) -> None:
        """Link two objects (both directions). A primary label implies the unlabelled
        association, and a deal has one primary company: the previous one loses the label."""
        pair = (from_type, to_type)
        known = ASSOCIATION_TYPES.get(pair)
        if known is None:
            raise validation_error(f"association from {from_type} to {to_type} is not supported")
        for object_id, kind in ((from_id, from_type), (to_id, to_type)):
            self.get(OBJECT_TYPES[kind], object_id)
        wanted = set(type_ids) if type_ids is not None else {UNLABELLED[pair]}
        unknown = wanted - set(known)
        if unknown:
            raise validation_error(f"association type ids {sorted(unknown)} are not defined for "
                                   f"{from_type} → {to_type}")
        wanted.add(UNLABELLED[pair])
        if wanted & PRIMARY:
            for other, types in self.links.get((from_type, from_id, to_type), {}).items():
                if other != to_id and types & PRIMARY:
                    types -= PRIMARY
                    self.links[(to_type, other, from_type)][from_id] -= PRIMARY
        self.links.setdefault((from_type, from_id, to_type), {}).setdefault(to_id, set()).update(wanted)
        self.links.setdefault((to_type, to_id, from_type), {}).setdefault(from_id, set()).update(
            INVERSE[t] for t in wanted)

    def dissociate(self, from_type: str, from_id: str, to_type: str, to_id: str) -> None:
        self.links.get((from_type, from_id, to_type), {}).pop(to_id, None)
        self.links.get((to_type, to_id, from_type), {}).pop(from_id, None)

    def associations(self, from_type: str, from_id: str, to_type: str) -> list[dict[str, Any]]:
        """v4 shape: `[{"toObjectId": 123, "associationTypes": [{category, typeId, label}]}]`."""
        labels = ASSOCIATION_TYPES.get((from_type, to_type), {})
        linked = self.links.get((from_type, from_id, to_type), {})
        return [{"toObjectId": int(to_id),
                 "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": t,
                                       "label": labels.get(t)} for t in sorted(types)]}
                for to_id, types in sorted(linked.items(), key=lambda item: int(item[0]))]

    def _association_input(self, kind: ObjectType, spec: Mapping[str, Any]) -> tuple[str, str, list[int]]:
        """One `{"to": {"id"}, "types": [{associationCategory, associationTypeId}]}` of a create."""
        try:
            to_id = str(spec["to"]["id"])
            type_ids = [int(t["associationTypeId"]) for t in spec["types"]]
        except (KeyError, TypeError, ValueError):
            raise validation_error("associations must be [{to: {id}, types: [{associationCategory, "
                                   "associationTypeId}]}]") from None
        for (from_name, to_name), known in ASSOCIATION_TYPES.items():
            if from_name == kind.name and set(type_ids) <= set(known):
                if self._find(OBJECT_TYPES[to_name], to_id, None) is None:
                    raise validation_error(f"{to_name} {to_id} does not exist to associate with",
                                           id=[to_id])
                return to_name, to_id, type_ids
        raise validation_error(f"association type ids {type_ids} are not defined for {kind.name}")

    # --- helpers ------------------------------------------------------------------------------

    def _find(self, kind: ObjectType, key: str, id_property: str | None) -> CrmObject | None:
        if id_property and id_property != OBJECT_ID:
            prop = kind.properties.get(id_property)
            if prop is None or not prop.unique:
                raise validation_error(f"{id_property} is not a unique identifier property of "
                                       f"{kind.singular} objects", propertyName=[id_property])
            return next((r for r in self.objects[kind.name].values()
                         if r.properties.get(id_property) == key and not r.archived), None)
        return self.objects[kind.name].get(key)

    def _check_unique(self, kind: ObjectType, values: Mapping[str, str | None],
                      own_id: str | None) -> None:
        for name, value in values.items():
            if value is None or not kind.properties[name].unique:
                continue
            holder = self._find(kind, value, name)
            if holder is not None and holder.id != own_id:
                raise HubSpotApiError(409, "CONFLICT", f"A {kind.singular} with {name}={value} "
                                      f"already exists (id {holder.id}).",
                                      context={"id": [holder.id]})

    def _touch(self, record: CrmObject) -> None:
        stamp = iso_millis(self.clock.tick())
        record.properties[MODIFIED] = record.updated_at = stamp
        self._derive(record)

    def _derive(self, record: CrmObject) -> None:
        if record.type.name == "deals":
            record.properties["hs_is_closed_won"] = str(
                record.properties.get("dealstage") == "closedwon").lower()


def pipelines(created_at: str) -> list[dict[str, Any]]:
    """`GET /crm/v3/pipelines/deals`: the default pipeline every account starts with."""
    stages = [{"id": sid, "label": label, "displayOrder": n,
               "metadata": {"isClosed": str(closed).lower(), "probability": probability},
               "createdAt": created_at, "updatedAt": created_at, "archived": False,
               "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT"}
              for n, (sid, label, probability, closed) in enumerate(STAGES)]
    return [{"id": "default", "label": "Sales Pipeline", "displayOrder": 0, "stages": stages,
             "createdAt": created_at, "updatedAt": created_at, "archived": False}]


# --- search filters ---------------------------------------------------------------------------

OPERATORS = {"EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN", "IN", "NOT_IN", "HAS_PROPERTY",
             "NOT_HAS_PROPERTY", "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"}
MAX_GROUPS, MAX_FILTERS_PER_GROUP, MAX_FILTERS = 5, 10, 25


def check_search(request: Mapping[str, Any]) -> None:
    groups = request.get("filterGroups") or []
    if not isinstance(groups, list) or not all(isinstance(g, Mapping) for g in groups):
        raise validation_error("filterGroups must be a list of {filters: [...]}")
    if len(groups) > MAX_GROUPS:
        raise validation_error(f"Too many filter groups ({len(groups)}); the maximum is {MAX_GROUPS}")
    total = 0
    for group in groups:
        filters = group.get("filters") or []
        total += len(filters)
        if len(filters) > MAX_FILTERS_PER_GROUP:
            raise validation_error(f"Too many filters in a group ({len(filters)}); the maximum "
                                   f"is {MAX_FILTERS_PER_GROUP}")
        for f in filters:
            if not isinstance(f, Mapping) or not f.get("propertyName"):
                raise validation_error("each filter needs a propertyName and an operator")
            if f.get("operator") not in OPERATORS:
                raise validation_error(f"Unknown operator {f.get('operator')!r}; expected one of "
                                       f"{', '.join(sorted(OPERATORS))}")
    if total > MAX_FILTERS:
        raise validation_error(f"Too many filters ({total}); the maximum is {MAX_FILTERS}")
    _sorts(request.get("sorts"))


def _sorts(sorts: Any) -> list[tuple[str, bool]]:
    """Both forms: `[{"propertyName", "direction"}]` (the guides) and `["prop" | "-prop"]`
    (the client's `list[str]` type; the minus for descending is the twin's reading)."""
    found = []
    for sort in sorts or []:
        if isinstance(sort, str):
            found.append((sort.lstrip("-"), sort.startswith("-")))
        elif isinstance(sort, Mapping) and sort.get("propertyName"):
            direction = str(sort.get("direction") or "ASCENDING").upper()
            if direction not in ("ASCENDING", "DESCENDING"):
                raise validation_error(f"sort direction {direction!r} is not ASCENDING or DESCENDING")
            found.append((str(sort["propertyName"]), direction == "DESCENDING"))
        else:
            raise validation_error("sorts must be property names or {propertyName, direction}")
    return found


def _comparable(kind: ObjectType, name: str, value: Any) -> Any:
    """A value in the property's order: numbers as Decimal, dates as ms, text case-folded."""
    if value is None or value == "":
        return None
    prop = kind.properties.get(name)
    text = str(value).strip()
    try:
        if prop is not None and prop.type == "number":
            return Decimal(text)
        if prop is not None and prop.type == "datetime":
            if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
                day = date.fromisoformat(text)
                return ms_epoch(datetime(day.year, day.month, day.day, tzinfo=UTC))
            return ms_epoch(parse_timestamp(text))
    except (InvalidOperation, ValueError, OverflowError):
        raise validation_error(f"{text!r} is not a valid value for {name}",
                               propertyName=[name]) from None
    return text.casefold()


def _test(kind: ObjectType, record: CrmObject, f: Mapping[str, Any]) -> bool:
    name, operator = str(f["propertyName"]), f["operator"]
    held = _comparable(kind, name, record.properties.get(name))
    if operator == "HAS_PROPERTY":
        return held is not None
    if operator == "NOT_HAS_PROPERTY":
        return held is None
    if operator in ("IN", "NOT_IN"):
        values = {_comparable(kind, name, v) for v in f.get("values") or []}
        return (held in values) == (operator == "IN")
    if operator in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        pattern = str(f.get("value") or "").casefold()
        tokens = re.split(r"\W+", str(record.properties.get(name) or "").casefold())
        found = any(fnmatch.fnmatchcase(t, pattern) for t in tokens if t)
        return found == (operator == "CONTAINS_TOKEN")
    wanted = _comparable(kind, name, f.get("value"))
    if operator == "NEQ":
        return held != wanted
    if held is None or wanted is None:
        return False
    if operator == "BETWEEN":
        high = _comparable(kind, name, f.get("highValue"))
        return high is not None and wanted <= held <= high
    return {"EQ": held == wanted, "LT": held < wanted, "LTE": held <= wanted,
            "GT": held > wanted, "GTE": held >= wanted}[operator]


def _sort_key(kind: ObjectType, record: CrmObject, name: str) -> tuple[bool, Any, int]:
    """Objects without the value last; ties in id order."""
    value = _comparable(kind, name, record.properties.get(name))
    return (value is None, value if value is not None else 0, int(record.id))
