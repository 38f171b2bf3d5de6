"""The Business Central twin's records: one company's customers, projects and sales documents
with their lines, each with a row version behind its `@odata.etag`.

Handlers run on one event loop and never await in the middle of a write, so no lock is
needed. Values are checked as BC's fields would take them: Code fields upper-cased and no
longer than their length, Text fields no longer than theirs, GUIDs, dates and exact decimals
as such. A customer's and a project's No. is the table's primary key: a second record with the
same No. is refused (`Internal_EntityWithSameKeyExists`), as BC refuses it.
"""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from handoff.connectors.businesscentral import twin_documents as documents
from handoff.connectors.businesscentral.twin_schema import (
    CUSTOMERS,
    DOCUMENT_SETS,
    EMPTY_GUID,
    GUID,
    LINE_SETS,
    NO_DATE,
    SALES_INVOICES,
    Company,
    EntitySet,
    Prop,
    Record,
    TwinFault,
    bad_request,
    dialog,
    fixed_guid,
    not_found,
)

STORED_SETS = ("customers", "projects", "salesInvoices", "salesCreditMemos", "salesInvoiceLines",
               "salesCreditMemoLines")
NUMBER_SERIES = {"customers": ("C", "CUST", 10), "projects": ("J", "JOB", 10)}
_EDM = {"guid": "Edm.Guid", "decimal": "Edm.Decimal", "date": "Edm.Date", "bool": "Edm.Boolean",
        "int": "Edm.Int32", "code": "Edm.String", "text": "Edm.String"}


