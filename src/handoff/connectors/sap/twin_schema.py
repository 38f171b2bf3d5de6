"""What the SAP twin knows about its services and entity sets: the properties handoff uses
(names, EDM types, lengths and creatable/updatable flags as SAP's `$metadata` has them), the
navigations, which property makes the ETag, and the configuration data of a small system
(company codes, cost and profit centres, profiles, sales areas). Validation raises `TwinFault`,
answered in OData v2's error body.

⚠ The twin's own choices, not SAP's documented behaviour: the message codes and texts of its
errors; that `Project`/`ProjectElement` are converted to upper case on input (their metadata
says display format UpperCase); processing status codes 00/10/40/42; billing status values
(transfer C = posted, clearing A/B/C); which properties are required; that it refuses a
read-only property in a write body (SAP may ignore it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from handoff.domain.money import MINOR_UNITS

STRING, GUID, DATETIME, DATETIMEOFFSET = "Edm.String", "Edm.Guid", "Edm.DateTime", "Edm.DateTimeOffset"
DECIMAL, BOOLEAN, INT32 = "Edm.Decimal", "Edm.Boolean", "Edm.Int32"

ODATA_ROOT = "/sap/opu/odata/sap"


class TwinFault(Exception):
    """An error answer in SAP's OData v2 format; `target` names the property at fault."""

    def __init__(self, status: int, code: str, message: str, target: str | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.target = status, code, message, target
        self.headers = dict(headers or {})


# Message codes the twin answers with (T100 class/number; ⚠ the twin's choice).
NOT_FOUND = "/IWBEP/CM_MGW_RT/020"
INVALID_PROPERTY = "/IWBEP/CM_MGW_RT/004"
INVALID_VALUE = "/IWBEP/CM_MGW_RT/022"
NOT_ALLOWED = "/IWBEP/CM_MGW_RT/021"
MALFORMED = "/IWBEP/CM_MGW_RT/000"
PRECONDITION_FAILED = "/IWBEP/CM_MGW_RT/098"
PRECONDITION_REQUIRED = "/IWBEP/CM_MGW_RT/099"
PROJECT_MESSAGE = "CJ/002"   # enterprise project checks
PARTNER_MESSAGE = "R11/403"  # business partner checks


def not_found(segment: str) -> TwinFault:
    return TwinFault(404, NOT_FOUND, f"Resource not found for segment '{segment}'")


def invalid(name: str, value: object, why: str = "") -> TwinFault:
    reason = f": {why}" if why else ""
    return TwinFault(400, INVALID_VALUE, f"Invalid value '{value}' for property '{name}'{reason}", name)


@dataclass(frozen=True)
class Prop:
    edm: str
    length: int | None = None     # Edm.String MaxLength
    scale: int = 3                # Edm.Decimal Scale
    creatable: bool = True
    updatable: bool = True
    upper: bool = False           # converted to upper case on input (⚠)


@dataclass(frozen=True)
class Nav:
    target: str                          # entity set
    many: bool
    link: tuple[tuple[str, str], ...]    # (target property, source property) pairs


@dataclass(frozen=True)
class EntityType:
    entity_set: str
    service: str
    keys: tuple[str, ...]
    props: Mapping[str, Prop]
    navs: Mapping[str, Nav] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    etag: str | None = None              # the property the ETag is made of
    creatable: bool = False
    updatable: bool = False
    deletable: bool = False

    @property
    def type_name(self) -> str:
        return f"{self.entity_set}Type"


@dataclass(frozen=True)
class Service:
    name: str
    version: str
    component: str
    root: str
    sets: tuple[str, ...]
    functions: tuple[str, ...] = ()


def s(length: int, **flags: bool) -> Prop:
    return Prop(STRING, length, **flags)


RO = {"creatable": False, "updatable": False}

BUSINESS_PARTNER = EntityType(
    "A_BusinessPartner", "API_BUSINESS_PARTNER", ("BusinessPartner",),
    {"BusinessPartner": s(10, **RO), "Customer": s(10, **RO),
     "BusinessPartnerCategory": s(1, updatable=False),
     "BusinessPartnerFullName": s(81, **RO), "BusinessPartnerGrouping": s(4, updatable=False),
     "BusinessPartnerUUID": Prop(GUID, **RO), "OrganizationBPName1": s(40), "OrganizationBPName2": s(40),
     "OrganizationBPName3": s(40), "OrganizationBPName4": s(40), "FirstName": s(40), "LastName": s(40),
     "SearchTerm1": s(20), "SearchTerm2": s(20), "BusinessPartnerIDByExtSystem": s(20),
     "BusinessPartnerIsBlocked": Prop(BOOLEAN), "ETag": s(26, **RO), "CreationDate": Prop(DATETIME, **RO),
     "LastChangeDate": Prop(DATETIME, **RO)},
    {"to_BusinessPartnerRole": Nav("A_BusinessPartnerRole", True, (("BusinessPartner", "BusinessPartner"),)),
     "to_Customer": Nav("A_Customer", False, (("Customer", "Customer"),))},
    required=("BusinessPartnerCategory", "BusinessPartnerGrouping"), etag="ETag", creatable=True,
    updatable=True,
)
PARTNER_ROLE = EntityType(
    "A_BusinessPartnerRole", "API_BUSINESS_PARTNER", ("BusinessPartner", "BusinessPartnerRole"),
    {"BusinessPartner": s(10, updatable=False), "BusinessPartnerRole": s(6, updatable=False),
     "ValidFrom": Prop(DATETIMEOFFSET), "ValidTo": Prop(DATETIMEOFFSET)},
    required=("BusinessPartnerRole",),
)
CUSTOMER = EntityType(
    "A_Customer", "API_BUSINESS_PARTNER", ("Customer",),
    {"Customer": s(10, **RO), "CustomerName": s(80, **RO), "CustomerFullName": s(220, **RO),
     "CustomerAccountGroup": s(4), "OrderIsBlockedForCustomer": s(2), "BillingIsBlockedForCustomer": s(2),
     "DeletionIndicator": Prop(BOOLEAN)},
    {"to_CustomerCompany": Nav("A_CustomerCompany", True, (("Customer", "Customer"),)),
     "to_CustomerSalesArea": Nav("A_CustomerSalesArea", True, (("Customer", "Customer"),))},
)
CUSTOMER_COMPANY = EntityType(
    "A_CustomerCompany", "API_BUSINESS_PARTNER", ("Customer", "CompanyCode"),
    {"Customer": s(10, updatable=False), "CompanyCode": s(4, updatable=False), "PaymentTerms": s(4),
     "ReconciliationAccount": s(10), "DeletionIndicator": Prop(BOOLEAN)},
    required=("CompanyCode", "ReconciliationAccount"),
)
CUSTOMER_SALES_AREA = EntityType(
    "A_CustomerSalesArea", "API_BUSINESS_PARTNER",
    ("Customer", "SalesOrganization", "DistributionChannel", "Division"),
    {"Customer": s(10, updatable=False), "SalesOrganization": s(4, updatable=False),
     "DistributionChannel": s(2, updatable=False), "Division": s(2, updatable=False), "Currency": s(5),
     "CustomerPaymentTerms": s(4)},
    required=("SalesOrganization", "DistributionChannel", "Division", "Currency"),
)
PROJECT = EntityType(
    "A_EnterpriseProject", "API_ENTERPRISE_PROJECT_SRV", ("ProjectUUID",),
    {"ProjectUUID": Prop(GUID, **RO), "ProjectInternalID": s(8, **RO),
     "Project": s(24, upper=True, updatable=False),
     "ProjectDescription": s(60), "EnterpriseProjectType": s(2), "PriorityCode": s(3),
     "ProjectStartDate": Prop(DATETIME), "ProjectEndDate": Prop(DATETIME), "ActualStartDate": Prop(DATETIME),
     "ActualEndDate": Prop(DATETIME), "CustomerUUID": Prop(GUID), "EntProjectIsConfidential": Prop(BOOLEAN),
     "ProcessingStatus": s(2, **RO), "ResponsibleCostCenter": s(10), "ProfitCenter": s(10),
     "ProjectProfileCode": s(7, updatable=False), "FunctionalArea": s(16), "CompanyCode": s(4, **RO),
     "ControllingArea": s(4), "Plant": s(4), "ProjectCurrency": s(5, updatable=False),
     "IsBillingRelevant": Prop(BOOLEAN), "LastChangeDateTime": Prop(DATETIMEOFFSET, **RO),
     "ProjectLastChangedDateTime": Prop(DATETIMEOFFSET, **RO), "LastChangedByUser": s(12, **RO)},
    {"to_EnterpriseProjectElement": Nav("A_EnterpriseProjectElement", True,
                                        (("ProjectUUID", "ProjectUUID"),))},
    required=("Project", "ProjectDescription", "ProjectStartDate", "ProjectEndDate", "ProjectProfileCode",
              "ResponsibleCostCenter"),
    etag="LastChangeDateTime", creatable=True, updatable=True, deletable=True,
)
PROJECT_ELEMENT = EntityType(
    "A_EnterpriseProjectElement", "API_ENTERPRISE_PROJECT_SRV", ("ProjectElementUUID",),
    {"ProjectElementUUID": Prop(GUID, **RO), "ProjectElement": s(24, upper=True, updatable=False),
     "WBSElementInternalID": s(8, **RO), "ProjectUUID": Prop(GUID, updatable=False),
     "ProjectElementDescription": s(60), "ParentObjectUUID": Prop(GUID), "ProjectElementOrdinalNumber":
     Prop(INT32, **RO), "ProcessingStatus": s(2, **RO), "PlannedStartDate": Prop(DATETIME),
     "PlannedEndDate": Prop(DATETIME), "ResponsibleCostCenter": s(10), "CompanyCode": s(4, **RO),
     "ProfitCenter": s(10), "WBSElementIsBillingElement": Prop(BOOLEAN), "IsProjectMilestone": s(1),
     "CreationDateTime": Prop(DATETIMEOFFSET, **RO), "LastChangeDateTime": Prop(DATETIMEOFFSET, **RO),
     "LastChangedByUser": s(12, **RO)},
    {"to_EnterpriseProject": Nav("A_EnterpriseProject", False, (("ProjectUUID", "ProjectUUID"),))},
    required=("ProjectElement", "ProjectElementDescription"),
    etag="LastChangeDateTime", creatable=True, updatable=True, deletable=True,
)
BILLING_DOCUMENT = EntityType(
    "A_BillingDocument", "API_BILLING_DOCUMENT_SRV", ("BillingDocument",),
    {"BillingDocument": s(10), "SDDocumentCategory": s(4), "BillingDocumentCategory": s(1),
     "BillingDocumentType": s(4), "CreationDate": Prop(DATETIME), "LastChangeDateTime": Prop(DATETIMEOFFSET),
     "SalesOrganization": s(4), "DistributionChannel": s(2), "Division": s(2),
     "BillingDocumentDate": Prop(DATETIME), "BillingDocumentIsCancelled": Prop(BOOLEAN),
     "CancelledBillingDocument": s(10), "TotalNetAmount": Prop(DECIMAL), "TransactionCurrency": s(5),
     "TaxAmount": Prop(DECIMAL), "TotalGrossAmount": Prop(DECIMAL), "CustomerPaymentTerms": s(4),
     "PaymentReference": s(30), "CompanyCode": s(4), "FiscalYear": s(4), "AccountingDocument": s(10),
     "SoldToParty": s(10), "PayerParty": s(10), "PurchaseOrderByCustomer": s(35),
     "OverallSDProcessStatus": s(1), "OverallBillingStatus": s(1), "AccountingPostingStatus": s(1),
     "AccountingTransferStatus": s(1), "InvoiceClearingStatus": s(1)},
    {"to_Item": Nav("A_BillingDocumentItem", True, (("BillingDocument", "BillingDocument"),))},
)
BILLING_ITEM = EntityType(
    "A_BillingDocumentItem", "API_BILLING_DOCUMENT_SRV", ("BillingDocument", "BillingDocumentItem"),
    {"BillingDocument": s(10), "BillingDocumentItem": s(6), "SalesDocumentItemCategory": s(4),
     "BillingDocumentItemText": s(40), "BillingQuantity": Prop(DECIMAL), "BillingQuantityUnit": s(3),
     "NetAmount": Prop(DECIMAL), "TransactionCurrency": s(5), "GrossAmount": Prop(DECIMAL),
     "TaxAmount": Prop(DECIMAL), "ProfitCenter": s(10), "WBSElement": s(24), "SalesDocument": s(10),
     "SalesDocumentItem": s(6), "ReferenceSDDocument": s(10)},
    {"to_BillingDocument": Nav("A_BillingDocument", False, (("BillingDocument", "BillingDocument"),))},
)
OPEN_ITEM = EntityType(
    "A_OperationalAcctgDocItemCube", "API_OPLACCTGDOCITEMCUBE_SRV",
    ("CompanyCode", "FiscalYear", "AccountingDocument", "AccountingDocumentItem"),
    {"CompanyCode": s(4), "FiscalYear": s(4), "AccountingDocument": s(10), "AccountingDocumentItem": s(3),
     "AccountingDocumentType": s(2), "Customer": s(10), "BillingDocument": s(10), "SalesDocument": s(10),
     "FinancialAccountType": s(1), "IsCleared": Prop(BOOLEAN), "ClearingDate": Prop(DATETIME),
     "ClearingAccountingDocument": s(10), "ClearingIsReversed": Prop(BOOLEAN), "NetDueDate": Prop(DATETIME),
     "PostingDate": Prop(DATETIME), "DocumentDate": Prop(DATETIME), "DebitCreditCode": s(1),
     "AmountInTransactionCurrency": Prop(DECIMAL), "TransactionCurrency": s(5), "InvoiceReference": s(10),
     "InvoiceReferenceFiscalYear": s(4)},
)

ENTITY_TYPES: Mapping[str, EntityType] = {t.entity_set: t for t in (
    BUSINESS_PARTNER, PARTNER_ROLE, CUSTOMER, CUSTOMER_COMPANY, CUSTOMER_SALES_AREA, PROJECT, PROJECT_ELEMENT,
    BILLING_DOCUMENT, BILLING_ITEM, OPEN_ITEM)}

SERVICES: tuple[Service, ...] = (
    Service("API_BUSINESS_PARTNER", "0001", "LO-MD-BP", f"{ODATA_ROOT}/API_BUSINESS_PARTNER",
            ("A_BusinessPartner", "A_BusinessPartnerRole", "A_Customer", "A_CustomerCompany",
             "A_CustomerSalesArea")),
    Service("API_ENTERPRISE_PROJECT_SRV", "0002", "PPM-SCL-STR",
            f"{ODATA_ROOT}/API_ENTERPRISE_PROJECT_SRV;v=0002",
            ("A_EnterpriseProject", "A_EnterpriseProjectElement"),
            ("ChangeEntProjProcgStatus", "ChangeEntProjElmntProcgStatus")),
    Service("API_BILLING_DOCUMENT_SRV", "0001", "SD-BIL", f"{ODATA_ROOT}/API_BILLING_DOCUMENT_SRV",
            ("A_BillingDocument", "A_BillingDocumentItem")),
    Service("API_OPLACCTGDOCITEMCUBE_SRV", "0001", "FI-GL-IS", f"{ODATA_ROOT}/API_OPLACCTGDOCITEMCUBE_SRV",
            ("A_OperationalAcctgDocItemCube",)),
)

# --- the configuration of the twin's system ------------------------------------------------

COMPANY_CODES = {"1010": "EUR", "1710": "USD", "1110": "GBP"}
COST_CENTERS = {"10101101": "1010", "10101201": "1010", "17101101": "1710", "17101201": "1710",
                "11101101": "1110"}
PROFIT_CENTERS = {"YB101": "1010", "YB600": "1710", "YB110": "1110", "9900000000": "1010"}
PROJECT_PROFILES = {"YP02": "Customer Project", "YP03": "Internal Project", "YP05": "Overhead Project"}
PROCESSING_STATUSES = {"00": "Created", "10": "Released", "40": "Locked", "42": "Closed"}
PARTNER_GROUPINGS = {"BP01": "Internal numbering", "BP02": "Customer (internal numbering)"}
PARTNER_ROLES = {"FLCU00": "FI Customer", "FLCU01": "Customer", "FLVN00": "FI Vendor", "FLVN01": "Supplier"}
CUSTOMER_ROLES = frozenset({"FLCU00", "FLCU01"})
SALES_ORGANIZATIONS = {"1010": "1010", "1710": "1710", "1110": "1110"}  # -> company code
DISTRIBUTION_CHANNELS = frozenset({"10"})
DIVISIONS = frozenset({"00"})
RECONCILIATION_ACCOUNTS = frozenset({"12100000"})
PAYMENT_TERMS = {"0001": 0, "0004": 30, "NT30": 30}
CURRENCIES = frozenset(MINOR_UNITS)
