"""``/api/sites`` and ``/api/auth``: which sites there are, what the token sent may do."""

from typing import Any

from fastapi import APIRouter

from ..auth import token_ok
from ..deps import R401, READ, Credentials, Ctx

router = APIRouter(tags=["sites"])


@router.get("/api/sites", dependencies=READ, responses=R401)
def sites(ctx: Ctx) -> dict[str, Any]:
    """The default site and every site with a stored document or live data."""
    known = set(ctx.store.sites()) | set(ctx.live.sites()) | {ctx.site}
    return {"default": ctx.site, "sites": sorted(known)}


@router.get("/api/auth")
def auth(ctx: Ctx, cred: Credentials) -> dict[str, bool]:
    """Whether the token sent (if any) may write; whether reads need it."""
    return {
        "write": bool(cred and token_ok(cred.credentials, ctx.token)),
        "protect_reads": ctx.protect_reads,
    }
