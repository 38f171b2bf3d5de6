"""The error taxonomy, grouped by what the engine does with each error.

    HandoffError
    ├── TransientError       retried with exponential backoff and jitter
    │   └── ThrottledError   the system said "slow down"; its Retry-After is honoured
    ├── BusinessRuleError    parked for a person with its reasons; never retried
    ├── DataError            quarantined with the field at fault; never retried
    └── PermanentError       dead letter: cannot succeed without a fix (auth, config, gone)

    IntakeError             bad input at the edge (HTTP 4xx / one CLI line); nothing changes
    ConfigError, StoreError  handoff itself cannot start as configured

Connectors translate vendor errors into these at their boundary (`raise ... from exc`);
nothing above the connectors sees an httpx or simple-salesforce exception.
"""

from __future__ import annotations


class HandoffError(Exception):
    """Base of every error handoff raises on purpose."""

    def __init__(self, message: str, *, system: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.system = system

    def __str__(self) -> str:
        return f"{self.system}: {self.message}" if self.system else self.message


class TransientError(HandoffError):
    """May succeed if tried again later: timeouts, 5xx, lost responses, locks."""

    def __init__(
        self, message: str, *, system: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, system=system)
        self.retry_after = retry_after


class ThrottledError(TransientError):
    """The system's rate or concurrency budget is spent (429, REQUEST_LIMIT_EXCEEDED)."""


class BusinessRuleError(HandoffError):
    """A rule of the target system or of policy refuses the change; a person must decide."""


class DataError(HandoffError):
    """The data itself is wrong; `field` names the culprit so it can be repaired."""

    def __init__(self, message: str, *, system: str | None = None, field: str | None = None) -> None:
        super().__init__(message, system=system)
        self.field = field

    def __str__(self) -> str:
        base = super().__str__()
        return f"{base} (field: {self.field})" if self.field else base


class PermanentError(HandoffError):
    """Retrying cannot help: bad credentials, a missing resource, a misconfiguration."""


class IntakeError(HandoffError):
    """Input refused at the edge. `status` is the HTTP status to answer with."""

    def __init__(self, message: str, *, status: int = 400, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.field = field


class ConfigError(HandoffError):
    """The configuration file or environment is wrong; the message says where."""


class StoreError(HandoffError):
    """handoff's own database cannot be opened or migrated."""
