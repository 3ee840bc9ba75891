"""What every router of :mod:`p1web.routes` shares.

- :class:`WebContext`: the store, the live state, the event hub and the function that
  publishes a document; its methods read, save and remove documents (stored on disk,
  published, streamed to the pages). :func:`create_app <p1web.app.create_app>` keeps it in
  ``app.state``; a route gets it with the :data:`Ctx` dependency.
- The token checks: :func:`require_read`, :func:`require_write` (the route dependencies
  :data:`READ` and :data:`WRITE`), :func:`require_read_stream`.
- The error answers (422 problem list, 507, 500) and the responses each route documents.
- The path parameters (:data:`Site`, :data:`DeviceId`, :data:`OutputId`).
"""

import errno
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from p1common.payloads import Problem, field_name
from p1common.topics import SITE_PATTERN

from .auth import token_ok
from .guard import MAX_BODY_BYTES, NO_TOKEN, SECURITY_HEADERS, WRONG_TOKEN
from .hub import EventHub
from .live import Event, LiveState
from .models import DEVICE_PATTERN, OUTPUT_PATTERN, SCOPES, check_document, default_document
from .store import ConfigStore

log = logging.getLogger("web.api")


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


def api_field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    """The ``field`` of a 422 entry: :func:`p1common.payloads.field_name` of the location
    without its first part. Not the common function alone, on purpose: the API's ``loc``
    lists start with where the value was ('body', 'path', 'query', 'header', as FastAPI
    reports them, and clients read them), which is not part of the field's name; a
    location that is only that (the whole body) is named by it."""
    parts = list(loc)
    if parts and parts[0] in ("body", "path", "query", "header"):
        parts = parts[1:]
    return field_name(parts, str(loc[0]) if loc else "body")


def problems_response(items: list[tuple[list[Any], str, str]]) -> JSONResponse:
    detail = [
        {"loc": loc, "field": api_field_name(loc), "msg": msg, "type": kind} for loc, msg, kind in items
    ]
    message = "; ".join(f"{d['field']}: {d['msg']}" for d in detail)
    return JSONResponse({"message": message, "detail": detail}, status_code=422)


class DocumentProblems(Exception):
    """Checks beyond the field types refused a document: answered like pydantic's 422."""

    def __init__(self, problems: list[Problem], prefix: tuple[str | int, ...] = ("body",)) -> None:
        self.items = [([*prefix, *loc], msg, kind) for loc, msg, kind in problems]


class StoreUnwritable(Exception):
    """Writing a document to disk failed (disk full, read-only, permissions)."""

    def __init__(self, what: str, exc: OSError) -> None:
        code = errno.errorcode.get(exc.errno or 0, "")
        reason = (exc.strerror or str(exc)) + (f" ({code})" if code else "")
        super().__init__(f"cannot store {what}: {reason}; nothing was changed")
        self.filename = exc.filename


async def on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    return problems_response([(list(e["loc"]), e["msg"], e["type"]) for e in exc.errors()])


async def on_problems(request: Request, exc: DocumentProblems) -> JSONResponse:
    return problems_response(exc.items)


async def on_unwritable(request: Request, exc: StoreUnwritable) -> JSONResponse:
    log.error("%s %s: %s (%s)", request.method, request.url.path, exc, exc.filename)
    return JSONResponse({"detail": str(exc)}, status_code=507)


async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    # the last resort (outside every middleware): JSON, with the headers of Guard
    return JSONResponse({"detail": f"internal error: {type(exc).__name__}"}, status_code=500,
                        headers=SECURITY_HEADERS)


# -- what the routes document --------------------------------------------------------
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


# -- the context --------------------------------------------------------------------
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

    def stored_or_default(self, site: str, scope: str, ident: str | None = None) -> dict[str, Any]:
        return self.store.get(site, scope, ident) or default_document(scope)

    def documents(self, site: str) -> dict[str, Any]:
        """Every document of a site: defaults where none is stored; per-device scopes by id."""
        return {
            name: self.store.devices(site, name) if scope.per_device else self.stored_or_default(site, name)
            for name, scope in SCOPES.items()
        }

    def save(self, site: str, scope: str, ident: str | None, model: BaseModel) -> dict[str, Any]:
        """Check, store, publish (retained) and stream a document; returns it as stored."""
        problems = check_document(scope, model)
        if problems:
            raise DocumentProblems(problems)
        doc = model.model_dump(mode="json")
        with self.store.lock:
            try:
                self.store.put(site, scope, ident, doc)
            except OSError as exc:  # disk full, read-only: nothing stored, nothing published
                raise StoreUnwritable(_what(site, scope, ident), exc) from None
            self.publish(site, scope, ident, doc)
        self.hub.publish(Event(site, "config", {"scope": scope, "id": ident, "doc": doc}))
        return doc

    def remove(self, site: str, scope: str, ident: str) -> Response:
        """Forget a device's document and clear its retained message: 204, or 404."""
        with self.store.lock:
            try:
                removed = self.store.delete(site, scope, ident)
            except OSError as exc:
                raise StoreUnwritable(_what(site, scope, ident), exc) from None
            if not removed:
                raise HTTPException(404, f"no {scope} configuration for {ident!r} on site {site!r}")
            self.publish(site, scope, ident, None)
        self.hub.publish(Event(site, "config", {"scope": scope, "id": ident, "doc": None}))
        return Response(status_code=204)


def _what(site: str, scope: str, ident: str | None) -> str:
    return f"the {scope} document{f' of {ident!r}' if ident else ''} of site {site!r}"


async def context(request: Request) -> WebContext:
    ctx: WebContext = request.app.state.ctx
    return ctx


Ctx = Annotated[WebContext, Depends(context)]


# -- the token ----------------------------------------------------------------------
# the token of a write is checked first, by Guard, before any body is read (see
# p1web.guard); require_write stays for the API description
bearer = HTTPBearer(auto_error=False, description="the write token (P1_WEB_TOKEN)")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def require_write(ctx: Ctx, cred: Credentials) -> None:
    if cred is None or not token_ok(cred.credentials, ctx.token):
        raise HTTPException(401, NO_TOKEN if cred is None else WRONG_TOKEN,
                            headers={"WWW-Authenticate": "Bearer"})


def _check_read(ctx: WebContext, given: str | None) -> None:
    if ctx.protect_reads and not token_ok(given, ctx.token):
        raise HTTPException(
            401, "reading is protected (P1_WEB_PROTECT_READS): send the token",
            headers={"WWW-Authenticate": "Bearer"},
        )


def require_read(ctx: Ctx, cred: Credentials) -> None:
    _check_read(ctx, cred.credentials if cred else None)


def require_read_stream(
    ctx: Ctx,
    cred: Credentials,
    token: Annotated[str | None, Query(
        description="the token, for the event stream only (a browser's EventSource "
        "cannot send headers)")] = None,
) -> None:
    _check_read(ctx, cred.credentials if cred else token)


READ = [Depends(require_read)]
WRITE = [Depends(require_write)]
