"""Salesforce pushes: workflow Outbound Messages (SOAP) and Change Data Capture events relayed
as JSON, as canonical events.

Outbound Message: a SOAP 1.1 `notifications` call carrying the org's `OrganizationId` and 1–100
`Notification`s, each with its own `Id` and an `sObject` holding the fields chosen in setup.
It is answered with exactly `ACK` (HTTP 200, text/xml); anything else is a failed delivery that
Salesforce retries for 24 hours. The org id is the only credential an Outbound Message
carries: it must be the configured one. The fields become the REST-shaped record
`mapping.opportunity_event_data` / `customer_event_data` read, so choose every field of
`mapping.OPPORTUNITY_FIELDS` (or `ACCOUNT_FIELDS`) in setup: a field not sent reads as empty.
A notification without `SystemModstamp` (the version) is read from Salesforce instead, when a
reader is configured.

CDC: a CometD message (`{"data": {"payload": …}, "channel": …}`), its bare `payload`, or a JSON
array of either. The header names the records; each created, updated or undeleted record (gap
events too) is read and sent on. Deletions and overflow gaps (no record ids) are ignored:
handoff has no event for them.
"""

from __future__ import annotations

import hmac
import logging
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from xml.parsers import expat

from handoff.connectors.salesforce.mapping import customer_event_data, opportunity_event_data
from handoff.engine.cloudevents import parse_json
from handoff.engine.payloads import CUSTOMER_CHANGED, OPPORTUNITY_CHANGED
from handoff.errors import DataError, IntakeError
from handoff.webhooks.delivery import Skipped, Translation, VendorEvent
from handoff.webhooks.reading import CrmRecordReader, read

SYSTEM = "salesforce"
SOURCE = "/webhooks/salesforce"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
OUTBOUND = "http://soap.sforce.com/2005/09/outbound"
SOBJECT = "urn:sobject.enterprise.soap.sforce.com"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
ACK = (b'<?xml version="1.0" encoding="UTF-8"?>\n'
       b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
       b'<soapenv:Body><notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound">'
       b"<Ack>true</Ack></notificationsResponse></soapenv:Body></soapenv:Envelope>")
ACK_CONTENT_TYPE = "text/xml; charset=utf-8"

KINDS = {"Opportunity": OPPORTUNITY_CHANGED, "Account": CUSTOMER_CHANGED}
MAPPINGS: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    OPPORTUNITY_CHANGED: opportunity_event_data, CUSTOMER_CHANGED: customer_event_data}
BOOLEAN_FIELDS = frozenset({"IsWon", "IsClosed", "IsDeleted"})
DATETIME_FIELDS = frozenset({"SystemModstamp", "LastModifiedDate", "CreatedDate"})
CDC_FETCHED = frozenset({"CREATE", "UPDATE", "UNDELETE", "GAP_CREATE", "GAP_UPDATE", "GAP_UNDELETE"})

NO_VERSION = ("a notification has no SystemModstamp (the record's version): choose it among the "
              "Outbound Message's fields, or give handoff a Salesforce reader to read the record")

log = logging.getLogger(__name__)


# --- Outbound Messages -------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Notification:
    notification_id: str
    sobject_type: str
    record: dict[str, Any]


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    organization_id: str
    action_id: str | None
    notifications: list[Notification]


def parse_outbound_message(body: bytes) -> OutboundMessage:
    """The SOAP `notifications` call (400 naming what is wrong)."""
    root = _xml(body)
    if root.tag != f"{{{SOAP_ENV}}}Envelope":
        raise IntakeError(f"not a SOAP 1.1 envelope: the root element is {_local(root.tag)!r}")
    message = root.find(f"{{{SOAP_ENV}}}Body/{{{OUTBOUND}}}notifications")
    if message is None:
        raise IntakeError("not a Salesforce Outbound Message: the SOAP Body has no notifications "
                          f"element in {OUTBOUND}", field="notifications")
    organization = _text(message, "OrganizationId")
    if not organization:
        raise IntakeError("the Outbound Message has no OrganizationId", field="OrganizationId")
    found = message.findall(f"{{{OUTBOUND}}}Notification")
    if not found:
        raise IntakeError("the Outbound Message has no Notification", field="Notification")
    notifications = [_notification(n, element) for n, element in enumerate(found)]
    return OutboundMessage(organization, _text(message, "ActionId"), notifications)


