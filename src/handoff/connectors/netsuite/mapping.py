"""Canonical records -> NetSuite request bodies. Pure functions: no I/O, so a value that
cannot be mapped is refused (DataError naming the field) before any call is made.

`jobPrice` stays a `Decimal` in the body; `exact_json.dumps` writes it as an exact JSON number.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from handoff.connectors.netsuite.errors import SYSTEM
from handoff.connectors.netsuite.settings import NetSuiteSettings
from handoff.domain import Customer, Project
from handoff.errors import DataError

_EXTERNAL_ID = re.compile(r"[A-Za-z0-9_-]+")


def customer_body(
    external_id: str, customer: Customer, settings: NetSuiteSettings
) -> dict[str, Any]:
    return {
        "externalId": checked_external_id(external_id),
        "companyName": customer.name,
        "currency": _ref(_mapped("currency", customer.currency, settings.currency_ids)),
        "subsidiary": _ref(_subsidiary_id(customer.legal_entity, settings)),
    }


def project_body(
    project: Project, customer_target_id: str, settings: NetSuiteSettings
) -> dict[str, Any]:
    return {
        "externalId": checked_external_id(project.external_id),
        "companyName": project.name,
        "parent": _ref(customer_target_id),
        "currency": _ref(_mapped("currency", project.value.currency, settings.currency_ids)),
        "subsidiary": _ref(_subsidiary_id(project.legal_entity, settings)),
        "jobBillingType": _ref(
            _mapped("billing_method", project.billing_method, settings.billing_type_ids)
        ),
        "entityStatus": _ref(_mapped("status", project.status, settings.project_status_ids)),
        "startDate": project.start_date.isoformat(),
        "jobPrice": project.value.amount,
    }


def checked_external_id(external_id: str) -> str:
    """NetSuite external ids hold letters, digits, `_` and `-` only."""
    if not _EXTERNAL_ID.fullmatch(external_id):
        raise DataError(
            f"external id {external_id!r} may hold only letters, digits, '_' and '-'",
            system=SYSTEM, field="external_id",
        )
    return external_id


def _subsidiary_id(legal_entity: str | None, settings: NetSuiteSettings) -> str:
    if legal_entity is None and settings.default_subsidiary_id:
        return settings.default_subsidiary_id
    return _mapped("legal_entity", legal_entity, settings.subsidiary_ids)


def _mapped(field: str, value: str | None, ids: Mapping[str, str]) -> str:
    if value is None or value not in ids:
        raise DataError(f"no NetSuite id configured for {field} {value!r}", system=SYSTEM,
                        field=field)
    return ids[value]


def _ref(internal_id: str) -> dict[str, str]:
    return {"id": internal_id}
