"""What the gateway decides, as plain values: no clock, no MQTT, no websocket.

The load-controller publishes ``p1/<site>/output/<id>/set`` (``current_a``, ``phases``,
``seq``, ``ttl_s``) about every second for an output of kind ``ev``. For an output whose
``charger`` is ``ocpp`` or ``evcc`` this gateway turns the command into what the charger
understands. :class:`Link` holds one output's latest command and says which limit applies
now: the command while it is fresh, else 0 A (the watchdog: a charger is never left
charging at the last current when the controller is gone).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from p1common.payloads import OutputConfig, OutputSet, Refused, check

# the charge point's schedule periods take one decimal (OCPP 1.6 JSON schema,
# chargingSchedulePeriod.limit: multipleOf 0.1)
LIMIT_STEP_A = 0.1


class BadSet(ValueError):
    """A ``set`` for an ev output that the gateway cannot apply; the message names the field."""


@dataclass(frozen=True)
class Limit:
    """The current a charger is allowed now."""

    current_a: float  # per phase; 0 = pause
    phases: int
    seq: int | None  # the set it comes from (None: no fresh set)
    why: str  # in words, for the log


@dataclass
class Command:
    current_a: float
    phases: int | None
    seq: int
    expires: float  # on the gateway's monotonic clock


@dataclass
class Link:
    """One ev output driven through this gateway."""

    cfg: OutputConfig
    watchdog_s: float
    cmd: Command | None = None
    sets: int = 0

    def on_set(self, now: float, payload: Any) -> Command:
        """Take a ``set``: strict contract check, then the ev fields. Raises :class:`BadSet`."""
        try:
            check(OutputSet, payload, tolerate_extra=True)
        except Refused as exc:
            raise BadSet(str(exc)) from None
        current = payload.get("current_a")
        if current is None:
            raise BadSet("current_a: missing (an ev output is driven by current_a, not on/pct)")
        seq = int(payload["seq"])
        if self.cmd is not None and seq < self.cmd.seq:
            raise BadSet(f"seq: {seq} is older than the last applied {self.cmd.seq}")
        ttl = min(float(payload["ttl_s"]), self.watchdog_s)
        self.cmd = Command(float(current), payload.get("phases"), seq, now + ttl)
        self.sets += 1
        return self.cmd

    def limit(self, now: float) -> Limit:
        cfg = self.cfg
        if self.cmd is None:
            return Limit(0.0, cfg.phases, None, "no set received yet")
        cmd = self.cmd
        phases = cmd.phases or cfg.phases
        if now >= cmd.expires:
            return Limit(0.0, phases, None, f"no fresh set (watchdog {self.watchdog_s:g} s)")
        current = min(cmd.current_a, cfg.max_current_a)
        if 0 < current < cfg.min_current_a:
            return Limit(0.0, phases, cmd.seq, f"{cmd.current_a:g} A is below the charger's "
                         f"minimum {cfg.min_current_a:g} A: pause")
        return Limit(floor_step(current), phases, cmd.seq,
                     "pause" if current == 0 else f"set seq {cmd.seq}")


def floor_step(current_a: float) -> float:
    """Down to the next 0.1 A: never above what was commanded."""
    steps = round(1 / LIMIT_STEP_A)
    return math.floor(current_a * steps + 1e-9) / steps


def links_for(outputs: list[OutputConfig], charger: str, watchdog_s: float,
              old: dict[str, Link] | None = None) -> dict[str, Link]:
    """The ev outputs of one charger kind, by output id; a kept output keeps its command."""
    links: dict[str, Link] = {}
    for out in outputs:
        if out.kind != "ev" or out.charger != charger or out.charger_ref is None:
            continue
        prev = (old or {}).get(out.id)
        links[out.id] = Link(out, watchdog_s, cmd=prev.cmd if prev else None,
                             sets=prev.sets if prev else 0)
    return links


@dataclass
class Meter:
    """What a charger reports: status, power, session energy."""

    connected: bool | None = None
    charging: bool | None = None
    power_w: float | None = None
    session_wh: float | None = None
    phases: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def state_payload(ts: str, limit: Limit, meter: Meter) -> dict[str, Any]:
    """``output/<id>/state`` for an ev output (the contract's OutputState fields)."""
    doc: dict[str, Any] = {"v": 1, "ts": ts, "current_a": limit.current_a,
                           "phases": meter.phases or limit.phases, "on": limit.current_a > 0}
    if limit.seq is not None:
        doc["seq"] = limit.seq
    for key in ("connected", "charging"):
        value = getattr(meter, key)
        if value is not None:
            doc[key] = value
    if meter.power_w is not None:
        doc["power_w"] = round(max(0.0, meter.power_w), 1)
    if meter.session_wh is not None:
        doc["session_wh"] = round(max(0.0, meter.session_wh), 1)
    return doc
