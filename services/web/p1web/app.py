"""The HTTP side: REST API for the configuration documents, live values, event
stream and the pages. :func:`create_app` assembles it around a :class:`WebContext`
(store, live state, event hub, and a function that publishes a document), so the
MQTT wiring stays in :mod:`p1web.service`: the middleware (:mod:`p1web.guard`), the
error answers (:mod:`p1web.deps`) and one router per resource (:mod:`p1web.routes`).
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError

from . import __doc__ as package_doc
from .deps import (
    DocumentProblems,
    StoreUnwritable,
    WebContext,
    on_problems,
    on_unexpected,
    on_unwritable,
    on_validation,
)
from .guard import MAX_BODY_BYTES, Guard
from .routes import config, live, outputs, pages, sites

__all__ = ["WebContext", "create_app"]


def create_app(ctx: WebContext) -> FastAPI:
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
    app.state.ctx = ctx  # what deps.Ctx gives the routes
    # the token of a write and the body cap are checked first, by Guard, before any body
    # is read (see p1web.guard); deps.require_write stays for the API description
    app.add_middleware(Guard, token=ctx.token, max_body=MAX_BODY_BYTES)
    app.exception_handler(RequestValidationError)(on_validation)
    app.exception_handler(DocumentProblems)(on_problems)
    app.exception_handler(StoreUnwritable)(on_unwritable)
    app.exception_handler(Exception)(on_unexpected)
    for module in (sites, config, outputs, live, pages):
        app.include_router(module.router)
    return app
