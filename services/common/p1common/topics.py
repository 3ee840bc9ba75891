"""The MQTT topic contract (v1) as code: the one place that builds and parses topics.

Services never glue topic strings themselves; they ask a :class:`Topics` built
with the configured prefix.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

_SEGMENT = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")

# The one site-name rule, for settings (P1_SITE), topics, the web (paths, store folders)
# and deploy/mosquitto/mkusers.py (which keeps a copy: it runs without p1common; a test
# checks the copy). A site also names a folder: no upper case, no dot, no control
# character, 63 characters at most. Match with is_site (a full match: "$" alone would
# let a trailing newline through).
SITE_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
_SITE = re.compile(SITE_PATTERN)
SITE_RULE = "1-63 lower-case letters, digits, '-' or '_', starting with a letter or digit"


class TopicError(ValueError):
    """A topic segment (site, output id, client id) is not valid."""


def segment(value: str, what: str) -> str:
    if not isinstance(value, str) or not _SEGMENT.fullmatch(value):
        raise TopicError(f"{what} {value!r}: use 1-64 letters, digits, '.', '-' or '_'")
    return value


def is_site(value: object) -> bool:
    """Whether ``value`` is a valid site name (:data:`SITE_PATTERN`, matched whole)."""
    return isinstance(value, str) and _SITE.fullmatch(value) is not None


def check_site(value: str, what: str = "site") -> str:
    """``value`` if it is a valid site name, else :class:`TopicError` naming ``what``."""
    if not is_site(value):
        raise TopicError(f"{what} {value!r}: use {SITE_RULE}")
    return value


@dataclass(frozen=True)
class Parsed:
    """What a topic from the contract means: its kind, the site and any id."""

    kind: str
    site: str | None = None
    ident: str | None = None


@dataclass(frozen=True)
class Topics:
    prefix: str = "p1"

    # -- builders -------------------------------------------------------------
    def reading(self, site: str) -> str:
        return f"{self.prefix}/{check_site(site)}/reading"

    def live(self, site: str) -> str:
        return f"{self.prefix}/{check_site(site)}/live"

    def raw(self, site: str) -> str:
        return f"{self.prefix}/{check_site(site)}/raw"

    def peak(self, site: str) -> str:
        return f"{self.prefix}/{check_site(site)}/peak"

    def peak_quarter(self, site: str) -> str:
        return f"{self.prefix}/{check_site(site)}/peak/quarter"

    def peak_month(self, site: str) -> str:
        return f"{self.prefix}/{check_site(site)}/peak/month"

    def output_set(self, site: str, output_id: str) -> str:
        return f"{self.prefix}/{check_site(site)}/output/{segment(output_id, 'output id')}/set"

    def output_state(self, site: str, output_id: str) -> str:
        return (
            f"{self.prefix}/{check_site(site)}/output/{segment(output_id, 'output id')}/state"
        )

    def control(self, site: str) -> str:
        return f"{self.prefix}/{check_site(site)}/control"

    def config(self, site: str, scope: str, ident: str | None = None) -> str:
        base = f"{self.prefix}/config/{check_site(site)}/{segment(scope, 'config scope')}"
        return f"{base}/{segment(ident, 'device id')}" if ident else base

    def status(self, client_id: str) -> str:
        return f"{self.prefix}/status/{segment(client_id, 'client id')}"

    # -- subscriptions (wildcards) ---------------------------------------------
    def all_sites(self, leaf: str) -> str:
        """Subscription for one leaf on every site, e.g. ``all_sites('reading')``."""
        return f"{self.prefix}/+/{leaf}"

    def output_states(self, site: str = "+") -> str:
        return f"{self.prefix}/{site}/output/+/state"

    def output_sets(self, site: str = "+") -> str:
        return f"{self.prefix}/{site}/output/+/set"

    def configs(self, site: str = "+") -> str:
        return f"{self.prefix}/config/{site}/#"

    def statuses(self) -> str:
        return f"{self.prefix}/status/+"

    def everything(self) -> str:
        return f"{self.prefix}/#"

    # -- parsing ----------------------------------------------------------------
    def parse(self, topic: str) -> Parsed | None:
        """Classify a topic of the contract; ``None`` for anything else."""
        if not topic.startswith(self.prefix + "/"):
            return None
        parts = topic[len(self.prefix) + 1 :].split("/")
        if not parts or not parts[0]:
            return None
        if parts[0] == "status" and len(parts) == 2:
            return Parsed("status", ident=parts[1])
        if parts[0] == "config" and len(parts) >= 3:
            if not is_site(parts[1]):
                return None  # not a site of the contract (upper case, a dot, a control character)
            ident = "/".join(parts[3:]) or None
            return Parsed(f"config/{parts[2]}", site=parts[1], ident=ident)
        site, rest = parts[0], parts[1:]
        if not is_site(site):
            return None
        if rest in (["reading"], ["live"], ["raw"], ["peak"], ["control"]):
            return Parsed(rest[0], site=site)
        if rest in (["peak", "quarter"], ["peak", "month"]):
            return Parsed("/".join(rest), site=site)
        if len(rest) == 3 and rest[0] == "output" and rest[2] in ("set", "state"):
            return Parsed(f"output/{rest[2]}", site=site, ident=rest[1])
        return None


HA_DISCOVERY_PREFIX = "homeassistant"
HA_STATUS_TOPIC = "homeassistant/status"


def ha_config_topic(component: str, node_id: str, object_id: str) -> str:
    """Home Assistant discovery topic: ``homeassistant/<component>/<node>/<object>/config``."""
    return (
        f"{HA_DISCOVERY_PREFIX}/{component}/{segment(node_id, 'node id')}/"
        f"{segment(object_id, 'object id')}/config"
    )


def shard_of(site: str, shards: int) -> int:
    """Stable site -> shard (CRC-32 of the site slug, the same in every process and language),
    so several instances of a many-site service split the sites without talking."""
    return zlib.crc32(site.encode()) % shards