def check_organization(message: OutboundMessage, expected: str) -> None:
    """An org id is 15 characters plus a 3-character checksum; either form may be configured."""
    if not hmac.compare_digest(message.organization_id[:15].encode(), expected[:15].encode()):
        raise IntakeError(f"OrganizationId {message.organization_id!r} is not the Salesforce org "
                          "handoff is configured for", status=403, field="OrganizationId")


def translate_outbound(message: OutboundMessage, reader: CrmRecordReader | None,
                       now: datetime) -> Translation:
    """Each notification's sObject as canonical data; one without its version is read from
    Salesforce, and without a reader nothing incomplete is taken (503, Salesforce retries)."""
    if reader is None and any(n.sobject_type in KINDS and not n.record.get("SystemModstamp")
                              for n in message.notifications):
        raise IntakeError(NO_VERSION, status=503, field="SystemModstamp")
    translation = Translation()
    for note in message.notifications:
        kind = KINDS.get(note.sobject_type)
        if kind is None:
            reason = f"handoff keeps no Salesforce {note.sobject_type} records"
            log.warning("Outbound Message notification %s ignored: %s", note.notification_id, reason)
            translation.ignored.append(Skipped(note.notification_id, reason))
            continue

        def make(note: Notification = note, kind: str = kind) -> VendorEvent:
            if note.record.get("SystemModstamp") or reader is None:
                data = _mapped(kind, note.record)
            else:
                data = read(reader, kind, note.record["Id"], SYSTEM)
            return VendorEvent(note.notification_id, kind, data, now)

        translation.add(note.notification_id, make, {"Id": note.notification_id, "sObject": note.record})
    for refused in translation.rejected:
        log.warning("Outbound Message notification %s refused: %s", refused.delivery, refused.reason)
    return translation


def _mapped(kind: str, record: dict[str, Any]) -> dict[str, Any]:
    if not record.get("SystemModstamp"):
        raise DataError(NO_VERSION, system=SYSTEM, field="SystemModstamp")
    try:
        return MAPPINGS[kind](record)
    except ArithmeticError:
        raise DataError(f"Amount {record.get('Amount')!r} is not a number", system=SYSTEM,
                        field="Amount") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"the sObject's fields cannot be read: {exc}", system=SYSTEM) from None


def _notification(n: int, element: ET.Element) -> Notification:
    where = f"Notification[{n}]"
    notification_id = _text(element, "Id")
    if not notification_id:
        raise IntakeError(f"{where} has no Id", field=f"{where}.Id")
    sobject = element.find(f"{{{OUTBOUND}}}sObject")
    if sobject is None:
        raise IntakeError(f"{where} has no sObject", field=f"{where}.sObject")
    sobject_type = sobject.get(f"{{{XSI}}}type", "").rpartition(":")[2]
    if not sobject_type:
        raise IntakeError(f"{where}: the sObject has no xsi:type", field=f"{where}.sObject")
    record: dict[str, Any] = {}
    for child in sobject:
        name = _local(child.tag)
        if child.tag.startswith(f"{{{SOBJECT}}}") and name != "fieldsToNull":
            record[name] = _value(where, name, child)
    if not record.get("Id"):
        raise IntakeError(f"{where}: the sObject has no Id", field=f"{where}.sObject.Id")
    return Notification(notification_id, sobject_type, record)


