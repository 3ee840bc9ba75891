"""EV mode: charge a car fully by departure without pushing a quarter over the threshold.

Pure pieces (time passed in as UTC seconds, no clocks, no MQTT); ``control.py`` wires
them into the decision of each reading:

- :class:`BaseProfile` learns the household's import without the car per local quarter of
  the day (the mean of the last ``days`` days; every other output and appliance is in it);
- :func:`plan` plans the quarters until departure against the threshold: each quarter can
  take ``threshold - margin - base forecast`` (clamped to what the charger can do, 0 below
  its minimum); night-tariff quarters are filled first, then the earliest; when the need
  does not fit, the threshold is raised by the least amount (10 W steps) that makes it fit;
- :func:`to_current` turns a power into the charger's current and phases (1 A steps; a
  3-phase charger drops to one phase when the power is below its 3-phase minimum);
- :class:`Hysteresis` is evcc's enable / disable: start when there is room for the minimum
  for ``enable_delay_s``, stop when there has not been for ``disable_delay_s`` (PV) or at
  once when the quarter threshold is at stake (the headroom rule never waits).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

QUARTER_S = 900
SLOTS = 96
MAX_PLAN = 200  # quarters (50 h): the contract's limit of EvDecision.plan


@dataclass(frozen=True)
class EvParams:
    """EV mode tuning (see docs/load-controller.md, EV mode)."""

    timezone: str = "Europe/Brussels"
    voltage_v: float = 230.0
    margin_w: float = 150.0  # kept free under the threshold in the plan
    quarter_margin_w: float = 100.0  # in real time: the quarter is aimed this far under it
    fallback_base_w: float = 600.0  # base forecast of a quarter never seen
    enable_delay_s: float = 60.0  # evcc's enable delay (1 min)
    disable_delay_s: float = 180.0  # evcc's disable delay (3 min)
    night_start_h: int = 22  # Belgian two-rate meters: night 22:00-07:00 and the weekend
    night_end_h: int = 7
    price_eur_per_kw_year: float = 53.0  # the capacity tariff's price (Fluvius)
    ready_before_s: float = 1800.0  # plan to be done this long before departure (a quarter
    # of the time left at most): the taper and a busier night than forecast fit in it
    raise_step_w: float = 10.0
    reserve: float = 0.02  # planned on top of the need (and reserve_wh): pauses, the taper
    reserve_wh: float = 100.0
    charger_lag_s: float = 5.0  # a lower current shows this long after it is sent (delay, ramp)
    topup_s: float = 3600.0  # the last hour before departure: every quarter at the top
    taper_s: float = 30.0  # drawing less than told this long: the car tapers (evmode._taper)
    quarter_end_s: float = 10.0  # a set sent this close to a quarter's end takes effect in the
    # next one (a charger's 3-5 s delay, then its ramp: 16 -> 6 A at 2 A/s is 5 s more): no
    # start and no rise then, and no more than the next quarter's plan


@dataclass
class BaseProfile:
    """Mean import without the car per local quarter of the day, over the last ``days`` days."""

    days: int = 7
    history: dict[int, list[float]] = field(default_factory=dict)
    slot: int | None = None
    total: float = 0.0
    n: int = 0

    def add(self, slot: int, base_w: float) -> None:
        """One reading's base load in quarter-of-day ``slot``; a new slot closes the last."""
        if slot != self.slot:
            if self.slot is not None and self.n:
                past = self.history.setdefault(self.slot, [])
                past.append(round(self.total / self.n, 1))
                del past[:-self.days]
            self.slot, self.total, self.n = slot, 0.0, 0
        self.total += base_w
        self.n += 1

    def forecast_w(self, slot: int, fallback_w: float) -> float:
        past = self.history.get(slot)
        if past:
            return sum(past) / len(past)
        known = [sum(v) / len(v) for v in self.history.values() if v]
        return sum(known) / len(known) if known else fallback_w

    def to_dict(self) -> dict[str, Any]:
        return {"days": self.days, "history": {str(k): v for k, v in self.history.items()}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BaseProfile:
        hist = {int(k): [float(x) for x in v] for k, v in dict(d.get("history") or {}).items()
                if 0 <= int(k) < SLOTS}
        return cls(days=int(d.get("days", 7)), history=hist)


@dataclass(frozen=True)
class Charger:
    """What the charger can do: current range, phases it is wired for, voltage."""

    min_a: float
    max_a: float
    phases: int
    voltage_v: float = 230.0

    def min_w(self, phases: int | None = None) -> float:
        return self.min_a * self.voltage_v * (phases or 1)

    def max_w(self) -> float:
        return self.max_a * self.voltage_v * self.phases

    def cap(self, room_w: float) -> float:
        """The most the charger can draw within ``room_w``, in whole amps (0 below its minimum)."""
        if self.phases == 3 and room_w >= self.min_w(3):
            return self._whole(min(room_w, self.max_w()), 3)
        if room_w < self.min_w(1):
            return 0.0
        return self._whole(min(room_w, self.max_a * self.voltage_v), 1)

    def _whole(self, power_w: float, phases: int) -> float:
        step = self.voltage_v * phases
        return math.floor(power_w / step + 1e-9) * step


def to_current(power_w: float, ch: Charger, phases_now: int | None = None) -> tuple[float, int]:
    """(current A in whole amps, phases) for ``power_w``; (0, phases) when below the minimum.
    ``phases_now``: keep those phases when the power allows them (no switching back and forth)."""
    options = [3, 1] if ch.phases == 3 else [1]
    if phases_now in options:
        options.remove(phases_now)
        options.insert(0, phases_now)
    for ph in options:
        amps = math.floor(power_w / (ch.voltage_v * ph) + 1e-9)
        if amps >= ch.min_a:
            if ph == 1 and ch.phases == 3 and amps > ch.max_a and power_w >= ch.min_w(3):
                continue  # 3 phases carry more than one phase can
            return float(min(amps, ch.max_a)), ph
    return 0.0, phases_now or (1 if ch.phases == 1 else 3)


@dataclass(frozen=True)
class Slot:
    start: int  # UTC s
    seconds: float  # of the slot still ahead (the running quarter: the rest of it)
    base_w: float
    power_w: float = 0.0


@dataclass(frozen=True)
class Plan:
    slots: tuple[Slot, ...]
    threshold_w: float
    raise_w: float
    need_wh: float
    planned_wh: float
    departure: int | None

    @property
    def feasible(self) -> bool:
        return self.planned_wh >= self.need_wh - 1.0

    def power_at(self, t: float) -> float:
        for s in self.slots:
            if s.start <= t < s.start + QUARTER_S:
                return s.power_w
        return 0.0

    def eta(self, now: float) -> int | None:
        """When the plan has charged the need (UTC s), None when it never does."""
        done = 0.0
        for s in self.slots:
            if s.power_w <= 0:
                continue
            begin = max(float(s.start), now)
            if done + s.power_w * s.seconds / 3600 >= self.need_wh - 1.0:
                return int(begin + (self.need_wh - done) * 3600 / s.power_w)
            done += s.power_w * s.seconds / 3600
        return None if done < self.need_wh - 1.0 else int(now)


def is_night(t: int, tz: ZoneInfo, p: EvParams) -> bool:
    local = dt.datetime.fromtimestamp(t, tz)
    return local.weekday() >= 5 or local.hour >= p.night_start_h or local.hour < p.night_end_h


def quarter_slot(t: float, tz: ZoneInfo) -> int:
    local = dt.datetime.fromtimestamp(t, tz)
    return (local.hour * 60 + local.minute) // 15


def next_departure(now: float, hhmm: str, tz: ZoneInfo) -> int:
    """The next local ``HH:MM`` after ``now`` (UTC s)."""
    hh, mm = (int(x) for x in hhmm.split(":"))
    local = dt.datetime.fromtimestamp(now, tz)
    at = dt.datetime.combine(local.date(), dt.time(hh, mm), tz)
    if at.timestamp() <= now:
        at = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(hh, mm), tz)
    return int(at.timestamp())


