"""The SAP twin's records and what SAP works out when they are written: numbers and GUIDs,
company codes derived from cost centres, a customer made with its partner, ETags (a project's
is its LastChangeDateTime, a partner's its ETag property), and the billing documents, journal
entries and clearings a test asks for (SAP's billing run and payment postings, played by the
twin-only controls `bill`, `pay`, `cancel`, `post`).

Handlers run on one event loop and never await in the middle of a write, so no lock is needed;
a write (or a `$batch` change set) that fails leaves everything as it was (`transaction`).
"""

from __future__ import annotations

import copy
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from handoff.connectors.sap.twin_query import decode, encode, key_text
from handoff.connectors.sap.twin_schema import (
    BILLING_DOCUMENT,
    BILLING_ITEM,
    BUSINESS_PARTNER,
    COMPANY_CODES,
    COST_CENTERS,
    CURRENCIES,
    CUSTOMER,
    CUSTOMER_COMPANY,
    CUSTOMER_ROLES,
    CUSTOMER_SALES_AREA,
    DATETIMEOFFSET,
    DISTRIBUTION_CHANNELS,
    DIVISIONS,
    ENTITY_TYPES,
    INVALID_PROPERTY,
    NOT_ALLOWED,
    OPEN_ITEM,
    PARTNER_GROUPINGS,
    PARTNER_MESSAGE,
    PARTNER_ROLE,
    PARTNER_ROLES,
    PAYMENT_TERMS,
    PRECONDITION_FAILED,
    PRECONDITION_REQUIRED,
    PROCESSING_STATUSES,
    PROFIT_CENTERS,
    PROJECT,
    PROJECT_ELEMENT,
    PROJECT_MESSAGE,
    PROJECT_PROFILES,
    RECONCILIATION_ACCOUNTS,
    SALES_ORGANIZATIONS,
    EntityType,
    TwinFault,
    not_found,
)

Record = dict[str, Any]
Key = tuple[Any, ...]
FIRST_PARTNER, FIRST_PROJECT, FIRST_ELEMENT = 10300000, 1000, 5000
FIRST_BILLING, FIRST_CLEARING = 90000000, 1400000000
INVOICE, CREDIT_MEMO = "invoice", "credit_memo"
# kind -> SD document category, billing type; its cancellation's category and type
DOCUMENT_KINDS = {INVOICE: ("M", "F2", "N", "S1"), CREDIT_MEMO: ("O", "G2", "S", "S2")}
POSTED, NOT_POSTED = "C", "A"
OTHER_USER = "CB9980000042"


class ControlError(ValueError):
    """A twin-only control request that cannot be done (answered 400 with the reason)."""


