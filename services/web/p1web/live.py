"""The latest values per site, kept from MQTT for the pages and the REST API.

Pure bookkeeping: :meth:`LiveState.apply` takes a topic already classified by
:meth:`p1common.topics.Topics.parse`, the decoded payload and the time of arrival
(as a value), updates the state and returns the event to stream to the pages.
Payloads are checked against the contract's models; a bad one raises
:class:`p1common.mqtt.BadPayload` (the MQTT wrapper counts and logs it) and the
last good value stays.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from p1common.mqtt import BadPayload
from p1common.payloads import (
    Control,
    MonthRecord,
    OutputState,
    Peak,
    QuarterRecord,
    Reading,
    Refused,
    check,
)
from p1common.topics import Parsed


@dataclass(frozen=True)
class Event:
    """One update for the pages; ``site`` None means every site (device status)."""

    site: str | None
    kind: str
    data: Any


@dataclass
class SiteLive:
    reading: dict[str, Any] | None = None
    reading_at: str | None = None  # host time the last reading arrived
    peak: dict[str, Any] | None = None
    month: dict[str, Any] | None = None
    quarters: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=96))
    control: dict[str, Any] | None = None
    states: dict[str, dict[str, Any]] = field(default_factory=dict)


def _check(model: type[BaseModel], obj: dict[str, Any], tolerate_extra: bool = False) -> None:
    """Refuse a payload whose fields have the wrong type or range; new fields may be tolerated."""
    try:
        check(model, obj, tolerate_extra)
    except Refused as exc:
        raise BadPayload(str(exc)) from None


class LiveState:
    def __init__(self, quarters_kept: int = 96) -> None:
        self.quarters_kept = quarters_kept
        self._sites: dict[str, SiteLive] = {}
        self.statuses: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def _site(self, site: str) -> SiteLive:
        live = self._sites.get(site)
        if live is None:
            live = self._sites[site] = SiteLive(quarters=deque(maxlen=self.quarters_kept))
        return live

    def apply(self, parsed: Parsed, payload: Any, now_iso: str) -> Event | None:
        """Take one message; ``payload`` is a dict (JSON topics) or text (status)."""
        kind = parsed.kind
        if kind == "status":
            state = str(payload).strip()
            if state not in ("online", "offline"):
                raise BadPayload(f"status must be 'online' or 'offline', got {state[:40]!r}")
            with self._lock:
                old = self.statuses.get(parsed.ident or "")
                since = old["since"] if old and old["state"] == state else now_iso
                entry = {"client_id": parsed.ident, "state": state, "since": since}
                self.statuses[parsed.ident or ""] = entry
            return Event(None, "status", dict(entry))
        site = parsed.site
        if site is None or not isinstance(payload, dict):
            return None
        if kind == "reading":
            _check(Reading, payload, tolerate_extra=True)
            with self._lock:
                live = self._site(site)
                live.reading, live.reading_at = payload, now_iso
            return Event(site, "reading", payload)
        if kind == "peak":
            _check(Peak, payload)
            with self._lock:
                self._site(site).peak = payload
            return Event(site, "peak", payload)
        if kind == "peak/month":
            _check(MonthRecord, payload)
            with self._lock:
                self._site(site).month = payload
            return Event(site, "month", payload)
        if kind == "peak/quarter":
            _check(QuarterRecord, payload)
            with self._lock:
                quarters = self._site(site).quarters
                if quarters and quarters[-1].get("start") == payload.get("start"):
                    quarters[-1] = payload  # a re-sent quarter replaces the first copy
                else:
                    quarters.append(payload)
            return Event(site, "quarter", payload)
        if kind == "control":
            _check(Control, payload)
            with self._lock:
                self._site(site).control = payload
            return Event(site, "control", payload)
        if kind == "output/state":
            _check(OutputState, payload)
            ident = parsed.ident or ""
            with self._lock:
                self._site(site).states[ident] = payload
            return Event(site, "state", {"id": ident, "state": payload})
        return None

    def restore_quarters(self, site: str, quarters: list[dict[str, Any]]) -> None:
        with self._lock:
            self._site(site).quarters.extend(q for q in quarters if isinstance(q, dict))

    def quarters(self, site: str) -> list[dict[str, Any]]:
        with self._lock:
            live = self._sites.get(site)
            return list(live.quarters) if live else []

    def snapshot(self, site: str) -> dict[str, Any]:
        with self._lock:
            live = self._sites.get(site) or SiteLive()
            return {
                "site": site,
                "reading": live.reading,
                "reading_at": live.reading_at,
                "peak": live.peak,
                "month": live.month,
                "quarters": list(live.quarters),
                "control": live.control,
                "states": dict(live.states),
                "statuses": sorted(self.statuses.values(), key=lambda s: s["client_id"] or ""),
            }

    def sites(self) -> list[str]:
        with self._lock:
            return sorted(self._sites)
