"""How handoff reaches one Stripe account, and how it bills there.

The API key comes from the environment only: the registry passes HANDOFF_STRIPE_API_KEY in as
`api_key` (a restricted key `rk_…` with the permissions docs/connectors/stripe.md lists, or a
secret key `sk_…`). Everything else may sit in `[systems.stripe]` of the TOML file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from handoff.connectors.budget import NO_OVERRIDE, BudgetOverride, budget_override
from handoff.errors import ConfigError

STRIPE_API = "https://api.stripe.com"
API_VERSION = "2026-06-24.dahlia"  # the version the mapping was written against
COLLECTION_METHODS = ("send_invoice", "charge_automatically")
# Where the part of a credit note above what is still due on the invoice goes (Stripe requires
# it be named for a post-payment credit note): the customer's balance, applied to their next
# invoice, or recorded as credited outside Stripe. A refund is a person's decision, never ours.
POST_PAYMENT_CREDIT = ("credit_balance", "out_of_band")


@dataclass(frozen=True)
class StripeSettings:
    """`base_url` is Stripe's API host, or a sandbox twin's. `api_version` pins Stripe-Version,
    so upgrading stripe-python never changes the API handoff reads (None: the version the
    installed stripe-python is generated for). The webhook endpoint should use the same one."""

    api_key: str = field(repr=False)
    base_url: str = STRIPE_API
    api_version: str | None = API_VERSION
    timeout: float = 30.0
    max_network_retries: int = 0     # the engine owns retries; keys make them safe
    collection_method: str = "send_invoice"
    days_until_due: int = 30         # send_invoice: the due date is finalization + this
    auto_advance: bool = True        # on finalize: Stripe sends and collects the invoice itself
    post_payment_credit: str = "credit_balance"
    throttle_wait_seconds: float = 1.0  # a 429 without Retry-After: wait this long
    page_size: int = 100             # objects per list page (Stripe allows 1-100)
    max_connections: int = 16        # one per worker thread sharing the connector
    budget: BudgetOverride = NO_OVERRIDE  # [systems.stripe.budget]: connectors/budget.py

    def __post_init__(self) -> None:
        object.__setattr__(self, "budget", budget_override("stripe", self.budget))
        if not isinstance(self.api_key, str) or not self.api_key.startswith(("sk_", "rk_")):
            raise ConfigError("stripe: set HANDOFF_STRIPE_API_KEY to a restricted key (rk_…) or a "
                              "secret key (sk_…) of the account")
        if not self.base_url.startswith(("https://", "http://")):
            raise ConfigError(f"stripe: base_url must start with https:// (http:// for a local "
                              f"twin), not {self.base_url!r}")
        if self.collection_method not in COLLECTION_METHODS:
            raise ConfigError(f"stripe: collection_method must be one of {', '.join(COLLECTION_METHODS)}")
        if self.post_payment_credit not in POST_PAYMENT_CREDIT:
            raise ConfigError(f"stripe: post_payment_credit must be one of {', '.join(POST_PAYMENT_CREDIT)}")
        if not 1 <= self.page_size <= 100:
            raise ConfigError("stripe: page_size must be between 1 and 100")
        if not isinstance(self.days_until_due, int) or self.days_until_due < 0:
            raise ConfigError("stripe: days_until_due must be a whole number of days, 0 or more")
        if self.max_network_retries < 0 or self.timeout <= 0 or self.throttle_wait_seconds < 0:
            raise ConfigError("stripe: max_network_retries, timeout and throttle_wait_seconds must "
                              "not be negative")