class SapStore:
    def __init__(self, user: str) -> None:
        self.user = user
        self.edit_before_next_write = False
        self.reset()

    def reset(self) -> None:
        self.records: dict[str, dict[Key, Record]] = {name: {} for name in ENTITY_TYPES}
        self._numbers: Counter[str] = Counter()
        self._last = datetime(2000, 1, 1, tzinfo=UTC)
        self._edited: list[tuple[EntityType, Key]] = []  # records "someone else" saved
        self.edit_before_next_write = False

    # --- reads -------------------------------------------------------------------------------

    def rows(self, entity_set: str) -> list[Record]:
        return list(self.records[entity_set].values())

    def get(self, entity: EntityType, key: Key) -> Record:
        record = self.records[entity.entity_set].get(tuple(_key_value(entity, n, v) for n, v in
                                                            zip(entity.keys, key, strict=True)))
        if record is None:
            raise not_found(entity.entity_set)
        return record

    def related(self, entity: EntityType, record: Record, navigation: str) -> list[Record] | Record | None:
        nav = entity.navs[navigation]
        rows = [r for r in self.rows(nav.target)
                if all(r.get(target) == record.get(source) and record.get(source) is not None
                       for target, source in nav.link)]
        return rows if nav.many else (rows[0] if rows else None)

    def etag(self, entity: EntityType, record: Record) -> str | None:
        if entity.etag is None or record.get(entity.etag) is None:
            return None
        value = record[entity.etag]
        if entity.props[entity.etag].edm == DATETIMEOFFSET:
            return f"W/\"datetimeoffset'{value.strftime('%Y-%m-%dT%H:%M:%S.%f')}0Z'\""
        return f"W/\"'{value}'\""

    def render(self, entity: EntityType, record: Record, root: str, select: list[str] | None = None,
               expand: list[str] | None = None) -> dict[str, Any]:
        """A record as SAP's JSON has it; `root` is the service's absolute URL."""
        select, expand = select or [], expand or []
        uri = f"{root}/{entity.entity_set}{key_text(entity, record)}"
        metadata = {"id": uri, "uri": uri, "type": f"{entity.service}.{entity.type_name}"}
        etag = self.etag(entity, record)
        if etag:
            metadata["etag"] = etag
        top = {s.split("/", 1)[0] for s in select}
        shown = {"__metadata": metadata}
        for name, prop in entity.props.items():
            if not select or name in top or "*" in top:
                shown[name] = encode(prop, record.get(name))
        expanded = {e.split("/", 1)[0] for e in expand}
        for name, nav in entity.navs.items():
            if name in expanded:
                deeper = [e.split("/", 1)[1] for e in expand if e.startswith(f"{name}/")]
                inner = [s.split("/", 1)[1] for s in select if s.startswith(f"{name}/")]
                target = ENTITY_TYPES[nav.target]
                related = self.related(entity, record, name)
                if isinstance(related, list):
                    shown[name] = {"results": [self.render(target, r, root, inner, deeper) for r in related]}
                else:
                    shown[name] = self.render(target, related, root, inner, deeper) if related else None
            elif not select or name in top:
                shown[name] = {"__deferred": {"uri": f"{uri}/{name}"}}
        return shown

    def summary(self) -> dict[str, Any]:
        partners = Counter(r.get("BusinessPartnerIDByExtSystem") for r in self.rows("A_BusinessPartner")
                           if r.get("BusinessPartnerIDByExtSystem"))
        projects = self.rows("A_EnterpriseProject")
        return {
            "counts": {name: len(rows) for name, rows in self.records.items()},
            "duplicate_partner_keys": sum(1 for held in partners.values() if held > 1),
            "projects_per_customer": dict(Counter(str(p.get("CustomerUUID")) for p in projects)),
            "elements_per_project": {p["Project"]: len(self.related(PROJECT, p, "to_EnterpriseProjectElement")
                                                       or []) for p in projects},
        }

    # --- writes ------------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything written in the block, or nothing (a failed change set changes nothing).
        An edit played for someone else in SAP meanwhile stays: it was never part of the block."""
        saved, edits = copy.deepcopy((self.records, self._numbers)), len(self._edited)
        try:
            yield
        except BaseException:
            self.records, self._numbers = saved
            for entity, key in self._edited[edits:]:
                self._changed(entity, self.get(entity, key), OTHER_USER)
            raise

    def create(self, entity: EntityType, body: Mapping[str, Any],
               parent: tuple[EntityType, Record, str] | None = None) -> Record:
        """POST to the set, or (`parent`) to a parent's navigation."""
        with self.transaction():
            if entity is BUSINESS_PARTNER and parent is None:
                return self._create_partner(body)
            if entity is PROJECT and parent is None:
                return self._create_project(body)
            if entity is PROJECT_ELEMENT and (parent is None or parent[0] is PROJECT):
                return self._create_element(body, parent[1] if parent else None)
        through = f" through {parent[2]}" if parent else ""
        raise TwinFault(405, NOT_ALLOWED, f"Creating {entity.entity_set}{through} is not allowed")

    def update(self, entity: EntityType, key: Key, body: Mapping[str, Any], if_match: str | None,
               replace: bool = False) -> Record:
        """PATCH/MERGE (only what is sent) or PUT (`replace`: what is not sent is emptied)."""
        if not entity.updatable:
            raise TwinFault(405, NOT_ALLOWED, f"Updating {entity.entity_set} is not allowed")
        with self.transaction():
            record = self.get(entity, key)
            self._check_etag(entity, record, if_match)
            values = self._values(entity, body, creating=False)
            if replace:
                emptied = {n: None for n, p in entity.props.items() if p.updatable and n not in entity.keys}
                values = emptied | values
            changed = {**record, **values}
            if entity is PROJECT:
                self._check_project(changed)
            elif entity is BUSINESS_PARTNER:
                self._check_partner_names(changed)
                changed["BusinessPartnerFullName"] = _full_name(changed)
                customer = self.related(BUSINESS_PARTNER, changed, "to_Customer")
                if isinstance(customer, dict):
                    customer["CustomerName"] = changed["BusinessPartnerFullName"][:80]
            self._require(entity, changed)
            record.update(changed)
            self._changed(entity, record)
            return record

    def delete(self, entity: EntityType, key: Key, if_match: str | None) -> None:
        if not entity.deletable:
            raise TwinFault(405, NOT_ALLOWED, f"Deleting {entity.entity_set} is not allowed")
        with self.transaction():
            record = self.get(entity, key)
            self._check_etag(entity, record, if_match)
            if record.get("ProcessingStatus") not in (None, "00"):
                name = record.get("Project") or record.get("ProjectElement")
                raise TwinFault(400, PROJECT_MESSAGE, f"{name} has status "
                                f"{PROCESSING_STATUSES[record['ProcessingStatus']]} and cannot be deleted")
            if entity is PROJECT:
                for element in self.related(PROJECT, record, "to_EnterpriseProjectElement") or []:
                    self._remove(PROJECT_ELEMENT, element)
            self._remove(entity, record)

    def call(self, function: str, params: Mapping[str, Any]) -> tuple[EntityType, Record]:
        """The enterprise project service's status function imports."""
        with self.transaction():
            if function == "ChangeEntProjProcgStatus":
                entity, key = PROJECT, "ProjectUUID"
            elif function == "ChangeEntProjElmntProcgStatus":
                entity, key = PROJECT_ELEMENT, "ProjectElementUUID"
            else:
                raise not_found(function)
            if params.get(key) is None:
                raise TwinFault(400, INVALID_PROPERTY, f"Parameter '{key}' is missing", key)
            record = self.get(entity, (params[key],))
            status = params.get("ProcessingStatus")
            if status not in PROCESSING_STATUSES:
                raise TwinFault(400, PROJECT_MESSAGE, f"Processing status {status!r} does not exist",
                                "ProcessingStatus")
            if record["ProcessingStatus"] == "42":
                raise TwinFault(400, PROJECT_MESSAGE, "A closed project cannot change its status")
            record["ProcessingStatus"] = status
            self._changed(entity, record)
            if entity is PROJECT:
                for element in self.related(PROJECT, record, "to_EnterpriseProjectElement") or []:
                    element["ProcessingStatus"] = status
                    self._changed(PROJECT_ELEMENT, element)
            return entity, record

    # --- creation ----------------------------------------------------------------------------

    def _create_partner(self, body: Mapping[str, Any]) -> Record:
        values = self._values(BUSINESS_PARTNER, body, creating=True)
        self._require(BUSINESS_PARTNER, values)
        if values["BusinessPartnerCategory"] not in ("1", "2"):
            raise TwinFault(400, PARTNER_MESSAGE, f"Business partner category "
                            f"{values['BusinessPartnerCategory']} does not exist", "BusinessPartnerCategory")
        if values["BusinessPartnerGrouping"] not in PARTNER_GROUPINGS:
            raise TwinFault(400, PARTNER_MESSAGE, f"Grouping {values['BusinessPartnerGrouping']} does not "
                            "exist", "BusinessPartnerGrouping")
        self._check_partner_names(values)
        number = self._next("partner", FIRST_PARTNER)
        today = self._now()
        record = values | {"BusinessPartner": number, "BusinessPartnerUUID": str(uuid.uuid4()),
                           "BusinessPartnerFullName": _full_name(values), "CreationDate": _midnight(today),
                           "LastChangeDate": _midnight(today)}
        roles = [self._values(PARTNER_ROLE, r, creating=True) for r in _many(body, "to_BusinessPartnerRole")]
        for role in roles:
            self._require(PARTNER_ROLE, role)
            if role["BusinessPartnerRole"] not in PARTNER_ROLES:
                raise TwinFault(400, PARTNER_MESSAGE, f"Role {role['BusinessPartnerRole']} does not exist",
                                "BusinessPartnerRole")
        is_customer = any(r["BusinessPartnerRole"] in CUSTOMER_ROLES for r in roles)
        if body.get("to_Customer") is not None and not is_customer:
            raise TwinFault(400, PARTNER_MESSAGE, "Customer data needs a customer role (FLCU00, FLCU01)",
                            "to_Customer")
        if is_customer:
            record["Customer"] = number
            self._create_customer(record, body.get("to_Customer") or {})
        self._store(BUSINESS_PARTNER, record)
        for role in roles:
            self._store(PARTNER_ROLE, role | {"BusinessPartner": number})
        self._changed(BUSINESS_PARTNER, record)
        return record

    def _create_customer(self, partner: Record, body: Mapping[str, Any]) -> None:
        customer = self._values(CUSTOMER, body, creating=True) | {
            "Customer": partner["Customer"], "CustomerName": partner["BusinessPartnerFullName"][:80],
            "CustomerFullName": partner["BusinessPartnerFullName"]}
        for company in _many(body, "to_CustomerCompany"):
            values = self._values(CUSTOMER_COMPANY, company, creating=True)
            self._require(CUSTOMER_COMPANY, values)
            _known(values, "CompanyCode", COMPANY_CODES, PARTNER_MESSAGE)
            _known(values, "ReconciliationAccount", RECONCILIATION_ACCOUNTS, PARTNER_MESSAGE)
            _known(values, "PaymentTerms", PAYMENT_TERMS, PARTNER_MESSAGE)
            self._store(CUSTOMER_COMPANY, values | {"Customer": partner["Customer"]})
        for area in _many(body, "to_CustomerSalesArea"):
            values = self._values(CUSTOMER_SALES_AREA, area, creating=True)
            self._require(CUSTOMER_SALES_AREA, values)
            _known(values, "SalesOrganization", SALES_ORGANIZATIONS, PARTNER_MESSAGE)
            _known(values, "DistributionChannel", DISTRIBUTION_CHANNELS, PARTNER_MESSAGE)
            _known(values, "Division", DIVISIONS, PARTNER_MESSAGE)
            _known(values, "Currency", CURRENCIES, PARTNER_MESSAGE)
            _known(values, "CustomerPaymentTerms", PAYMENT_TERMS, PARTNER_MESSAGE)
            self._store(CUSTOMER_SALES_AREA, values | {"Customer": partner["Customer"]})
        self._store(CUSTOMER, customer)

    def _create_project(self, body: Mapping[str, Any]) -> Record:
        values = self._values(PROJECT, body, creating=True)
        self._require(PROJECT, values)
        if any(p["Project"] == values["Project"] for p in self.rows("A_EnterpriseProject")):
            raise TwinFault(400, PROJECT_MESSAGE, f"Project {values['Project']} already exists")
        _known(values, "ProjectProfileCode", PROJECT_PROFILES, PROJECT_MESSAGE)
        self._check_project(values)
        company = COST_CENTERS[values["ResponsibleCostCenter"]]
        now = self._now()
        record = {"EntProjectIsConfidential": False, "ProjectCurrency": COMPANY_CODES[company]} | values | {
            "ProjectUUID": str(uuid.uuid4()),
            "ProjectInternalID": self._next("project", FIRST_PROJECT).zfill(8),
            "ProcessingStatus": "00", "CompanyCode": company, "ControllingArea": "A000",
            "ProjectLastChangedDateTime": now}
        _known(record, "ProjectCurrency", CURRENCIES, PROJECT_MESSAGE)
        self._store(PROJECT, record)
        self._changed(PROJECT, record)
        for element in _many(body, "to_EnterpriseProjectElement"):
            self._create_element(element, record)
        return record

    def _create_element(self, body: Mapping[str, Any], project: Record | None) -> Record:
        values = self._values(PROJECT_ELEMENT, body, creating=True)
        if project is not None:
            if values.get("ProjectUUID") not in (None, project["ProjectUUID"]):
                raise TwinFault(400, INVALID_PROPERTY, "ProjectUUID differs from the project's",
                                "ProjectUUID")
            values["ProjectUUID"] = project["ProjectUUID"]
        elif values.get("ProjectUUID") is None:
            raise TwinFault(400, PROJECT_MESSAGE, "Enter the project of the WBS element", "ProjectUUID")
        else:
            project = self.get(PROJECT, (values["ProjectUUID"],))
        self._require(PROJECT_ELEMENT, values)
        elements = self.rows("A_EnterpriseProjectElement")
        if any(e["ProjectElement"] == values["ProjectElement"] for e in elements):
            raise TwinFault(400, PROJECT_MESSAGE, f"WBS element {values['ProjectElement']} already exists")
        _known(values, "ProfitCenter", PROFIT_CENTERS, PROJECT_MESSAGE)
        _known(values, "ResponsibleCostCenter", COST_CENTERS, PROJECT_MESSAGE)
        siblings = self.related(PROJECT, project, "to_EnterpriseProjectElement") or []
        now = self._now()
        defaults = {"ResponsibleCostCenter": project.get("ResponsibleCostCenter"),
                    "ProfitCenter": project.get("ProfitCenter"), "WBSElementIsBillingElement": False}
        record = defaults | values | {
            "ProjectElementUUID": str(uuid.uuid4()),
            "WBSElementInternalID": self._next("element", FIRST_ELEMENT).zfill(8),
            "ProcessingStatus": project["ProcessingStatus"], "CompanyCode": project["CompanyCode"],
            "ProjectElementOrdinalNumber": len(siblings) + 1, "CreationDateTime": now}
        self._store(PROJECT_ELEMENT, record)
        self._changed(PROJECT_ELEMENT, record)
        return record

    # --- checks ------------------------------------------------------------------------------

    def _values(self, entity: EntityType, body: Mapping[str, Any], creating: bool) -> Record:
        if not isinstance(body, Mapping):
            raise TwinFault(400, INVALID_PROPERTY,
                            f"The request body of {entity.entity_set} must be an object")
        values = {}
        for name, value in body.items():
            if name == "__metadata" or (creating and name in entity.navs):
                continue
            prop = entity.props.get(name)
            if prop is None:
                raise TwinFault(400, INVALID_PROPERTY, f"Property '{name}' is invalid for "
                                f"{entity.type_name}", name)
            if not (prop.creatable if creating else prop.updatable):
                raise TwinFault(400, INVALID_PROPERTY, f"Property '{name}' of {entity.type_name} cannot be "
                                f"{'set' if creating else 'changed'}", name)
            values[name] = decode(prop, name, value)
        return values

    def _require(self, entity: EntityType, values: Mapping[str, Any]) -> None:
        for name in entity.required:
            if values.get(name) in (None, ""):
                raise TwinFault(400, PROJECT_MESSAGE if entity.service.startswith("API_ENTERPRISE")
                                else PARTNER_MESSAGE, f"Enter a value for {name}", name)

    def _check_project(self, values: Mapping[str, Any]) -> None:
        _known(values, "ResponsibleCostCenter", COST_CENTERS, PROJECT_MESSAGE)
        _known(values, "ProfitCenter", PROFIT_CENTERS, PROJECT_MESSAGE)
        customer = values.get("CustomerUUID")
        if customer is not None and not any(p["BusinessPartnerUUID"] == customer
                                            for p in self.rows("A_BusinessPartner")):
            raise TwinFault(400, PROJECT_MESSAGE, f"Business partner {customer} does not exist",
                            "CustomerUUID")
        start, end = values.get("ProjectStartDate"), values.get("ProjectEndDate")
        if start and end and end < start:
            raise TwinFault(400, PROJECT_MESSAGE, "The planned finish lies before the planned start",
                            "ProjectEndDate")

    def _check_partner_names(self, values: Mapping[str, Any]) -> None:
        if values.get("BusinessPartnerCategory") == "2" and not values.get("OrganizationBPName1"):
            raise TwinFault(400, PARTNER_MESSAGE, "Enter a name for the organization", "OrganizationBPName1")
        if values.get("BusinessPartnerCategory") == "1" and not values.get("LastName"):
            raise TwinFault(400, PARTNER_MESSAGE, "Enter a last name for the person", "LastName")

    def _check_etag(self, entity: EntityType, record: Record, if_match: str | None) -> None:
        """412 on a stale If-Match (`*` always matches), 428 without one. `edit_before_next_write`
        plays a person saving the record in SAP between the client's read and its write."""
        if self.etag(entity, record) is None:
            return
        if self.edit_before_next_write and if_match not in (None, "*"):
            self.edit_before_next_write = False
            self._changed(entity, record, OTHER_USER)
            self._edited.append((entity, tuple(record[k] for k in entity.keys)))
        if if_match is None:
            raise TwinFault(428, PRECONDITION_REQUIRED, "Precondition required: send the entity's ETag "
                            "in If-Match")
        if if_match != "*" and if_match != self.etag(entity, record):
            raise TwinFault(412, PRECONDITION_FAILED, f"{entity.entity_set} was changed by another user in "
                            "the meantime (ETag does not match)")

    # --- billing (twin-only controls) -----------------------------------------------------------

    def bill(self, project_id: str, net: Decimal, tax: Decimal, *, kind: str = INVOICE,
             billing_date: date | None = None, wbs_element: str | None = None, currency: str | None = None,
             posted: bool = True, terms_days: int = 30, text: str = "") -> Record:
        """A billing document SAP's billing run would make for the project, posted to accounting
        (an open customer item) unless `posted` is False."""
        if kind not in DOCUMENT_KINDS:
            raise ControlError(f"kind must be one of {', '.join(DOCUMENT_KINDS)}")
        project = next((p for p in self.rows("A_EnterpriseProject") if p["Project"] == project_id.upper()),
                       None)
        if project is None:
            raise ControlError(f"no project {project_id}")
        partner = next((p for p in self.rows("A_BusinessPartner")
                        if p["BusinessPartnerUUID"] == project.get("CustomerUUID")), None)
        if partner is None or not partner.get("Customer"):
            raise ControlError(f"project {project_id} has no customer to bill")
        elements = [e["ProjectElement"]
                    for e in self.related(PROJECT, project, "to_EnterpriseProjectElement") or []]
        wbs = (wbs_element or project["Project"]).upper()
        if wbs not in (project["Project"], *elements):
            raise ControlError(f"{wbs} is neither project {project['Project']} nor one of its WBS elements")
        on = billing_date or self._now().date()
        category, doc_type = DOCUMENT_KINDS[kind][:2]
        number = self._next("billing", FIRST_BILLING)
        document = {
            "BillingDocument": number, "SDDocumentCategory": category, "BillingDocumentCategory": "L",
            "BillingDocumentType": doc_type, "CreationDate": _midnight(self._now()),
            "SalesOrganization": project["CompanyCode"], "DistributionChannel": "10", "Division": "00",
            "BillingDocumentDate": _day(on), "BillingDocumentIsCancelled": False,
            "TotalNetAmount": net, "TaxAmount": tax, "TotalGrossAmount": net + tax,
            "TransactionCurrency": currency or project["ProjectCurrency"], "CustomerPaymentTerms": "0004",
            "CompanyCode": project["CompanyCode"], "FiscalYear": str(on.year),
            "SoldToParty": partner["Customer"], "PayerParty": partner["Customer"],
            "OverallSDProcessStatus": "C", "OverallBillingStatus": "C",
            "AccountingPostingStatus": NOT_POSTED, "AccountingTransferStatus": NOT_POSTED,
            "InvoiceClearingStatus": "A", "_terms_days": terms_days}
        self._store(BILLING_DOCUMENT, document)
        self._store(BILLING_ITEM, {
            "BillingDocument": number, "BillingDocumentItem": "000010", "SalesDocumentItemCategory": "TAD",
            "BillingDocumentItemText": (text or project["ProjectDescription"])[:40],
            "BillingQuantity": Decimal(1), "BillingQuantityUnit": "EA", "NetAmount": net, "TaxAmount": tax,
            "GrossAmount": net + tax, "TransactionCurrency": document["TransactionCurrency"],
            "ProfitCenter": project.get("ProfitCenter"),
            "WBSElement": wbs})
        self._billing_changed(document)
        if posted:
            self.post(number)
        return document

    def post(self, number: str) -> Record:
        """Release the document to accounting: its journal entry's open customer item."""
        document = self._document(number)
        if document["AccountingTransferStatus"] == POSTED:
            return document
        debit = _kind(document) == INVOICE
        gross = document["TotalGrossAmount"]
        document.update(AccountingDocument=number, AccountingPostingStatus=POSTED,
                        AccountingTransferStatus=POSTED)
        self._store(OPEN_ITEM, {
            "CompanyCode": document["CompanyCode"], "FiscalYear": document["FiscalYear"],
            "AccountingDocument": number, "AccountingDocumentItem": "001", "AccountingDocumentType": "RV",
            "Customer": document["SoldToParty"], "BillingDocument": number, "FinancialAccountType": "D",
            "IsCleared": False, "ClearingIsReversed": False,
            "NetDueDate": document["BillingDocumentDate"] + timedelta(days=document["_terms_days"]),
            "PostingDate": document["BillingDocumentDate"], "DocumentDate": document["BillingDocumentDate"],
            "DebitCreditCode": "S" if debit else "H",
            "AmountInTransactionCurrency": gross if debit else -gross,
            "TransactionCurrency": document["TransactionCurrency"]})
        self._billing_changed(document)
        return document

    def pay(self, number: str, amount: Decimal, on: date | None = None) -> Record:
        """The customer pays (or, for a credit memo, is refunded) `amount`: the open items are
        cleared, and what is still owed is posted as a residual item referring to the
        document. Paying more than is open is refused."""
        document = self._document(number)
        if document["AccountingTransferStatus"] != POSTED or document["BillingDocumentIsCancelled"]:
            raise ControlError(f"billing document {number} is not posted, or is cancelled")
        open_items = [i for i in self._items_of(document) if not i["IsCleared"]]
        owed = sum((i["AmountInTransactionCurrency"] for i in open_items), Decimal(0))
        if amount <= 0 or amount > abs(owed):
            raise ControlError(f"{amount} is not between 0 and the {abs(owed)} still open")
        on = on or self._now().date()
        clearing = self._next("clearing", FIRST_CLEARING)
        for item in open_items:
            item.update(IsCleared=True, ClearingDate=_day(on), ClearingAccountingDocument=clearing)
        rest = owed - amount if owed > 0 else owed + amount
        if rest:
            original = open_items[0]
            self._store(OPEN_ITEM, original | {
                "FiscalYear": str(on.year), "AccountingDocument": clearing, "AccountingDocumentItem": "002",
                "AccountingDocumentType": "DZ", "IsCleared": False, "ClearingDate": None,
                "ClearingAccountingDocument": None, "PostingDate": _day(on), "DocumentDate": _day(on),
                "AmountInTransactionCurrency": rest, "InvoiceReference": document["AccountingDocument"],
                "InvoiceReferenceFiscalYear": document["FiscalYear"]})
        document["InvoiceClearingStatus"] = "B" if rest else "C"
        self._billing_changed(document)
        return document

    def cancel(self, number: str, on: date | None = None) -> Record:
        """A cancellation document (S1/S2) for the document; its open items are cleared by it."""
        document = self._document(number)
        if document["BillingDocumentIsCancelled"] or document["SDDocumentCategory"] in ("N", "S"):
            raise ControlError(f"billing document {number} is cancelled or cancels another")
        kind = DOCUMENT_KINDS[_kind(document)]
        on = on or self._now().date()
        cancellation = self._next("billing", FIRST_BILLING)
        self._store(BILLING_DOCUMENT, document | {
            "BillingDocument": cancellation, "SDDocumentCategory": kind[2], "BillingDocumentType": kind[3],
            "BillingDocumentDate": _day(on), "CancelledBillingDocument": number,
            "AccountingDocument": cancellation if document.get("AccountingDocument") else None,
            "InvoiceClearingStatus": "C"})
        for item in self.related(BILLING_DOCUMENT, document, "to_Item") or []:
            self._store(BILLING_ITEM, item | {"BillingDocument": cancellation})
        for item in self._items_of(document):
            if not item["IsCleared"]:
                item.update(IsCleared=True, ClearingDate=_day(on), ClearingAccountingDocument=cancellation)
        document.update(BillingDocumentIsCancelled=True, InvoiceClearingStatus="C")
        self._billing_changed(document)
        return self._document(cancellation)

    def _document(self, number: str) -> Record:
        document = self.records["A_BillingDocument"].get((number,))
        if document is None:
            raise ControlError(f"no billing document {number}")
        return document

    def _items_of(self, document: Record) -> list[Record]:
        number, year = document.get("AccountingDocument"), document["FiscalYear"]
        return [i for i in self.rows("A_OperationalAcctgDocItemCube") if number and i["CompanyCode"] ==
                document["CompanyCode"] and ((i["AccountingDocument"] == number and i["FiscalYear"] == year)
                                             or (i.get("InvoiceReference") == number
                                                 and i.get("InvoiceReferenceFiscalYear") == year))]

    def _billing_changed(self, document: Record) -> None:
        document["LastChangeDateTime"] = self._now()

    # --- plumbing ------------------------------------------------------------------------------

    def _store(self, entity: EntityType, record: Record) -> None:
        self.records[entity.entity_set][tuple(record[k] for k in entity.keys)] = record

    def _remove(self, entity: EntityType, record: Record) -> None:
        del self.records[entity.entity_set][tuple(record[k] for k in entity.keys)]

    def _changed(self, entity: EntityType, record: Record, user: str | None = None) -> None:
        """A new change stamp, and with it a new ETag."""
        now = self._now()
        if entity is BUSINESS_PARTNER:  # the ETag holds seconds: a change within one moves it on
            stamp = now.strftime("%Y%m%d%H%M%S")
            held = str(record.get("ETag") or "")[12:]
            if held >= stamp:
                later = datetime.strptime(held, "%Y%m%d%H%M%S") + timedelta(seconds=1)
                stamp = later.strftime("%Y%m%d%H%M%S")
            record["ETag"] = f"{(user or self.user)[:12]:<12}{stamp}"
            record["LastChangeDate"] = _midnight(now)
        elif "LastChangeDateTime" in entity.props:
            record["LastChangeDateTime"] = now
            record["LastChangedByUser"] = (user or self.user)[:12]
            if entity is PROJECT:
                record["ProjectLastChangedDateTime"] = now

    def _now(self) -> datetime:
        """UTC now, strictly later than the last stamp given: every change a new ETag."""
        self._last = max(datetime.now(UTC), self._last + timedelta(microseconds=1))
        return self._last

    def _next(self, sequence: str, first: int) -> str:
        self._numbers[sequence] += 1
        return str(first + self._numbers[sequence])


