"""Fetch-then-event: a webhook that names a record but does not carry all of it (a HubSpot
property change, a Salesforce CDC event) is turned into an event by reading the record.

A reader answers with canonical event data, exactly what the connector's change feed gives
for the same record, so an event from a webhook and one from polling cannot be told apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from handoff.connectors.ports import CrmRecordReader
from handoff.engine.payloads import CUSTOMER_CHANGED, OPPORTUNITY_CHANGED
from handoff.errors import DataError, HandoffError, IntakeError, TransientError


def crm_readers(crm: object | None) -> dict[str, CrmRecordReader]:
    """The reader of the CRM handoff runs with, by system name (every CRM connector reads one
    record as event data: connectors/contract.py)."""
    if isinstance(crm, CrmRecordReader):
        return {str(getattr(crm, "system", "")): crm}
    return {}


def read(reader: CrmRecordReader, kind: str, object_id: str, system: str) -> dict[str, Any]:
    """The record as canonical data. A record whose data is wrong raises DataError (the caller
    refuses that one record); a CRM that cannot answer now refuses the whole delivery with 503
    (the vendor retries), any other failure with 502."""
    what = "opportunity" if kind == OPPORTUNITY_CHANGED else "customer"
    try:
        if kind == OPPORTUNITY_CHANGED:
            data = reader.opportunity_event_data(object_id)
        elif kind == CUSTOMER_CHANGED:
            data = reader.customer_event_data(object_id)
        else:
            raise ValueError(f"no reader for {kind}")
    except DataError:
        raise
    except TransientError as exc:
        raise IntakeError(f"reading {what} {object_id} from {system} failed for now, try again: "
                          f"{exc.message}", status=503) from exc
    except HandoffError as exc:
        raise IntakeError(f"reading {what} {object_id} from {system} failed: {exc.message}",
                          status=502) from exc
    if not isinstance(data, Mapping) or not data.get("id") or not data.get("version"):
        raise DataError(f"the {what} read from {system} has no id or version", system=system,
                        field="version")
    return dict(data)
