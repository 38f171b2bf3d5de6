"""The dashboard, served by the same app: find a deal and follow its lineage, replay what is
held, decide amendments, act on reconciliation findings, watch the SLAs. Signing in stores
the API token in an HttpOnly, SameSite=Strict cookie; every action goes through the same
flows, roles and audit log as the API. Forms post back and redirect (no script needed)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from handoff.api.auth import COOKIE, Authorizer, Principal
from handoff.api.dashboard import pages
from handoff.errors import IntakeError
from handoff.policy.roles import Permission
from handoff.store.db import Database

Action = Callable[[Principal, dict[str, str]], str]


def dashboard_router(db: Database, auth: Authorizer) -> APIRouter:
    router = APIRouter(prefix="/dashboard", tags=["dashboard"], include_in_schema=False)

    async def signed_in(request: Request) -> Principal | None:
        token = request.cookies.get(COOKIE, "")
        return await run_in_threadpool(auth.identify, token) if token else None

    def page(render: Callable[..., tuple[str, str, str]]) -> Callable[..., Any]:
        """A GET page: the reader signs in first; `render(**path)` gives (title, active, body)."""
        async def endpoint(request: Request) -> Response:
            principal = await signed_in(request)
            if principal is None:
                return RedirectResponse(f"/dashboard/login?next={quote(request.url.path)}", 303)
            try:
                title, active, body = await run_in_threadpool(render, **request.path_params,
                                                              **dict(request.query_params))
            except IntakeError as exc:
                return HTMLResponse(pages.layout("Not found", "", error=exc.message,
                                                 user=principal.user), exc.status)
            return HTMLResponse(pages.layout(title, body, active=active, user=principal.user,
                                             flash=request.query_params.get("done", ""),
                                             error=request.query_params.get("error", "")))
        return endpoint

    def action(permission: Permission, act: Callable[..., str]) -> Callable[..., Any]:
        """A form POST: done → back with what was done; refused → back with why."""
        async def endpoint(request: Request) -> Response:
            principal = await signed_in(request)
            form = {k: v[-1] for k, v in parse_qs((await request.body()).decode()).items()}
            back = form.get("back", "") if form.get("back", "").startswith("/dashboard") else "/dashboard"
            if principal is None:
                return RedirectResponse("/dashboard/login", 303)
            try:
                if not principal.may(permission):
                    raise IntakeError(f"{principal.user} may not {permission.value} here", status=403)
                done = await run_in_threadpool(act, principal, form, **request.path_params)
            except IntakeError as exc:
                return RedirectResponse(f"{back}?error={quote(exc.message)}", 303)
            return RedirectResponse(f"{back}?done={quote(done)}", 303)
        return endpoint

    r = router.add_api_route
    r("/login", lambda next="/dashboard": HTMLResponse(pages.login_page(next)), methods=["GET"])
    r("/login", login(auth), methods=["POST"])
    r("/logout", logout, methods=["POST"])
    r("", page(lambda: pages.overview(db)), methods=["GET"])
    r("/search", search(db, signed_in), methods=["GET"])
    r("/deals/{business_id:path}", page(lambda business_id, **_: pages.deal(db, business_id)),
      methods=["GET"])
    r("/exceptions", page(lambda **_: pages.exceptions(db)), methods=["GET"])
    r("/amendments", page(lambda **_: pages.amendments(db)), methods=["GET"])
    r("/reconciliation", page(lambda **_: pages.reconciliation(db)), methods=["GET"])
    r("/slas", page(lambda days="30", **_: pages.slas(db, days)), methods=["GET"])
    r("/exceptions/{exception_id}/replay",
      action(Permission.OPERATE, lambda p, f, exception_id: pages.replay(db, p, exception_id)),
      methods=["POST"])
    for verb in ("approve", "reject"):
        r(f"/amendments/{{amendment_id}}/{verb}",
          action(Permission.APPROVE, lambda p, f, amendment_id, verb=verb:
                 pages.decide(db, auth, p, amendment_id, verb, f.get("reason", ""))), methods=["POST"])
    r("/reconciliation/{deal_id}/{kind}/acknowledge",
      action(Permission.OPERATE, lambda p, f, deal_id, kind:
             pages.acknowledge(db, p, deal_id, kind, f.get("reason", ""))), methods=["POST"])
    r("/reconciliation/{deal_id}/{kind}/repair",
      action(Permission.OPERATE, lambda p, f, deal_id, kind: pages.repair(db, p, deal_id, kind)),
      methods=["POST"])
    return router


def login(auth: Authorizer) -> Callable[..., Any]:
    async def endpoint(request: Request) -> Response:
        form = {k: v[-1] for k, v in parse_qs((await request.body()).decode()).items()}
        token, target = form.get("token", "").strip(), form.get("next", "/dashboard")
        principal = await run_in_threadpool(auth.identify, token) if token else None
        if principal is None:
            return HTMLResponse(pages.login_page(target, "That token is unknown or revoked."), 401)
        response = RedirectResponse(target if target.startswith("/dashboard") else "/dashboard", 303)
        response.set_cookie(COOKIE, token, max_age=int(timedelta(hours=12).total_seconds()),
                            httponly=True, samesite="strict", secure=request.url.scheme == "https")
        return response
    return endpoint


async def logout() -> Response:
    response = RedirectResponse("/dashboard/login", 303)
    response.delete_cookie(COOKIE)
    return response


def search(db: Database, signed_in: Callable[..., Any]) -> Callable[..., Any]:
    async def endpoint(request: Request, q: str = "") -> Response:
        principal = await signed_in(request)
        if principal is None:
            return RedirectResponse("/dashboard/login", 303)
        found = await run_in_threadpool(pages.find_deal, db, q.strip())
        if found is None:
            body = (f"<p class=empty>No deal is known by “{pages.e(q)}”. Try the CRM's opportunity id, "
                    "the project's id, an invoice number or a correlation id.</p>")
            return HTMLResponse(pages.layout("Search", body, user=principal.user), 404)
        return RedirectResponse(f"/dashboard/deals/{quote(found)}", 303)
    return endpoint
