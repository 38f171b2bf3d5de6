"""The Stripe twin's objects and the rules Stripe applies to them (customers, invoice items,
invoices draft → open → paid | void | uncollectible, credit notes), with Stripe's amounts kept
consistent: amount_due = total − customer balance applied, amount_remaining = amount_due −
amount_paid − credit notes taken off it. Pure and synchronous: handlers call it between awaits,
so no lock is needed. A refusal is a `StripeFault`, Stripe's error body.

⚠ Unconfirmed choices of the twin (real Stripe may differ): an open invoice that credit notes
bring to nothing due becomes `paid`; a customer's credit balance is applied at finalization to
invoices of any currency; the largest amount an invoice item takes is `max_amount` when set.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
PREFIXES = {"customer": "cus", "invoiceitem": "ii", "invoice": "in", "credit_note": "cn",
            "line_item": "il", "event": "evt"}
CURRENCIES = frozenset({
    "aed", "aud", "bhd", "bif", "brl", "cad", "chf", "clp", "cny", "czk", "djf", "dkk", "eur", "gbp",
    "gnf", "hkd", "huf", "ils", "inr", "jod", "jpy", "kmf", "krw", "kwd", "mga", "mxn", "nok", "nzd",
    "omr", "pln", "pyg", "rwf", "sar", "sek", "sgd", "thb", "tnd", "try", "twd", "ugx", "usd", "vnd",
    "vuv", "xaf", "xof", "xpf", "zar"})


class StripeFault(Exception):
    """An error answer in Stripe's format: `{"error": {"type", "code", "message", "param", …}}`."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error",  # noqa: A002
                 code: str | None = None, param: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.param = status, message, type, code, param
        self.extra = extra
        self.headers: dict[str, str] = {}

    def body(self, request_id: str | None = None) -> Obj:
        error: Obj = {"type": self.type, "message": self.message}
        if self.code:
            error["code"] = self.code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        if self.param:
            error["param"] = self.param
        if request_id:
            error["request_log_url"] = f"https://dashboard.stripe.com/test/logs/{request_id}"
        return {"error": error | self.extra}


def missing(param: str) -> StripeFault:
    return StripeFault(400, f"Missing required param: {param}.", code="parameter_missing", param=param)


def no_such(kind: str, object_id: str, param: str | None = None) -> StripeFault:
    words = {"invoiceitem": "invoiceitem", "credit_note": "credit note"}.get(kind, kind)
    return StripeFault(404 if param is None else 400, f"No such {words}: '{object_id}'",
                       code="resource_missing", param=param or "id")


def integer(params: Mapping[str, Any], name: str, *, required: bool = False,
            minimum: int | None = None) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise missing(name)
        return None
    if not isinstance(value, str) or not re.fullmatch(r"-?\d+", value):
        raise StripeFault(400, f"Invalid integer: {value}", code="parameter_invalid_integer", param=name)
    number = int(value)
    if minimum is not None and number < minimum:
        raise StripeFault(400, f"This value must be greater than or equal to {minimum}.",
                          code="parameter_invalid_integer", param=name)
    return number


def boolean(params: Mapping[str, Any], name: str, default: bool) -> bool:
    value = params.get(name)
    if value is None:
        return default
    if value not in ("true", "false"):
        raise StripeFault(400, f"Invalid boolean: {value}", code="parameter_invalid_boolean", param=name)
    return value == "true"


def text(params: Mapping[str, Any], name: str, *, required: bool = False) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise missing(name)
        return None
    if not isinstance(value, str):
        raise StripeFault(400, f"Invalid string: {value!r}", code="parameter_invalid_string", param=name)
    return value


def metadata(params: Mapping[str, Any], current: Mapping[str, str] | None = None) -> dict[str, str]:
    """Stripe's metadata rules: ≤ 50 keys, key ≤ 40 characters without brackets, value ≤ 500."""
    given = params.get("metadata")
    merged = dict(current or {})
    if given in (None, ""):
        return merged if given is None else {}
    if not isinstance(given, dict):
        raise StripeFault(400, "Invalid hash", code="parameter_invalid_string", param="metadata")
    for key, value in given.items():
        if len(key) > 40:
            raise StripeFault(400, f"Metadata keys can have up to 40 characters; '{key}' has {len(key)}.",
                              param=f"metadata[{key}]")
        if not isinstance(value, str) or len(value) > 500:
            raise StripeFault(400, "Metadata values can have up to 500 characters.",
                              param=f"metadata[{key}]")
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    if len(merged) > 50:
        raise StripeFault(400, "You can specify up to 50 keys in metadata.", param="metadata")
    return merged


