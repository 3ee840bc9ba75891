"""The decision of one ``ev`` output on one reading (mode ``ev``), from the pieces in ev.py.

Three goals, in the order a Belgian household wants them:

1. never push the running quarter over the threshold: the power the car may draw is what
   it draws now (the charger's report) plus the forecaster's ``headroom_w`` (which holds the
   quarter's energy so far, the household's steps and every other output), minus what other
   outputs were told and the meter does not show yet, minus ``margin_w``; an announced raise
   adds ``raise_w`` x 900 s / the seconds left of the quarter;
2. be ready by departure: the plan (re-made at every quarter, at plug-in and on a change
   of target) says how much to draw in this quarter;
3. charge from PV surplus by day: the export without the car, with evcc's enable / disable
   delays around the charger's minimum.

The car draws the larger of (2) and (3), capped by (1); below the charger's minimum it
pauses. After a pause the headroom must leave room for the minimum for ``enable_delay_s``
before it starts again (no toggling at every household step); a cap never waits.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import dataclass, field, replace
from typing import Any
from zoneinfo import ZoneInfo

from p1common.payloads import OutputConfig

from .ev import (
    QUARTER_S,
    BaseProfile,
    Charger,
    EvParams,
    Hysteresis,
    Plan,
    Slot,
    is_night,
    next_departure,
    plan,
    quarter_slot,
    slots_until,
    to_current,
)
from .modes import fmt_w

log = logging.getLogger("load-controller")

FULL_WH = 200_000.0  # "until full": more than any car takes


@dataclass
class EvState:
    """What the controller keeps about one charger (persisted: a restart continues the plan)."""

    plan: Plan | None = None
    plan_quarter: int | None = None
    plan_key: tuple[Any, ...] | None = None
    current_a: float = 0.0
    phases: int = 1
    pv: Hysteresis = field(default_factory=Hysteresis)
    grid: Hysteresis = field(default_factory=Hysteresis)
    announced_raise_w: float = 0.0
    paid_w: float = 0.0  # the threshold a raise of this charge announced (ev.plan's paid_w)
    accept_w: float | None = None  # the most the car takes now (its taper)
    short_since: float | None = None  # since when it draws less than it was told
    accept_at_wh: float = 0.0  # the session's energy then (less: a new charge)
    short_told_w: float = 0.0  # what it was told meanwhile (a new command starts it over)
    end_pause_q: int | None = None  # paused by the end of this quarter: the next starts at once
    rendered: tuple[Plan, list[dict[str, Any]]] | None = None  # the plan as control shows it

    def to_dict(self) -> dict[str, Any]:
        p = self.plan
        return {
            "plan": None if p is None else {
                "slots": [[s.start, s.seconds, s.base_w, s.power_w] for s in p.slots],
                "threshold_w": p.threshold_w, "raise_w": p.raise_w, "need_wh": p.need_wh,
                "planned_wh": p.planned_wh, "departure": p.departure},
            "plan_quarter": self.plan_quarter,
            "plan_key": list(self.plan_key) if self.plan_key is not None else None,
            "current_a": self.current_a, "phases": self.phases,
            "pv_charging": self.pv.charging, "grid_charging": self.grid.charging,
            "announced_raise_w": self.announced_raise_w, "paid_w": self.paid_w,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EvState:
        st = cls()
        raw = d.get("plan")
        if isinstance(raw, dict):
            st.plan = Plan(tuple(Slot(int(a), float(b), float(c), float(e)) for a, b, c, e in raw["slots"]),
                           float(raw["threshold_w"]), float(raw["raise_w"]), float(raw["need_wh"]),
                           float(raw["planned_wh"]),
                           None if raw.get("departure") is None else int(raw["departure"]))
        st.plan_quarter = d.get("plan_quarter")
        key = d.get("plan_key")
        st.plan_key = tuple(key) if isinstance(key, list) else None
        st.current_a = float(d.get("current_a", 0.0))
        st.phases = int(d.get("phases", 1))
        st.pv.charging = bool(d.get("pv_charging", False))
        st.grid.charging = bool(d.get("grid_charging", False))
        st.announced_raise_w = float(d.get("announced_raise_w", 0.0))
        st.paid_w = float(d.get("paid_w", 0.0))
        return st


@dataclass
class EvInputs:
    """What the controller knows at this reading, for one ev output."""

    now: float  # the controller's clock (timers)
    wall: float  # the reading's meter time, UTC s (plan, departure)
    net_w: float
    draw_w: float  # what the car draws now (the charger's report, else the meter's view)
    head_w: float | None  # forecaster's headroom minus other outputs' pending; None: stale
    threshold_w: float | None
    state: dict[str, Any]


@dataclass
class EvOutcome:
    current_a: float
    phases: int
    level_w: float
    reason: str
    events: list[str] = field(default_factory=list)


def charger_of(cfg: OutputConfig, p: EvParams) -> Charger:
    return Charger(cfg.min_current_a, cfg.max_current_a, cfg.phases, p.voltage_v)


def iso(t: float, tz: ZoneInfo) -> str:
    return dt.datetime.fromtimestamp(t, tz).isoformat(timespec="seconds")


def hhmm(t: float, tz: ZoneInfo) -> str:
    return dt.datetime.fromtimestamp(t, tz).strftime("%H:%M")


def tapered(ch: Charger, accept_w: float) -> Charger:
    """The charger as a plan may count on it while the car takes at most ``accept_w``: the
    phases that carry it (one below the 3-phase minimum), whole amps (at least the minimum)."""
    phases = 3 if ch.phases == 3 and accept_w >= ch.min_w(3) else 1
    amps = math.floor(accept_w / (ch.voltage_v * phases) + 1e-9)
    return replace(ch, max_a=max(ch.min_a, min(ch.max_a, amps)), phases=phases)


class EvMode:
    """Plans and decides every ev output of a site; learns the base load."""

    def __init__(self, params: EvParams | None = None) -> None:
        self.p = params or EvParams()
        self.tz = ZoneInfo(self.p.timezone)
        self.base = BaseProfile()
        self.states: dict[str, EvState] = {}
        self.price_eur_per_kw_year = self.p.price_eur_per_kw_year  # the site's, from peak/month
        self.dirty = False  # something worth saving changed
        self.plan_dirty = False  # a plan changed: save at once

    def learn(self, wall: float, base_w: float) -> None:
        """One reading's household import without the cars."""
        slot = quarter_slot(wall, self.tz)
        if slot != self.base.slot and self.base.slot is not None:
            self.dirty = True
        self.base.add(slot, base_w)

    def base_at(self, t: int) -> float:
        return self.base.forecast_w(quarter_slot(t, self.tz), self.p.fallback_base_w)

    # -- the plan ------------------------------------------------------------------------------
    def _need(self, cfg: OutputConfig, state: dict[str, Any]) -> tuple[float | None, float]:
        """(target Wh or None = until full, energy still needed Wh)."""
        session = state.get("session_wh")
        done = float(session) if isinstance(session, (int, float)) else 0.0
        if cfg.energy_kwh is None:
            return None, FULL_WH
        target = cfg.energy_kwh * 1000.0
        return target, max(0.0, target - done)

    def replan(self, cfg: OutputConfig, st: EvState, inp: EvInputs) -> list[str]:
        """Plan the quarters until departure (no departure: the next 24 h, no raise), at every
        quarter afresh: a raise that was used is the month peak (the threshold) by then."""
        target, need = self._need(cfg, inp.state)
        ch = charger_of(cfg, self.p)
        if st.accept_w is not None:  # the car tapers: it takes this much at most
            ch = tapered(ch, st.accept_w)
        threshold = inp.threshold_w if inp.threshold_w is not None else 2500.0
        dep = next_departure(inp.wall, cfg.departure, self.tz) if cfg.departure else None
        until = dep if dep is not None else int(inp.wall) + 86400
        if dep is not None:
            until = int(dep - min(self.p.ready_before_s, (dep - inp.wall) / 4))
        slots = slots_until(inp.wall, until, self.base_at)
        if dep is None:  # as soon as cheap / allowed: the night quarters under the threshold
            slots = [s if is_night(s.start, self.tz, self.p) else Slot(s.start, 0.0, s.base_w)
                     for s in slots]
        extra = (need * self.p.reserve + self.p.reserve_wh) if target is not None and need > 0 else 0
        # the month peak this charge's raise set costs nothing more: the quarters may go up to
        # it (less the real-time margin) without a new raise
        paid = min(st.paid_w, threshold) - self.p.quarter_margin_w if st.paid_w else 0.0
        pl = plan(inp.wall, slots, need + extra, threshold, ch, self.p, self.tz,
                  allow_raise=dep is not None and target is not None, departure=dep,
                  paid_w=paid, asap=dep is not None and dep - inp.wall <= self.p.topup_s)
        st.plan = replace(pl, need_wh=need)
        if pl.raise_w > 0:  # the threshold announced
            st.paid_w = max(st.paid_w, threshold + pl.raise_w)
        st.plan_quarter = int(inp.wall) // QUARTER_S
        self.dirty = self.plan_dirty = True
        events = []
        raise_w = st.plan.raise_w
        if raise_w > 0 and abs(raise_w - st.announced_raise_w) >= self.p.raise_step_w:
            events.append(self._raise_text(cfg, st.plan, need))
        # a raise once used is the month peak, the threshold of the next plans: no raise then
        st.announced_raise_w = raise_w if raise_w > 0 else 0.0
        return events

    def _raise_text(self, cfg: OutputConfig, pl: Plan, need: float) -> str:
        cost = self.raise_cost(pl.raise_w)
        when = hhmm(pl.departure, self.tz) if pl.departure else "departure"
        what = ("" if pl.feasible else
                f"; even so only {pl.planned_wh / 1000:.1f} of {need / 1000:.1f} kWh fit")
        return (f"output {cfg.id}: raising the quarter threshold by {fmt_w(pl.raise_w)} to "
                f"{fmt_w(pl.threshold_w + pl.raise_w)} to charge {need / 1000:.1f} kWh by {when}"
                f" ({cost:.2f} EUR/year in capacity tariff){what}")

    def raise_cost(self, raise_w: float) -> float:
        """A month's peak counts for a twelfth in the 12-month average billed per year."""
        return round(raise_w / 1000.0 * self.price_eur_per_kw_year / 12.0, 2)

    # -- the decision of a reading --------------------------------------------------------------
    def decide(self, cfg: OutputConfig, inp: EvInputs) -> EvOutcome:
        st = self.states.setdefault(cfg.id, EvState())
        ch = charger_of(cfg, self.p)
        connected = inp.state.get("connected")
        if connected is False:
            if st.plan is not None:
                self.dirty = self.plan_dirty = True
            st.plan, st.plan_key, st.announced_raise_w, st.paid_w = None, None, 0.0, 0.0
            st.accept_w = st.short_since = None
            st.pv.stop()
            st.grid.stop()
            return self._out(st, 0.0, st.phases, ch, "paused: no car plugged in")
        target, need = self._need(cfg, inp.state)
        self._taper(st, inp, ch)
        key = (cfg.energy_kwh, cfg.departure, cfg.min_current_a, cfg.max_current_a, cfg.phases)
        events: list[str] = []
        if st.plan is None or st.plan_key != key or st.plan_quarter != int(inp.wall) // QUARTER_S:
            st.plan_key = key
            events = self.replan(cfg, st, inp)
        assert st.plan is not None
        if need <= 0:
            st.pv.stop()
            st.grid.stop()
            return self._out(st, 0.0, st.phases, ch, f"done: {target or 0:.0f} Wh charged", events)
        plan_w = st.plan.power_at(inp.wall)
        surplus = inp.draw_w - inp.net_w  # export without the car
        pv_on, pv_left = st.pv.step(inp.now, surplus, ch.min_w(1), self.p.enable_delay_s,
                                    self.p.disable_delay_s)
        pv_w = max(surplus, ch.min_w(1)) if pv_on else 0.0
        want = max(plan_w, pv_w)
        why = (f"plan {fmt_w(plan_w)} this quarter" if plan_w >= pv_w else
               f"PV surplus {fmt_w(surplus)}")
        if pv_left > 0 and plan_w <= 0:
            why += (f" (PV {'start' if not pv_on else 'stop'} in {pv_left:.0f} s)")
        next_w = max(st.plan.power_at(inp.wall + QUARTER_S - inp.wall % QUARTER_S), pv_w)
        return self._capped(cfg, st, ch, inp, want, why, events, next_w)

    def _taper(self, st: EvState, inp: EvInputs, ch: Charger) -> None:
        """A car near full takes less than it is told (the battery's constant-voltage phase):
        after ``taper_s`` of drawing at least half an amp less than the same command (not a
        ramp after a new one), what it takes is what the next plans count on (else their last
        quarters deliver less than planned)."""
        session = inp.state.get("session_wh")
        done = float(session) if isinstance(session, (int, float)) else 0.0
        if st.accept_w is not None and done < st.accept_at_wh - 1.0:  # another charge
            st.accept_w = None
        told_w = st.current_a * ch.voltage_v * st.phases
        if (st.current_a <= 0 or inp.draw_w <= 0  # nothing: a pause (or no report), no taper
                or inp.draw_w >= told_w - ch.voltage_v * st.phases / 2):
            st.short_since = None
            return
        if st.short_since is None or told_w != st.short_told_w:  # a new command: it ramps
            st.short_since, st.short_told_w = inp.now, told_w
        if inp.now - st.short_since >= self.p.taper_s:
            st.accept_w, st.accept_at_wh = inp.draw_w, done

    def _capped(self, cfg: OutputConfig, st: EvState, ch: Charger, inp: EvInputs, want: float,
                why: str, events: list[str], next_w: float) -> EvOutcome:
        """The headroom rule on top of what the plan or the PV want; ``next_w``: what the next
        quarter wants (its plan, or the PV), the most in the quarter's last seconds."""
        allowed = None
        if inp.head_w is not None:
            left = max(QUARTER_S - inp.wall % QUARTER_S, 1.0)
            raise_w = st.plan.raise_w if st.plan is not None else 0.0
            # the margin is energy (100 W over the quarter: 25 Wh), kept for a late kettle
            head = inp.head_w + (raise_w - self.p.quarter_margin_w) * QUARTER_S / left
            if head < 0:  # a cut shows only after the charger's lag: cut more to make up
                lag = self.p.charger_lag_s  # for it; in the last seconds it would show only
                head = head * left / (left - lag) if left > lag + 1 else 0.0  # in the next
            allowed = inp.draw_w + head
        power = want if allowed is None else min(want, allowed)
        capped = allowed is not None and allowed < want
        starting = st.current_a <= 0
        left = QUARTER_S - inp.wall % QUARTER_S
        if left <= self.p.quarter_end_s:  # what is sent now shows in the next quarter
            if starting:
                return self._out(st, 0.0, st.phases, ch, f"paused: {why}; the quarter ends "
                                 f"in {left:.0f} s, next quarter {fmt_w(next_w)}", events)
            now_w = st.current_a * ch.voltage_v * st.phases
            if min(now_w, next_w) < power:
                why += f"; the quarter ends in {left:.0f} s, next quarter {fmt_w(next_w)}"
                power, capped = max(min(now_w, next_w), 0.0), True
        room = ch.cap(power)
        quarter = int(inp.wall) // QUARTER_S
        delay = self.p.enable_delay_s if starting and not st.pv.charging else 0.0
        if st.end_pause_q is not None and st.end_pause_q != quarter:
            delay = 0.0  # only the end of the last quarter paused it: a new quarter, at once
        on, wait = st.grid.step(inp.now, room if want > 0 else 0.0, ch.min_w(1), delay, 0.0)
        if want <= 0:  # the plan pauses it, not the household: its next quarter starts at once
            st.end_pause_q = quarter
        elif not starting and not on:  # a pause in the last 3 minutes of a quarter: its end
            late = QUARTER_S - inp.wall % QUARTER_S <= 180
            st.end_pause_q = quarter if late and capped else None
        elif on:
            st.end_pause_q = None
        if not on or room <= 0:
            if want <= 0:
                text = f"paused: {why}"
            elif wait > 0:
                text = f"paused: {why}, room for the minimum; starting in {wait:.0f} s"
            else:
                text = (f"paused: {why}, but the quarter has room for {fmt_w(max(power, 0.0))} "
                        f"(minimum {fmt_w(ch.min_w(1))})")
            return self._out(st, 0.0, st.phases, ch, text, events)
        amps, phases = to_current(room, ch, st.phases if not starting else None)
        text = f"{amps:.0f} A x {phases}: {why}"
        if capped:
            text += f", capped by the quarter's headroom to {fmt_w(room)}"
        if st.plan is not None and st.plan.raise_w > 0:
            text += f" (threshold raised by {fmt_w(st.plan.raise_w)})"
        return self._out(st, amps, phases, ch, text, events)

    def _out(self, st: EvState, amps: float, phases: int, ch: Charger, reason: str,
             events: list[str] | None = None) -> EvOutcome:
        if (amps, phases) != (st.current_a, st.phases):
            self.dirty = True
            if (amps > 0) != (st.current_a > 0):
                self.plan_dirty = True  # a start or a stop: saved at once
        st.current_a, st.phases = amps, phases
        return EvOutcome(amps, phases, amps * ch.voltage_v * phases, reason, events or [])

    # -- what control shows ---------------------------------------------------------------------
    def decision(self, cfg: OutputConfig, state: dict[str, Any] | None, wall: float) -> dict[str, Any]:
        st = self.states.setdefault(cfg.id, EvState())
        state = state or {}
        target, _ = self._need(cfg, state)
        doc: dict[str, Any] = {"current_a": st.current_a, "phases": st.phases}
        for k in ("power_w", "connected", "session_wh"):
            if state.get(k) is not None:
                doc[k] = state[k]
        if target is not None:
            doc["target_wh"] = target
        pl = st.plan
        if pl is not None:
            if pl.departure is not None:
                doc["departure"] = iso(pl.departure, self.tz)
            eta = pl.eta(wall)
            if eta is not None and pl.need_wh < FULL_WH:
                doc["eta"] = iso(eta, self.tz)
            doc["raise_w"] = pl.raise_w
            doc["raise_cost_eur_year"] = self.raise_cost(pl.raise_w)
            if st.rendered is None or st.rendered[0] is not pl:
                st.rendered = (pl, [{"start": iso(s.start, self.tz), "power_w": s.power_w,
                                     "base_w": s.base_w, "threshold_w": pl.threshold_w + pl.raise_w}
                                    for s in pl.slots])
            doc["plan"] = st.rendered[1]
        return doc

    # -- persistence ----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"base": self.base.to_dict(), "outputs": {k: v.to_dict() for k, v in self.states.items()}}

    def load(self, d: dict[str, Any]) -> None:
        self.base = BaseProfile.from_dict(dict(d.get("base") or {}))
        self.states = {str(k): EvState.from_dict(v) for k, v in dict(d.get("outputs") or {}).items()}