def _kind(document: Mapping[str, Any]) -> str:
    return CREDIT_MEMO if document["SDDocumentCategory"] == "O" else INVOICE


def _many(body: Mapping[str, Any], navigation: str) -> list[Mapping[str, Any]]:
    """A deep-insert navigation: a JSON array (as the SAP Cloud SDK sends it) or `{"results"}`."""
    value = body.get(navigation)
    if value is None:
        return []
    if isinstance(value, Mapping) and isinstance(value.get("results"), list):
        value = value["results"]
    if not isinstance(value, list):
        raise TwinFault(400, INVALID_PROPERTY, f"{navigation} must be a list of entities", navigation)
    return value


def _known(values: Mapping[str, Any], name: str, known: Mapping[str, Any] | frozenset[str],
           code: str) -> None:
    value = values.get(name)
    if value is not None and value not in known:
        raise TwinFault(400, code, f"{name} {value} does not exist", name)


def _key_value(entity: EntityType, name: str, value: Any) -> Any:
    return str(value).lower() if entity.props[name].edm == "Edm.Guid" else value


def _full_name(values: Mapping[str, Any]) -> str:
    if values.get("BusinessPartnerCategory") == "1":
        return " ".join(v for v in (values.get("FirstName"), values.get("LastName")) if v)[:81]
    return " ".join(values.get(f"OrganizationBPName{n}") or "" for n in range(1, 5)).strip()[:81]


def _midnight(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _day(on: date) -> datetime:
    return datetime(on.year, on.month, on.day, tzinfo=UTC)