@dataclass
class Event:
    id: str
    type: str
    created: int
    object: Obj
    request: Obj
    deliveries: list[Obj] = field(default_factory=list)


class Store:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.reset()

    def reset(self) -> None:
        self.objects: dict[str, dict[str, Obj]] = {kind: {} for kind in PREFIXES}
        self.events: list[Event] = []
        self._seq = itertools.count(1)
        self._order: dict[str, int] = {}  # id -> creation sequence (lists are newest first)
        self.max_amount: int | None = None
        self.api_version = "2026-06-24.dahlia"

    # --- plumbing ---------------------------------------------------------------------------

    def now(self) -> int:
        return int(self.clock())

    def _new_id(self, kind: str) -> str:
        seq = next(self._seq)
        object_id = f"{PREFIXES[kind]}_T{seq:012d}"
        self._order[object_id] = seq
        return object_id

    def get(self, kind: str, object_id: str, param: str | None = None) -> Obj:
        found = self.objects[kind].get(object_id)
        if found is None:
            raise no_such(kind, object_id, param)
        return found

    def newest_first(self, kind: str, keep: Callable[[Obj], bool] = lambda o: True) -> list[Obj]:
        rows = [o for o in self.objects[kind].values() if keep(o)]
        return sorted(rows, key=lambda o: self._order[o["id"]], reverse=True)

    def emit(self, kind: str, obj: Obj, request: Obj | None = None) -> Event:
        event = Event(self._new_id("event"), kind, self.now(), render(obj, self), request or {})
        self.events.append(event)
        return event

    # --- customers --------------------------------------------------------------------------

    def create_customer(self, params: Mapping[str, Any]) -> Obj:
        email = text(params, "email")
        if email is not None and not EMAIL.fullmatch(email):
            raise StripeFault(400, f"Invalid email address: {email}", code="email_invalid", param="email")
        customer_id = self._new_id("customer")
        customer = {"id": customer_id, "object": "customer", "created": self.now(),
                    "name": text(params, "name"), "email": email,
                    "description": text(params, "description"), "metadata": metadata(params),
                    "balance": 0, "currency": None, "delinquent": False, "livemode": False,
                    "invoice_prefix": f"T{len(self.objects['customer']) + 1:07d}",
                    "next_invoice_sequence": 1}
        self.objects["customer"][customer_id] = customer
        return customer

    # --- invoice items ------------------------------------------------------------------------

    def create_invoice_item(self, params: Mapping[str, Any]) -> Obj:
        customer = self.get("customer", text(params, "customer", required=True) or "", param="customer")
        amount = integer(params, "amount", required=True)
        assert amount is not None
        currency = _currency(params)
        if self.max_amount is not None and abs(amount) > self.max_amount:
            raise StripeFault(400, f"Amount must be no more than {self.max_amount} in the currency's "
                              "smallest unit.", code="amount_too_large", param="amount")
        invoice_id = text(params, "invoice")
        invoice = self.get("invoice", invoice_id, param="invoice") if invoice_id else None
        if invoice is not None:
            if invoice["customer"] != customer["id"]:
                raise StripeFault(400, "The invoice belongs to another customer.", param="invoice")
            if invoice["status"] != "draft":
                raise StripeFault(400, f"You can only add invoice items to draft invoices; "
                                       f"{invoice['id']} is {invoice['status']}.",
                                  code="invoice_not_editable")
            if invoice["currency"] != currency:
                raise StripeFault(400, f"The currency of the invoice item ({currency}) must match the "
                                       f"invoice's ({invoice['currency']}).", param="currency")
        now = self.now()
        item = {"id": self._new_id("invoiceitem"), "object": "invoiceitem", "amount": amount,
                "currency": currency, "customer": customer["id"], "date": now,
                "description": text(params, "description"), "discountable": amount > 0,
                "invoice": invoice["id"] if invoice else None, "livemode": False,
                "metadata": metadata(params), "period": {"start": now, "end": now}, "proration": False,
                "quantity": 1}
        self.objects["invoiceitem"][item["id"]] = item
        if invoice is not None:
            invoice["_items"].append(item["id"])
            self._total(invoice)
        return item

    # --- invoices -----------------------------------------------------------------------------

    def create_invoice(self, params: Mapping[str, Any]) -> Obj:
        customer = self.get("customer", text(params, "customer", required=True) or "", param="customer")
        method = text(params, "collection_method") or "charge_automatically"
        if method not in ("charge_automatically", "send_invoice"):
            raise StripeFault(400, "Invalid collection_method: must be one of charge_automatically or "
                                   "send_invoice", code="parameter_invalid_string", param="collection_method")
        days = integer(params, "days_until_due", minimum=0)
        due = integer(params, "due_date")
        if method == "send_invoice" and days is None and due is None:
            raise StripeFault(400, "Invoices with `collection_method=send_invoice` need `days_until_due` "
                                   "or `due_date`.", param="days_until_due")
        if method == "charge_automatically" and (days is not None or due is not None):
            raise StripeFault(400, "`days_until_due` and `due_date` only apply to send_invoice "
                                   "invoices.", param="days_until_due" if days is not None else "due_date")
        behaviour = text(params, "pending_invoice_items_behavior") or "exclude"
        if behaviour not in ("exclude", "include"):
            raise StripeFault(400, "Invalid pending_invoice_items_behavior",
                              param="pending_invoice_items_behavior")
        now = self.now()
        invoice = {
            "id": self._new_id("invoice"), "object": "invoice", "account_country": "US",
            "account_name": "handoff Stripe twin", "amount_due": 0, "amount_overpaid": 0,
            "amount_paid": 0, "amount_remaining": 0, "amount_shipping": 0, "attempt_count": 0,
            "attempted": False, "auto_advance": boolean(params, "auto_advance", True),
            "automatic_tax": {"enabled": False, "liability": None, "status": None},
            "collection_method": method, "created": now,
            "currency": _currency(params) if params.get("currency") else "usd",
            "customer": customer["id"], "customer_email": customer["email"],
            "customer_name": customer["name"], "description": text(params, "description"),
            "due_date": due, "effective_at": None, "ending_balance": None, "footer": None,
            "hosted_invoice_url": None, "invoice_pdf": None, "last_finalization_error": None,
            "livemode": False, "metadata": metadata(params), "next_payment_attempt": None,
            "number": None, "parent": None, "period_end": now, "period_start": now,
            "post_payment_credit_notes_amount": 0, "pre_payment_credit_notes_amount": 0,
            "starting_balance": 0, "status": "draft",
            "status_transitions": {"finalized_at": None, "marked_uncollectible_at": None,
                                   "paid_at": None, "voided_at": None},
            "subtotal": 0, "subtotal_excluding_tax": 0, "total": 0, "total_excluding_tax": 0,
            "total_discount_amounts": [], "total_taxes": [], "webhooks_delivered_at": None,
            "_items": [], "_days_until_due": days,
        }
        self.objects["invoice"][invoice["id"]] = invoice
        if behaviour == "include":
            for item in self.newest_first("invoiceitem", lambda i: i["customer"] == customer["id"]
                                          and i["invoice"] is None and i["currency"] == invoice["currency"]):
                item["invoice"] = invoice["id"]
                invoice["_items"].append(item["id"])
        self._total(invoice)
        return invoice

    def finalize(self, invoice_id: str, params: Mapping[str, Any]) -> tuple[Obj, list[str]]:
        invoice = self.get("invoice", invoice_id)
        if invoice["status"] != "draft":
            raise StripeFault(400, "This invoice is already finalized, you can't re-finalize a "
                                   "non-draft invoice.", code="invoice_not_editable")
        customer = self.get("customer", invoice["customer"])
        now = self.now()
        invoice["auto_advance"] = boolean(params, "auto_advance", invoice["auto_advance"])
        invoice["number"] = f"{customer['invoice_prefix']}-{customer['next_invoice_sequence']:04d}"
        customer["next_invoice_sequence"] += 1
        invoice["status"] = "open"
        invoice["status_transitions"]["finalized_at"] = now
        invoice["effective_at"] = invoice["effective_at"] or now
        invoice["hosted_invoice_url"] = f"https://invoice.stripe.com/i/twin/{invoice['id']}"
        invoice["invoice_pdf"] = f"https://pay.stripe.com/invoice/twin/{invoice['id']}/pdf"
        if invoice["collection_method"] == "send_invoice" and invoice["due_date"] is None:
            invoice["due_date"] = now + 86_400 * (invoice["_days_until_due"] or 0)
        credit = min(-customer["balance"], invoice["total"]) if customer["balance"] < 0 else 0
        invoice["starting_balance"] = -credit
        customer["balance"] += credit
        invoice["ending_balance"] = customer["balance"]
        invoice["amount_due"] = invoice["total"] - credit
        invoice["amount_remaining"] = invoice["amount_due"]
        events = ["invoice.finalized"]
        if invoice["amount_due"] <= 0:
            self._settle(invoice, now)
            events.append("invoice.paid")
        return invoice, events

    def pay(self, invoice_id: str, amount: int | None = None, *, decline: bool = False
            ) -> tuple[Obj, list[str]]:
        """A payment of `amount` (all that remains when None). `decline`: the attempt fails."""
        invoice = self.get("invoice", invoice_id)
        if invoice["status"] != "open" and invoice["status"] != "uncollectible":
            raise StripeFault(400, f"Invoice {invoice_id} is {invoice['status']}; only an open invoice "
                                   "can be paid.", code="invoice_not_open" if invoice["status"] != "paid"
                              else "invoice_already_paid")
        invoice["attempted"] = True
        invoice["attempt_count"] += 1
        if decline:
            return invoice, ["invoice.payment_failed"]
        paid = invoice["amount_remaining"] if amount is None else amount
        if not 0 < paid <= invoice["amount_remaining"]:
            raise StripeFault(400, f"A payment of {paid} does not fit the {invoice['amount_remaining']} "
                                   "remaining.", param="amount")
        invoice["amount_paid"] += paid
        invoice["amount_remaining"] -= paid
        if invoice["amount_remaining"] == 0:
            self._settle(invoice, self.now())
            return invoice, ["invoice.payment_succeeded", "invoice.paid"]
        return invoice, ["invoice.payment_succeeded"]

    def void(self, invoice_id: str) -> tuple[Obj, list[str]]:
        invoice = self.get("invoice", invoice_id)
        if invoice["status"] not in ("open", "uncollectible"):
            raise StripeFault(400, f"You can only void an open or uncollectible invoice; {invoice_id} "
                                   f"is {invoice['status']}.", code="invoice_not_open")
        invoice["status"] = "void"
        invoice["status_transitions"]["voided_at"] = self.now()
        invoice["amount_remaining"] = 0
        return invoice, ["invoice.voided"]

    def mark_uncollectible(self, invoice_id: str) -> tuple[Obj, list[str]]:
        invoice = self.get("invoice", invoice_id)
        if invoice["status"] != "open":
            raise StripeFault(400, f"You can only mark an open invoice uncollectible; {invoice_id} is "
                                   f"{invoice['status']}.", code="invoice_not_open")
        invoice["status"] = "uncollectible"
        invoice["status_transitions"]["marked_uncollectible_at"] = self.now()
        return invoice, ["invoice.marked_uncollectible"]

    def _settle(self, invoice: Obj, now: int) -> None:
        invoice["status"] = "paid"
        invoice["status_transitions"]["paid_at"] = now
        invoice["auto_advance"] = False

    def _total(self, invoice: Obj) -> None:
        subtotal = sum(self.objects["invoiceitem"][i]["amount"] for i in invoice["_items"])
        for name in ("subtotal", "subtotal_excluding_tax", "total", "total_excluding_tax",
                     "amount_due", "amount_remaining"):
            invoice[name] = subtotal

    # --- credit notes -------------------------------------------------------------------------

    def create_credit_note(self, params: Mapping[str, Any]) -> tuple[Obj, list[str]]:
        invoice = self.get("invoice", text(params, "invoice", required=True) or "", param="invoice")
        if params.get("lines") is not None or params.get("refunds") is not None:
            raise StripeFault(400, "The twin takes credit notes by `amount` only.", param="lines")
        amount = integer(params, "amount", required=True, minimum=1)
        credit = integer(params, "credit_amount", minimum=0) or 0
        out_of_band = integer(params, "out_of_band_amount", minimum=0) or 0
        refund = integer(params, "refund_amount", minimum=0) or 0
        assert amount is not None
        if invoice["status"] not in ("open", "paid"):
            raise StripeFault(400, f"You can only create credit notes for open or paid invoices; "
                                   f"{invoice['id']} is {invoice['status']}.", param="invoice")
        taken = invoice["pre_payment_credit_notes_amount"] + invoice["post_payment_credit_notes_amount"]
        if amount > invoice["total"] - taken:
            raise StripeFault(400, f"The credit note's amount ({amount}) cannot exceed what the invoice "
                                   f"has left to credit ({invoice['total'] - taken}).", param="amount")
        pre = min(amount, invoice["amount_remaining"]) if invoice["status"] == "open" else 0
        post = amount - pre
        if credit + out_of_band + refund != post:
            raise StripeFault(400, f"The sum of credit_amount, out_of_band_amount and refund_amount "
                                   f"({credit + out_of_band + refund}) must equal the credit note's "
                                   f"post-payment amount ({post}).", param="out_of_band_amount")
        if refund:
            raise StripeFault(400, "The twin makes no refunds: there is no charge to refund.",
                              param="refund_amount")
        reason = text(params, "reason")
        if reason not in (None, "duplicate", "fraudulent", "order_change", "product_unsatisfactory"):
            raise StripeFault(400, f"Invalid reason: {reason}", param="reason")
        memo, notes = text(params, "memo"), metadata(params)
        customer = self.get("customer", invoice["customer"])
        invoice["amount_remaining"] -= pre
        invoice["amount_due"] -= pre
        invoice["pre_payment_credit_notes_amount"] += pre
        invoice["post_payment_credit_notes_amount"] += post
        events = []
        if invoice["status"] == "open" and invoice["amount_remaining"] == 0:
            self._settle(invoice, self.now())
            events.append("invoice.paid")
        customer["balance"] -= credit
        count = sum(1 for n in self.objects["credit_note"].values() if n["invoice"] == invoice["id"])
        now = self.now()
        note = {
            "id": self._new_id("credit_note"), "object": "credit_note", "amount": amount,
            "amount_shipping": 0, "created": now, "currency": invoice["currency"],
            "customer": invoice["customer"], "customer_balance_transaction": None,
            "discount_amount": 0, "discount_amounts": [], "effective_at": now, "invoice": invoice["id"],
            "livemode": False, "memo": memo, "metadata": notes,
            "number": f"{invoice['number']}-CN-{count + 1:02d}", "out_of_band_amount": out_of_band or None,
            "pdf": None, "post_payment_amount": post, "pre_payment_amount": pre, "reason": reason,
            "refunds": [], "status": "issued", "subtotal": amount, "subtotal_excluding_tax": amount,
            "total": amount, "total_excluding_tax": amount, "total_taxes": [],
            "type": "pre_payment" if not post else "post_payment" if not pre else "mixed",
            "voided_at": None, "_credit_amount": credit,
        }
        self.objects["credit_note"][note["id"]] = note
        return note, ["credit_note.created", *events]


