"""The dashboard's page frame and small HTML pieces. Server-rendered, no build step, no
framework: every value is escaped here, and times are written in UTC inside <time> elements
that a few lines of script show in the reader's own zone."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

NAV = (("Overview", "/dashboard"), ("Exceptions", "/dashboard/exceptions"),
       ("Amendments", "/dashboard/amendments"), ("Reconciliation", "/dashboard/reconciliation"),
       ("SLAs", "/dashboard/slas"))
STYLE = """
body{font-family:system-ui,sans-serif;margin:0;color:#222}
header{background:#1d3557;color:#fff;padding:.6rem 1.5rem;display:flex;gap:1.5rem;align-items:center;
 flex-wrap:wrap}
header nav{display:flex;gap:1.2rem}header a{color:#fff;text-decoration:none}
header a[aria-current]{text-decoration:underline}
header form[role=search]{margin-left:auto}header input{width:17rem;padding:.3rem}
main{padding:1rem 1.5rem;max-width:80rem}
table{border-collapse:collapse;margin:.5rem 0 1.5rem;width:100%}
td,th{border:1px solid #ccc;padding:.3rem .5rem;text-align:left;vertical-align:top}
caption{text-align:left;font-weight:bold;padding:.3rem 0}.num{text-align:right}
.ok{color:#1b7a1b}.bad{color:#b00020;font-weight:bold}.flash{background:#eef6ee;padding:.5rem}
.error{background:#fde8e8;padding:.5rem}form.inline{display:inline}
.empty{color:#555;font-style:italic}
"""
LOCAL_TIMES = ("<script>for(const t of document.querySelectorAll('time[datetime]'))"
               "t.textContent=new Date(t.dateTime).toLocaleString()</script>")


def e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def when(value: datetime | str | None) -> str:
    """A moment, shown in the reader's zone by the page's script (UTC without it)."""
    if value is None:
        return ""
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    return f"<time datetime='{e(text)}'>{e(text.replace('T', ' ')[:19])} UTC</time>"


def layout(title: str, body: str, *, active: str = "", user: str = "", flash: str = "",
           error: str = "") -> str:
    links = "".join(f"<a href='{href}'{' aria-current=page' if name == active else ''}>{name}</a>"
                    for name, href in NAV)
    who = (f"<span>{e(user)}</span><form method=post action='/dashboard/logout'>"
           "<button>Sign out</button></form>") if user else ""
    notes = (f"<p class=flash role=status>{e(flash)}</p>" if flash else "") + \
            (f"<p class=error role=alert>{e(error)}</p>" if error else "")
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{e(title)} — handoff"
            f"</title><meta name=viewport content='width=device-width'><style>{STYLE}</style></head>"
            f"<body><header><strong>handoff</strong><nav>{links}</nav>"
            "<form action='/dashboard/search' method=get role=search><label for=q>Find a deal </label>"
            "<input id=q name=q required placeholder='opportunity, project, invoice number or "
            f"correlation id'> <button>Search</button></form>{who}</header>"
            f"<main><h1>{e(title)}</h1>{notes}{body}</main>{LOCAL_TIMES}</body></html>")


def table(caption: str, headers: Sequence[str], rows: Iterable[Sequence[str]], empty: str) -> str:
    """Cells are HTML already (escape values with `e`); `empty` says what to do when none."""
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    if not body:
        return f"<h2>{e(caption)}</h2><p class=empty>{e(empty)}</p>"
    head = "".join(f"<th scope=col>{e(h)}</th>" for h in headers)
    return f"<table><caption>{e(caption)}</caption><tr>{head}</tr>{body}</table>"


def num(value: Any) -> str:
    return f"<span class=num>{e(value)}</span>"


def button(action: str, label: str, fields: dict[str, str] | None = None) -> str:
    hidden = "".join(f"<input type=hidden name='{e(k)}' value='{e(v)}'>" for k, v in (fields or {}).items())
    return f"<form class=inline method=post action='{e(action)}'>{hidden}<button>{e(label)}</button></form>"


GOOD = {"ok", "released", "provisioned", "done", "posted", "paid", "applied"}
BAD = {"blocked", "parked", "quarantined", "dead_letter", "failed", "cancelled"}


def outcome(text: str) -> str:
    """An outcome, coloured: green when done, red when it failed or is held, plain otherwise."""
    style = "ok" if text in GOOD else "bad" if text in BAD or text.endswith("Error") else ""
    return f"<span class={style}>{e(text)}</span>" if style else e(text)
