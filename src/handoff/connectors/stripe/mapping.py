"""handoff's billing requests → Stripe parameters, and Stripe's invoices and credit notes →
handoff's `Invoice` and reconciliation figures. Pure functions: no I/O, so a value that cannot
be mapped is refused (DataError naming the field) before any call is made.

Money: Stripe takes and gives integers in the currency's minor unit (docs.stripe.com/currencies):
two decimals for most currencies, none for the zero-decimal ones (JPY, KRW, …), three for BHD,
JOD, KWD, OMR and TND — whose last digit Stripe wants 0 for payments. Amounts move between
those integers and `Decimal` by shifting the exponent, never through a float.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from handoff.connectors.ports import DocumentFigures
from handoff.connectors.stripe.errors import SYSTEM
from handoff.connectors.stripe.settings import StripeSettings
from handoff.domain import Invoice, InvoiceRequest, InvoiceStatus, Money
from handoff.domain.money import MINOR_UNITS
from handoff.errors import DataError

ZERO_DECIMAL = frozenset({"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF",
                          "UGX", "VND", "VUV", "XAF", "XOF", "XPF"})
THREE_DECIMAL = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})

# Metadata handoff writes on what it makes (keys ≤ 40 characters, values ≤ 500).
EXTERNAL_ID = "handoff_external_id"   # the business key: HO-I-<deal>-<document> / HO-CN-…
OPPORTUNITY = "opportunity_id"
LINE = "line"                          # the billing line (milestone, fee, period) billed
DOCUMENT = "document"                  # the document's id within the deal: <line> or <line>#<n>
PROJECT = "project_id"                 # the ERP's project id, for people reading Stripe
CUSTOMER_KEY = "handoff_customer"      # on customers: handoff's key of the customer
METADATA_VALUE_MAX = 500
IDEMPOTENCY_KEY_MAX = 255

# Stripe invoice status → handoff's. `uncollectible` is still owed (Stripe can still be paid
# it), so it stays posted with its amount due; only `void` cancels.
INVOICE_STATUSES: Mapping[str, InvoiceStatus] = {
    "draft": InvoiceStatus.DRAFT, "open": InvoiceStatus.POSTED, "paid": InvoiceStatus.PAID,
    "uncollectible": InvoiceStatus.POSTED, "void": InvoiceStatus.CANCELLED,
}
# A credit note is applied when it is issued (to the invoice's amount due, then to the
# customer's balance or outside Stripe): nothing is left to wait for, so it counts as settled.
CREDIT_NOTE_STATUSES: Mapping[str, InvoiceStatus] = {
    "issued": InvoiceStatus.PAID, "void": InvoiceStatus.CANCELLED,
}
CREDITABLE = ("open", "paid")  # invoice statuses a credit note may be issued against


# --- money ------------------------------------------------------------------------------------

def exponent(currency: str) -> int:
    """Stripe's minor-unit exponent for a currency handoff keeps; refused where handoff and
    Stripe disagree (a mismatch would bill 100 times too much or too little)."""
    code = str(currency).upper()
    ours = MINOR_UNITS.get(code)
    if ours is None:
        raise DataError(f"currency {currency!r} is not one handoff bills in", system=SYSTEM,
                        field="currency")
    theirs = 0 if code in ZERO_DECIMAL else 3 if code in THREE_DECIMAL else 2
    if ours != theirs:
        raise DataError(f"{code} has {ours} decimals in handoff but {theirs} in Stripe's API",
                        system=SYSTEM, field="currency")
    return theirs


def to_minor(money: Money) -> int:
    """The integer Stripe takes: 1234.56 USD → 123456, 500 JPY → 500, 5.120 KWD → 5120."""
    places = exponent(money.currency)
    scaled = money.amount.scaleb(places)
    if scaled != scaled.to_integral_value():
        raise DataError(f"{money.amount} {money.currency} has more decimals than Stripe takes",
                        system=SYSTEM, field="amount")
    minor = int(scaled)
    if places == 3 and minor % 10:
        raise DataError(f"{money.amount} {money.currency}: Stripe takes three-decimal amounts only "
                        "with a last digit of 0; amend the line to a multiple of 0.010",
                        system=SYSTEM, field="amount")
    return minor


def from_minor(value: Any, currency: str) -> Money:
    """An integer amount in the minor unit as handoff's exact Money: 123456 usd → 1234.56 USD."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise DataError(f"amount {value!r} from Stripe is not an integer in the minor unit",
                        system=SYSTEM, field="amount")
    code = str(currency).upper()
    return Money(Decimal(value).scaleb(-exponent(code)), code)


