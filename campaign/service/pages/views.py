"""The status pages' handlers: sign-in and sign-out, the campaign list, one campaign's live detail and its
JSON, and the operator's pause, resume and cancel (POSTs carrying the session's CSRF token)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import jinja2
from aiohttp import web

from campaign.service.context import service_of
from campaign.service.errors import ApiError, json_response
from campaign.service.pages import session as sessions
from campaign.service.pages.session import Session
from redis_model.api_keys import digest
from schemas.campaign import FINISHED_STATES, CampaignState
from schemas.errors import InputError, UnknownCampaignError

STATIC_DIR = Path(__file__).parent / "static"
SIGN_IN = "/ui/sign-in"
LISTED = 100  # the newest campaigns the list shows
# The states each action is offered from (the producer refuses the others with a reason).
ACTIONS = {
    "pause": ("queued", "scheduled", "running", "held"),
    "resume": ("paused",),
    "cancel": ("queued", "scheduled", "running", "held", "paused"),
}
# Pages load only their own script and style, and no other site may frame them.
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,  # campaign names and held reasons are user input
    undefined=jinja2.StrictUndefined,
)
_templates.filters["utc"] = lambda at: (
    datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if at else "-"
)
_templates.globals.update(actions=ACTIONS, finished_states=sorted(FINISHED_STATES))


async def root(request: web.Request) -> web.Response:
    raise web.HTTPFound("/ui/")


async def campaign_list(request: web.Request) -> web.Response:
    operator = await _signed_in(request)
    state = request.query.get("state") or None
    if state is not None and state not in CampaignState.__members__.values():
        state = None  # an unknown filter shows every campaign rather than an error page
    listed = await service_of(request).campaigns.list_campaigns(limit=LISTED, state=state)
    return _page(
        request, "campaigns.html", operator, campaigns=listed, state=state, states=list(CampaignState)
    )


async def campaign_page(request: web.Request) -> web.Response:
    operator = await _signed_in(request)
    campaign_id = request.match_info["id"]
    try:
        status = await service_of(request).campaigns.status(campaign_id)
    except InputError:  # unknown, expired or purged
        return _page(request, "not_found.html", operator, campaign_id=campaign_id, status=404)
    refused = request.query.get("refused")
    return _page(
        request, "campaign.html", operator, s=status, refused=refused if refused in ACTIONS else None
    )


async def campaign_json(request: web.Request) -> web.Response:
    """What the detail page polls: `GET /v1/campaigns/{id}`'s object, for a signed-in browser."""
    if await _operator(request) is None:
        raise ApiError(401, "unauthorized", "sign in at /ui/sign-in")
    try:
        status = await service_of(request).campaigns.status(request.match_info["id"])
    except InputError as e:
        raise ApiError(404, "not_found", str(e)) from e
    return json_response(status, headers={"Cache-Control": "no-store"})


async def steer(request: web.Request) -> web.Response:
    """Pause, resume or cancel from the detail page: a form POST (answered by a redirect to the page) or
    the page's script (answered in JSON). Refused without a session, its CSRF token, or from another site."""
    operator = await _operator(request)
    form = await request.post()
    config = service_of(request).config
    if operator is None or not _same_origin(request):
        raise ApiError(403, "forbidden", "sign in at /ui/sign-in")
    if not sessions.csrf_holds(config.ui_secret, operator, _field(form, "csrf")):
        raise ApiError(403, "csrf", "the form's token is missing or stale: load the page again")
    campaign_id, action = request.match_info["id"], request.match_info["action"]
    campaigns = service_of(request).campaigns
    move = {"pause": campaigns.pause, "resume": campaigns.resume, "cancel": campaigns.cancel}[action]
    wants_json = "application/json" in request.headers.get("Accept", "")
    page = f"/ui/campaigns/{quote(campaign_id, safe='')}"
    try:
        state = await move(campaign_id)
    except UnknownCampaignError as e:
        raise ApiError(404, "not_found", str(e)) from e
    except InputError as e:
        if wants_json:
            raise ApiError(409, "state_conflict", str(e)) from e
        raise web.HTTPSeeOther(f"{page}?refused={action}") from e
    if wants_json:
        return json_response({"campaign_id": campaign_id, "state": state})
    raise web.HTTPSeeOther(page)