def _value(where: str, name: str, element: ET.Element) -> Any:
    """A SOAP field as the REST API gives it: null, a boolean, a datetime as
    `2026-11-26T10:00:00.000+0000`, else the text (numbers stay exact decimal text)."""
    if element.get(f"{{{XSI}}}nil") in ("true", "1"):
        return None
    text = element.text or ""
    if name in BOOLEAN_FIELDS:
        if text not in ("true", "false"):
            raise IntakeError(f"{where}: {name} {text!r} is not true or false", field=f"{where}.{name}")
        return text == "true"
    if name in DATETIME_FIELDS:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise IntakeError(f"{where}: {name} {text!r} is not an xsd:dateTime",
                              field=f"{where}.{name}") from None
        if moment.tzinfo is None:
            raise IntakeError(f"{where}: {name} {text!r} has no time zone", field=f"{where}.{name}")
        moment = moment.astimezone(UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"
    return text


def _xml(body: bytes) -> ET.Element:
    """Parse, refusing what SOAP forbids and XML attacks need: a DOCTYPE, hence any entity."""
    checker = expat.ParserCreate()

    def no_doctype(*_args: Any) -> None:
        raise IntakeError("a SOAP message must not contain a DOCTYPE", field="body")

    checker.StartDoctypeDeclHandler = no_doctype
    checker.EntityDeclHandler = no_doctype
    try:
        checker.Parse(body, True)
        return ET.fromstring(body)
    except (expat.ExpatError, ET.ParseError) as exc:
        raise IntakeError(f"body is not well-formed XML: {exc}", field="body") from None


def _text(element: ET.Element, name: str) -> str | None:
    found = element.find(f"{{{OUTBOUND}}}{name}")
    return (found.text or "").strip() if found is not None else None


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


# --- Change Data Capture ------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ChangeEvent:
    entity: str
    change_type: str
    record_ids: list[str]
    transaction_key: str
    committed: datetime | None
    header: dict[str, Any]


def parse_cdc(body: bytes) -> list[ChangeEvent]:
    """One relayed CDC event, or an array of them (400 naming what is wrong)."""
    parsed = parse_json(body)
    items = parsed if isinstance(parsed, list) else [parsed]
    return [_change(n, item) for n, item in enumerate(items)]


def _change(n: int, item: Any) -> ChangeEvent:
    where = f"[{n}]"
    payload = item
    if isinstance(item, dict) and isinstance(item.get("data"), dict):
        payload = item["data"].get("payload")  # a CometD message
    elif isinstance(item, dict) and "payload" in item:
        payload = item["payload"]
    header = payload.get("ChangeEventHeader") if isinstance(payload, dict) else None
    if not isinstance(header, dict):
        raise IntakeError(f"event {where} has no ChangeEventHeader: not a Change Data Capture event",
                          field=f"{where}.ChangeEventHeader")

    def text(name: str) -> str:
        value = header.get(name)
        if not isinstance(value, str) or not value:
            raise IntakeError(f"event {where}: ChangeEventHeader.{name} is missing or empty",
                              field=f"{where}.ChangeEventHeader.{name}")
        return value

    ids = header.get("recordIds", [])
    if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
        raise IntakeError(f"event {where}: ChangeEventHeader.recordIds must be a list of ids",
                          field=f"{where}.ChangeEventHeader.recordIds")
    committed = header.get("commitTimestamp")
    if committed is not None and (isinstance(committed, bool) or not isinstance(committed, int)):
        raise IntakeError(f"event {where}: ChangeEventHeader.commitTimestamp must be milliseconds",
                          field=f"{where}.ChangeEventHeader.commitTimestamp")
    return ChangeEvent(text("entityName"), text("changeType"), ids, text("transactionKey"),
                       datetime.fromtimestamp(committed / 1000, UTC) if committed else None, header)


def translate_cdc(changes: list[ChangeEvent], reader: CrmRecordReader | None,
                  now: datetime) -> Translation:
    """Each named record read and sent on; the delivery id is transactionKey:recordId. Without
    a reader nothing is taken (503)."""
    if reader is None and any(_cdc_kind(c) and any("*" not in i for i in c.record_ids)
                              for c in changes):
        raise IntakeError("a Change Data Capture event names records but no Salesforce reader is "
                          "configured to read them", status=503)
    translation, cache = Translation(), {}
    for change in changes:
        kind = _cdc_kind(change)
        label = f"{change.transaction_key}:{change.entity}"
        if kind is None or reader is None:
            why = (f"handoff keeps no Salesforce {change.entity} records" if change.entity not in KINDS
                   else f"{change.change_type}: handoff has no event for it")
            translation.ignored.append(Skipped(label, why))
            continue
        if not change.record_ids:
            translation.ignored.append(Skipped(label, f"{change.change_type} names no records"))
        for record_id in change.record_ids:
            delivery = f"{change.transaction_key}:{record_id}"
            if "*" in record_id:
                translation.ignored.append(Skipped(delivery, "a wildcard record id names no record"))
                continue

            def make(record_id: str = record_id, delivery: str = delivery, kind: str = kind,
                     change: ChangeEvent = change, reader: CrmRecordReader = reader) -> VendorEvent:
                if (kind, record_id) not in cache:
                    cache[kind, record_id] = read(reader, kind, record_id, SYSTEM)
                return VendorEvent(delivery, kind, cache[kind, record_id], change.committed or now)

            translation.add(delivery, make, {"ChangeEventHeader": change.header, "recordId": record_id})
    return translation


def _cdc_kind(change: ChangeEvent) -> str | None:
    return KINDS.get(change.entity) if change.change_type in CDC_FETCHED else None