# --- requests → parameters ----------------------------------------------------------------------

def idempotency_key(external_id: str, step: str) -> str:
    """The Idempotency-Key of one create: the same business key and step always give the same
    key, so a call repeated after a lost response is a replay, not a second object."""
    key = f"handoff:{external_id}:{step}"
    if len(key) <= IDEMPOTENCY_KEY_MAX:
        return key
    digest = hashlib.sha256(external_id.encode()).hexdigest()
    return f"handoff:sha256:{digest}:{step}"


def line_of(request: InvoiceRequest) -> str:
    """The billing line a document bills: `M1` for `M1` and for its adjustment `M1#2`."""
    return request.line.id.partition("#")[0]


def document_metadata(request: InvoiceRequest, project_target_id: str) -> dict[str, str]:
    values = {EXTERNAL_ID: request.external_id, OPPORTUNITY: request.opportunity_id,
              LINE: line_of(request), DOCUMENT: request.line.id, PROJECT: project_target_id}
    for key, value in values.items():
        if len(value) > METADATA_VALUE_MAX:
            raise DataError(f"{key} {value[:40]!r}… is longer than Stripe's {METADATA_VALUE_MAX} "
                            "characters of metadata", system=SYSTEM, field=key)
    return values


def customer_params(key: str, name: str | None, email: str | None) -> dict[str, Any]:
    params: dict[str, Any] = {"metadata": {CUSTOMER_KEY: key}, "description": f"handoff {key}"}
    if name:
        params["name"] = name
    if email:
        params["email"] = email
    return params


def customer_search_query(key: str) -> str:
    return f"metadata['{CUSTOMER_KEY}']:'{_quoted(key)}'"


def invoice_params(request: InvoiceRequest, customer_id: str, project_target_id: str,
                   settings: StripeSettings) -> dict[str, Any]:
    """A draft with nothing on it yet: no pending items swept in, never finalized by Stripe on
    its own (finance may be meant to post it), metadata naming the deal and line."""
    params: dict[str, Any] = {
        "customer": customer_id,
        "currency": request.line.amount.currency.lower(),
        "collection_method": settings.collection_method,
        "auto_advance": False,
        "pending_invoice_items_behavior": "exclude",
        "description": request.line.name,
        "metadata": document_metadata(request, project_target_id),
    }
    if settings.collection_method == "send_invoice":
        params["days_until_due"] = settings.days_until_due
    return params


def invoice_item_params(request: InvoiceRequest, customer_id: str, invoice_id: str,
                        project_target_id: str) -> dict[str, Any]:
    return {
        "customer": customer_id,
        "invoice": invoice_id,
        "amount": to_minor(request.line.amount),
        "currency": request.line.amount.currency.lower(),
        "description": request.line.name,
        "metadata": document_metadata(request, project_target_id),
    }


def credit_note_params(request: InvoiceRequest, invoice: Mapping[str, Any], project_target_id: str,
                       settings: StripeSettings) -> dict[str, Any]:
    """A credit note for |amount| against `invoice`: Stripe takes it off what is still due
    first; the rest (post-payment) must be named — the customer's balance or outside Stripe."""
    amount = -to_minor(request.line.amount)
    pre_payment = min(amount, int(invoice.get("amount_remaining") or 0))
    params: dict[str, Any] = {
        "invoice": invoice["id"],
        "amount": amount,
        "memo": request.line.name,
        "reason": "order_change",
        "metadata": document_metadata(request, project_target_id),
    }
    post_payment = amount - pre_payment
    if post_payment:
        field = "credit_amount" if settings.post_payment_credit == "credit_balance" else "out_of_band_amount"
        params[field] = post_payment
    return params


