"""The HTTP side: REST API for the configuration documents, live values, event
stream and the pages. Built by :func:`create_app` around a :class:`WebContext`
(store, live state, event hub, and a function that publishes a document), so the
MQTT wiring stays in :mod:`p1web.service`.
"""


import asyncio
import contextlib
import errno
import html
import json
import logging
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from importlib import resources
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field, ValidationError

from p1common.payloads import MonitorConfig, OutputConfig, OutputsConfig, PeakConfig
from p1common.topics import SITE_PATTERN, is_site

from . import __doc__ as package_doc
from .auth import token_ok
from .guard import MAX_BODY_BYTES, NO_TOKEN, SECURITY_HEADERS, WRONG_TOKEN, Guard
from .hub import EventHub
from .live import Event, LiveState
from .models import (
    DEVICE_PATTERN,
    OUTPUT_PATTERN,
    OutputBody,
    Problem,
    SiteConfig,
    SwitcherConfig,
    check_document,
    default_document,
)
from .store import ConfigStore

log = logging.getLogger("web.api")
PAGES = ("live", "peak", "outputs", "devices", "api")
PAGE_TITLES = {"live": "Live", "peak": "Quarter peak", "outputs": "Outputs", "devices": "Devices",
               "api": "API"}
_ASSET = re.compile(r"^[a-z0-9_-]+\.(js|css|svg)$")
_MEDIA = {"js": "text/javascript", "css": "text/css", "svg": "image/svg+xml"}
KEEPALIVE_S = 15.0


@dataclass
class WebContext:
    site: str  # the default site of the pages
    token: str
    protect_reads: bool
    store: ConfigStore
    live: LiveState
    hub: EventHub
    publish: Callable[[str, str, str | None, dict[str, Any] | None], None]
    mqtt_connected: Callable[[], bool] = lambda: True


# -- error bodies -----------------------------------------------------------------
class FieldProblem(BaseModel):
    loc: list[str | int] = Field(description="where: 'body'/'path'/'query' then the field path")
    field: str = Field(description="the field, e.g. outputs[0].rated_w")
    msg: str = Field(description="why the value is refused")
    type: str


class ValidationProblem(BaseModel):
    message: str = Field(description="every problem as 'field: reason', joined by '; '")
    detail: list[FieldProblem]


class ErrorBody(BaseModel):
    detail: str


def field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = list(loc)
    if parts and parts[0] in ("body", "path", "query", "header"):
        parts = parts[1:]
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out or (str(loc[0]) if loc else "body")


def problems_response(items: list[tuple[list[Any], str, str]]) -> JSONResponse:
    detail = [
        {"loc": loc, "field": field_name(loc), "msg": msg, "type": kind} for loc, msg, kind in items
    ]
    message = "; ".join(f"{d['field']}: {d['msg']}" for d in detail)
    return JSONResponse({"message": message, "detail": detail}, status_code=422)


class DocumentProblems(Exception):
    def __init__(self, problems: list[Problem], prefix: tuple[str | int, ...] = ("body",)) -> None:
        self.items = [([*prefix, *loc], msg, kind) for loc, msg, kind in problems]


# -- the app ------------------------------------------------------------------------
Site = Annotated[str, Path(pattern=SITE_PATTERN, description="site slug, e.g. home")]
DeviceId = Annotated[str, Path(pattern=DEVICE_PATTERN, description="device id (client id)")]
OutputId = Annotated[str, Path(pattern=OUTPUT_PATTERN, description="output id")]
Responses = dict[int | str, dict[str, Any]]
R422: Responses = {422: {"model": ValidationProblem, "description": "a value is refused"}}
R401: Responses = {401: {"model": ErrorBody, "description": "no or wrong token"}}
R404: Responses = {404: {"model": ErrorBody, "description": "not known"}}
R413: Responses = {413: {"model": ErrorBody, "description": f"body over {MAX_BODY_BYTES} bytes"}}
R507: Responses = {507: {"model": ErrorBody, "description": "the store cannot write (disk full, read-only)"}}
WRITE_ERRORS: Responses = R401 | R413 | R422 | R507


class StoreUnwritable(Exception):
    """Writing a document to disk failed (disk full, read-only, permissions)."""

    def __init__(self, what: str, exc: OSError) -> None:
        code = errno.errorcode.get(exc.errno or 0, "")
        reason = (exc.strerror or str(exc)) + (f" ({code})" if code else "")
        super().__init__(f"cannot store {what}: {reason}; nothing was changed")
        self.filename = exc.filename