def slots_until(now: float, until: int, base: Callable[[int], float]) -> list[Slot]:
    """The quarters from the running one to ``until`` (at most MAX_PLAN)."""
    start = int(now) - int(now) % QUARTER_S
    out: list[Slot] = []
    while start < until and len(out) < MAX_PLAN:
        ahead = min(start + QUARTER_S, until) - max(float(start), now)
        out.append(Slot(start, max(ahead, 0.0), base(start)))
        start += QUARTER_S
    return out


def _least(fn: Callable[[float], float], goal: float, hi: float, step: float) -> float:
    """The least ``x`` in [0, ``hi``] on a ``step`` grid with ``fn(x) >= goal`` (``fn``
    non-decreasing); ``hi`` when none."""
    lo, top = 0.0, hi
    while top - lo > step:
        mid = (lo + top) / 2
        lo, top = (mid, top) if fn(mid) < goal else (lo, mid)
    x = math.floor(lo / step) * step
    while fn(x) < goal and x < hi:
        x += step
    return min(x, hi)


def plan(now: float, slots: list[Slot], need_wh: float, threshold_w: float, ch: Charger,
         p: EvParams, tz: ZoneInfo, allow_raise: bool = True,
         departure: int | None = None, paid_w: float = 0.0, asap: bool = False) -> Plan:
    """Fill the slots with ``need_wh`` at the lowest level that does it (water-filling: each
    quarter draws what ``level - base`` lets the charger draw), night-tariff quarters first:
    the lowest level over the night quarters under ``threshold - margin``; if they are not
    enough, they take that much and the day quarters the rest at the lowest level; if all
    are not enough, the least raise (``raise_step_w`` steps) that makes it fit, if
    ``allow_raise`` (and when even full power does not, the raise that gives the most).

    ``paid_w``: a level this charge's raise already took the month peak to: it costs nothing
    more, so it is the top instead of ``threshold - margin`` when higher, with no raise (else
    every quarter's plan would raise the peak its own raise set again by the margin).
    ``asap`` (the last hour before departure): when the need fits under the top, every
    quarter at the top, the car stopping when full (a car that takes less than planned, its
    taper, still ends full). ``raise_w``: a new raise, the level above ``threshold - margin``."""
    floor = threshold_w - p.margin_w
    top = max(floor, paid_w)
    night = [is_night(s.start, tz, p) for s in slots]

    def energy(level: float, which: bool | None = None) -> float:
        return sum(ch.cap(level - s.base_w) * s.seconds / 3600
                   for s, n in zip(slots, night, strict=True) if which is None or n == which)

    hi = ch.max_w() + max((s.base_w for s in slots), default=0.0)
    levels = {True: 0.0, False: 0.0}  # night, day
    raise_w = 0.0
    if need_wh <= 0:
        pass
    elif asap and energy(top) >= need_wh:
        levels = {True: top, False: top}
    elif energy(top, True) >= need_wh:
        levels[True] = _least(lambda x: energy(x, True), need_wh, top, p.raise_step_w)
    elif energy(top) >= need_wh:
        rest = need_wh - energy(top, True)
        levels = {True: top, False: _least(lambda x: energy(x, False), rest, top, p.raise_step_w)}
    elif allow_raise:
        goal = min(need_wh, energy(hi) - 1.0)
        r = _least(lambda r: energy(top + r), goal, hi, p.raise_step_w)
        levels = {True: top + r, False: top + r}
    else:
        levels = {True: top, False: top}
    level = max(levels.values())
    if need_wh > 0 and level > top:  # a new raise (under ``top``: paid already, none)
        raise_w = round(level - floor, 1)
    out = tuple(Slot(s.start, s.seconds, round(s.base_w, 1),
                     round(ch.cap(levels[n] - s.base_w), 1) if s.seconds > 0 else 0.0)
                for s, n in zip(slots, night, strict=True))
    planned = sum(s.power_w * s.seconds / 3600 for s in out)
    return Plan(out, threshold_w, raise_w, need_wh, planned, departure)


@dataclass
class Hysteresis:
    """evcc's enable / disable delays around the charger's minimum."""

    charging: bool = False
    since: float | None = None  # when the room first crossed the other way

    def step(self, now: float, room_w: float, min_w: float, enable_s: float,
             disable_s: float) -> tuple[bool, float]:
        """-> (charging, seconds left of the running delay)."""
        if self.charging:
            if room_w >= min_w:
                self.since = None
                return True, 0.0
            self.since = now if self.since is None else self.since
            if now - self.since >= disable_s:
                self.charging, self.since = False, None
                return False, 0.0
            return True, disable_s - (now - self.since)
        if room_w < min_w:
            self.since = None
            return False, 0.0
        self.since = now if self.since is None else self.since
        if now - self.since >= enable_s:
            self.charging, self.since = True, None
            return True, 0.0
        return False, enable_s - (now - self.since)

    def stop(self) -> None:
        self.charging, self.since = False, None
