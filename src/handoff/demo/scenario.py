"""The scripted lifecycle: which deals the CRM holds, how each is meant to end, and the
deliveries a real event source makes of them (repeats, reordering, stale versions)."""

from __future__ import annotations

import enum
import random
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from handoff.connectors.salesforce.mapping import BILLING_METHODS
from handoff.demo.systems import Seeder, seeder_for
from handoff.engine.cloudevents import change_event
from handoff.engine.payloads import CUSTOMER_CHANGED, MILESTONE_CHANGED, OPPORTUNITY_CHANGED


class Fate(enum.StrEnum):
    CLEAN = "clean"                      # released at once
    AWAITS_CUSTOMER = "awaits_customer"  # blocked until the customer master validates it
    AWAITS_SOW = "awaits_sow"            # blocked until the SOW is approved
    STAYS_BLOCKED = "stays_blocked"      # its tax jurisdiction is wrong; stays blocked
    NOT_WON = "not_won"                  # still in negotiation: nothing to provision

    @property
    def ends_provisioned(self) -> bool:
        return self in (Fate.CLEAN, Fate.AWAITS_CUSTOMER, Fate.AWAITS_SOW)


SHARES = [(Fate.AWAITS_CUSTOMER, 0.1), (Fate.AWAITS_SOW, 0.1), (Fate.STAYS_BLOCKED, 0.05),
          (Fate.NOT_WON, 0.05)]
ENTITIES = [("US01", "US-CA", "USD"), ("US01", "US-NY", "USD"), ("UK01", "GB", "GBP"),
            ("DE01", "DE-BY", "EUR")]
BILLING = ["fixed_fee", "time_and_materials", "milestone"]
MILESTONES = (("M1", "Kick-off", Decimal("0.40")), ("M2", "Acceptance", None))  # None: the rest


@dataclass(frozen=True)
class Deal:
    number: int
    fate: Fate


def fates(count: int, rng: random.Random) -> list[Deal]:
    plan: list[Fate] = []
    for fate, share in SHARES:
        plan += [fate] * max(1, round(count * share))
    plan += [Fate.CLEAN] * (count - len(plan))
    rng.shuffle(plan)
    return [Deal(n, fate) for n, fate in enumerate(plan[:count], start=1)]


def seed_crm(crm: Any, deals: list[Deal], rng: random.Random, threads: int = 8,
             entities: list[tuple[str, str, str]] = ENTITIES, methods: Sequence[str] = BILLING,
             ) -> tuple[dict[str, Fate], dict[str, str]]:
    """Create each deal's account and opportunity in the CRM (a CRM connector, or its Seeder);
    returns the fate and the account id of every opportunity id. `entities`: the (legal
    entity, tax jurisdiction, currency) accounts are drawn from; `methods`: the billing
    methods deals are drawn from (canonical values, or Salesforce's labels)."""
    seeder = crm if isinstance(crm, Seeder) else seeder_for(crm)
    drafts = [(deal, account_data(deal, rng, entities)) for deal in deals]
    opportunities = {deal.number: opportunity_data(deal, account, rng, methods, seeder)
                     for deal, account in drafts}

    def create(draft: tuple[Deal, dict[str, Any]]) -> tuple[str, Fate, str]:
        deal, account = draft
        account_id = seeder.create_account(account)
        data = {**opportunities[deal.number], "account_id": account_id}
        return seeder.create_opportunity(data), deal.fate, account_id

    with ThreadPoolExecutor(threads) as pool:
        created = list(pool.map(create, drafts))
    return {o: f for o, f, _ in created}, {o: a for o, _, a in created}


def account_data(deal: Deal, rng: random.Random,
                 entities: list[tuple[str, str, str]] = ENTITIES) -> dict[str, Any]:
    """An account as canonical customer data."""
    entity, tax, currency = rng.choice(entities)
    return {
        "name": f"Client {deal.number:03d} Ltd", "currency": currency,
        "tax_jurisdiction": "Atlantis" if deal.fate is Fate.STAYS_BLOCKED else tax,
        "legal_entity": entity,
        "validation_status": "unvalidated" if deal.fate is Fate.AWAITS_CUSTOMER else "valid",
    }


