"""Stripe-Signature verification (handoff.webhooks.stripe.verify), cross-checked case by case
with the official stripe-python `WebhookSignature` / `Webhook.construct_event`: the same
verdict everywhere but one, a timestamp from the future, which stripe-python takes and handoff
refuses."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest
import stripe

from handoff.connectors.stripe.twin import signature_header
from handoff.errors import IntakeError
from handoff.webhooks.stripe import parse, signature, verify

SECRET = "whsec_test_3a1f5b0c9e8d7c6b5a4f3e2d1c0b9a8f"
OTHER_SECRET = "whsec_test_00000000000000000000000000000000"
BODY = json.dumps({"id": "evt_1", "object": "event", "type": "invoice.paid", "created": 1795686727,
                   "livemode": False, "data": {"object": {"id": "in_1", "object": "invoice",
                                                          "metadata": {"opportunity_id": "006A"}}}},
                  separators=(",", ":")).encode()


def signed(body: bytes = BODY, secret: str = SECRET, at: float | None = None) -> str:
    """The header as Stripe would send it, made by stripe-python's own test helper."""
    stamp = int(time.time() if at is None else at)
    return stripe.WebhookSignature.generate_signature_header(body.decode(), secret, timestamp=stamp)


def ours(header: str | None, body: bytes = BODY) -> bool:
    try:
        verify(SECRET, body, header, datetime.now(UTC))
        return True
    except IntakeError as refused:
        assert refused.status == 401
        return False


def theirs(header: str | None, body: bytes = BODY) -> bool:
    try:
        stripe.Webhook.construct_event(body, header, SECRET, tolerance=300)
        return True
    except stripe.SignatureVerificationError:
        return False


CASES = {
    "good": (lambda: signed(), BODY, True),
    "four minutes old": (lambda: signed(at=time.time() - 240), BODY, True),
    "bad signature (another endpoint's secret)": (lambda: signed(secret=OTHER_SECRET), BODY, False),
    "old timestamp (six minutes)": (lambda: signed(at=time.time() - 360), BODY, False),
    "tampered body": (lambda: signed(), BODY.replace(b"invoice.paid", b"invoice.void"), False),
    "a re-serialized body": (lambda: signed(), json.dumps(json.loads(BODY)).encode(), False),
    "missing header": (lambda: None, BODY, False),
    "no v1 (only a v0)": (lambda: signed().replace("v1=", "v0="), BODY, False),
    "no timestamp": (lambda: signed().split(",", 1)[1], BODY, False),
    "rolled secret: one of two v1 matches": (
        lambda: signed(secret=OTHER_SECRET) + "," + signed().split(",", 1)[1], BODY, True),
    "the v1 of another timestamp": (
        lambda: f"t={int(time.time())}," + signed(at=time.time() - 10).split(",", 1)[1], BODY, False),
}


@pytest.mark.parametrize("case", list(CASES))
def test_handoff_and_stripe_python_agree(case: str) -> None:
    make, body, accepted = CASES[case]
    header = make()
    assert ours(header, body) is accepted
    assert theirs(header, body) is accepted


def test_a_timestamp_from_the_future_is_refused_though_stripe_python_takes_it() -> None:
    header = signed(at=time.time() + 360)
    assert theirs(header) is True  # stripe-python checks only the past
    with pytest.raises(IntakeError) as refused:
        verify(SECRET, BODY, header, datetime.now(UTC))
    assert refused.value.status == 401 and "in the future" in refused.value.message
    assert ours(signed(at=time.time() + 60)) is True  # a clock a minute ahead is fine


def test_refusals_say_why_and_name_the_header() -> None:
    now = datetime.now(UTC)
    for header, words in [(None, "missing Stripe-Signature"), (signed(secret=OTHER_SECRET), "does not match"),
                          (signed(at=time.time() - 3600), "replayed or stale"), ("v1=abc", "no t=")]:
        with pytest.raises(IntakeError) as refused:
            verify(SECRET, BODY, header, now)
        assert words in refused.value.message and refused.value.field == "Stripe-Signature"


def test_our_signature_is_stripe_pythons_and_the_twin_signs_as_stripe_does() -> None:
    stamp = 1795686727
    assert signature(SECRET, BODY, stamp) == stripe.WebhookSignature._compute_signature(
        f"{stamp}.{BODY.decode()}", SECRET)
    header = signature_header(BODY, SECRET, int(time.time()))
    assert stripe.WebhookSignature.verify_header(BODY, header, SECRET, 300) is True
    assert ours(header) is True


def test_the_event_is_read_from_the_verified_body() -> None:
    event = parse(BODY)
    assert (event.id, event.type, event.object["id"], event.document_ids) == (
        "evt_1", "invoice.paid", "in_1", ("in_1",))
    note = parse(json.dumps({"id": "evt_2", "object": "event", "type": "credit_note.created",
                             "data": {"object": {"id": "cn_1", "object": "credit_note",
                                                 "invoice": "in_1"}}}).encode())
    assert note.document_ids == ("cn_1", "in_1")
    for bad, field in [(b"[]", "object"), (b'{"object": "event", "type": "x", "data": {"object": {}}}', "id"),
                       (b'{"object": "event", "id": "evt", "type": "x"}', "data.object")]:
        with pytest.raises(IntakeError) as refused:
            parse(bad)
        assert refused.value.status == 400 and refused.value.field == field
