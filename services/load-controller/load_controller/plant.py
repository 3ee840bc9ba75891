"""A small house model to close the loop without hardware (tests, ``bench/control.py``).

The meter reports the net power every ``period_s``, as the mean over the second before
the reading (like meter-sim's meter and a DSMR 5 meter: a command applied in the middle
of a second shows half in that reading); each controlled load applies a command
``delay_s`` after it was sent, may report its state (with the ``seq``) when it does, and
a boiler's thermostat may cut it out. ``Load.average_s`` 0 is a meter that samples at
one instant. Pure: the loop below advances time
itself, nothing sleeps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .control import Controller


@dataclass
class Load:
    """A controlled load: relay (on/off) or dimmer (pct) with a command delay."""

    output_id: str
    rated_w: float
    delay_s: float = 0.5
    reports_state: bool = False
    thermostat: Callable[[float], bool] = lambda t: True  # True = closed (heating)
    average_s: float = 1.0  # the meter shows the mean power over this long before a reading
    pct: float = 0.0
    seq: int | None = None
    queue: list[tuple[float, float, int]] = field(default_factory=list)
    applied: list[tuple[float, float]] = field(default_factory=list)

    def command(self, t: float, payload: dict[str, Any]) -> None:
        pct = payload["pct"] if "pct" in payload else (100.0 if payload.get("on") else 0.0)
        self.queue.append((t + self.delay_s, float(pct), int(payload["seq"])))

    def due(self, t: float) -> list[tuple[float, dict[str, Any]]]:
        """Apply the commands due by ``t``; return the state reports they cause."""
        reports = []
        while self.queue and self.queue[0][0] <= t:
            at, pct, seq = self.queue.pop(0)
            if pct != self.pct:
                self.applied.append((at, pct))
            self.pct, self.seq = pct, seq
            if self.reports_state:
                reports.append((at, {"v": 1, "ts": "", "pct": pct, "on": pct > 0, "seq": seq}))
        return reports

    def power_w(self, t: float) -> float:
        """What the meter reading at ``t`` shows of this load: the mean power over
        ``[t - average_s, t]`` (the level exactly, the thermostat sampled 10 times per
        piece of constant level), or the power at ``t`` itself."""
        if self.average_s <= 0:
            return self.rated_w * self.pct / 100.0 if self.thermostat(t) else 0.0
        start = t - self.average_s
        # pieces of constant level inside the window, latest first
        pieces: list[tuple[float, float, float]] = []
        end = t
        for at, pct in reversed(self.applied):
            if at >= end:
                continue
            pieces.append((max(at, start), end, pct))
            end = max(at, start)
            if at <= start:
                break
        if end > start:
            pieces.append((start, end, 0.0))
        total = 0.0
        for a, b, pct in pieces:
            if pct == 0 or b <= a:
                continue
            on = sum(1 for i in range(10) if self.thermostat(a + (b - a) * (i + 0.5) / 10))
            total += pct * (b - a) * on / 10
        return self.rated_w * total / self.average_s / 100.0


@dataclass
class Sample:
    t: float
    net_w: float
    household_w: float
    loads_w: dict[str, float]
    levels: dict[str, float]


def run_loop(controller: Controller, household_w: Callable[[float], float], loads: list[Load],
             duration_s: float, period_s: float = 1.0, start_s: float = 0.0,
             tariff_low: Callable[[float], bool] | None = None,
             peak: Callable[[float, float], dict[str, Any] | None] | None = None,
             meter_gap: Callable[[float], bool] | None = None,
             latency_s: float = 0.05) -> list[Sample]:
    """Run the closed loop; one :class:`Sample` per telegram (meter time ``t``).

    ``household_w(t)`` is everything but the controlled loads (negative = PV export),
    constant over the second before ``t`` as the meter sees it;
    ``peak(t, net_w)`` may return a peak document for the controller;
    ``meter_gap(t)`` True drops that telegram (the watchdog ticks instead);
    the controller gets the reading ``latency_s`` after the meter's second is over (the
    telegram's transmission) and its commands leave at once.
    """
    by_id = {ld.output_id: ld for ld in loads}
    out: list[Sample] = []
    n = round(duration_s / period_s)
    for k in range(n):
        t = start_s + k * period_s
        # commands applied (and state reports) since the last telegram, in time order
        events: list[tuple[float, str, dict[str, Any]]] = []
        for ld in loads:
            events.extend((at, ld.output_id, st) for at, st in ld.due(t))
        for at, oid, st in sorted(events, key=lambda e: e[0]):
            controller.on_state(at, oid, st)
        loads_w = {ld.output_id: ld.power_w(t) for ld in loads}
        house = household_w(t)
        net = house + sum(loads_w.values())
        now = t + latency_s
        if meter_gap and meter_gap(t):
            step = controller.tick(now)
        else:
            reading: dict[str, Any] = {"net_w": round(net, 1), "import_w": max(net, 0.0),
                                       "export_w": max(-net, 0.0)}
            if tariff_low:
                reading["tariff_low"] = tariff_low(t)
            if peak:
                doc = peak(t, net)
                if doc is not None:
                    controller.on_peak(now, doc)
            step = controller.on_reading(now, reading)
        if step is not None:
            for cmd in step.commands:
                if cmd.output_id in by_id:
                    by_id[cmd.output_id].command(now, cmd.payload)
        levels = {oid: rt.level_w for oid, rt in controller.outputs.items()}
        out.append(Sample(t, net, house, loads_w, levels))
    return out


def settle_time(samples: list[Sample], t_step: float, t_end: float | None = None,
                band_w: float = 50.0, target_w: float = 0.0) -> float | None:
    """Seconds after ``t_step`` until |net - target| stays within ``band_w`` (up to
    ``t_end``); None if it never does."""
    after = [s for s in samples if s.t >= t_step and (t_end is None or s.t < t_end)]
    last_out = None
    for s in after:
        if abs(s.net_w - target_w) > band_w:
            last_out = s.t
    if last_out is None:
        return 0.0
    if last_out >= after[-1].t:
        return None
    return last_out + (after[1].t - after[0].t) - t_step


def sign_changes(samples: list[Sample], band_w: float = 50.0, target_w: float = 0.0) -> int:
    """Crossings of the target beyond the band (oscillation count)."""
    last = 0
    changes = 0
    for s in samples:
        e = s.net_w - target_w
        sign = 1 if e > band_w else (-1 if e < -band_w else 0)
        if sign and last and sign != last:
            changes += 1
        if sign:
            last = sign
    return changes