def _currency(params: Mapping[str, Any]) -> str:
    currency = text(params, "currency", required=True) or ""
    if currency.lower() != currency or currency not in CURRENCIES:
        raise StripeFault(400, f"Invalid currency: {currency}. Stripe currently supports these "
                               "currencies: " + ", ".join(sorted(CURRENCIES)),
                          code="parameter_invalid_string", param="currency")
    return currency


def render(obj: Obj, store: Store) -> Obj:
    """What the API shows of an object: internal fields (`_…`) left out, an invoice's lines
    listed from its items."""
    shown = {k: v for k, v in obj.items() if not k.startswith("_")}
    if obj.get("object") == "invoice":
        items = [store.objects["invoiceitem"][i] for i in obj["_items"]]
        shown["lines"] = {"object": "list", "data": [_line(item) for item in items], "has_more": False,
                          "total_count": len(items), "url": f"/v1/invoices/{obj['id']}/lines"}
    if obj.get("object") == "credit_note":
        shown["lines"] = {"object": "list", "data": [], "has_more": False,
                          "url": f"/v1/credit_notes/{obj['id']}/lines"}
    return shown


def _line(item: Obj) -> Obj:
    return {"id": "il_" + item["id"].removeprefix("ii_"), "object": "line_item", "amount": item["amount"],
            "currency": item["currency"], "description": item["description"], "invoice": item["invoice"],
            "livemode": False, "metadata": item["metadata"],
            "parent": {"type": "invoice_item_details", "invoice_item_details": {
                "invoice_item": item["id"], "proration": False, "subscription": None}},
            "period": item["period"], "quantity": 1, "taxes": []}


def matches(obj: Mapping[str, Any], clauses: Iterable[tuple[str, str, str]]) -> bool:
    """Search clauses (field, key, value) all true of `obj`: metadata['key']:'value' or field:'value'."""
    for name, key, value in clauses:
        if name == "metadata":
            if (obj.get("metadata") or {}).get(key) != value:
                return False
        elif str(obj.get(name)) != value:
            return False
    return True
