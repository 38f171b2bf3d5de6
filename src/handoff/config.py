"""Configuration: one TOML file (systems, mappings, policy, schedules), environment
overrides for scalars, secrets only from the environment.

    HANDOFF_CONFIG            path of the TOML file (default: ./handoff.toml if present)
    HANDOFF_DATABASE_URL      overrides [database] url
    HANDOFF_<SECTION>_<KEY>   overrides a scalar in [worker], [retry], [poll], [reconcile],
                              [retention], [logging] or [tracing], e.g. HANDOFF_WORKER_CONCURRENCY=16,
                              HANDOFF_LOGGING_FORMAT=json, HANDOFF_RETENTION_INBOX_DAYS=7
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import timedelta
from pathlib import Path
from typing import Any

from handoff.connectors.fieldmap import line_finder, parse_field_map
from handoff.domain import MilestoneStatus
from handoff.engine.retry import RetryPolicy
from handoff.errors import ConfigError
from handoff.policy.billing import BillingPolicy
from handoff.policy.ownership import OwnershipPolicy, ownership_from
from handoff.policy.release_gates import GATES, ReleasePolicy
from handoff.policy.roles import Roles
from handoff.store.db import DEFAULT_URL

SECTIONS = {"database", "worker", "retry", "poll", "policy", "systems", "roles", "reconcile", "logging",
            "tracing", "retention"}


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    concurrency: int = 16
    lease_seconds: float = 60.0
    poll_seconds: float = 0.05

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.lease_seconds)


@dataclass(frozen=True, slots=True)
class PollSettings:
    """How often the worker reads what changed in a system since its last look."""

    crm_minutes: float = 5.0  # 0: never (every change arrives as an event)
    erp_minutes: float = 5.0  # milestones delivery reached in the PSA/ERP; 0: never

    def __post_init__(self) -> None:
        for name in ("crm_minutes", "erp_minutes"):
            minutes = getattr(self, name)
            if not math.isfinite(minutes) or minutes < 0:
                raise ConfigError(f"[poll] {name}: {minutes} must be 0 (off) or more")


@dataclass(frozen=True, slots=True)
class ReconcileSettings:
    """When `handoff serve` reconciles, where runs keep the snapshot they compared, and how
    many of those snapshots to keep (the run's findings are kept regardless)."""

    cron: str = "30 2 * * *"  # minute hour day month weekday, UTC; "" : never
    snapshots: str = ".handoff/reconcile"
    keep_snapshots: int = 30

    def __post_init__(self) -> None:
        from croniter import croniter

        if self.cron and not croniter.is_valid(self.cron):
            raise ConfigError(f"[reconcile] cron: {self.cron!r} is not a cron expression "
                              "(five fields: minute hour day month weekday, e.g. \"30 2 * * *\")")
        if self.keep_snapshots < 1:
            raise ConfigError(f"[reconcile] keep_snapshots: {self.keep_snapshots} must be 1 or more")


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True, slots=True)
class RetentionSettings:
    """How long intake's records are kept: the inbox's events and the refused events, in days
    (0: for ever); where pruned rows are archived first ("": nowhere, they are deleted); how
    often `handoff serve` prunes ("30s", "15m", "1h", "1d"; "0": never, `handoff prune` only)."""

    inbox_days: float = 30.0
    rejections_days: float = 90.0
    archive_dir: str = ""
    every: str = "1h"

    def __post_init__(self) -> None:
        for name in ("inbox_days", "rejections_days"):
            days = getattr(self, name)
            if not math.isfinite(days) or days < 0:
                raise ConfigError(f"[retention] {name}: {days} must be 0 (keep for ever) or more")
        if self.archive_dir and Path(self.archive_dir).is_file():
            raise ConfigError(f"[retention] archive_dir: {self.archive_dir!r} is a file, not a directory")
        _every(self.every)

    @property
    def interval(self) -> timedelta | None:
        """How often `handoff serve` prunes; None: it does not."""
        return _every(self.every)


