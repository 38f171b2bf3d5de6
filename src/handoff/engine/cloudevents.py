"""CloudEvents 1.0, structured JSON mode: the envelope handoff accepts, checked strictly."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from handoff.errors import IntakeError
from handoff.observability.traceparent import trace_id_of

REQUIRED = ("specversion", "id", "source", "type")


@dataclass(frozen=True, slots=True)
class CloudEvent:
    id: str
    source: str
    type: str
    subject: str | None
    data: dict[str, Any]
    body_hash: str
    trace_id: str | None = None

    def envelope(self) -> dict[str, Any]:
        body = {"specversion": "1.0", "id": self.id, "source": self.source, "type": self.type,
                "datacontenttype": "application/json", "data": self.data}
        if self.subject:
            body["subject"] = self.subject
        return body


def change_event(kind: str, data: dict[str, Any], source: str, time: datetime,
                 subject: str | None = None) -> dict[str, Any]:
    """One version of one record as a structured-mode event. The id is derived from record
    (`subject`, default its id) and version, as a CDC replay would give it: a redelivery
    carries the same id."""
    subject = subject or data["id"]
    return {"specversion": "1.0", "id": f"{subject}@{data['version']}", "source": source,
            "type": kind, "subject": subject, "time": time.isoformat(),
            "datacontenttype": "application/json", "data": data}


def parse_json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise IntakeError(f"body is not valid JSON: {exc}") from None


def parse_event(body: Any) -> CloudEvent:
    """Validate one structured-mode event; IntakeError names the first attribute at fault."""
    if not isinstance(body, dict):
        raise IntakeError("a CloudEvent must be a JSON object")
    for name in REQUIRED:
        value = body.get(name)
        if not isinstance(value, str) or not value:
            raise IntakeError(f"CloudEvent attribute '{name}' is missing or empty", field=name)
    if body["specversion"] != "1.0":
        raise IntakeError(f"specversion {body['specversion']!r} is not supported (use 1.0)",
                          field="specversion")
    content_type = body.get("datacontenttype", "application/json")
    if not isinstance(content_type, str) or not content_type.split(";")[0].endswith("json"):
        raise IntakeError(f"datacontenttype {content_type!r} is not JSON", field="datacontenttype")
    if not isinstance(body.get("data"), dict):
        raise IntakeError("CloudEvent 'data' must be a JSON object", field="data")
    return CloudEvent(
        id=body["id"], source=body["source"], type=body["type"],
        subject=body.get("subject") if isinstance(body.get("subject"), str) else None,
        data=body["data"], body_hash=content_hash(body), trace_id=_trace_id(body),
    )


def content_hash(body: dict[str, Any]) -> str:
    """What makes two deliveries "the same event": type, subject and data. Transport
    attributes (time, traceparent) may differ between redeliveries."""
    content = {"type": body.get("type"), "subject": body.get("subject"), "data": body.get("data")}
    return hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _trace_id(body: dict[str, Any]) -> str | None:
    """The trace id of the CloudEvents distributed-tracing extension: a new deal's lifecycle
    continues the trace its CRM started."""
    value = body.get("traceparent")
    return trace_id_of(value) if isinstance(value, str) else None
