"""`/v1/campaigns`: publish one from a recipients file streamed as the body (the spec in the query) or as
a multipart body's part (the spec a JSON part beside it), list them, read one's status, pause, resume or
cancel it; through `AsyncCampaigns`, off the event loop."""

from __future__ import annotations

from typing import Annotated, TypeVar
from urllib.parse import parse_qsl

import msgspec
from aiohttp import web

from campaign.service.bodies import CampaignList, Steered
from campaign.service.context import Service, service_of
from campaign.service.errors import ApiError, invalid, json_response, refused
from campaign.service.upload import SPEC_PART, as_sent, line_of, spooled, spooled_parts
from producer.spec import build_spec, check_max_invalid
from schemas.campaign import CampaignState
from schemas.errors import InputError, UnknownCampaignError
from schemas.settings import Settings

MAX_LIST = 1000
Q = TypeVar("Q", bound=msgspec.Struct)


class CampaignQuery(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`POST /v1/campaigns`' query: `campaign send`'s options, with underscores."""

    sender: str
    type: str
    body: str
    prefix: str | None = None
    unicode: str | None = None
    template_id: str | None = None
    entity_id: str | None = None
    callback_profile_id: str | None = None
    at: str | None = None
    name: str | None = None
    on_unknown: str = "hold"
    expires_in: str | None = None
    flash: bool = False
    send_window: str | None = None
    callback_url: str | None = None
    max_invalid: str | None = None
    dry_run: bool = False


_spec_decoder = msgspec.json.Decoder(CampaignQuery, strict=False)


class ListQuery(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    limit: Annotated[int, msgspec.Meta(ge=1, le=MAX_LIST)] = 50
    state: CampaignState | None = None  # only campaigns in this state


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/campaigns", post_campaign)
    app.router.add_get("/v1/campaigns", list_campaigns)
    app.router.add_get("/v1/campaigns/{id}", get_campaign)
    for action in ("pause", "resume", "cancel"):
        app.router.add_post(f"/v1/campaigns/{{id}}/{action}", steer)


def query_of(request: web.Request, kind: type[Q]) -> Q:
    """The query string as `kind`: strings converted (`limit=5`, `flash=true`), unknown names refused; and
    refused, naming the name, a value that is not UTF-8 (it would reach phones as `?`) or a name given
    twice (which one was meant?)."""
    given: dict[str, str] = {}
    for name, value in parse_qsl(
        request.rel_url.raw_query_string, keep_blank_values=True, errors="surrogateescape"
    ):
        if not _utf8(name) or not _utf8(value):
            told = f"{_shown(name)} is not UTF-8 in the query: percent-encode the text's UTF-8 bytes"
            raise ApiError(400, "invalid_request", told, field=_shown(name))
        if name in given:
            raise ApiError(400, "invalid_request", f"{name} is given twice in the query", field=name)
        given[name] = value
    try:
        return msgspec.convert(given, kind, strict=False)
    except msgspec.ValidationError as e:
        raise invalid(e) from e


def _utf8(text: str) -> bool:
    """Whether `text` was decoded from UTF-8 without a byte left over (kept as a surrogate escape)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _shown(name: str) -> str:
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


async def post_campaign(request: web.Request) -> web.Response:
    """Publish the recipients in the body, the options in the query; or, multipart/form-data, the options
    as the JSON part `spec` (first, so that they are refused before the file is read) and the file as the
    part `recipients` (no URL for a proxy in front to cut a long body short). Refused (400 with the line,
    nothing published) as `campaign send` refuses. Answers once the whole file is published: `send
    --json`'s fields."""
    service = service_of(request)
    limit = service.config.max_upload_bytes
    if request.content_type != "multipart/form-data":
        query = _checked(service.settings, query_of(request, CampaignQuery))
        async with spooled(request, limit) as path:
            return await _publish(service, query, path)
    if request.query:
        raise ApiError(400, "invalid_request", f"give the campaign's options in the `{SPEC_PART}` part or in "
                       "the query, not both")  # fmt: skip
    given: list[CampaignQuery] = []

    async def on_spec(raw: bytes) -> None:
        given.append(_checked(service.settings, _spec_part(raw)))

    async with spooled_parts(request, limit, on_spec) as path:
        return await _publish(service, given[0], path)


def _spec_part(raw: bytes) -> CampaignQuery:
    """The `spec` part: a JSON object of the query's names, with JSON's types (or strings, as in a query)."""
    try:
        return _spec_decoder.decode(raw)
    except msgspec.ValidationError as e:
        raise invalid(e) from e
    except msgspec.DecodeError as e:
        raise ApiError(400, "invalid_json", f"the `{SPEC_PART}` part is not valid JSON: {e}") from e
    except UnicodeDecodeError as e:  # msgspec's word for a string that is not UTF-8
        raise ApiError(400, "invalid_json", f"the `{SPEC_PART}` part is not UTF-8: byte {e.start}") from e
    except RecursionError as e:
        raise ApiError(400, "invalid_json", f"the `{SPEC_PART}` part's JSON is nested too deep") from e


def _checked(settings: Settings, query: CampaignQuery) -> CampaignQuery:
    """The options, refused as `campaign send` refuses them (before any file is read)."""
    options = msgspec.structs.asdict(query)
    spec_options = {k: v for k, v in options.items() if k not in ("max_invalid", "dry_run")}
    try:
        build_spec(settings=settings, **spec_options)
        check_max_invalid(query.max_invalid)
    except InputError as e:
        raise refused(e, CampaignQuery.__struct_fields__) from e
    return query


async def _publish(service: Service, query: CampaignQuery, path: str) -> web.Response:
    try:
        result = await service.campaigns.send_campaign(path, **msgspec.structs.asdict(query))
    except InputError as e:
        text = as_sent(str(e), path)
        raise ApiError(400, "invalid_recipients", text, line=line_of(text)) from e
    if query.dry_run:  # counted, nothing published: no campaign to name
        return json_response(result.counts(), status=200)
    return json_response(result, status=201)


async def list_campaigns(request: web.Request) -> web.Response:
    query = query_of(request, ListQuery)
    found = await service_of(request).campaigns.list_campaigns(limit=query.limit, state=query.state)
    return json_response(CampaignList(campaigns=found))


async def get_campaign(request: web.Request) -> web.Response:
    try:
        status = await service_of(request).campaigns.status(request.match_info["id"])
    except InputError as e:
        raise refused(e) from e
    return json_response(status)


async def steer(request: web.Request) -> web.Response:
    """Pause, resume or cancel: 404 for no such campaign, 409 for a state the move is not made from."""
    campaign_id, action = request.match_info["id"], request.path.rsplit("/", 1)[1]
    campaigns = service_of(request).campaigns
    move = {"pause": campaigns.pause, "resume": campaigns.resume, "cancel": campaigns.cancel}[action]
    try:
        state = await move(campaign_id)
    except UnknownCampaignError as e:
        raise refused(e) from e
    except InputError as e:
        raise ApiError(409, "state_conflict", str(e)) from e
    return json_response(Steered(campaign_id=campaign_id, state=state))