def _every(text: str) -> timedelta | None:
    if text.strip() in ("0", ""):
        return None
    found = _DURATION.fullmatch(text.strip().lower())
    if found is None or float(found[1]) == 0:
        raise ConfigError(f"[retention] every: {text!r} is not a duration (a number and s, m, h "
                          "or d, e.g. \"1h\"; \"0\": never)")
    return timedelta(seconds=float(found[1]) * _UNIT_SECONDS[found[2]])


@dataclass(frozen=True, slots=True)
class LoggingSettings:
    """How log lines look: "text" (a line for people) or "json" (one object per line, with
    the deal's correlation id and opportunity id when known)."""

    format: str = "text"

    def __post_init__(self) -> None:
        from handoff.observability import FORMATS

        if self.format not in FORMATS:
            raise ConfigError(f"[logging] format: {self.format!r} is not one of: {', '.join(FORMATS)}")


@dataclass(frozen=True, slots=True)
class TracingSettings:
    """Where OpenTelemetry spans go: nowhere ("none"), standard error ("console"), or an
    OTLP/HTTP collector ("otlp", at OTEL_EXPORTER_OTLP_ENDPOINT). Their trace id is the
    deal's correlation id."""

    exporter: str = "none"
    service_name: str = "handoff"

    def __post_init__(self) -> None:
        from handoff.observability import EXPORTERS

        if self.exporter not in EXPORTERS:
            raise ConfigError(f"[tracing] exporter: {self.exporter!r} is not one of: "
                              f"{', '.join(EXPORTERS)}")
        if not self.service_name:
            raise ConfigError("[tracing] service_name: must not be empty")


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = DEFAULT_URL
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    poll: PollSettings = field(default_factory=PollSettings)
    release: ReleasePolicy = field(default_factory=ReleasePolicy)
    billing: BillingPolicy = field(default_factory=BillingPolicy)
    ownership: OwnershipPolicy = field(default_factory=OwnershipPolicy)
    roles: Roles = field(default_factory=Roles)
    reconcile: ReconcileSettings = field(default_factory=ReconcileSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    tracing: TracingSettings = field(default_factory=TracingSettings)
    systems: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    source: str = "defaults"


def load_settings(path: Path | None = None, env: Mapping[str, str] = os.environ) -> Settings:
    path = path or _default_path(env)
    raw = _read(path) if path else {}
    if path:
        _check_field_maps(raw.get("systems", {}), path)
    unknown = set(raw) - SECTIONS
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {', '.join(sorted(unknown))}; "
                          f"known: {', '.join(sorted(SECTIONS))}")
    return Settings(
        database_url=env.get("HANDOFF_DATABASE_URL")
        or raw.get("database", {}).get("url", DEFAULT_URL),
        worker=_section(WorkerSettings, raw.get("worker", {}), "worker", env),
        retry=_section(RetryPolicy, raw.get("retry", {}), "retry", env),
        poll=_section(PollSettings, raw.get("poll", {}), "poll", env),
        release=_release(raw.get("policy", {}).get("release", {})),
        billing=_billing(raw.get("policy", {}).get("billing", {})),
        ownership=ownership_from(raw.get("policy", {}).get("ownership", {})),
        roles=_roles(raw.get("roles", {})),
        reconcile=_section(ReconcileSettings, raw.get("reconcile", {}), "reconcile", env),
        retention=_section(RetentionSettings, raw.get("retention", {}), "retention", env),
        logging=_section(LoggingSettings, raw.get("logging", {}), "logging", env),
        tracing=_section(TracingSettings, raw.get("tracing", {}), "tracing", env),
        systems=raw.get("systems", {}),
        source=str(path) if path else "defaults",
    )


def _check_field_maps(systems: Mapping[str, Any], path: Path) -> None:
    """Every `[systems.<name>.mapping.<object>]` table, checked now: an error names its line."""
    where = line_finder(path.read_text(encoding="utf-8"))
    for name, table in systems.items():
        if isinstance(table, Mapping) and "mapping" in table:
            try:
                parse_field_map(name, table["mapping"], where)
            except ConfigError as exc:
                raise ConfigError(f"{path}: {exc}") from None