def creditable(invoice: Mapping[str, Any]) -> int:
    """What credit notes may still take off an invoice (the sum of its credit notes cannot
    exceed its total)."""
    if invoice.get("status") not in CREDITABLE:
        return 0
    credited = int(invoice.get("pre_payment_credit_notes_amount") or 0) + \
        int(invoice.get("post_payment_credit_notes_amount") or 0)
    return int(invoice.get("total") or 0) - credited


# --- Stripe objects → handoff -----------------------------------------------------------------

def is_credit_note_id(target_id: str) -> bool:
    return target_id.startswith("cn_")


def invoice_from(invoice: Mapping[str, Any]) -> Invoice:
    """A Stripe invoice as handoff's Invoice: what is still owed is `amount_remaining` (after
    payments, credit notes and any customer balance applied)."""
    currency = invoice["currency"]
    status = _status(invoice, INVOICE_STATUSES)
    total = int(invoice["total"])
    untaxed = _untaxed(invoice, total)
    remaining = 0 if status is InvoiceStatus.CANCELLED else invoice.get("amount_remaining", total)
    return Invoice(
        external_id=_metadata(invoice).get(EXTERNAL_ID, ""),
        target_id=str(invoice["id"]), number=invoice.get("number") or None, status=status,
        untaxed=from_minor(untaxed, currency), tax=from_minor(total - untaxed, currency),
        total=from_minor(total, currency), amount_due=from_minor(remaining, currency),
        invoice_date=_date(invoice.get("effective_at")
                           or (invoice.get("status_transitions") or {}).get("finalized_at")
                           or invoice.get("created")),
        due_date=_date(invoice.get("due_date")),
    )


def credit_note_from(note: Mapping[str, Any]) -> Invoice:
    """A credit note as handoff counts it: its amounts negative, nothing left due."""
    currency = note["currency"]
    total = int(note["total"])
    untaxed = _untaxed(note, total)
    return Invoice(
        external_id=_metadata(note).get(EXTERNAL_ID, ""),
        target_id=str(note["id"]), number=note.get("number") or None,
        status=_status(note, CREDIT_NOTE_STATUSES),
        untaxed=from_minor(0 - untaxed, currency), tax=from_minor(0 - (total - untaxed), currency),
        total=from_minor(0 - total, currency), amount_due=from_minor(0, currency),
        invoice_date=_date(note.get("effective_at") or note.get("created")),
    )


def document_figures_from(document: Mapping[str, Any], deal_id: str) -> DocumentFigures:
    """An invoice or credit note as reconciliation counts it (a credit note's amounts negative)."""
    invoice = credit_note_from(document) if document.get("object") == "credit_note" \
        else invoice_from(document)
    return DocumentFigures(deal_id=deal_id, document_id=invoice.target_id,
                           currency=invoice.total.currency, status=invoice.status.value,
                           total=invoice.total.amount, untaxed=invoice.untaxed.amount,
                           amount_due=invoice.amount_due.amount)


def deal_of(document: Mapping[str, Any]) -> str | None:
    return _metadata(document).get(OPPORTUNITY) or None


def external_id_of(document: Mapping[str, Any]) -> str | None:
    return _metadata(document).get(EXTERNAL_ID) or None


def _metadata(document: Mapping[str, Any]) -> Mapping[str, str]:
    return document.get("metadata") or {}


def _untaxed(document: Mapping[str, Any], total: int) -> int:
    untaxed = document.get("total_excluding_tax")
    if untaxed is None:
        untaxed = total - sum(int(t.get("amount") or 0) for t in document.get("total_taxes") or ())
    return int(untaxed)


def _status(document: Mapping[str, Any], known: Mapping[str, InvoiceStatus]) -> InvoiceStatus:
    status = document.get("status")
    if status not in known:
        raise DataError(f"Stripe {document.get('object', 'document')} {document.get('id')} has status "
                        f"{status!r}, unknown to handoff", system=SYSTEM, field="status")
    return known[status]


def _date(epoch: Any) -> date | None:
    """A Stripe timestamp (Unix seconds) as a UTC date."""
    if epoch is None or isinstance(epoch, bool):
        return None
    return datetime.fromtimestamp(int(epoch), UTC).date()


def _quoted(value: str) -> str:
    """A value inside single quotes in Stripe's search query language."""
    return value.replace("\\", "\\\\").replace("'", "\\'")