def opportunity_data(deal: Deal, account: dict[str, Any], rng: random.Random,
                     methods: Sequence[str], seeder: Seeder) -> dict[str, Any]:
    """An opportunity as canonical data, in the CRM's own stage names."""
    won = deal.fate is not Fate.NOT_WON
    return {
        "name": f"Client {deal.number:03d} — delivery programme",
        "stage": seeder.won_stage if won else seeder.open_stage,
        "amount": (Decimal(rng.randrange(20_000, 900_000, 250))
                   + Decimal(rng.choice(["0", "0.50", "0.25", "0.99"]))),
        "currency": account["currency"], "close_date": "2026-11-20",
        "billing_method": canonical_method(rng.choice(methods)), "contract_status": "approved",
        "sow_status": "pending" if deal.fate is Fate.AWAITS_SOW else "approved",
        "legal_entity": account["legal_entity"],
    }


def canonical_method(method: str) -> str:
    found = BILLING_METHODS.get(method)
    return found.value if found is not None else method


def cloud_event(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """As the CRM's event feed (deals) and the customer master's (accounts) deliver it."""
    source = "/crm/salesforce" if kind == OPPORTUNITY_CHANGED else "/mdm/salesforce"
    return change_event(kind, data, source, datetime.now(UTC))


def stale_version(data: dict[str, Any]) -> dict[str, Any]:
    """The same deal as it was an hour earlier, still in negotiation."""
    earlier = datetime.fromisoformat(data["version"].replace("Z", "+00:00")) - timedelta(hours=1)
    return {**data, "stage": "Proposal/Price Quote", "is_won": False,
            "version": earlier.isoformat().replace("+00:00", "Z")}


def with_schedule(data: dict[str, Any]) -> dict[str, Any]:
    """A deal billed by milestone, with the billing schedule its CPQ lines carry (the CRM
    twin does not model those lines, so the schedule joins the deal's event here)."""
    amount, rest, schedule = Decimal(data["amount"]), Decimal(data["amount"]), []
    for milestone_id, name, share in MILESTONES:
        part = rest if share is None else (amount * share).quantize(Decimal("0.01"))
        rest -= part
        schedule.append({"id": milestone_id, "name": name, "amount": str(part)})
    return {**data, "billing_method": "milestone", "milestones": schedule}


def milestone_event(opportunity_id: str, milestone_id: str, status: str = "achieved",
                    on: str = "2026-11-25") -> dict[str, Any]:
    """Delivery's word that a milestone is achieved (or accepted), as a PSA would send it."""
    data = {"opportunity_id": opportunity_id, "id": milestone_id, "status": status,
            "achieved_on": on, "accepted_on": on if status == "accepted" else None,
            "version": f"{on}T12:00:00Z"}
    return {"specversion": "1.0", "id": f"{opportunity_id}/{milestone_id}@{status}",
            "source": "/psa/delivery", "type": MILESTONE_CHANGED,
            "subject": f"{opportunity_id}/{milestone_id}", "datacontenttype": "application/json",
            "data": data}


def deliveries(customers: list[dict[str, Any]], opportunities: list[dict[str, Any]],
               rng: random.Random, copies: int | None = None,
               stale_share: float = 0.35) -> list[dict[str, Any]]:
    """Every change `copies` times (default 1–3), a stale version of some deals, shuffled."""
    events = [cloud_event(CUSTOMER_CHANGED, c) for c in customers]
    for data in opportunities:
        events += [cloud_event(OPPORTUNITY_CHANGED, data)] * (copies or rng.randint(1, 3))
        if rng.random() < stale_share:
            events.append(cloud_event(OPPORTUNITY_CHANGED, stale_version(data)))
    rng.shuffle(events)
    return events


BAD_INPUTS: list[tuple[str, bytes]] = [
    ("malformed JSON", b'{"specversion": "1.0", "id": '),
    ("missing 'source'", b'{"specversion":"1.0","id":"x-1","type":"handoff.opportunity.changed",'
                         b'"data":{}}'),
    ("unknown event type", b'{"specversion":"1.0","id":"x-2","source":"/crm","type":"crm.lead.'
                           b'created","data":{"id":"00Q1"}}'),
]


def bad_opportunity(template: dict[str, Any], problem: str) -> dict[str, Any]:
    """A real deal's data with one thing wrong, under a fresh event id."""
    wrong = {"wrong currency": {"currency": "EURO"}, "negative amount": {"amount": "-250.00"}}
    data = {**template, **wrong[problem]}
    return {**cloud_event(OPPORTUNITY_CHANGED, data), "id": f"bad-{problem.replace(' ', '-')}"}
