"""Stripe webhooks: Stripe-Signature verification, and invoice and credit note events turned
into work for the billing controller.

Signature (stripe-python `WebhookSignature`, docs.stripe.com/webhooks): `Stripe-Signature:
t=<unix seconds>,v1=<hex>[,v1=<hex>…]` (other schemes such as v0 ignored), where each v1 is
the hex HMAC-SHA256, keyed with the endpoint's signing secret (`whsec_…`, from
HANDOFF_STRIPE_WEBHOOK_SECRET), of `<t>.<raw body>`. Several v1 entries come while a secret is
being rolled: one matching is enough. Every comparison is constant-time. A request signed more
than 5 minutes ago is refused as replayed or stale, and — unlike stripe-python, which checks
only the past — so is one signed more than 5 minutes in the future.

What an event means to handoff: a Stripe invoice or credit note of a deal changed (finalized,
paid, a payment failed, credited, voided). The event is not trusted for amounts (events come
out of order and more than once): the deal's `billing:` key is enqueued, so the billing
controller reads the invoice from Stripe again and records what changed, and its `crm:` key,
so the CRM shows it. The deal is the one handoff recorded the document for (by Stripe id), or,
for a document handoff made but has not recorded yet, the known deal its metadata names. Other
events, and documents of no deal handoff knows, are acknowledged and ignored (Stripe would
otherwise resend them for three days).

The router (api/webhooks.py) calls `receive` in a worker thread and records any IntakeError it
raises as a refusal, as it does for the other vendors.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from handoff.engine import queue
from handoff.engine.cloudevents import parse_json
from handoff.engine.keys import billing_key, crm_key
from handoff.errors import IntakeError
from handoff.store.db import Database
from handoff.store.provisioning import Hop, record_hops
from handoff.store.tables import invoices, opportunities

SYSTEM = "stripe"
SOURCE = "/webhooks/stripe"
SIGNATURE = "Stripe-Signature"
SECRET_ENV = "HANDOFF_STRIPE_WEBHOOK_SECRET"
TOLERANCE = timedelta(minutes=5)
SCHEME = "v1"
# The events that change what handoff shows of a deal's billing. The first four are the ones a
# Stripe endpoint for handoff must send; the others are taken when sent.
REQUIRED_EVENTS = ("invoice.finalized", "invoice.paid", "invoice.payment_failed", "credit_note.created")
HANDLED = frozenset(REQUIRED_EVENTS + ("invoice.payment_succeeded", "invoice.voided",
                                        "invoice.marked_uncollectible", "credit_note.voided"))


def webhook_secret(env: Mapping[str, str] | None = None) -> str | None:
    """The endpoint's signing secret from HANDOFF_STRIPE_WEBHOOK_SECRET; unset or blank is None."""
    env = os.environ if env is None else env
    return (env.get(SECRET_ENV) or "").strip() or None


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """The v1 signature Stripe sends for this body at this time."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str | None, now: datetime,
           tolerance: timedelta = TOLERANCE) -> datetime:
    """Refuse (401) a request not signed with this endpoint's secret, or signed more than
    `tolerance` away from `now`; the time it was signed."""
    if not header:
        raise IntakeError(f"missing {SIGNATURE} header: not a signed Stripe webhook", status=401,
                          field=SIGNATURE)
    stamps, given = [], []
    for item in header.split(","):
        name, sep, value = item.strip().partition("=")
        if not sep:
            continue
        if name == "t":
            stamps.append(value)
        elif name == SCHEME:
            given.append(value)
    if not stamps or not (stamps[0].isascii() and stamps[0].isdigit()):
        raise IntakeError(f"{SIGNATURE} has no t=<unix seconds> timestamp", status=401, field=SIGNATURE)
    if not given:
        raise IntakeError(f"{SIGNATURE} has no {SCHEME} signature", status=401, field=SIGNATURE)
    timestamp = int(stamps[0])
    expected = signature(secret, body, timestamp).encode()
    # Every entry is compared, so how many match (or which) does not show in the timing.
    matched = [hmac.compare_digest(expected, candidate.encode("utf-8", "replace")) for candidate in given]
    if not any(matched):
        raise IntakeError(f"the {SIGNATURE} signature does not match the request (wrong endpoint "
                          f"secret, or the body was changed)", status=401, field=SIGNATURE)
    try:
        sent = datetime.fromtimestamp(timestamp, UTC)
    except (OverflowError, OSError, ValueError):
        raise IntakeError(f"{SIGNATURE} timestamp {timestamp} is not a time", status=401,
                          field=SIGNATURE) from None
    if now - sent > tolerance:
        raise IntakeError(f"replayed or stale webhook: signed at {sent.isoformat()}, more than "
                          f"{_minutes(tolerance)} ago", status=401, field=SIGNATURE)
    if sent - now > tolerance:
        raise IntakeError(f"webhook signed at {sent.isoformat()}, more than {_minutes(tolerance)} in "
                          "the future: check the clocks", status=401, field=SIGNATURE)
    return sent


@dataclass(frozen=True, slots=True)
class StripeEvent:
    id: str
    type: str
    object: dict[str, Any]   # data.object: the invoice or credit note as it was then
    created: datetime | None
    livemode: bool

    @property
    def document_ids(self) -> tuple[str, ...]:
        """The Stripe ids handoff may have recorded: the object's, and a credit note's invoice."""
        ids = [str(self.object.get("id") or "")]
        if self.object.get("object") == "credit_note" and isinstance(self.object.get("invoice"), str):
            ids.append(self.object["invoice"])
        return tuple(i for i in ids if i)


def parse(body: bytes) -> StripeEvent:
    """A Stripe v1 event (snapshot payload); 400 naming what is wrong."""
    raw = parse_json(body)
    if not isinstance(raw, dict) or raw.get("object") != "event":
        raise IntakeError("a Stripe webhook body must be an event object (\"object\": \"event\")",
                          field="object")
    event_id, kind, data = raw.get("id"), raw.get("type"), raw.get("data")
    if not isinstance(event_id, str) or not event_id:
        raise IntakeError("the event has no id", field="id")
    if not isinstance(kind, str) or not kind:
        raise IntakeError("the event has no type", field="type")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        raise IntakeError("the event has no data.object", field="data.object")
    created = raw.get("created")
    when = datetime.fromtimestamp(created, UTC) if isinstance(created, int) and \
        not isinstance(created, bool) else None
    return StripeEvent(event_id, kind, data["object"], when, bool(raw.get("livemode")))


_RECORDED = (sa.select(invoices.c.opportunity_id)
             .where(invoices.c.system == SYSTEM,
                    invoices.c.target_id.in_(sa.bindparam("b_ids", expanding=True))).limit(1))
_DEAL = sa.select(opportunities.c.id, opportunities.c.correlation_id).where(
    opportunities.c.id == sa.bindparam("b_id"))


def receive(db: Database, body: bytes, header: str | None, now: datetime,
            secret: str | None) -> dict[str, Any]:
    """One webhook request: verified, read, and — for an event about a deal's document — the
    deal's billing and CRM keys enqueued (with a hop in its lineage), in one transaction. The
    summary Stripe is answered with (200). `secret`: the endpoint's signing secret
    (`webhook_secret()` reads it); without one the endpoint is not offered (404)."""
    if not secret:
        raise IntakeError(f"Stripe webhooks are not enabled here: set {SECRET_ENV}", status=404)
    verify(secret, body, header, now)
    event = parse(body)
    summary: dict[str, Any] = {"source": SOURCE, "event": event.id, "type": event.type,
                               "enqueued": [], "ignored": None}
    if event.type not in HANDLED:
        summary["ignored"] = f"{event.type}: handoff has no use for it"
        return summary
    with db.transaction() as conn:
        deal = _deal_of(conn, event)
        if deal is None:
            summary["ignored"] = (f"{event.object.get('object', 'object')} {event.object.get('id')} is "
                                  "not a document of a deal handoff knows")
            return summary
        deal_id, correlation_id = deal
        keys = [billing_key(deal_id), crm_key(deal_id)]
        queue.enqueue_many(conn, keys, now)
        record_hops(conn, [Hop(deal_id, correlation_id, "stripe_event", SYSTEM, "ok", 1, now, now,
                               target_id=str(event.object.get("id") or "")[:64] or None,
                               detail=f"{event.type} ({event.id}): billing reads it again")])
    summary |= {"opportunity_id": deal_id, "enqueued": keys}
    return summary


def _deal_of(conn: sa.Connection, event: StripeEvent) -> tuple[str, str] | None:
    """The deal handoff recorded the document for; else the known deal its metadata names."""
    deal_id = conn.execute(_RECORDED, {"b_ids": list(event.document_ids)}).scalar()
    if deal_id is None:
        metadata = event.object.get("metadata")
        named = metadata.get("opportunity_id") if isinstance(metadata, dict) else None
        deal_id = named if isinstance(named, str) and named else None
    if deal_id is None:
        return None
    row = conn.execute(_DEAL, {"b_id": deal_id}).first()
    return (row.id, row.correlation_id) if row else None


def _minutes(span: timedelta) -> str:
    minutes = span.total_seconds() / 60
    return f"{minutes:g} minutes"
