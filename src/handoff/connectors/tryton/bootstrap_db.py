"""Initialise one Tryton database for the sandbox: activate the modules, then the minimal
accounting a project can be invoiced and posted with. Runs in its own process
(`python -m handoff.connectors.tryton.bootstrap_db`): trytond's configuration and pool are
process-wide, and the server that later serves the copy must not inherit them.

The ids of the records made here are kept in the database itself, in table handoff_sandbox
(name, record_id), so every copy of it carries them. They are also found by stable names:
company party "Handoff Sandbox Co", product code SERVICE, payment term "Direct",
employee party "Sandbox Consultant", users "admin" and "handoff"."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

# Part of the cache key with this file's own source: bump it when what is built changes
# through code elsewhere (the server configuration, the modules' data).
SETUP_VERSION = 1

MODULES = (
    "party", "company", "currency", "account", "account_invoice", "product",
    "project", "project_invoice", "timesheet", "sale_opportunity",
)
ADMIN_LOGIN, ADMIN_PASSWORD = "admin", "sandbox-admin-pw"
API_LOGIN, API_PASSWORD = "handoff", "sandbox-api-pw"
COMPANY_NAME = "Handoff Sandbox Co"
PRODUCT_CODE = "SERVICE"
SERVICE_HOURLY_PRICE = Decimal("150.0000")
IDS_TABLE = "handoff_sandbox"


def activate_modules(config_file: Path, database: str) -> None:
    """What `trytond-admin -d DB --all -u MODULES --activate-dependencies` does, without the
    prompts: the admin password comes from a TRYTONPASSFILE, the e-mail is left empty."""
    import trytond.commandline as commandline
    from trytond import config

    config.update_etc(str(config_file))
    options = commandline.get_parser_admin().parse_args(
        ["-c", str(config_file), "-d", database, "--all", "-u", *MODULES, "--activate-dependencies"])
    options.indexes = True
    options.email = ""
    with tempfile.NamedTemporaryFile("w", suffix=".pass") as passfile:
        passfile.write(ADMIN_PASSWORD + "\n")
        passfile.flush()
        os.environ["TRYTONPASSFILE"] = passfile.name
        import trytond.admin as admin

        admin.run(options)


def set_up_accounting(config_file: Path, database: str, today: dt.date) -> dict[str, int]:
    from proteus import config as proteus_config

    proteus_config.set_trytond(database=database, config_file=str(config_file))
    company, eur = _company()
    accounts = _chart(company)
    for year in (today.year, today.year + 1):
        _fiscal_year(company, year)
    payment_term = _payment_term()
    product = _service_product(accounts)
    employee = _employee(company)
    admin = _admin_user(company, employee)
    api_user = _api_user(company, employee)
    return {
        "company_id": company.id,
        "currency_id": company.currency.id,
        "eur_currency_id": eur.id,
        "product_id": product.id,
        "payment_term_id": payment_term.id,
        "employee_id": employee.id,
        "admin_user_id": admin.id,
        "api_user_id": api_user.id,
        "revenue_account_id": accounts["revenue"].id,
        "receivable_account_id": accounts["receivable"].id,
    }


def _company() -> tuple[Any, Any]:
    """The company, in USD, and the euro for invoices in euros (the tools give it a fixed rate)."""
    from proteus import Model
    from trytond.modules.company.tests.tools import create_company, get_company
    from trytond.modules.currency.tests.tools import get_currency

    party = Model.get("party.party")(name=COMPANY_NAME)
    party.save()
    create_company(party=party, currency=get_currency("USD"))
    return get_company(), get_currency("EUR")


def _chart(company: Any) -> dict[str, Any]:
    from trytond.modules.account.tests.tools import create_chart, get_accounts

    create_chart(company)
    return get_accounts(company)


def _fiscal_year(company: Any, year: int) -> None:
    """A calendar fiscal year with its periods and the invoice sequences posting needs."""
    from trytond.modules.account.tests.tools import create_fiscalyear
    from trytond.modules.account_invoice.tests.tools import set_fiscalyear_invoice_sequences

    fiscal_year = create_fiscalyear(company, (dt.date(year, 1, 1), dt.date(year, 12, 31)))
    fiscal_year = set_fiscalyear_invoice_sequences(fiscal_year)
    fiscal_year.click("create_period")


def _payment_term() -> Any:
    """Due on the invoice date; also the default of every new customer."""
    from proteus import Model
    from trytond.modules.account_invoice.tests.tools import create_payment_term

    payment_term = create_payment_term()
    payment_term.save()
    configuration = Model.get("account.configuration")(1)
    configuration.default_customer_payment_term = payment_term
    configuration.save()
    return payment_term


def _service_product(accounts: dict[str, Any]) -> Any:
    """Sold by the hour, so a project invoiced on effort bills its hours at the list price."""
    from proteus import Model

    category = Model.get("product.category")(name="Services", accounting=True)
    category.account_revenue = accounts["revenue"]
    category.account_expense = accounts["expense"]
    category.save()
    hour, = Model.get("product.uom").find([("name", "=", "Hour")])
    template = Model.get("product.template")(name="Professional services", type="service")
    template.code = PRODUCT_CODE
    template.default_uom = hour
    template.list_price = SERVICE_HOURLY_PRICE
    template.account_category = category
    template.save()
    product, = template.products
    return product


def _employee(company: Any) -> Any:
    from proteus import Model

    party = Model.get("party.party")(name="Sandbox Consultant")
    party.save()
    employee = Model.get("company.employee")(party=party, company=company)
    employee.save()
    return employee


def _admin_user(company: Any, employee: Any) -> Any:
    """Timesheets and project invoicing read the company and employee of the user."""
    from proteus import Model
    from proteus.config import get_config

    admin = Model.get("res.user")(get_config().user)
    _give_company_and_employee(admin, company, employee)
    admin.save()
    return admin


def _api_user(company: Any, employee: Any) -> Any:
    """The login integrations use, so Tryton's audit fields tell them from a person. Every
    business group (projects, invoicing, accounting, ...), but no administrator: it cannot
    manage users or modules."""
    from proteus import Model

    user = Model.get("res.user")(name="Handoff integration", login=API_LOGIN)
    user.password = API_PASSWORD
    user.groups.extend(Model.get("res.group").find([]))
    _give_company_and_employee(user, company, employee)
    user.save()
    return user


def _give_company_and_employee(user: Any, company: Any, employee: Any) -> None:
    # proteus binds a record to the one list it is added to: each user gets its own instances
    company, employee = _fresh(company), _fresh(employee)
    if company.id not in [c.id for c in user.companies]:
        user.companies.append(company)
    user.company = company
    if employee.id not in [e.id for e in user.employees]:
        user.employees.append(employee)
    user.employee = employee


def _fresh(record: Any) -> Any:
    return type(record)(record.id)


def record_ids(database: str, ids: dict[str, int]) -> None:
    """A table Tryton does not know and leaves alone; copies and templates carry it along."""
    from sql import Table
    from trytond.transaction import Transaction

    table = Table(IDS_TABLE)
    with Transaction().start(database, 0) as transaction:
        cursor = transaction.connection.cursor()
        cursor.execute(f"CREATE TABLE {IDS_TABLE} (name VARCHAR(64) PRIMARY KEY, record_id INTEGER NOT NULL)")
        cursor.execute(*table.insert([table.name, table.record_id], [list(item) for item in ids.items()]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Initialise a Tryton sandbox database.")
    parser.add_argument("--config", type=Path, required=True, help="trytond.conf to use")
    parser.add_argument("--database", required=True)
    args = parser.parse_args(argv)
    started = time.monotonic()
    activate_modules(args.config, args.database)
    print(f"modules activated in {time.monotonic() - started:.1f} s", flush=True)
    started = time.monotonic()
    record_ids(args.database, set_up_accounting(args.config, args.database, dt.date.today()))
    print(f"accounting set up in {time.monotonic() - started:.1f} s", flush=True)


if __name__ == "__main__":
    main()
