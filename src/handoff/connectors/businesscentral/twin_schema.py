"""What the Business Central twin knows of API v2.0: its entity sets, their properties with the
AL field types behind them (Code[20], Text[100], …), the reference data of its one company,
and Business Central's error answers.

Property lists follow the `APIV2 - …` pages (microsoft/BCApps, Apps/W1/APIV2) for the fields
handoff uses and their neighbours; a property the twin does not play is refused as unknown
(`BadRequest`, OData's words), so a request that works against the twin names only real ones.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Record = dict[str, Any]
GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
EMPTY_GUID = "00000000-0000-0000-0000-000000000000"
NO_DATE = "0001-01-01"


class TwinFault(Exception):
    """An answer other than success, as Business Central words it."""

    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def bad_request(message: str, code: str = "BadRequest") -> TwinFault:
    return TwinFault(400, code, message)


def dialog(message: str) -> TwinFault:
    """An Error() of BC's application logic (NavNCLDialogException)."""
    return TwinFault(400, "Application_DialogException", message)


def not_found(entity: EntitySet, key: str) -> TwinFault:
    # ⚠ The status and code of a read by an unknown id are not documented; 404 and BC's
    # record-not-found code are what clients are seen handling.
    return TwinFault(404, "Internal_RecordNotFound", f"The {entity.table} does not exist. "
                     f"Identification fields and values: Id='{{{key.upper()}}}'")


def resource_not_found(segment: str) -> TwinFault:
    return TwinFault(404, "BadRequest_ResourceNotFound", f"Resource not found for the segment '{segment}'.")


def unknown_property(entity: EntitySet, name: str) -> TwinFault:
    return bad_request(f"Could not find a property named '{name}' on type 'Microsoft.NAV.{entity.entity}'.")


@dataclass(frozen=True)
class Prop:
    """One property: `kind` code | text | guid | decimal | date | datetime | bool | int | enum;
    `length` of a Code or Text field; `caption`, the AL field's name in BC's messages."""

    kind: str
    length: int = 0
    writable: bool = True
    caption: str = ""
    options: tuple[str, ...] = ()


def code(length: int, caption: str = "", writable: bool = True) -> Prop:
    return Prop("code", length, writable, caption)


def text(length: int, caption: str = "", writable: bool = True) -> Prop:
    return Prop("text", length, writable, caption)


GUID_PROP, DATE, DECIMAL = Prop("guid"), Prop("date"), Prop("decimal")
READ_ONLY = {kind: Prop(kind, writable=False) for kind in ("guid", "decimal", "datetime", "bool", "text",
                                                             "code", "enum")}


@dataclass(frozen=True)
class EntitySet:
    name: str  # customers
    entity: str  # customer (Microsoft.NAV.customer)
    table: str  # Customer: the AL table, in messages
    props: Mapping[str, Prop]
    lines: str | None = None  # a document's lines (its navigation property)
    document: str | None = None  # a line's document set
    stored: bool = True  # False: reference data, read only


DOCUMENT_STATUSES = ("Draft", "In Review", "Open", "Paid", "Canceled", "Corrective")
LINE_TYPES = ("Comment", "Account", "Item", "Resource", "Value", "Fixed Asset", "Charge")

CUSTOMERS = EntitySet("customers", "customer", "Customer", {
    "id": READ_ONLY["guid"], "number": code(20, "No."), "displayName": text(100, "Name"),
    "type": Prop("enum", options=("Company", "Person")),
    "addressLine1": text(100, "Address"), "addressLine2": text(50, "Address 2"), "city": text(30, "City"),
    "state": text(30, "County"), "country": code(10, "Country/Region Code"),
    "postalCode": code(20, "Post Code"), "phoneNumber": text(30, "Phone No."),
    "email": text(80, "E-Mail"), "website": text(80, "Home Page"),
    "salespersonCode": code(20, "Salesperson Code"), "balanceDue": READ_ONLY["decimal"],
    "creditLimit": DECIMAL, "taxLiable": Prop("bool"), "taxAreaId": GUID_PROP,
    "taxAreaDisplayName": READ_ONLY["text"], "taxRegistrationNumber": text(20, "VAT Registration No."),
    "currencyId": GUID_PROP, "currencyCode": code(10, "Currency Code"), "paymentTermsId": GUID_PROP,
    "shipmentMethodId": GUID_PROP, "paymentMethodId": GUID_PROP,
    "blocked": Prop("enum", options=(" ", "Ship", "Invoice", "All")),
    "lastModifiedDateTime": READ_ONLY["datetime"],
})