class RecordStore:
    def __init__(self, company: Company | None = None) -> None:
        self.company = company or Company()
        self.manual_numbers = True
        self.reset()

    def reset(self) -> None:
        self._records: dict[str, dict[str, Record]] = {name: {} for name in STORED_SETS}
        self._row_version = 0
        self._next_id = 1000
        self._numbers: Counter[str] = Counter()  # records numbered, by series

    # --- reads ------------------------------------------------------------------------------

    def records(self, entity: EntitySet, document_id: str | None = None) -> list[Record]:
        """Rendered, in the order they were made (a document's lines by sequence)."""
        if not entity.stored:
            return [dict(row) for row in self.company.reference[entity.name]]
        rows = list(self._records[entity.name].values())
        if document_id is not None:
            rows = sorted((r for r in rows if r["documentId"] == document_id), key=lambda r: r["sequence"])
        return [self.render(entity, row) for row in rows]

    def read(self, entity: EntitySet, key: str) -> Record:
        return self.render(entity, self._get(entity, key))

    def lines_of(self, document: EntitySet, document_id: str) -> list[Record]:
        return self.records(LINE_SETS[document.name], document_id)

    def document_of_line(self, lines: EntitySet, line_id: str) -> str:
        return self._get(lines, line_id)["documentId"]

    # --- writes -----------------------------------------------------------------------------

    def create(self, entity: EntitySet, body: Mapping[str, Any], document_id: str | None = None) -> Record:
        values = self.clean(entity, body)
        if entity.document is not None:
            return self._create_line(entity, values, document_id)
        if entity in DOCUMENT_SETS:
            record = self._new_document(entity, values)
        else:
            record = self._master_record(entity, None, values)
        return self._store(entity, record)

    def update(self, entity: EntitySet, key: str, body: Mapping[str, Any], if_match: str | None,
               stale_status: int) -> Record:
        current = self._get(entity, key)
        self.check_etag(current, if_match, stale_status, required=True)
        values = self.clean(entity, body)
        if entity.document is not None:
            return self._changed_line(entity, current, values)
        if entity in DOCUMENT_SETS:
            record = self._changed_document(entity, current, values)
        else:
            record = self._master_record(entity, current, values)
        return self._store(entity, record)

    def delete(self, entity: EntitySet, key: str, if_match: str | None, stale_status: int) -> None:
        current = self._get(entity, key)
        self.check_etag(current, if_match, stale_status, required=False)
        if entity.document is not None:
            document_set = self._document_set(entity)
            self._draft(document_set, current["documentId"])
            del self._records[entity.name][key]
            self._retotal_document(document_set, current["documentId"])
            return
        if entity in DOCUMENT_SETS:
            if current.get("posted"):
                raise dialog(f"You cannot delete posted document {current['number']}.")
            lines = LINE_SETS[entity.name]
            for line_id in [r["id"] for r in self._records[lines.name].values() if r["documentId"] == key]:
                del self._records[lines.name][line_id]
        elif entity is CUSTOMERS and any(d["customerId"] == key for s in DOCUMENT_SETS
                                         for d in self._records[s.name].values()):
            raise dialog(f"You cannot delete Customer {current['number']} because there is at least "
                         "one outstanding Sales Invoice for this customer.")
        del self._records[entity.name][key]

    def post(self, entity: EntitySet, key: str, if_match: str | None, stale_status: int) -> None:
        """Microsoft.NAV.post: the ETag is checked only when one is sent."""
        document = self._get(entity, key)
        self.check_etag(document, if_match, stale_status, required=False)
        lines = [self._records[LINE_SETS[entity.name].name][r["id"]]
                 for r in self.lines_of(entity, key)]
        customer = self._records["customers"][document["customerId"]]
        series = documents.SERIES[entity.name]
        number = f"{series.posted}{documents.POSTED_FIRST[entity.name] + self._numbers[series.posted]}"
        record = documents.posted(entity, document, lines, customer, number)
        self._numbers[series.posted] += 1
        self._store(entity, record)

    def pay(self, invoice_id: str, amount: Any) -> Record:
        """Twin-only: a customer payment applied to the invoice, posted."""
        if not isinstance(invoice_id, str) or invoice_id not in self._records["salesInvoices"]:
            raise not_found(SALES_INVOICES, str(invoice_id))
        record = documents.paid(self._records["salesInvoices"][invoice_id], amount)
        return self._store(SALES_INVOICES, record)

    def check_etag(self, record: Record, if_match: str | None, stale_status: int, *, required: bool) -> None:
        if if_match is None:
            if required:
                raise TwinFault(400, "BadRequest_InvalidToken", "Could not validate the client "
                                "concurrency token required by the service. Please provide a valid "
                                "token in the client request.")
            return
        if if_match.strip() != "*" and if_match.strip() != etag(record):
            raise TwinFault(stale_status, "Request_EntityChanged",
                            "Another user has already changed the record.")

    # --- rendering --------------------------------------------------------------------------

    def render(self, entity: EntitySet, record: Record) -> Record:
        """The record as the API shows it: its ETag first, every property of the page."""
        body: Record = {"@odata.etag": etag(record)}
        for name, prop in entity.props.items():
            body[name] = record.get(name, _blank(prop))
        if entity is CUSTOMERS:
            body |= self._currency_fields(record) | {"balanceDue": self._balance(record["id"])}
        elif entity in DOCUMENT_SETS:
            body |= self._document_fields(entity, record)
        return body

    def summary(self) -> dict[str, Any]:
        """Counts the way a reconciliation would, from the records, not from any index."""
        def duplicates(set_name: str, key: str) -> int:
            held = Counter(r.get(key) for r in self._records[set_name].values() if r.get(key))
            return sum(1 for n in held.values() if n > 1)

        return {
            "counts": {name: len(self._records[name]) for name in STORED_SETS},
            "duplicate_numbers": duplicates("customers", "number") + duplicates("projects", "number"),
            "duplicate_document_keys": duplicates("salesInvoices", "externalDocumentNumber")
            + duplicates("salesCreditMemos", "externalDocumentNumber"),
            "statuses": {s.name: dict(Counter(d["status"] for d in self._records[s.name].values()))
                         for s in DOCUMENT_SETS},
        }

    # --- values -----------------------------------------------------------------------------

    def clean(self, entity: EntitySet, body: Mapping[str, Any]) -> Record:
        """The body's values as BC's fields take them; a property the page does not have, or
        cannot write, is refused."""
        values: Record = {}
        for name, value in body.items():
            if name.startswith("@odata."):
                continue
            prop = entity.props.get(name)
            if prop is None:
                raise bad_request(f"The property '{name}' does not exist on type "
                                  f"'Microsoft.NAV.{entity.entity}'. Make sure to only use property "
                                  "names that are defined by the type.")
            if not prop.writable:
                raise TwinFault(400, "BadRequest_InvalidOperation", f"Control '{prop.caption or name}' "
                                "is read-only")
            values[name] = _field_value(prop, value)
        return values

    # --- customers and projects -------------------------------------------------------------

    def _master_record(self, entity: EntitySet, current: Record | None, values: Record) -> Record:
        if current is None or "number" in values:
            values |= {"number": self._number(entity, values.get("number"), current)}
        if entity is CUSTOMERS:
            if current is None and not values.get("displayName"):
                raise dialog('A "displayName" must be provided.')
            if current is not None and values.get("displayName") == "":
                raise dialog('The "displayName" must not be blank.')
            values |= self._customer_currency(values)
            values.pop("currencyId", None)
            defaults = {"type": "Company", "blocked": " ", "currencyCode": ""}
        else:
            defaults = {"displayName": ""}
        return (defaults if current is None else current) | values

    def _number(self, entity: EntitySet, number: str | None, current: Record | None) -> str:
        prefix, series, first = NUMBER_SERIES[entity.name]
        if number is None:
            self._numbers[entity.name] += 1
            return f"{prefix}{(first + self._numbers[entity.name]) * 10:05d}"
        if not number:
            raise dialog(f"The \"number\" of a {entity.table} must not be blank.")
        if current is None and not self.manual_numbers:
            raise dialog("You may not enter numbers manually. If you want to enter numbers manually, "
                         f"please activate Manual Nos. in No. Series {series}.")
        holder = next((r for r in self._records[entity.name].values() if r["number"] == number), None)
        if holder is not None and (current is None or holder["id"] != current["id"]):
            raise TwinFault(409, "Internal_EntityWithSameKeyExists", f"The {entity.table} already "
                            f"exists. Identification fields and values: No.='{number}'")
        return number

    def _customer_currency(self, values: Record) -> Record:
        """currencyCode and currencyId as one Currency Code ("" is the local currency)."""
        by_code = {c["code"]: c for c in self.company.reference["currencies"]}
        by_id = {c["id"]: c for c in self.company.reference["currencies"]}
        chosen: list[str] = []
        if "currencyCode" in values:
            code = values["currencyCode"]
            if code not in ("", self.company.local_currency) and code not in by_code:
                raise dialog('The "currencyCode" does not match to a Currency.')
            chosen.append("" if code == self.company.local_currency else code)
        if "currencyId" in values:
            currency_id = values["currencyId"]
            if currency_id != EMPTY_GUID and currency_id not in by_id:
                raise dialog('The "currencyId" does not match to a Currency.')
            chosen.append("" if currency_id == EMPTY_GUID else by_id[currency_id]["code"])
        if len(set(chosen)) > 1:
            raise dialog("The currency values do not match to a specific Currency.")
        return {"currencyCode": chosen[0]} if chosen else {}

    def _currency_fields(self, record: Record) -> Record:
        code = record.get("currencyCode", "")
        by_code = {c["code"]: c["id"] for c in self.company.reference["currencies"]}
        return {"currencyCode": code or self.company.local_currency,
                "currencyId": by_code.get(code, EMPTY_GUID)}

    def _balance(self, customer_id: str) -> Decimal:
        owed = sum((d["remaining"] for d in self._records["salesInvoices"].values()
                    if d["customerId"] == customer_id and d.get("posted")), Decimal(0))
        credited = sum((d["totalAmountIncludingTax"] for d in self._records["salesCreditMemos"].values()
                        if d["customerId"] == customer_id and d["status"] == "Open"), Decimal(0))
        return owed - credited

    # --- sales documents --------------------------------------------------------------------

    def _new_document(self, entity: EntitySet, values: Record) -> Record:
        customer = self._sell_to(values)
        values = {k: v for k, v in values.items() if k not in ("customerNumber", "currencyId")}
        values |= self._customer_currency(self._currency_of(values, customer))
        series = documents.SERIES[entity.name]
        number = series.draft_number(self._numbers[series.draft])
        record = documents.opened(entity, values | {"customerId": customer["id"]}, customer, number,
                                  datetime.now(UTC).date())
        documents.due_date_ok(record, documents.document_date_field(entity))
        self._numbers[series.draft] += 1
        return documents.with_totals(record, [])

    def _changed_document(self, entity: EntitySet, current: Record, values: Record) -> Record:
        if current.get("posted"):
            raise dialog(f"The document {current['number']} has been posted and can no longer be "
                         "modified.")
        if "customerId" in values or "customerNumber" in values:
            values |= {"customerId": self._sell_to(values)["id"]}
            values.pop("customerNumber", None)
        if "currencyCode" in values or "currencyId" in values:
            values |= self._customer_currency(values)
            values.pop("currencyId", None)
        record = current | values
        documents.due_date_ok(record, documents.document_date_field(entity))
        return record

    def _sell_to(self, values: Record) -> Record:
        customers = self._records["customers"]
        customer_id, number = values.get("customerId"), values.get("customerNumber")
        if customer_id is None and number is None:
            raise dialog('A "customerNumber" or a "customerId" must be provided.')
        by_number = next((c for c in customers.values() if c["number"] == number), None)
        customer = customers.get(customer_id) if customer_id is not None else by_number
        if customer is None:
            raise dialog("The sell-to customer cannot be found.")
        if number is not None and customer is not by_number:
            raise dialog("The sell-to customer values do not match to a specific Customer.")
        return customer

    def _currency_of(self, values: Record, customer: Record) -> Record:
        """The document's currency as sent, else the customer's."""
        if "currencyCode" in values:
            return {"currencyCode": values["currencyCode"]}
        return {"currencyCode": customer.get("currencyCode", "")}

    def _document_fields(self, entity: EntitySet, record: Record) -> Record:
        customer = self._records["customers"].get(record["customerId"], {})
        number, name = customer.get("number", ""), customer.get("displayName", "")
        fields = {"customerNumber": number, "customerName": name, "billToName": name,
                  "billToCustomerId": record["customerId"], "billToCustomerNumber": number,
                  "pricesIncludeTax": False,
                  "discountAppliedBeforeTax": True, "discountAmount": Decimal(0)}
        fields |= self._currency_fields(record)
        if entity is SALES_INVOICES:
            fields["remainingAmount"] = documents.remaining_amount(record)
        return fields

    def _draft(self, entity: EntitySet, document_id: str) -> Record:
        document = self._get(entity, document_id)
        if document.get("posted"):
            raise dialog(f"The document {document['number']} has been posted and can no longer be "
                         "modified.")
        return document

    def _create_line(self, entity: EntitySet, values: Record, document_id: str | None) -> Record:
        document_set = self._document_set(entity)
        document_id = document_id or values.get("documentId")
        if document_id is None:
            raise dialog('The "documentId" of a line must be provided.')
        if values.get("documentId", document_id) != document_id:
            raise dialog('The value for "documentId" cannot be modified.')
        self._draft(document_set, document_id)
        siblings = [r["sequence"] for r in self._records[entity.name].values()
                    if r["documentId"] == document_id]
        values = {"sequence": max(siblings, default=0) + 10000} | values | {"documentId": document_id}
        if values["sequence"] in siblings:
            raise TwinFault(409, "Internal_EntityWithSameKeyExists", f"The {entity.table} already "
                            f"exists. Identification fields and values: Line No.='{values['sequence']}'")
        line = self._store(entity, documents.priced(values, self.company.reference))
        self._retotal_document(document_set, document_id)
        return self.read(entity, line["id"])

    def _retotal_document(self, document_set: EntitySet, document_id: str) -> None:
        lines = [self._records[LINE_SETS[document_set.name].name][r["id"]]
                 for r in self.lines_of(document_set, document_id)]
        document = self._records[document_set.name][document_id]
        self._store(document_set, documents.with_totals(document, lines))

    def _changed_line(self, entity: EntitySet, current: Record, values: Record) -> Record:
        document_set = self._document_set(entity)
        self._draft(document_set, current["documentId"])
        if values.get("documentId", current["documentId"]) != current["documentId"]:
            raise dialog('The value for "documentId" cannot be modified.')
        if values.get("sequence", current["sequence"]) != current["sequence"]:
            raise dialog('The value for "sequence" cannot be modified. Delete and insert the line again.')
        line = self._store(entity, documents.priced(current | values, self.company.reference))
        self._retotal_document(document_set, current["documentId"])
        return line

    def _document_set(self, lines: EntitySet) -> EntitySet:
        return next(s for s in DOCUMENT_SETS if s.name == lines.document)

    # --- storage ----------------------------------------------------------------------------

    def _get(self, entity: EntitySet, key: str) -> Record:
        if not GUID.fullmatch(key):
            raise bad_request("Bad Request - Error in query syntax.", "BadRequest_NotFound")
        if not entity.stored:
            found = next((r for r in self.company.reference[entity.name] if r["id"] == key.lower()), None)
            if found is None:
                raise not_found(entity, key)
            return dict(found)
        record = self._records[entity.name].get(key.lower())
        if record is None:
            raise not_found(entity, key)
        return record

    def _store(self, entity: EntitySet, record: Record) -> Record:
        """Numbers, versions and stamps the record; returns it rendered."""
        if "id" not in record:
            self._next_id += 1
            record = {"id": fixed_guid(self._next_id)} | record
        self._row_version += 1
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        record = record | {"_version": self._row_version, "lastModifiedDateTime": stamp}
        self._records[entity.name][record["id"]] = record
        return self.render(entity, record)