async def sign_in_form(request: web.Request) -> web.Response:
    return _page(request, "sign_in.html", None, next=_next_of(request.query.get("next")), error=None)


async def sign_in(request: web.Request) -> web.Response:
    """An API key in a form opens a session: the cookie names the key by its SHA-256, never holds it."""
    form = await request.post()
    target = _next_of(_field(form, "next"))
    key = (_field(form, "key") or "").strip()
    service = service_of(request)
    record = await service.keys.find(key) if key and _same_origin(request) else None
    if record is None:
        error = "That API key is not known (revoked, or mistyped). `campaign keys create NAME` makes one."
        return _page(request, "sign_in.html", None, next=target, error=error, status=401)
    _, cookie = sessions.open_session(
        service.config.ui_secret, key_id=record.id, key_name=record.name, key_digest=digest(key)
    )
    response = web.HTTPSeeOther(target)
    response.set_cookie(
        sessions.COOKIE, cookie, max_age=sessions.LIFETIME_S, path="/ui", httponly=True, samesite="Strict",
        secure=_over_https(request),
    )  # fmt: skip
    raise response


def _over_https(request: web.Request) -> bool:
    """Whether the browser reached us over HTTPS: directly, or through a proxy that ended TLS and says
    so (`X-Forwarded-Proto`), as an ingress or load balancer does; the cookie is then Secure."""
    return request.secure or request.headers.get("X-Forwarded-Proto", "").lower().startswith("https")


async def sign_out(request: web.Request) -> web.Response:
    operator = await _operator(request)
    form = await request.post()
    if operator is not None and sessions.csrf_holds(
        service_of(request).config.ui_secret, operator, _field(form, "csrf")
    ):
        # Ended in Redis too: a copy of the cookie (another browser, a stolen one) opens nothing either.
        await service_of(request).keys.store.sign_out(operator.session_id, operator.expires_at)
        response = web.HTTPSeeOther(SIGN_IN)
        response.del_cookie(sessions.COOKIE, path="/ui")
        raise response
    raise web.HTTPSeeOther(SIGN_IN)


async def _operator(request: web.Request) -> Session | None:
    """The session of the request's cookie while it holds, is not signed out and its API key not revoked."""
    service = service_of(request)
    session = sessions.read_session(service.config.ui_secret, request.cookies.get(sessions.COOKIE))
    if session is None:
        return None
    key = await service.keys.store.find_session_key(session.key_digest, session.session_id)
    return session if key is not None and key.id == session.key_id else None


async def _signed_in(request: web.Request) -> Session:
    """The operator, or a redirect to the sign-in form that comes back here."""
    operator = await _operator(request)
    if operator is None:
        raise web.HTTPSeeOther(f"{SIGN_IN}?next={quote(request.path_qs, safe='')}")
    return operator


def _page(
    request: web.Request, template: str, operator: Session | None, *, status: int = 200, **values: Any
) -> web.Response:
    csrf = sessions.csrf_token(service_of(request).config.ui_secret, operator) if operator else ""
    html = _templates.get_template(template).render(operator=operator, csrf=csrf, **values)
    return web.Response(text=html, status=status, content_type="text/html", headers=_HEADERS)


def _next_of(raw: str | None) -> str:
    """Where to go after signing in: a page of ours only, never another site (`//evil`, `https://...`),
    nor a value that would break the Location header."""
    if not raw or not raw.startswith("/ui/") or "\\" in raw or not raw.isprintable():
        return "/ui/"
    parts = urlsplit(raw)
    return "/ui/" if parts.scheme or parts.netloc else raw


def _same_origin(request: web.Request) -> bool:
    """A browser's POST names its page's origin: one from another site is refused (a form on a page of
    another site cannot sign anyone in here, nor steer). Clients that send no Origin (curl) pass."""
    origin = request.headers.get("Origin")
    return origin is None or urlsplit(origin).netloc == request.host


def _field(form: Any, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) else None