def _default_path(env: Mapping[str, str]) -> Path | None:
    if "HANDOFF_CONFIG" in env:
        return Path(env["HANDOFF_CONFIG"])
    local = Path("handoff.toml")
    return local if local.exists() else None


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"configuration file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _section(kind: type, values: Mapping[str, Any], name: str, env: Mapping[str, str]) -> Any:
    known = {f.name: f.type for f in fields(kind)}
    unknown = set(values) - set(known)
    if unknown:
        raise ConfigError(f"[{name}]: unknown key(s) {', '.join(sorted(unknown))}; "
                          f"known: {', '.join(sorted(known))}")
    merged = dict(values)
    for key in known:
        override = env.get(f"HANDOFF_{name}_{key}".upper())
        if override is not None:
            merged[key] = override
    try:
        return kind(**{k: _coerce(v, known[k], f"[{name}] {k}") for k, v in merged.items()})
    except TypeError as exc:
        raise ConfigError(f"[{name}]: {exc}") from None


def _coerce(value: Any, annotation: object, where: str) -> Any:
    kind = {"int": int, "float": float, "str": str}.get(str(annotation))
    if kind is None:
        return value
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {value!r} is not a valid {kind.__name__}") from None


def _release(values: Mapping[str, Any]) -> ReleasePolicy:
    gates = tuple(values.get("gates", ReleasePolicy().gates))
    unknown = [g for g in gates if g not in GATES]
    if unknown:
        raise ConfigError(f"[policy.release] gates: unknown gate(s) {', '.join(unknown)}; "
                          f"known: {', '.join(GATES)}")
    return ReleasePolicy(
        gates=gates,
        legal_entities=frozenset(values.get("legal_entities", ())),
        tax_jurisdictions=frozenset(values.get("tax_jurisdictions", ())),
    )


def _billing(values: Mapping[str, Any]) -> BillingPolicy:
    unknown = set(values) - {"invoice_when", "refresh_minutes", "post"}
    if unknown:
        raise ConfigError(f"[policy.billing]: unknown key(s) {', '.join(sorted(unknown))}; "
                          "known: invoice_when, post, refresh_minutes")
    post = values.get("post", True)
    if not isinstance(post, bool):
        raise ConfigError(f"[policy.billing] post: {post!r} is not true or false")
    when = values.get("invoice_when", BillingPolicy().invoice_when.value)
    allowed = (MilestoneStatus.ACHIEVED, MilestoneStatus.ACCEPTED)
    if when not in allowed:
        raise ConfigError(f"[policy.billing] invoice_when: {when!r} is not one of: "
                          f"{', '.join(allowed)}")
    refresh = _coerce(values.get("refresh_minutes", BillingPolicy().refresh_minutes), "float",
                      "[policy.billing] refresh_minutes")
    if refresh <= 0:
        raise ConfigError(f"[policy.billing] refresh_minutes: {refresh} must be above 0")
    return BillingPolicy(invoice_when=MilestoneStatus(when), refresh_minutes=refresh, post=post)


def _roles(values: Mapping[str, Any]) -> Roles:
    """`[roles] approver = ["carol", …]` (and integrator, admin, viewer): the users of each role
    for tokens given in HANDOFF_API_TOKENS and for the CLI's `--as`."""
    known = {"approver": "approvers", "integrator": "integrators", "admin": "admins", "viewer": "viewers"}
    unknown = set(values) - set(known)
    if unknown:
        raise ConfigError(f"[roles]: unknown role(s) {', '.join(sorted(unknown))}; known: "
                          f"{', '.join(known)}")
    users: dict[str, frozenset[str]] = {}
    for role, field_name in known.items():
        listed = values.get(role, [])
        if not isinstance(listed, list) or not all(isinstance(u, str) and u for u in listed):
            raise ConfigError(f"[roles] {role}: must be a list of user names")
        users[field_name] = frozenset(listed)
    return Roles(**users)