PROJECTS = EntitySet("projects", "project", "Job", {
    "id": READ_ONLY["guid"], "number": code(20, "No."), "displayName": text(100, "Description"),
    "lastModifiedDateTime": READ_ONLY["datetime"],
})

_DOCUMENT_HEAD: dict[str, Prop] = {
    "id": READ_ONLY["guid"], "number": code(20, "No.", writable=False),
    "externalDocumentNumber": code(35, "External Document No."),
}
_DOCUMENT_PARTIES: dict[str, Prop] = {
    "postingDate": DATE, "dueDate": DATE, "customerId": GUID_PROP,
    "customerNumber": code(20, "Sell-to Customer No."), "customerName": READ_ONLY["text"],
    "billToName": READ_ONLY["text"], "billToCustomerId": READ_ONLY["guid"],
    "billToCustomerNumber": READ_ONLY["code"], "currencyId": GUID_PROP,
    "currencyCode": code(10, "Currency Code"), "paymentTermsId": GUID_PROP,
    "salesperson": code(20, "Salesperson Code"), "pricesIncludeTax": READ_ONLY["bool"],
}
_DOCUMENT_TOTALS: dict[str, Prop] = {
    "discountAmount": READ_ONLY["decimal"], "discountAppliedBeforeTax": READ_ONLY["bool"],
    "totalAmountExcludingTax": READ_ONLY["decimal"], "totalTaxAmount": READ_ONLY["decimal"],
    "totalAmountIncludingTax": READ_ONLY["decimal"],
    "status": Prop("enum", writable=False, options=DOCUMENT_STATUSES),
    "lastModifiedDateTime": READ_ONLY["datetime"],
}
_CONTACT: dict[str, Prop] = {"phoneNumber": text(30, "Sell-to Phone No."),
                             "email": text(80, "Sell-to E-Mail")}

SALES_INVOICES = EntitySet("salesInvoices", "salesInvoice", "Sales Invoice Entity Aggregate", {
    **_DOCUMENT_HEAD, "invoiceDate": DATE,
    "customerPurchaseOrderReference": text(35, "Your Reference"), **_DOCUMENT_PARTIES,
    "orderId": READ_ONLY["guid"], "orderNumber": READ_ONLY["code"],
    "remainingAmount": READ_ONLY["decimal"], **_DOCUMENT_TOTALS, **_CONTACT,
}, lines="salesInvoiceLines")

SALES_CREDIT_MEMOS = EntitySet("salesCreditMemos", "salesCreditMemo", "Sales Cr. Memo Entity Buffer", {
    **_DOCUMENT_HEAD, "creditMemoDate": DATE, **_DOCUMENT_PARTIES, **_DOCUMENT_TOTALS,
    "invoiceId": GUID_PROP, "invoiceNumber": READ_ONLY["code"], **_CONTACT,
}, lines="salesCreditMemoLines")

_LINE: dict[str, Prop] = {
    "id": READ_ONLY["guid"], "documentId": GUID_PROP, "sequence": Prop("int"),
    "itemId": GUID_PROP, "accountId": GUID_PROP, "lineType": Prop("enum", options=LINE_TYPES),
    "lineObjectNumber": code(20, "No."), "description": text(100, "Description"),
    "unitOfMeasureCode": code(10, "Unit of Measure Code"), "quantity": DECIMAL, "unitPrice": DECIMAL,
    "discountAmount": READ_ONLY["decimal"], "discountPercent": READ_ONLY["decimal"],
    "discountAppliedBeforeTax": READ_ONLY["bool"], "amountExcludingTax": READ_ONLY["decimal"],
    "taxCode": code(20, "Tax Group Code"), "taxPercent": READ_ONLY["decimal"],
    "totalTaxAmount": READ_ONLY["decimal"], "amountIncludingTax": READ_ONLY["decimal"],
    "invoiceDiscountAllocation": READ_ONLY["decimal"], "netAmount": READ_ONLY["decimal"],
    "netTaxAmount": READ_ONLY["decimal"], "netAmountIncludingTax": READ_ONLY["decimal"],
    "shipmentDate": DATE,
}
SALES_INVOICE_LINES = EntitySet("salesInvoiceLines", "salesInvoiceLine", "Sales Invoice Line Aggregate",
                                _LINE, document="salesInvoices")
