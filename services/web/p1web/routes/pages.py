"""The HTML pages (one layout around each page's own content) and their scripts and
styles; none is part of the API description."""

import html
import re
from collections.abc import Callable
from importlib import resources

from fastapi import APIRouter, HTTPException
from fastapi.responses import RedirectResponse, Response

from p1common.topics import is_site

from ..deps import Ctx, WebContext

PAGES = ("live", "peak", "outputs", "devices", "api")
PAGE_TITLES = {"live": "Live", "peak": "Quarter peak", "outputs": "Outputs", "devices": "Devices",
               "api": "API"}
_ASSET = re.compile(r"^[a-z0-9_-]+\.(js|css|svg)$")
_MEDIA = {"js": "text/javascript", "css": "text/css", "svg": "image/svg+xml"}

router = APIRouter(include_in_schema=False)


@router.get("/")
def index() -> RedirectResponse:
    return RedirectResponse("/live", status_code=307)


@router.get("/docs")
def docs_page(ctx: Ctx, site: str | None = None) -> Response:
    return page(ctx, "api", site)


def page(ctx: WebContext, name: str, site: str | None) -> Response:
    if site is not None and not is_site(site):
        site = None
    # one layout (head, navigation, login, scripts) around each page's own content
    text = _asset_text("layout.html").replace("__BODY__", _asset_text(f"page_{name}.html"))
    text = (text.replace("__TITLE__", PAGE_TITLES[name])
            .replace("__SITE__", html.escape(site or ctx.site)).replace("__PAGE__", name))
    return Response(text, media_type="text/html; charset=utf-8",
                    headers={"Cache-Control": "no-cache"})


def _page_route(name: str) -> Callable[..., Response]:
    def route(ctx: Ctx, site: str | None = None) -> Response:
        return page(ctx, name, site)

    return route


for _name in PAGES:
    router.add_api_route(f"/{_name}", _page_route(_name), methods=["GET"])


@router.get("/static/{name}")
def asset(name: str) -> Response:
    if not _ASSET.fullmatch(name):
        raise HTTPException(404, "no such file")
    try:
        text = _asset_text(name)
    except FileNotFoundError:
        raise HTTPException(404, "no such file") from None
    return Response(text, media_type=_MEDIA[name.rsplit(".", 1)[1]],
                    headers={"Cache-Control": "no-cache"})


def _asset_text(name: str) -> str:
    return resources.files("p1web").joinpath(name).read_text(encoding="utf-8")
