"""The sandbox twins' bare capacity: a plain client hammering each twin with the calls
handoff makes, nothing of handoff in between. It bounds every figure measured through them."""

from __future__ import annotations

import random
from dataclasses import dataclass

import orjson

from benchmarks.load import THREADS, Call, LeanClient, Load, expect, hammer
from benchmarks.progress import say
from benchmarks.sandbox import Twins, lean_api_client, reset, seed_won_deals, twin_cpu
from handoff.connectors.ports import CrmStatusUpdate
from handoff.connectors.salesforce.mapping import write_back_fields
from handoff.connectors.twin_process import TwinProcess
from handoff.domain import ProvisioningStatus
from handoff.engine.payloads import OPPORTUNITY_CHANGED

NETSUITE_UPSERT = "PUT /services/rest/record/v1/customer/eid:{id}"
SALESFORCE_COLLECTION = "PATCH /services/data/v59.0/composite/sobjects"
SALESFORCE_SINGLE = "PATCH /services/data/v59.0/sobjects/Opportunity/{id}"


@dataclass(frozen=True)
class CallCapacity:
    twin: str
    call: str
    records: int   # records written per call
    load: Load
    twin_cpu: float  # CPU seconds the twin's process used during the load

    @property
    def twin_cpu_ms_per_call(self) -> float:
        return 1000 * self.twin_cpu / self.load.calls

    @property
    def one_core_capacity(self) -> float | None:
        """Calls/s one core of the twin could serve; None when the run was too short for `/proc`'s
        10 ms clock ticks to register any CPU (a quick run's handful of calls)."""
        return 1 / (self.twin_cpu / self.load.calls) if self.twin_cpu > 0 else None


def netsuite_put_rate(capacities: list[CallCapacity] | None) -> float | None:
    """The NetSuite twin's bare rate for the upsert: the provisioning ceiling's numerator."""
    return next((c.load.rate for c in capacities or [] if c.call == NETSUITE_UPSERT), None)


def measure_twins(twins: Twins, upserts: int, collections: int,
                  records: int, patches: int) -> list[CallCapacity]:
    """`records`: opportunities per sObject Collections call (handoff's write-back sends 200)."""
    sf, ns = twins
    reset(sf, ns)
    say(f"  seeding {records} opportunities (and their accounts) in the Salesforce twin")
    ids = [e["data"]["id"] for e in seed_won_deals(sf, records, random.Random(1))
           if e["type"] == OPPORTUNITY_CHANGED]
    return [
        measure(ns, NETSUITE_UPSERT, 1, upserts, netsuite_upsert),
        measure(sf, SALESFORCE_COLLECTION, len(ids), collections, collection_update(ids)),
        measure(sf, SALESFORCE_SINGLE, 1, patches, single_update(ids)),
    ]


def measure(twin: TwinProcess, call: str, records: int, count: int, make: Call) -> CallCapacity:
    say(f"  {twin.system}: {count} × {call} over {THREADS} threads")
    cpu = twin_cpu(twin)
    load = hammer(make, count, lambda: lean_api_client(twin))
    result = CallCapacity(twin.system, call, records, load, twin_cpu(twin) - cpu)
    say(f"    {load.rate:,.0f} calls/s, twin {result.twin_cpu_ms_per_call:.2f} ms CPU per call, "
        f"load generator {load.generator_cores:.2f} cores busy")
    return result


def netsuite_upsert(http: LeanClient, i: int) -> None:
    body = {"companyName": f"Bench customer {i}", "subsidiary": {"id": "1"}, "currency": {"id": "1"}}
    expect(http.put(f"/services/rest/record/v1/customer/eid:bench-{i}", json=body), 204)


def status_fields(opportunity_id: str, i: int) -> dict[str, object]:
    """What handoff's write-back sets on a provisioned deal (a new project id each call)."""
    return write_back_fields(CrmStatusUpdate(opportunity_id, ProvisioningStatus.PROVISIONED,
                                             "", f"PRJ-{i}"))


def collection_update(ids: list[str]) -> Call:
    def call(http: LeanClient, i: int) -> None:
        records = [{"attributes": {"type": "Opportunity"}, "id": o} | status_fields(o, i) for o in ids]
        response = http.patch("/services/data/v59.0/composite/sobjects",
                              content=orjson.dumps({"allOrNone": False, "records": records}),
                              headers={"Content-Type": "application/json"})
        expect(response, 200)
        if b'"success":false' in response.content:
            raise RuntimeError(f"the twin refused records: {response.text[:300]}")
    return call


def single_update(ids: list[str]) -> Call:
    def call(http: LeanClient, i: int) -> None:
        opportunity_id = ids[i % len(ids)]
        expect(http.patch(f"/services/data/v59.0/sobjects/Opportunity/{opportunity_id}",
                          json=status_fields(opportunity_id, i)), 204)
    return call