SALES_CREDIT_MEMO_LINES = EntitySet("salesCreditMemoLines", "salesCreditMemoLine",
                                    "Sales Invoice Line Aggregate", _LINE, document="salesCreditMemos")

ITEMS = EntitySet("items", "item", "Item", {
    "id": READ_ONLY["guid"], "number": code(20, "No.", writable=False), "displayName": READ_ONLY["text"],
    "type": READ_ONLY["enum"], "unitPrice": READ_ONLY["decimal"],
    "baseUnitOfMeasureCode": READ_ONLY["code"], "blocked": READ_ONLY["bool"]}, stored=False)
ACCOUNTS = EntitySet("accounts", "account", "G/L Account", {
    "id": READ_ONLY["guid"], "number": code(20, "No.", writable=False), "displayName": READ_ONLY["text"],
    "category": READ_ONLY["enum"], "blocked": READ_ONLY["bool"]}, stored=False)
CURRENCIES = EntitySet("currencies", "currency", "Currency", {
    "id": READ_ONLY["guid"], "code": code(10, "Code", writable=False), "displayName": READ_ONLY["text"],
    "symbol": READ_ONLY["text"]}, stored=False)

ENTITY_SETS: Mapping[str, EntitySet] = {s.name: s for s in (
    CUSTOMERS, PROJECTS, SALES_INVOICES, SALES_CREDIT_MEMOS, SALES_INVOICE_LINES,
    SALES_CREDIT_MEMO_LINES, ITEMS, ACCOUNTS, CURRENCIES)}
DOCUMENT_SETS = (SALES_INVOICES, SALES_CREDIT_MEMOS)
LINE_SETS = {SALES_INVOICES.name: SALES_INVOICE_LINES, SALES_CREDIT_MEMOS.name: SALES_CREDIT_MEMO_LINES}


def fixed_guid(n: int) -> str:
    """The twin's ids: GUIDs in BC's lower-case form, numbered so runs repeat."""
    return str(uuid.UUID(f"{n:08x}-bc00-4000-8000-{n:012x}"))


@dataclass(frozen=True)
class Company:
    id: str = "a1b2c3d4-0000-4bc0-8000-00000000c001"
    name: str = "CRONUS USA, Inc."
    local_currency: str = "USD"  # LCY: documents in it carry a blank Currency Code in BC
    reference: Mapping[str, list[Record]] = field(default_factory=lambda: {
        "items": [
            {"id": fixed_guid(1), "number": "SERVICES", "displayName": "Consulting services",
             "type": "Service", "unitPrice": 0, "baseUnitOfMeasureCode": "HOUR", "blocked": False},
            {"id": fixed_guid(2), "number": "TRAVEL", "displayName": "Travel expenses",
             "type": "Non-Inventory", "unitPrice": 0, "baseUnitOfMeasureCode": "PCS",
             "blocked": True},
        ],
        "accounts": [
            {"id": fixed_guid(3), "number": "40400", "displayName": "Consulting Fees",
             "category": "Income", "blocked": False},
        ],
        "currencies": [
            {"id": fixed_guid(4), "code": "EUR", "displayName": "Euro", "symbol": "€"},
            {"id": fixed_guid(5), "code": "GBP", "displayName": "British Pound", "symbol": "£"},
            {"id": fixed_guid(6), "code": "CAD", "displayName": "Canadian Dollar", "symbol": "$"},
        ],
    })

    def as_record(self) -> Record:
        return {"id": self.id, "systemVersion": "26.0.30643.32481", "timestamp": 0,
                "name": self.name, "displayName": self.name, "businessProfileId": "",
                "systemCreatedAt": "2025-01-01T00:00:00Z", "systemCreatedBy": EMPTY_GUID,
                "systemModifiedAt": "2025-01-01T00:00:00Z", "systemModifiedBy": EMPTY_GUID}
