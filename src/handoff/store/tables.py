"""The schema. Constraints are the source of truth for idempotency: the unique
(source, event_id) makes a redelivered event a no-op, the queue's primary key makes a
business key appear once however often it changes."""

from __future__ import annotations

import sqlalchemy as sa

from handoff.store.types import DecimalText, UtcDateTime

metadata = sa.MetaData()

inbox_events = sa.Table(
    "inbox_events", metadata,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("source", sa.String(255), nullable=False),
    sa.Column("event_id", sa.String(255), nullable=False),
    sa.Column("type", sa.String(255), nullable=False),
    sa.Column("subject", sa.String(255), nullable=False),
    sa.Column("body_hash", sa.String(64), nullable=False),
    sa.Column("body", sa.JSON, nullable=False),
    sa.Column("outcome", sa.String(20), nullable=False),
    sa.Column("deliveries", sa.Integer, nullable=False, server_default="1"),
    sa.Column("correlation_id", sa.String(32)),
    sa.Column("received_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("source", "event_id", name="uq_inbox_source_event"),
)
sa.Index("ix_inbox_subject", inbox_events.c.subject)

intake_rejections = sa.Table(
    "intake_rejections", metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("received_at", UtcDateTime, nullable=False),
    sa.Column("status_code", sa.Integer, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("field", sa.String(255)),
    sa.Column("source", sa.String(255)),
    sa.Column("event_id", sa.String(255)),
    sa.Column("excerpt", sa.Text),
)

# What the lineage keeps of the inbox events retention removed (store/retention.py): per
# subject, how many, when the first and the last were received, and the archive that holds them.
inbox_pruned = sa.Table(
    "inbox_pruned", metadata,
    sa.Column("subject", sa.String(255), primary_key=True),
    sa.Column("events", sa.BigInteger, nullable=False),
    sa.Column("deliveries", sa.BigInteger, nullable=False),
    sa.Column("first_received_at", UtcDateTime, nullable=False),
    sa.Column("last_received_at", UtcDateTime, nullable=False),
    sa.Column("archive", sa.Text),  # the last archive file written with events of the subject
    sa.Column("pruned_at", UtcDateTime, nullable=False),
)

counters = sa.Table(
    "counters", metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
)

opportunities = sa.Table(
    "opportunities", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("account_id", sa.String(64), nullable=False),
    sa.Column("version", UtcDateTime, nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Column("correlation_id", sa.String(32), nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)
sa.Index("ix_opportunities_account", opportunities.c.account_id)

customers = sa.Table(
    "customers", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("version", UtcDateTime, nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

reconcile_queue = sa.Table(
    "reconcile_queue", metadata,
    sa.Column("key", sa.String(128), primary_key=True),
    sa.Column("generation", sa.Integer, nullable=False),
    sa.Column("due_at", UtcDateTime, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("lease_owner", sa.String(64)),
    sa.Column("lease_expires", UtcDateTime),
    sa.Column("last_error", sa.Text),
    sa.Column("enqueued_at", UtcDateTime, nullable=False),
)
sa.Index("ix_queue_due", reconcile_queue.c.due_at)

provisioning = sa.Table(
    "provisioning", metadata,
    sa.Column("opportunity_id", sa.String(64), primary_key=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("detail", sa.Text, nullable=False, server_default=""),
    sa.Column("customer_external_id", sa.String(128)),
    sa.Column("customer_target_id", sa.String(64)),
    sa.Column("customer_synced_version", UtcDateTime),
    sa.Column("project_external_id", sa.String(128)),
    sa.Column("project_target_id", sa.String(64)),
    sa.Column("written_back", sa.String(64)),
    sa.Column("billing_written_back", sa.String(64)),
    sa.Column("billing_note", sa.Text, nullable=False, server_default=""),
    sa.Column("project_sent", sa.JSON),  # the project as last sent to the ERP
    sa.Column("crm_terms", sa.JSON),     # the CRM's financial terms as last compared
    sa.Column("billing_checked_at", UtcDateTime),  # open invoices last read from the ERP
    sa.Column("released_at", UtcDateTime),
    sa.Column("provisioned_at", UtcDateTime),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)
sa.Index("ix_provisioning_status", provisioning.c.status)

hops = sa.Table(
    "hops", metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("opportunity_id", sa.String(64), nullable=False),
    sa.Column("correlation_id", sa.String(32), nullable=False),
    sa.Column("step", sa.String(40), nullable=False),
    sa.Column("system", sa.String(40), nullable=False),
    sa.Column("outcome", sa.String(20), nullable=False),
    sa.Column("target_id", sa.String(64)),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("started_at", UtcDateTime, nullable=False),
    sa.Column("finished_at", UtcDateTime, nullable=False),
    sa.Column("detail", sa.Text, nullable=False, server_default=""),
)
sa.Index("ix_hops_opportunity", hops.c.opportunity_id)

exceptions = sa.Table(
    "exceptions", metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("business_key", sa.String(128), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("error", sa.String(40), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("field", sa.String(255)),
    sa.Column("system", sa.String(40)),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("resolved_at", UtcDateTime),
    sa.Column("resolution", sa.String(40)),
)
sa.Index("ix_exceptions_open", exceptions.c.kind, exceptions.c.resolved_at)

milestone_progress = sa.Table(
    "milestone_progress", metadata,
    sa.Column("opportunity_id", sa.String(64), primary_key=True),
    sa.Column("milestone_id", sa.String(64), primary_key=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("achieved_on", sa.Date),
    sa.Column("accepted_on", sa.Date),
    sa.Column("version", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

# One row per billing document: a line's first invoice is document `<line>`, a true-up after
# an amendment `<line>#2`, … (credit notes have negative totals).
invoices = sa.Table(
    "invoices", metadata,
    sa.Column("opportunity_id", sa.String(64), primary_key=True),
    sa.Column("document_id", sa.String(80), primary_key=True),
    sa.Column("line_id", sa.String(64), nullable=False),
    sa.Column("external_id", sa.String(160), nullable=False),
    sa.Column("system", sa.String(40), nullable=False),
    sa.Column("target_id", sa.String(64), nullable=False),
    sa.Column("number", sa.String(64)),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("untaxed", DecimalText, nullable=False),
    sa.Column("tax", DecimalText, nullable=False),
    sa.Column("total", DecimalText, nullable=False),
    sa.Column("amount_due", DecimalText, nullable=False),
    sa.Column("invoice_date", sa.Date),
    sa.Column("due_date", sa.Date),
    sa.Column("observed_at", UtcDateTime, nullable=False),
)

# Append-only: the application inserts, never updates or deletes (store/audit.py).
audit_log = sa.Table(
    "audit_log", metadata,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=False),
    sa.Column("recorded_at", sa.String(40), nullable=False),  # ISO text: hashed as stored
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("business_key", sa.String(128), nullable=False),
    sa.Column("correlation_id", sa.String(32)),
    sa.Column("before", sa.Text),
    sa.Column("after", sa.Text),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)
sa.Index("ix_audit_business_key", audit_log.c.business_key)

audit_head = sa.Table(
    "audit_head", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

# The approved financial terms of a deal, one row per version: v1 when it is provisioned,
# one more per approved amendment. Never updated.
plan_versions = sa.Table(
    "plan_versions", metadata,
    sa.Column("opportunity_id", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("terms", sa.JSON, nullable=False),
    sa.Column("amendment_id", sa.String(100)),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

amendments = sa.Table(
    "amendments", metadata,
    sa.Column("id", sa.String(100), primary_key=True),  # AM-<deal>-<n>
    sa.Column("opportunity_id", sa.String(64), nullable=False),
    sa.Column("correlation_id", sa.String(32), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("base_version", sa.Integer, nullable=False),  # the plan version it amends
    sa.Column("before", sa.JSON, nullable=False),
    sa.Column("after", sa.JSON, nullable=False),
    sa.Column("requester", sa.String(128), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("origin", sa.String(20), nullable=False),  # crm | cli | api
    sa.Column("requested_at", UtcDateTime, nullable=False),
    sa.Column("decided_by", sa.String(128)),
    sa.Column("decided_at", UtcDateTime),
    sa.Column("decision_reason", sa.Text),
)
sa.Index("ix_amendments_deal", amendments.c.opportunity_id, amendments.c.status)

time_entries = sa.Table(
    "time_entries", metadata,
    sa.Column("opportunity_id", sa.String(64), primary_key=True),
    sa.Column("entry_id", sa.String(64), primary_key=True),
    sa.Column("work_date", sa.Date, nullable=False),
    sa.Column("hours", DecimalText, nullable=False),
    sa.Column("rate", DecimalText, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("person", sa.String(128)),
    sa.Column("version", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

# Where each scheduled poll of a system without events got to.
poll_cursors = sa.Table(
    "poll_cursors", metadata,
    sa.Column("system", sa.String(40), primary_key=True),
    sa.Column("object", sa.String(64), primary_key=True),
    sa.Column("cursor", sa.String(64), nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

# Reconciliation: one row per run, the discrepancies it found, and the people's
# acknowledgements of a finding (active until a run no longer finds it).
reconcile_runs = sa.Table(
    "reconcile_runs", metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("trigger", sa.String(20), nullable=False),  # cli | schedule | api
    sa.Column("scheduled_for", UtcDateTime, unique=True),  # a cron run: one per fire time
    sa.Column("as_of", sa.Date),                           # a re-run of a stored snapshot
    sa.Column("status", sa.String(20), nullable=False),   # running | done | failed
    sa.Column("started_at", UtcDateTime, nullable=False),
    sa.Column("finished_at", UtcDateTime),
    sa.Column("contracts", sa.Integer),
    sa.Column("counts", sa.JSON),                          # kind -> findings
    sa.Column("total", sa.Integer),
    sa.Column("snapshot", sa.Text),                        # the Parquet directory it compared
    sa.Column("error", sa.Text),
)

reconcile_findings = sa.Table(
    "reconcile_findings", metadata,
    sa.Column("run_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("deal_id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(40), primary_key=True),
    sa.Column("currency", sa.String(40), nullable=False),
    sa.Column("amounts", sa.JSON, nullable=False),  # name -> exact decimal text
    sa.Column("explanation", sa.Text, nullable=False),
    sa.Column("repair", sa.Text, nullable=False),
)

reconcile_acks = sa.Table(
    "reconcile_acks", metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("deal_id", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("acknowledged_by", sa.String(128), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("acknowledged_at", UtcDateTime, nullable=False),
    sa.Column("cleared_at", UtcDateTime),  # the first run that no longer found it
)
sa.Index("ix_reconcile_acks_open", reconcile_acks.c.deal_id, reconcile_acks.c.kind,
         reconcile_acks.c.cleared_at)

# API tokens an admin made: only a SHA-256 hash of each is kept, and its first characters so a
# person can tell tokens apart. Revoked, never deleted (the audit log names them).
api_tokens = sa.Table(
    "api_tokens", metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("user", sa.String(128), nullable=False),
    sa.Column("roles", sa.String(100), nullable=False),  # comma-separated Role values
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("prefix", sa.String(12), nullable=False),
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("revoked_at", UtcDateTime),
)
