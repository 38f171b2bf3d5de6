"""Vendor webhooks turned into handoff's canonical CloudEvents.

    hubspot.py      HubSpot v3-signed webhook arrays: each deal or company event is a
                    fetch-then-event (HubSpot sends only the changed property)
    salesforce.py   Outbound Messages (SOAP, answered with Salesforce's ack) and Change Data
                    Capture events relayed as JSON (fetch-then-event)
    reading.py      CrmRecordReader: how a fetch-then-event reads the whole record
    delivery.py     vendor events → the inbox; refusals kept in intake_rejections

Every event gets an id derived from the vendor's delivery id and the record's version, so a
vendor's retry is a duplicate in the inbox and a retry that reads a newer record is a new
version, never a conflict.
"""

from handoff.webhooks.delivery import Translation, VendorEvent
from handoff.webhooks.reading import CrmRecordReader, crm_readers

__all__ = ["CrmRecordReader", "Translation", "VendorEvent", "crm_readers"]
