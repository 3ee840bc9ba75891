"""Configuration documents the web service stores and publishes, and their checks.

The contract's models (outputs, peak, monitor) come from :mod:`p1common.payloads`;
the two documents only the web and the devices use (site, switcher) are defined
here. Checks that span fields are plain functions returning ``(location, message,
type)`` problems, so the API reports them exactly like pydantic's own field errors; the
outputs document's (unique ids, a proportional output must be a dimmer) are the
contract's own, :func:`p1common.payloads.outputs_problems`, which the load-controller
applies too.

:data:`SCOPES` is the one table of the documents: the store, the MQTT side and the REST
API (:mod:`p1web.routes.config` makes the list/get/put/delete routes of every per-device
scope from it) all read it.
"""

from __future__ import annotations

import unicodedata
import zoneinfo
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from p1common import CONTRACT_VERSION
from p1common.payloads import (
    MonitorConfig,
    OutputConfig,
    OutputsConfig,
    PeakConfig,
    Problem,
    outputs_problems,
)

# a topic segment (p1common.topics) that cannot be '.' or '..': it also names a file
DEVICE_PATTERN = r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$"
OUTPUT_PATTERN = OutputConfig.ID_PATTERN  # the same rule in the path as in the document


class SiteConfig(BaseModel):
    """``p1/config/<site>/site``: how the site is called and its local clock."""

    model_config = ConfigDict(extra="forbid")
    v: int = CONTRACT_VERSION
    name: str = Field("Home", min_length=1, max_length=64,
                      description="shown on the pages; no control characters")
    timezone: str = Field(
        "Europe/Brussels", min_length=1, max_length=64, description="IANA time zone of the meter"
    )

    @field_validator("name")
    @classmethod
    def _printable(cls, value: str) -> str:
        bad = next((c for c in value if unicodedata.category(c) == "Cc"), None)
        if bad is not None:
            raise ValueError(f"no control characters (NUL, ESC, newline...): found {bad!r}")
        return value


class SwitcherConfig(BaseModel):
    """``p1/config/<site>/switcher/<device-id>``: which output a triac switcher drives."""

    model_config = ConfigDict(extra="forbid")
    v: int = CONTRACT_VERSION
    output_id: str = Field(pattern=OUTPUT_PATTERN, description="the output whose `pct` it follows")
    firing: Literal["phase", "burst"] = Field(
        "phase", description="phase angle (linearised) or full-cycle burst firing"
    )
    oled: bool = Field(True, description="show the status on the SSD1306 screen")


class OutputBody(OutputConfig):
    """One output for ``PUT /outputs/{id}``: the id may be left out (the path gives it)."""

    id: str | None = Field(None, pattern=OUTPUT_PATTERN)  # type: ignore[assignment]


@dataclass(frozen=True)
class Scope:
    """A kind of configuration document: its model, whether it exists per device, whether
    a service has defaults when none is stored, and (per device) what it sets, for the API
    description of its PUT."""

    name: str
    model: type[BaseModel]
    per_device: bool
    defaults: bool = True
    about: str = ""


SCOPES: dict[str, Scope] = {
    "site": Scope("site", SiteConfig, False),
    "outputs": Scope("outputs", OutputsConfig, False),
    "peak": Scope("peak", PeakConfig, False),
    "monitor": Scope("monitor", MonitorConfig, True, about="LED bar scaling"),
    "switcher": Scope("switcher", SwitcherConfig, True, defaults=False,
                      about="Which output a triac switcher follows"),
}


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def check_document(scope: str, doc: BaseModel) -> list[Problem]:
    """Checks beyond the field types, for a document already parsed by its model."""
    problems: list[Problem] = []
    version = getattr(doc, "v", CONTRACT_VERSION)
    if version != CONTRACT_VERSION:
        problems.append(
            (("v",), f"only contract version {CONTRACT_VERSION} is supported, got {version}", "version")
        )
    if isinstance(doc, OutputsConfig):
        problems += outputs_problems(doc)
    if isinstance(doc, SiteConfig) and doc.timezone not in _zones():
        problems.append(
            (("timezone",), f"{doc.timezone!r} is not an IANA time zone (e.g. Europe/Brussels)", "timezone")
        )
    return problems


def default_document(scope: str) -> dict[str, Any]:
    """What a service uses when no document was ever published (KeyError for a scope
    without defaults, the switcher; outputs: none, said explicitly: the model requires
    ``outputs``)."""
    if not SCOPES[scope].defaults:
        raise KeyError(scope)
    given: dict[str, Any] = {"outputs": []} if scope == "outputs" else {}
    return SCOPES[scope].model.model_validate(given).model_dump(mode="json")
