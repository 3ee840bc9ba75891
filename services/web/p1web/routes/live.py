"""The latest values as received (reading, peak, month, control, states, statuses), the
closed quarters, the event stream (``/events``) and ``/healthz``."""

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import Response, StreamingResponse

from ..deps import R401, R404, R422, READ, Ctx, Site, WebContext, require_read_stream
from ..live import Event

KEEPALIVE_S = 15.0
router = APIRouter(tags=["live"])
LATEST = R401 | R404 | R422


def latest(ctx: WebContext, site: str, key: str, what: str) -> dict[str, Any]:
    value = ctx.live.snapshot(site)[key]
    if value is None:
        raise HTTPException(404, f"no {what} received yet for site {site!r}")
    return value  # type: ignore[no-any-return]


@router.get("/api/sites/{site}/live", dependencies=READ, responses=R401 | R422)
def live_snapshot(ctx: Ctx, site: Site) -> dict[str, Any]:
    """Everything the pages show: latest reading, peak, month, quarters, control, states."""
    return ctx.live.snapshot(site)


@router.get("/api/sites/{site}/reading", dependencies=READ, responses=LATEST)
def latest_reading(ctx: Ctx, site: Site) -> dict[str, Any]:
    return latest(ctx, site, "reading", "reading")


@router.get("/api/sites/{site}/peak", dependencies=READ, responses=LATEST)
def latest_peak(ctx: Ctx, site: Site) -> dict[str, Any]:
    return latest(ctx, site, "peak", "peak")


@router.get("/api/sites/{site}/peak/month", dependencies=READ, responses=LATEST)
def latest_month(ctx: Ctx, site: Site) -> dict[str, Any]:
    return latest(ctx, site, "month", "month peak")


@router.get("/api/sites/{site}/peak/quarters", dependencies=READ, responses=R401 | R422)
def quarters(ctx: Ctx, site: Site) -> list[dict[str, Any]]:
    """The closed quarters seen (oldest first, P1_WEB_QUARTERS_KEPT at most)."""
    return ctx.live.quarters(site)


@router.get("/api/sites/{site}/control", dependencies=READ, responses=LATEST)
def latest_control(ctx: Ctx, site: Site) -> dict[str, Any]:
    return latest(ctx, site, "control", "control status")


@router.get("/api/sites/{site}/states", dependencies=READ, responses=R401 | R422)
def output_states(ctx: Ctx, site: Site) -> dict[str, dict[str, Any]]:
    """What each output's device reports, by output id."""
    return ctx.live.snapshot(site)["states"]  # type: ignore[no-any-return]


@router.get("/api/status", dependencies=READ, responses=R401)
def statuses(ctx: Ctx) -> list[dict[str, Any]]:
    """Online/offline of every service and device (``p1/status/+``)."""
    return ctx.live.snapshot(ctx.site)["statuses"]  # type: ignore[no-any-return]


@router.get(
    "/api/sites/{site}/events", dependencies=[Depends(require_read_stream)],
    responses=R401 | R422, response_class=StreamingResponse,
)
async def events(ctx: Ctx, site: Site) -> StreamingResponse:
    """Server-Sent Events: ``snapshot`` first, then ``reading``, ``peak``, ``quarter``,
    ``month``, ``control``, ``state``, ``status`` and ``config`` as they arrive."""
    queue = ctx.hub.subscribe(site)  # from now on: nothing between snapshot and stream is lost
    return StreamingResponse(
        stream(ctx, site, queue), media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def stream(ctx: WebContext, site: str, queue: asyncio.Queue[Event | None]) -> AsyncIterator[str]:
    try:
        snap = ctx.live.snapshot(site)
        snap["config"] = ctx.documents(site)
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


def sse(kind: str, data: Any) -> str:
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


@router.get("/healthz", include_in_schema=False)
def healthz(ctx: Ctx) -> Response:
    ok = ctx.mqtt_connected()
    return Response("ok\n" if ok else "mqtt disconnected\n", status_code=200 if ok else 503,
                    media_type="text/plain")