def etag(record: Record) -> str:
    """A weak ETag in BC's form: W/"<base64 of the row version>"."""
    version = record.get("_version", 0)
    return 'W/"' + base64.b64encode(f"'20;{version:020d};00;'".encode()).decode() + '"'


def _blank(prop: Prop) -> Any:
    return {"guid": EMPTY_GUID, "decimal": Decimal(0), "bool": False, "int": 0, "date": NO_DATE,
            "datetime": "0001-01-01T00:00:00Z"}.get(prop.kind, prop.options[0] if prop.options else "")


def _field_value(prop: Prop, value: Any) -> Any:
    """`value` as the field holds it, or BC's refusal."""
    def refuse() -> TwinFault:
        return bad_request(f"Cannot convert the literal '{value}' to the expected type "
                           f"'{_EDM.get(prop.kind, 'Microsoft.NAV.enum')}'.")

    if prop.kind in ("code", "text"):
        if not isinstance(value, str):
            raise refuse()
        if len(value) > prop.length:
            raise TwinFault(400, "Application_StringExceededLength", f"The length of the string is "
                            f"{len(value)}, but it must be less than or equal to {prop.length} "
                            f"characters. Value: {value}")
        return value.upper() if prop.kind == "code" else value
    if prop.kind == "guid":
        if not isinstance(value, str) or not GUID.fullmatch(value):
            raise refuse()
        return value.lower()
    if prop.kind == "decimal":
        if isinstance(value, bool) or not isinstance(value, int | Decimal):
            raise refuse()
        return Decimal(value)
    if prop.kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise refuse()
        return value
    if prop.kind == "bool":
        if not isinstance(value, bool):
            raise refuse()
        return value
    if prop.kind == "date":
        try:
            return date.fromisoformat(value).isoformat() if isinstance(value, str) and len(value) == 10 \
                else _raise(refuse())
        except ValueError:
            raise refuse() from None
    if prop.kind == "enum" and value in prop.options:
        return value
    raise refuse()


def _raise(fault: TwinFault) -> Any:
    raise fault
