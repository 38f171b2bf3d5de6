"""HubSpot webhooks: v3 request signatures, and the event array as canonical events.

Signature v3 (HubSpot "Validating requests"): `X-HubSpot-Signature-v3` is
base64(HMAC-SHA256(app client secret, method + URI + raw body + timestamp)), where the URI is
the one HubSpot called with only a few percent-escapes decoded, and `X-HubSpot-Request-Timestamp`
is in milliseconds. A request more than five minutes old (or as far in the future) is refused
as replayed or stale, after the signature is found good.

HubSpot sends only the property that changed, so each deal or company event is a
fetch-then-event: the record is read (CrmRecordReader) and its full canonical data sent on.
Deletions, merges, association changes and other objects are acknowledged and ignored:
handoff has no event for them (polling and reconciliation see their effects).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from handoff.engine.cloudevents import parse_json
from handoff.engine.payloads import CUSTOMER_CHANGED, OPPORTUNITY_CHANGED
from handoff.errors import IntakeError
from handoff.webhooks.delivery import Skipped, Translation, VendorEvent
from handoff.webhooks.reading import CrmRecordReader, read

SYSTEM = "hubspot"
SOURCE = "/webhooks/hubspot"
SIGNATURE = "X-HubSpot-Signature-v3"
TIMESTAMP = "X-HubSpot-Request-Timestamp"
MAX_AGE = timedelta(minutes=5)
KINDS = {"deal": OPPORTUNITY_CHANGED, "company": CUSTOMER_CHANGED}
FETCHED = ("creation", "propertyChange", "restore")  # what is re-read and sent on

# The only escapes HubSpot decodes in the URI before signing it.
_DECODED = {"%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$", "%27": "'",
            "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";"}
_ESCAPE = re.compile("|".join(_DECODED), re.IGNORECASE)


def signed_uri(uri: str) -> str:
    return _ESCAPE.sub(lambda m: _DECODED[m.group(0).upper()], uri)


def signature(client_secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """The v3 signature HubSpot sends for this request."""
    source = method.upper().encode() + signed_uri(uri).encode() + body + timestamp.encode()
    digest = hmac.new(client_secret.encode(), source, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify(client_secret: str, method: str, uri: str, body: bytes, headers: dict[str, str],
           now: datetime) -> None:
    """Refuse (401) a request HubSpot did not sign with this app's secret, or one signed more
    than five minutes away from `now`. `headers` are lower-cased."""
    given = headers.get(SIGNATURE.lower())
    timestamp = headers.get(TIMESTAMP.lower())
    if not given:
        raise IntakeError(f"missing {SIGNATURE} header: not a signed HubSpot request", status=401,
                          field=SIGNATURE)
    if not timestamp:
        raise IntakeError(f"missing {TIMESTAMP} header: a v3 signature needs it", status=401,
                          field=TIMESTAMP)
    expected = signature(client_secret, method, uri, body, timestamp)
    if not hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace")):
        raise IntakeError(f"the {SIGNATURE} signature does not match the request", status=401,
                          field=SIGNATURE)
    try:
        sent = datetime.fromtimestamp(int(timestamp) / 1000, UTC)
    except (ValueError, OverflowError, OSError):
        raise IntakeError(f"{TIMESTAMP} {timestamp!r} is not milliseconds since the epoch",
                          status=401, field=TIMESTAMP) from None
    if abs(now - sent) > MAX_AGE:
        raise IntakeError(f"replayed or stale request: signed at {sent.isoformat()}, more than "
                          "5 minutes from now", status=401, field=TIMESTAMP)


@dataclass(frozen=True, slots=True)
class HubSpotEvent:
    event_id: str
    subscription_type: str
    object_id: str
    occurred_at: datetime | None
    raw: dict[str, Any]

    @property
    def delivery(self) -> str:
        """eventId is not guaranteed unique on its own: the object makes it so."""
        return f"{self.event_id}:{self.object_id}"


def parse(body: bytes) -> list[HubSpotEvent]:
    """The webhook body: a JSON array of event objects (400 naming what is wrong)."""
    events = parse_json(body)
    if not isinstance(events, list):
        raise IntakeError("a HubSpot webhook body must be a JSON array of events")
    return [_event(n, raw) for n, raw in enumerate(events)]


def _event(n: int, raw: Any) -> HubSpotEvent:
    if not isinstance(raw, dict):
        raise IntakeError(f"event [{n}] must be a JSON object", field=f"[{n}]")

    def ident(name: str) -> str:
        value = raw.get(name)
        if isinstance(value, bool) or not isinstance(value, int | str) or value == "":
            raise IntakeError(f"event [{n}]: {name} is missing or not an id", field=f"[{n}].{name}")
        return str(value)

    kind = raw.get("subscriptionType")
    if not isinstance(kind, str) or "." not in kind:
        raise IntakeError(f"event [{n}]: subscriptionType is missing or not `object.change`",
                          field=f"[{n}].subscriptionType")
    occurred = raw.get("occurredAt")
    if occurred is not None and (isinstance(occurred, bool) or not isinstance(occurred, int)):
        raise IntakeError(f"event [{n}]: occurredAt must be milliseconds since the epoch",
                          field=f"[{n}].occurredAt")
    return HubSpotEvent(ident("eventId"), kind, ident("objectId"),
                        datetime.fromtimestamp(occurred / 1000, UTC) if occurred else None, raw)


def translate(events: list[HubSpotEvent], reader: CrmRecordReader | None,
              now: datetime) -> Translation:
    """Each deal or company event as the record's full canonical data, read once per record.
    Without a reader nothing incomplete is taken: 503, HubSpot retries."""
    if reader is None and any(_fetched_kind(e) for e in events):
        raise IntakeError("HubSpot sends only the property that changed and no HubSpot reader is "
                          "configured to read the whole record, so the events were not taken",
                          status=503)
    translation, cache = Translation(), {}
    for event in events:
        kind = _fetched_kind(event)
        if kind is None or reader is None:
            translation.ignored.append(Skipped(event.delivery, _why_ignored(event)))
            continue

        def make(event: HubSpotEvent = event, kind: str = kind, reader: CrmRecordReader = reader,
                 ) -> VendorEvent:
            key = (kind, event.object_id)
            if key not in cache:
                cache[key] = read(reader, kind, event.object_id, SYSTEM)
            return VendorEvent(event.delivery, kind, cache[key], event.occurred_at or now)

        translation.add(event.delivery, make, event.raw)
    return translation


def _fetched_kind(event: HubSpotEvent) -> str | None:
    obj, _, change = event.subscription_type.partition(".")
    return KINDS.get(obj) if change in FETCHED else None


def _why_ignored(event: HubSpotEvent) -> str:
    obj, _, change = event.subscription_type.partition(".")
    if obj not in KINDS:
        return f"{event.subscription_type}: handoff keeps no HubSpot {obj}s"
    return f"{event.subscription_type}: handoff has no event for a {obj} {change}"
