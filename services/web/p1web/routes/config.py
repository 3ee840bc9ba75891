"""The configuration documents of a site: all at once, the site and peak documents, and
the per-device ones (``/config/<scope>/{device_id}``), whose list, get, put and delete
routes are made for every per-device scope of :data:`p1web.models.SCOPES`: a new device
document is one entry there. The outputs document has its own router
(:mod:`p1web.routes.outputs`)."""

from collections.abc import Callable
from types import GenericAlias
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response
from pydantic import BaseModel

from p1common.payloads import PeakConfig

from ..deps import R401, R404, R422, READ, WRITE, WRITE_ERRORS, Ctx, DeviceId, Site
from ..models import SCOPES, Scope, SiteConfig

router = APIRouter(tags=["config"])


@router.get("/api/sites/{site}/config", dependencies=READ, responses=R401 | R422)
def all_config(ctx: Ctx, site: Site) -> dict[str, Any]:
    """Every configuration document of a site (defaults where none is stored)."""
    return ctx.documents(site)


@router.get("/api/sites/{site}/config/site", dependencies=READ, responses=R401 | R422)
def get_site(ctx: Ctx, site: Site) -> SiteConfig:
    return SiteConfig.model_validate(ctx.stored_or_default(site, "site"))


@router.put("/api/sites/{site}/config/site", dependencies=WRITE, responses=WRITE_ERRORS)
def put_site(ctx: Ctx, site: Site, body: SiteConfig) -> SiteConfig:
    """Name and time zone; published retained on ``p1/config/<site>/site``."""
    return SiteConfig.model_validate(ctx.save(site, "site", None, body))


@router.get("/api/sites/{site}/config/peak", dependencies=READ, responses=R401 | R422)
def get_peak_config(ctx: Ctx, site: Site) -> PeakConfig:
    return PeakConfig.model_validate(ctx.stored_or_default(site, "peak"))


@router.put("/api/sites/{site}/config/peak", dependencies=WRITE, responses=WRITE_ERRORS)
def put_peak_config(ctx: Ctx, site: Site, body: PeakConfig) -> PeakConfig:
    """Manual threshold, capacity price, algorithm; retained on ``p1/config/<site>/peak``."""
    return PeakConfig.model_validate(ctx.save(site, "peak", None, body))


def add_device_routes(router: APIRouter, scope: Scope) -> None:
    """``GET /config/<scope>`` (every stored document, by device id), and ``GET``, ``PUT``,
    ``DELETE`` of ``/config/<scope>/{device_id}``. GET of a device without a document
    answers the defaults, or 404 for a scope without defaults (``Scope.defaults``)."""
    name, model = scope.name, scope.model
    path = f"/api/sites/{{site}}/config/{name}"

    def list_documents(ctx: Ctx, site: Site) -> dict[str, BaseModel]:
        return {k: model.model_validate(v) for k, v in ctx.store.devices(site, name).items()}

    def get_document(ctx: Ctx, site: Site, device_id: DeviceId) -> BaseModel:
        if scope.defaults:
            return model.model_validate(ctx.stored_or_default(site, name, device_id))
        doc = ctx.store.get(site, name, device_id)
        if doc is None:
            raise HTTPException(404, f"no {name} configuration for {device_id!r} on site {site!r}")
        return model.model_validate(doc)

    def put_document(ctx: Ctx, site: Site, device_id: DeviceId, body: Any) -> BaseModel:
        return model.model_validate(ctx.save(site, name, device_id, body))

    def delete_document(ctx: Ctx, site: Site, device_id: DeviceId) -> Response:
        return ctx.remove(site, name, device_id)

    # FastAPI reads the body's type from the annotation: the scope's model
    put_document.__annotations__["body"] = model
    get_404 = {} if scope.defaults else R404
    routes: list[tuple[str, Callable[..., Any], str, str, dict[str, Any]]] = [
        ("", list_documents, "GET", f"list_{name}s",
         {"response_model": GenericAlias(dict, (str, model)),  # dict[str, model]
          "responses": R401 | R422,
          "description": f"Every {name} device with a stored document, by device id."}),
        ("/{device_id}", get_document, "GET", f"get_{name}",
         {"response_model": model, "responses": R401 | get_404 | R422,
          "description": "The device's document, or the defaults when none is stored."
          if scope.defaults else "The device's document; 404 when none is stored."}),
        ("/{device_id}", put_document, "PUT", f"put_{name}",
         {"response_model": model, "responses": WRITE_ERRORS,
          "description": f"{scope.about}; retained on ``p1/config/<site>/{name}/<device-id>``."}),
        ("/{device_id}", delete_document, "DELETE", f"delete_{name}",
         {"status_code": 204, "responses": WRITE_ERRORS | R404,
          "description": "Forget the document and clear the retained message."}),
    ]
    for tail, endpoint, method, route_name, extra in routes:
        dependencies = WRITE if method in ("PUT", "DELETE") else READ
        router.add_api_route(path + tail, endpoint, methods=[method], name=route_name,
                             dependencies=dependencies, **extra)


for _scope in SCOPES.values():
    if _scope.per_device:
        add_device_routes(router, _scope)