def create_app(ctx: WebContext) -> FastAPI:  # noqa: C901, PLR0915  split into routers per resource: in progress  # long-function: split into routers per resource: in progress
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx.hub.bind(asyncio.get_running_loop())
        yield
        ctx.hub.close()

    app = FastAPI(
        title="P1 energy stack web",
        version="1",
        description=(package_doc or "").strip(),
        docs_url=None,  # swagger UI would load from a CDN: /docs is our own page
        redoc_url=None,
        lifespan=lifespan,
    )
    # the token of a write and the body cap are checked first, by Guard, before any body
    # is read (see p1web.guard); require_write stays for the API description
    app.add_middleware(Guard, token=ctx.token, max_body=MAX_BODY_BYTES)
    bearer = HTTPBearer(auto_error=False, description="the write token (P1_WEB_TOKEN)")

    def require_write(
        cred: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> None:
        if cred is None or not token_ok(cred.credentials, ctx.token):
            raise HTTPException(401, NO_TOKEN if cred is None else WRONG_TOKEN,
                                headers={"WWW-Authenticate": "Bearer"})

    def check_read(given: str | None) -> None:
        if ctx.protect_reads and not token_ok(given, ctx.token):
            raise HTTPException(
                401, "reading is protected (P1_WEB_PROTECT_READS): send the token",
                headers={"WWW-Authenticate": "Bearer"},
            )

    def require_read(
        cred: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> None:
        check_read(cred.credentials if cred else None)

    def require_read_stream(
        cred: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
        token: Annotated[str | None, Query(
            description="the token, for the event stream only (a browser's EventSource "
            "cannot send headers)")] = None,
    ) -> None:
        check_read(cred.credentials if cred else token)

    read = [Depends(require_read)]
    write = [Depends(require_write)]

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return problems_response([(list(e["loc"]), e["msg"], e["type"]) for e in exc.errors()])

    @app.exception_handler(DocumentProblems)
    async def _problems(request: Request, exc: DocumentProblems) -> JSONResponse:
        return problems_response(exc.items)

    @app.exception_handler(StoreUnwritable)
    async def _unwritable(request: Request, exc: StoreUnwritable) -> JSONResponse:
        log.error("%s %s: %s (%s)", request.method, request.url.path, exc, exc.filename)
        return JSONResponse({"detail": str(exc)}, status_code=507)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # the last resort (outside every middleware): JSON, with the headers of Guard
        return JSONResponse({"detail": f"internal error: {type(exc).__name__}"}, status_code=500,
                            headers=SECURITY_HEADERS)

    # -- helpers --------------------------------------------------------------------
    def what(site: str, scope: str, ident: str | None) -> str:
        return f"the {scope} document{f' of {ident!r}' if ident else ''} of site {site!r}"

    def save(site: str, scope: str, ident: str | None, model: BaseModel) -> dict[str, Any]:
        problems = check_document(scope, model)
        if problems:
            raise DocumentProblems(problems)
        doc = model.model_dump(mode="json")
        with ctx.store.lock:
            try:
                ctx.store.put(site, scope, ident, doc)
            except OSError as exc:  # disk full, read-only: nothing stored, nothing published
                raise StoreUnwritable(what(site, scope, ident), exc) from None
            ctx.publish(site, scope, ident, doc)
        ctx.hub.publish(Event(site, "config", {"scope": scope, "id": ident, "doc": doc}))
        return doc

    def remove(site: str, scope: str, ident: str) -> Response:
        with ctx.store.lock:
            try:
                removed = ctx.store.delete(site, scope, ident)
            except OSError as exc:
                raise StoreUnwritable(what(site, scope, ident), exc) from None
            if not removed:
                raise HTTPException(404, f"no {scope} configuration for {ident!r} on site {site!r}")
            ctx.publish(site, scope, ident, None)
        ctx.hub.publish(Event(site, "config", {"scope": scope, "id": ident, "doc": None}))
        return Response(status_code=204)

    def stored_or_default(site: str, scope: str, ident: str | None = None) -> dict[str, Any]:
        return ctx.store.get(site, scope, ident) or default_document(scope)

    # -- sites and auth -------------------------------------------------------------
    @app.get("/api/sites", dependencies=read, responses=R401, tags=["sites"])
    def sites() -> dict[str, Any]:
        """The default site and every site with a stored document or live data."""
        known = set(ctx.store.sites()) | set(ctx.live.sites()) | {ctx.site}
        return {"default": ctx.site, "sites": sorted(known)}

    @app.get("/api/auth", tags=["sites"])
    def auth(
        cred: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> dict[str, bool]:
        """Whether the token sent (if any) may write; whether reads need it."""
        return {
            "write": bool(cred and token_ok(cred.credentials, ctx.token)),
            "protect_reads": ctx.protect_reads,
        }

    @app.get("/api/sites/{site}/config", dependencies=read, responses=R401 | R422, tags=["config"])
    def all_config(site: Site) -> dict[str, Any]:
        """Every configuration document of a site (defaults where none is stored)."""
        return {
            "site": stored_or_default(site, "site"),
            "outputs": stored_or_default(site, "outputs"),
            "peak": stored_or_default(site, "peak"),
            "monitor": ctx.store.devices(site, "monitor"),
            "switcher": ctx.store.devices(site, "switcher"),
        }

    # -- site ---------------------------------------------------------------------
    @app.get("/api/sites/{site}/config/site", dependencies=read, responses=R401 | R422, tags=["config"])
    def get_site(site: Site) -> SiteConfig:
        return SiteConfig.model_validate(stored_or_default(site, "site"))

    @app.put("/api/sites/{site}/config/site", dependencies=write, responses=WRITE_ERRORS, tags=["config"])
    def put_site(site: Site, body: SiteConfig) -> SiteConfig:
        """Name and time zone; published retained on ``p1/config/<site>/site``."""
        return SiteConfig.model_validate(save(site, "site", None, body))

    # -- outputs --------------------------------------------------------------------
    @app.get("/api/sites/{site}/config/outputs", dependencies=read, responses=R401 | R422, tags=["config"])
    def get_outputs(site: Site) -> OutputsConfig:
        return OutputsConfig.model_validate(stored_or_default(site, "outputs"))

    @app.put("/api/sites/{site}/config/outputs", dependencies=write, responses=WRITE_ERRORS, tags=["config"])
    def put_outputs(site: Site, body: OutputsConfig) -> OutputsConfig:
        """All outputs at once; published retained on ``p1/config/<site>/outputs``."""
        return OutputsConfig.model_validate(save(site, "outputs", None, body))

    @app.get(
        "/api/sites/{site}/outputs/{output_id}", dependencies=read,
        responses=R401 | R404 | R422, tags=["config"],
    )
    def get_output(site: Site, output_id: OutputId) -> OutputConfig:
        for out in stored_or_default(site, "outputs")["outputs"]:
            if out["id"] == output_id:
                return OutputConfig.model_validate(out)
        raise HTTPException(404, f"no output {output_id!r} on site {site!r}")

    @app.put(
        "/api/sites/{site}/outputs/{output_id}", dependencies=write,
        responses=WRITE_ERRORS, tags=["config"],
    )
    def put_output(site: Site, output_id: OutputId, body: OutputBody) -> OutputsConfig:
        """Add or replace one output (the id comes from the path); returns every output."""
        if body.id is not None and body.id != output_id:
            raise DocumentProblems([(("id",), f"{body.id!r} is not the output id of the path ({output_id!r})", "id_mismatch")])
        out = OutputConfig.model_validate({**body.model_dump(), "id": output_id})
        with ctx.store.lock:
            current = stored_or_default(site, "outputs")
            outputs = [o for o in current["outputs"] if o["id"] != output_id]
            index = next((i for i, o in enumerate(current["outputs"]) if o["id"] == output_id), len(outputs))
            outputs.insert(index, out.model_dump(mode="json"))
            try:  # one output more can be one too many (MAX_OUTPUTS)
                doc = OutputsConfig.model_validate({**current, "outputs": outputs})
            except ValidationError as exc:
                raise DocumentProblems([(tuple(e["loc"]), e["msg"], e["type"]) for e in exc.errors()]) from None
            problems = [
                (loc[2:], msg, kind) for loc, msg, kind in check_document("outputs", doc)
                if loc[:2] == ("outputs", index)
            ]
            if problems:
                raise DocumentProblems(problems)
            return OutputsConfig.model_validate(save(site, "outputs", None, doc))

    @app.delete(
        "/api/sites/{site}/outputs/{output_id}", dependencies=write,
        responses=WRITE_ERRORS | R404, tags=["config"],
    )
    def delete_output(site: Site, output_id: OutputId) -> OutputsConfig:
        """Remove one output; returns the outputs left."""
        with ctx.store.lock:
            current = stored_or_default(site, "outputs")
            left = [o for o in current["outputs"] if o["id"] != output_id]
            if len(left) == len(current["outputs"]):
                raise HTTPException(404, f"no output {output_id!r} on site {site!r}")
            doc = OutputsConfig.model_validate({**current, "outputs": left})
            return OutputsConfig.model_validate(save(site, "outputs", None, doc))

    # -- peak -------------------------------------------------------------------------
    @app.get("/api/sites/{site}/config/peak", dependencies=read, responses=R401 | R422, tags=["config"])
    def get_peak_config(site: Site) -> PeakConfig:
        return PeakConfig.model_validate(stored_or_default(site, "peak"))

    @app.put("/api/sites/{site}/config/peak", dependencies=write, responses=WRITE_ERRORS, tags=["config"])
    def put_peak_config(site: Site, body: PeakConfig) -> PeakConfig:
        """Manual threshold, capacity price, algorithm; retained on ``p1/config/<site>/peak``."""
        return PeakConfig.model_validate(save(site, "peak", None, body))

    # -- monitor and switcher devices ---------------------------------------------------
    @app.get("/api/sites/{site}/config/monitor", dependencies=read, responses=R401 | R422, tags=["config"])
    def list_monitors(site: Site) -> dict[str, MonitorConfig]:
        """Every monitor device with a stored document, by device id."""
        return {k: MonitorConfig.model_validate(v) for k, v in ctx.store.devices(site, "monitor").items()}

    @app.get(
        "/api/sites/{site}/config/monitor/{device_id}", dependencies=read,
        responses=R401 | R422, tags=["config"],
    )
    def get_monitor(site: Site, device_id: DeviceId) -> MonitorConfig:
        """The device's document, or the defaults when none is stored."""
        return MonitorConfig.model_validate(stored_or_default(site, "monitor", device_id))

    @app.put(
        "/api/sites/{site}/config/monitor/{device_id}", dependencies=write,
        responses=WRITE_ERRORS, tags=["config"],
    )
    def put_monitor(site: Site, device_id: DeviceId, body: MonitorConfig) -> MonitorConfig:
        """LED bar scaling; retained on ``p1/config/<site>/monitor/<device-id>``."""
        return MonitorConfig.model_validate(save(site, "monitor", device_id, body))

    @app.delete(
        "/api/sites/{site}/config/monitor/{device_id}", dependencies=write,
        responses=WRITE_ERRORS | R404, status_code=204, tags=["config"],
    )
    def delete_monitor(site: Site, device_id: DeviceId) -> Response:
        """Forget the document and clear the retained message."""
        return remove(site, "monitor", device_id)

    @app.get("/api/sites/{site}/config/switcher", dependencies=read, responses=R401 | R422, tags=["config"])
    def list_switchers(site: Site) -> dict[str, SwitcherConfig]:
        return {k: SwitcherConfig.model_validate(v) for k, v in ctx.store.devices(site, "switcher").items()}

    @app.get(
        "/api/sites/{site}/config/switcher/{device_id}", dependencies=read,
        responses=R401 | R404 | R422, tags=["config"],
    )
    def get_switcher(site: Site, device_id: DeviceId) -> SwitcherConfig:
        doc = ctx.store.get(site, "switcher", device_id)
        if doc is None:
            raise HTTPException(404, f"no switcher configuration for {device_id!r} on site {site!r}")
        return SwitcherConfig.model_validate(doc)

    @app.put(
        "/api/sites/{site}/config/switcher/{device_id}", dependencies=write,
        responses=WRITE_ERRORS, tags=["config"],
    )
    def put_switcher(site: Site, device_id: DeviceId, body: SwitcherConfig) -> SwitcherConfig:
        """Which output a triac switcher follows; retained on ``p1/config/<site>/switcher/<id>``."""
        return SwitcherConfig.model_validate(save(site, "switcher", device_id, body))

    @app.delete(
        "/api/sites/{site}/config/switcher/{device_id}", dependencies=write,
        responses=WRITE_ERRORS | R404, status_code=204, tags=["config"],
    )
    def delete_switcher(site: Site, device_id: DeviceId) -> Response:
        return remove(site, "switcher", device_id)

    # -- live values ------------------------------------------------------------------
    def latest(site: str, key: str, what: str) -> dict[str, Any]:
        value = ctx.live.snapshot(site)[key]
        if value is None:
            raise HTTPException(404, f"no {what} received yet for site {site!r}")
        return value  # type: ignore[no-any-return]

    @app.get("/api/sites/{site}/live", dependencies=read, responses=R401 | R422, tags=["live"])
    def live_snapshot(site: Site) -> dict[str, Any]:
        """Everything the pages show: latest reading, peak, month, quarters, control, states."""
        return ctx.live.snapshot(site)

    @app.get("/api/sites/{site}/reading", dependencies=read, responses=R401 | R404 | R422, tags=["live"])
    def latest_reading(site: Site) -> dict[str, Any]:
        return latest(site, "reading", "reading")

    @app.get("/api/sites/{site}/peak", dependencies=read, responses=R401 | R404 | R422, tags=["live"])
    def latest_peak(site: Site) -> dict[str, Any]:
        return latest(site, "peak", "peak")

    @app.get("/api/sites/{site}/peak/month", dependencies=read, responses=R401 | R404 | R422, tags=["live"])
    def latest_month(site: Site) -> dict[str, Any]:
        return latest(site, "month", "month peak")

    @app.get("/api/sites/{site}/peak/quarters", dependencies=read, responses=R401 | R422, tags=["live"])
    def quarters(site: Site) -> list[dict[str, Any]]:
        """The closed quarters seen (oldest first, P1_WEB_QUARTERS_KEPT at most)."""
        return ctx.live.quarters(site)

    @app.get("/api/sites/{site}/control", dependencies=read, responses=R401 | R404 | R422, tags=["live"])
    def latest_control(site: Site) -> dict[str, Any]:
        return latest(site, "control", "control status")

    @app.get("/api/sites/{site}/states", dependencies=read, responses=R401 | R422, tags=["live"])
    def output_states(site: Site) -> dict[str, dict[str, Any]]:
        """What each output's device reports, by output id."""
        return ctx.live.snapshot(site)["states"]  # type: ignore[no-any-return]

    @app.get("/api/status", dependencies=read, responses=R401, tags=["live"])
    def statuses() -> list[dict[str, Any]]:
        """Online/offline of every service and device (``p1/status/+``)."""
        return ctx.live.snapshot(ctx.site)["statuses"]  # type: ignore[no-any-return]

    @app.get(
        "/api/sites/{site}/events", dependencies=[Depends(require_read_stream)],
        responses=R401 | R422, tags=["live"],
        response_class=StreamingResponse,
    )
    async def events(site: Site) -> StreamingResponse:
        """Server-Sent Events: ``snapshot`` first, then ``reading``, ``peak``, ``quarter``,
        ``month``, ``control``, ``state``, ``status`` and ``config`` as they arrive."""
        queue = ctx.hub.subscribe(site)

        async def stream() -> AsyncIterator[str]:
            try:
                snap = ctx.live.snapshot(site)
                snap["config"] = all_config(site)
                yield sse("snapshot", snap)
                while not ctx.hub.closed:
                    try:
                        event = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
                    except TimeoutError:
                        yield ": keepalive\n\n"
                        continue
                    if event is None:
                        break
                    yield sse(event.kind, event.data)
            finally:
                ctx.hub.unsubscribe(queue)

        return StreamingResponse(
            stream(), media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> Response:
        ok = ctx.mqtt_connected()
        return Response("ok\n" if ok else "mqtt disconnected\n", status_code=200 if ok else 503,
                        media_type="text/plain")

    # -- pages and assets ---------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    def index() -> RedirectResponse:
        return RedirectResponse("/live", status_code=307)

    @app.get("/docs", include_in_schema=False)
    def docs_page(site: str | None = None) -> Response:
        return page("api", site)

    def page(name: str, site: str | None) -> Response:
        if site is not None and not is_site(site):
            site = None
        # one layout (head, navigation, login, scripts) around each page's own content
        text = _asset_text("layout.html").replace("__BODY__", _asset_text(f"page_{name}.html"))
        text = (text.replace("__TITLE__", PAGE_TITLES[name])
                .replace("__SITE__", html.escape(site or ctx.site)).replace("__PAGE__", name))
        return Response(text, media_type="text/html; charset=utf-8",
                        headers={"Cache-Control": "no-cache"})

    for name in PAGES:
        app.add_api_route(
            f"/{name}", _page_route(page, name), methods=["GET"], include_in_schema=False
        )

    @app.get("/static/{name}", include_in_schema=False)
    def asset(name: str) -> Response:
        if not _ASSET.fullmatch(name):
            raise HTTPException(404, "no such file")
        try:
            text = _asset_text(name)
        except FileNotFoundError:
            raise HTTPException(404, "no such file") from None
        return Response(text, media_type=_MEDIA[name.rsplit(".", 1)[1]],
                        headers={"Cache-Control": "no-cache"})

    return app


def _page_route(page: Callable[[str, str | None], Response], name: str) -> Callable[..., Response]:
    def route(site: str | None = None) -> Response:
        return page(name, site)

    return route


def _asset_text(name: str) -> str:
    return resources.files("p1web").joinpath(name).read_text(encoding="utf-8")


def sse(kind: str, data: Any) -> str:
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
