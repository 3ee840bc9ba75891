"""The outputs document: whole (``/config/outputs``) or one output by its id
(``/outputs/{output_id}``)."""

from fastapi import APIRouter, HTTPException
from pydantic import ValidationError

from p1common.payloads import OutputConfig, OutputsConfig

from ..deps import (
    R401,
    R404,
    R422,
    READ,
    WRITE,
    WRITE_ERRORS,
    Ctx,
    DocumentProblems,
    OutputId,
    Site,
)
from ..models import OutputBody, check_document

router = APIRouter(tags=["config"])


@router.get("/api/sites/{site}/config/outputs", dependencies=READ, responses=R401 | R422)
def get_outputs(ctx: Ctx, site: Site) -> OutputsConfig:
    return OutputsConfig.model_validate(ctx.stored_or_default(site, "outputs"))


@router.put("/api/sites/{site}/config/outputs", dependencies=WRITE, responses=WRITE_ERRORS)
def put_outputs(ctx: Ctx, site: Site, body: OutputsConfig) -> OutputsConfig:
    """All outputs at once; published retained on ``p1/config/<site>/outputs``."""
    return OutputsConfig.model_validate(ctx.save(site, "outputs", None, body))


@router.get("/api/sites/{site}/outputs/{output_id}", dependencies=READ, responses=R401 | R404 | R422)
def get_output(ctx: Ctx, site: Site, output_id: OutputId) -> OutputConfig:
    for out in ctx.stored_or_default(site, "outputs")["outputs"]:
        if out["id"] == output_id:
            return OutputConfig.model_validate(out)
    raise HTTPException(404, f"no output {output_id!r} on site {site!r}")


@router.put("/api/sites/{site}/outputs/{output_id}", dependencies=WRITE, responses=WRITE_ERRORS)
def put_output(ctx: Ctx, site: Site, output_id: OutputId, body: OutputBody) -> OutputsConfig:
    """Add or replace one output (the id comes from the path); returns every output."""
    if body.id is not None and body.id != output_id:
        raise DocumentProblems([(("id",), f"{body.id!r} is not the output id of the path ({output_id!r})", "id_mismatch")])
    out = OutputConfig.model_validate({**body.model_dump(), "id": output_id})
    with ctx.store.lock:
        current = ctx.stored_or_default(site, "outputs")
        outputs = [o for o in current["outputs"] if o["id"] != output_id]
        index = next((i for i, o in enumerate(current["outputs"]) if o["id"] == output_id), len(outputs))
        outputs.insert(index, out.model_dump(mode="json"))
        try:  # one output more can be one too many (MAX_OUTPUTS)
            doc = OutputsConfig.model_validate({**current, "outputs": outputs})
        except ValidationError as exc:
            raise DocumentProblems([(tuple(e["loc"]), e["msg"], e["type"]) for e in exc.errors()]) from None
        problems = [  # this output's problems, by its own fields
            (loc[2:], msg, kind) for loc, msg, kind in check_document("outputs", doc)
            if loc[:2] == ("outputs", index)
        ]
        if problems:
            raise DocumentProblems(problems)
        return OutputsConfig.model_validate(ctx.save(site, "outputs", None, doc))


@router.delete("/api/sites/{site}/outputs/{output_id}", dependencies=WRITE, responses=WRITE_ERRORS | R404)
def delete_output(ctx: Ctx, site: Site, output_id: OutputId) -> OutputsConfig:
    """Remove one output; returns the outputs left."""
    with ctx.store.lock:
        current = ctx.stored_or_default(site, "outputs")
        left = [o for o in current["outputs"] if o["id"] != output_id]
        if len(left) == len(current["outputs"]):
            raise HTTPException(404, f"no output {output_id!r} on site {site!r}")
        doc = OutputsConfig.model_validate({**current, "outputs": left})
        return OutputsConfig.model_validate(ctx.save(site, "outputs", None, doc))
