"""The controller: every output's decision on each reading, as plain values.

No clock, no MQTT: :meth:`Controller.on_reading`, :meth:`Controller.on_peak`,
:meth:`Controller.on_state` and :meth:`Controller.tick` take the time (seconds on
any monotonic scale) and return what to publish. ``service.py`` wires it to MQTT;
tests and benchmarks replay readings at any speed.

Order of one step (one reading):

1. what the meter shows of each output (:class:`~load_controller.modes.LevelTrack`)
   and whether proportional loads really draw (:class:`~load_controller.modes.ResponseModel`);
2. switch outputs (on/off/tariff/surplus) that are on, lowest priority first: a
   surplus switch past its minimum on-time goes off on import; each one sees the
   net power as it will be after the decisions taken before it;
3. switch outputs that are off, highest priority first: each sees the export the
   ones before it left (a switch that has just gone on counts with its rated power
   until the meter shows it);
4. peak guard on switch outputs (keep from starting, shed);
5. proportional outputs share what is left, highest priority first.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

from p1common import CONTRACT_VERSION
from p1common.payloads import OutputConfig

from .ev import EvParams
from .evmode import EvInputs, EvMode
from .modes import (
    LevelTrack,
    ResponseModel,
    SurplusSwitch,
    fmt_w,
    proportional_step,
    ramp_w,
    tariff_on,
)

log = logging.getLogger("load-controller")

WATCHDOG_REASON = "watchdog: no meter data for {s} s"


@dataclass(frozen=True)
class Params:
    """Tuning of the controller (defaults suit 1 s telegrams; see docs/load-controller.md)."""

    ttl_s: float = 10.0
    watchdog_s: float = 10.0
    gain: float = 0.9
    device_delay_s: float = 0.5
    meter_lag_s: float = 0.1
    meter_average_s: float = 1.0  # the meter's power is the mean over this long (0: instant)
    confirm_timeout_s: float = 2.0
    follow_timeout_s: float = 5.0
    peak_max_age_s: float = 60.0
    deadband_w: float = 0.0
    ramp_lead_s: float = 1.5  # a household ramp is extrapolated this far ahead
    probe_s: float = 30.0  # a load judged not drawing is probed this long after the verdict,
    probe_max_s: float = 960.0  # then twice as long after each probe that confirms it, up to this
    probe_hold_s: float = 2.5  # how long a probe holds the command at 0 before judging
    ev: EvParams = field(default_factory=EvParams)  # EV mode (ev.py)
    state_fresh_s: float = 15.0  # a charger's power report is used for this long


@dataclass
class Command:
    """One ``output/<id>/set`` to publish."""

    output_id: str
    payload: dict[str, Any]


@dataclass
class Step:
    """What one reading or tick produced."""

    commands: list[Command] = field(default_factory=list)
    control: dict[str, Any] | None = None
    events: list[str] = field(default_factory=list)  # log lines (following / watchdog changes)


@dataclass
class OutputRuntime:
    cfg: OutputConfig
    track: LevelTrack
    index: int
    seq: int
    level_w: float = 0.0
    reason: str = "off: waiting for the first reading"
    surplus: SurplusSwitch = field(default_factory=SurplusSwitch)
    model: ResponseModel | None = None
    visible_w: float = 0.0
    prev_visible_w: float | None = None
    changed_at: float = 0.0
    state: dict[str, Any] | None = None
    state_t: float | None = None
    following: bool | None = None
    follow_note: str = "no state reports"
    guard_note: str | None = None
    not_drawing_since: float | None = None
    resumed_at: float | None = None  # the reading at which the load was seen drawing again
    probe_wait_s: float = 0.0  # time from the verdict (or the last probe) to the next probe
    probe: tuple[float, float, float] | None = None  # (started at, net before, level before)
    ev_current_a: float = 0.0  # kind ev: the current and phases commanded
    ev_phases: int = 1

    @property
    def proportional(self) -> bool:
        return self.cfg.mode == "proportional"

    @property
    def drawing(self) -> bool:
        return self.model.drawing if self.model is not None else True

    @property
    def on(self) -> bool:
        return self.level_w > 0

    @property
    def pct(self) -> float:
        return round(100.0 * self.level_w / self.cfg.rated_w, 1)

    @property
    def effective_w(self) -> float:
        """What the meter shows this output drawing (0 for a load that cut out)."""
        if not self.drawing:
            return 0.0
        return self.visible_w

    def pending_w(self) -> float:
        return self.level_w - self.visible_w


class Controller:
    """Decides every output of one site."""

    def __init__(self, site: str, outputs: list[OutputConfig] | None = None,
                 params: Params | None = None, seq_base: int = 0) -> None:
        self.site = site
        self.params = params or Params()
        self.seq_base = seq_base
        self.outputs: dict[str, OutputRuntime] = {}
        self.last_reading_t: float | None = None
        self.started_t: float | None = None
        self.watchdog = False
        self.prev_net_w: float | None = None
        self.net_w: float | None = None
        self.tariff: int | None = None
        self.tariff_low: bool | None = None
        self.peak: dict[str, Any] | None = None
        self.peak_t: float | None = None
        self.period_s = 1.0  # telegram period, learnt from the readings
        self.household_hist: list[float] = []  # net minus what the outputs draw, per reading
        self.ts_offset: float | None = None  # our clock minus the meter's, fastest reading
        self.evmode = EvMode(self.params.ev)
        self.emit_control = True  # benchmarks that never read control turn it off
        self.wall: float | None = None  # the last reading's meter time (UTC s)
        self.set_outputs(outputs or [])

    # -- configuration -------------------------------------------------------------
    def set_outputs(self, outputs: list[OutputConfig], ts: str = "") -> Step:
        """Apply a (validated) configuration live; outputs that disappear get one final off."""
        step = Step()
        old = self.outputs
        new: dict[str, OutputRuntime] = {}
        for i, cfg in enumerate(outputs):
            rt = old.get(cfg.id)
            if rt is None:
                rt = OutputRuntime(cfg=cfg, track=self._track(), index=i, seq=self.seq_base)
            elif (rt.cfg.mode, rt.cfg.kind) != (cfg.mode, cfg.kind) or rt.cfg.rated_w != cfg.rated_w:
                rt.surplus.reset()
                rt.model = None
            rt.cfg, rt.index = cfg, i
            if cfg.mode == "proportional" and rt.model is None:
                rt.model = self._model(cfg.rated_w)
                if rt.level_w > cfg.rated_w:
                    rt.level_w = cfg.rated_w
            new[cfg.id] = rt
        for oid, rt in old.items():
            if oid not in new:
                rt.level_w = 0.0
                rt.seq += 1
                step.commands.append(Command(oid, self._set_payload(rt, ts)))
                step.events.append(f"output {oid} removed from the configuration: sent off")
        self.outputs = new
        return step

    def _model(self, rated_w: float) -> ResponseModel:
        return ResponseModel(delays_s=delay_grid(self.params.device_delay_s, self.period_s),
                             margin_w=max(100.0, 0.1 * rated_w))

    def _track(self) -> LevelTrack:
        p = self.params
        return LevelTrack(device_delay_s=p.device_delay_s, confirm_timeout_s=p.confirm_timeout_s,
                          meter_lag_s=p.meter_lag_s, average_s=p.meter_average_s)

    # -- inputs --------------------------------------------------------------------
    def on_peak(self, now: float, peak: dict[str, Any]) -> None:
        self.peak, self.peak_t = peak, now

    def on_state(self, now: float, output_id: str, state: dict[str, Any]) -> None:
        rt = self.outputs.get(output_id)
        if rt is None:
            return
        rt.state, rt.state_t = state, now
        seq = state.get("seq")
        if isinstance(seq, int) and not isinstance(seq, bool):
            rt.track.confirm(now, seq)

    def tick(self, now: float, ts: str = "") -> Step | None:
        """The 1 s timer: the watchdog. Returns a step (all off) while no readings come."""
        if self.started_t is None:
            self.started_t = now
        last = self.last_reading_t if self.last_reading_t is not None else self.started_t
        if now - last < self.params.watchdog_s:
            return None
        step = Step()
        reason = WATCHDOG_REASON.format(s=_num(self.params.watchdog_s))
        if not self.watchdog:
            self.watchdog = True
            step.events.append(f"{reason}: every output off")
        for rt in self._ordered():
            rt.surplus.reset()
            self._command(rt, now, 0.0, reason)
        self.prev_net_w = None
        self._emit(step, now, ts)
        return step

    def on_reading(self, now: float, reading: dict[str, Any], ts: str = "") -> Step:
        """One meter reading: decide every output, heartbeat every ``set``."""
        if self.started_t is None:
            self.started_t = now
        step = Step()
        net = _net(reading)
        if net is None:
            step.events.append("reading without net_w / import_w / export_w: ignored")
            return step
        if self.watchdog:
            step.events.append("meter data is back: normal control resumes")
            self.watchdog = False
        self.net_w = net
        tariff, tariff_low = reading.get("tariff"), reading.get("tariff_low")
        self.tariff = tariff if isinstance(tariff, int) and not isinstance(tariff, bool) else None
        self.tariff_low = tariff_low if isinstance(tariff_low, bool) else None
        ts = ts or str(reading.get("ts") or "")

        ordered = self._ordered()
        self._observe(now, self._reading_time(now, reading), net, ordered)
        self.last_reading_t = now
        self._switches(now, net, ordered)
        self._peak_guard_switches(now, ordered)
        self._chargers(now, _epoch(reading.get("ts")), net, ordered, step)
        self._proportional(now, net, ordered)
        self.prev_net_w = net
        self._emit(step, now, ts)
        return step

    # -- the step ------------------------------------------------------------------
    def _ordered(self) -> list[OutputRuntime]:
        """Highest priority first; equal priorities in configuration order."""
        return sorted(self.outputs.values(), key=lambda r: (-r.cfg.priority, r.index))

    def _reading_time(self, now: float, reading: dict[str, Any]) -> float:
        """When the reading would have arrived without delays on the way: its meter
        timestamp on our clock, by the smallest offset seen (the fastest reading). A
        reading that comes late (a busy machine, a slow network) then still shows the
        meter's second, not a later one. Without a timestamp: ``now``."""
        meter_t = _epoch(reading.get("ts"))
        if meter_t is None or reading.get("ts_source") == "host":  # host: whole seconds
            return now
        offset = now - meter_t
        if self.ts_offset is None or offset < self.ts_offset or offset > self.ts_offset + 2.0:
            self.ts_offset = offset  # first, faster, or the meter's clock jumped
        else:
            self.ts_offset += 0.001  # follows a slow drift of the two clocks
        return min(now, meter_t + self.ts_offset)

    def _observe(self, now: float, seen: float, net: float, ordered: list[OutputRuntime]) -> None:
        """What the meter shows of each output (the reading taken as received at
        ``seen``); update the proportional loads' models."""
        if self.last_reading_t is not None and self.prev_net_w is not None:
            gap = now - self.last_reading_t
            if 0 < gap < 30:
                self.period_s += 0.1 * (gap - self.period_s)
        for rt in ordered:
            rt.track.prune(now)
            rt.prev_visible_w = rt.visible_w
            rt.visible_w = rt.track.visible_w(seen, rt.model.best_delay_s() if rt.model else None)
        for rt in ordered:
            if rt.model is None:
                continue
            if self.prev_net_w is None:
                rt.model.reset_history()
            others = sum(o.effective_w for o in ordered if o is not rt)
            levels = [rt.track.visible_w(seen, d) for d in rt.model.delays_s] + [0.0]
            if rt.model.update(net - others, levels):
                rt.visible_w = rt.track.visible_w(seen, rt.model.best_delay_s())
                if rt.drawing:
                    rt.not_drawing_since, rt.probe = None, None
                    rt.resumed_at = now
                    log.info("output %s draws, applying commands about %.1f s late",
                             rt.cfg.id, rt.model.best_delay_s())
                else:
                    rt.not_drawing_since = now
                    rt.probe_wait_s = self.params.probe_s
                    log.info("output %s does not draw (thermostat cut out?): holding", rt.cfg.id)

    def _seen_net(self, rt: OutputRuntime, net: float, ordered: list[OutputRuntime]) -> float:
        """The net power as output ``rt`` sees it: after every decision already taken
        (pending commands count until the meter shows them), with what lower-priority
        proportional loads absorb counted as available (they give way)."""
        seen = net
        for other in ordered:
            if other.proportional:
                if other.drawing:
                    seen += other.level_w - other.visible_w
                    if other.cfg.priority < rt.cfg.priority:
                        seen -= other.level_w
            else:
                seen += other.level_w - other.visible_w
        return seen

    def _switches(self, now: float, net: float, ordered: list[OutputRuntime]) -> None:
        switches = [rt for rt in ordered if not rt.proportional and rt.cfg.kind != "ev"]
        for rt in switches:
            rt.guard_note = None
            mode = rt.cfg.mode
            if mode == "off":
                self._command(rt, now, 0.0, "off: mode off")
            elif mode == "on":
                self._command(rt, now, rt.cfg.rated_w, "on: mode on")
            elif mode == "tariff":
                on, reason = tariff_on(self.tariff_low, self.tariff)
                self._command(rt, now, rt.cfg.rated_w if on else 0.0, reason)
        # surplus switches that are on: lowest priority first, so it goes off first
        decided: set[str] = set()
        for rt in reversed(switches):
            if rt.cfg.mode == "surplus" and rt.surplus.on:
                decided.add(rt.cfg.id)
                on, reason = rt.surplus.step_on(now, self._seen_net(rt, net, ordered),
                                                rt.cfg.min_on_s)
                self._command(rt, now, rt.cfg.rated_w if on else 0.0, reason)
        # surplus switches that are off: highest priority first
        for rt in switches:
            if rt.cfg.mode == "surplus" and rt.cfg.id not in decided:
                on, reason = rt.surplus.step_off(now, self._seen_net(rt, net, ordered),
                                                 rt.cfg.threshold_w, rt.cfg.on_delay_s)
                self._command(rt, now, rt.cfg.rated_w if on else 0.0, reason)
        for rt in switches:
            if rt.cfg.mode != "surplus":
                rt.surplus.reset()

    # -- peak guard ----------------------------------------------------------------
    def _peak_fresh(self, now: float | None = None) -> bool:
        if self.peak is None or self.peak_t is None:
            return False
        ref = now if now is not None else self.last_reading_t
        return ref is None or ref - self.peak_t <= self.params.peak_max_age_s

    def headroom_w(self, ordered: list[OutputRuntime], decided: bool = True,
                   exclude: OutputRuntime | None = None) -> float | None:
        """The forecaster's headroom minus what outputs (but ``exclude``) were commanded and
        the meter (hence the forecast) does not show yet; ``decided=False`` leaves out the
        decisions of the step in progress."""
        if not self._peak_fresh() or self.peak is None:
            return None
        raw = self.peak.get("headroom_w")
        if not isinstance(raw, (int, float)) or isinstance(raw, bool):
            return None
        pending = sum((rt.level_w if decided else rt.track.commanded_w) - rt.visible_w
                      for rt in ordered if rt.drawing and rt is not exclude)
        return float(raw) - pending

    def _peak_num(self, key: str) -> float:
        value = (self.peak or {}).get(key)
        return float(value) if isinstance(value, (int, float)) else 0.0

    def _peak_text(self) -> str:
        return (f"forecast {fmt_w(self._peak_num('forecast_w'))}, "
                f"threshold {fmt_w(self._peak_num('threshold_w'))}")

    def _peak_guard_switches(self, now: float, ordered: list[OutputRuntime]) -> None:
        """Keep guarded switches from starting beyond the headroom; shed on deficit."""
        switches = [rt for rt in ordered if not rt.proportional and rt.cfg.peak_guard
                    and rt.cfg.kind != "ev"]
        if not switches:
            return
        if self.headroom_w(ordered) is None:
            for rt in switches:
                rt.guard_note = "inactive: no recent forecast"
            return
        # starts of this step, highest priority first, while the headroom carries them
        head = self.headroom_w(ordered, decided=False)
        assert head is not None
        for rt in ordered:
            starting = rt.level_w > rt.track.commanded_w
            if not starting:
                head -= rt.level_w - rt.track.commanded_w  # switch-offs free headroom
        for rt in switches:
            if rt.level_w > rt.track.commanded_w:
                increment = rt.level_w - rt.track.commanded_w
                if increment <= head:
                    head -= increment
                    continue
                if rt.surplus.above_since is None and rt.surplus.on_since is not None:
                    rt.surplus.above_since = now - rt.cfg.on_delay_s  # ready when it fits
                rt.surplus.on_since = None
                rt.guard_note = "kept from starting"
                self._command(rt, now, rt.track.commanded_w, (
                    f"off: peak guard: {fmt_w(increment)} would exceed the headroom "
                    f"{fmt_w(head)} ({self._peak_text()})"))
        # shed when the forecast goes over the threshold, lowest priority first
        head_after = self.headroom_w(ordered)
        assert head_after is not None
        for rt in reversed(switches):
            if head_after >= 0:
                break
            if rt.level_w > 0:
                head_after += rt.level_w
                rt.surplus.reset()
                rt.guard_note = "shed"
                self._command(rt, now, 0.0, (
                    f"off: peak guard: headroom {fmt_w(self._peak_num('headroom_w'))} "
                    f"({self._peak_text()})"))

    # -- EV chargers -----------------------------------------------------------------
    def _ev_draw(self, rt: OutputRuntime, now: float) -> float:
        """What a charger draws: its own report while fresh, else what the meter shows."""
        st = rt.state or {}
        power = st.get("power_w")
        if (isinstance(power, (int, float)) and not isinstance(power, bool) and rt.state_t is not None
                and now - rt.state_t <= self.params.state_fresh_s):
            rt.visible_w = float(power)
        return rt.visible_w

    def _ev_headroom(self, ordered: list[OutputRuntime], rt: OutputRuntime,
                     net: float) -> float | None:
        """The forecaster's headroom (less what other outputs will still add), or the one the
        quarter's energy so far and this reading's power give, whichever is lower: the
        forecaster smooths the power over 30 s, a kettle that just started shows here now."""
        head = self.headroom_w(ordered, exclude=rt)
        if head is None or self.peak is None:
            return head
        energy, elapsed = self.peak.get("energy_wh"), self.peak.get("elapsed_s")
        threshold = self.peak.get("threshold_w")
        if not all(isinstance(x, (int, float)) and not isinstance(x, bool)
                   for x in (energy, elapsed, threshold)):
            return head
        assert isinstance(energy, (int, float)) and isinstance(elapsed, (int, float))
        assert isinstance(threshold, (int, float))
        left = max(900.0 - float(elapsed), 1.0)
        pending = self._peak_num("headroom_w") - head
        now_head = (threshold * 0.25 - energy - max(net, 0.0) * left / 3600) * 3600 / left
        return min(head, now_head - pending)

    def _chargers(self, now: float, wall: float | None, net: float, ordered: list[OutputRuntime],
                  step: Step) -> None:
        """Every output of kind ev: off, on (full current) or mode ev (evmode.py)."""
        evs = [rt for rt in ordered if rt.cfg.kind == "ev"]
        if not evs:
            return
        draws = {rt.cfg.id: self._ev_draw(rt, now) for rt in evs}
        if wall is not None:
            self.wall = wall
            self.evmode.learn(wall, net - sum(draws.values()))
        threshold = self._peak_num("threshold_w") if self._peak_fresh() else None
        for rt in evs:
            before = rt.ev_current_a
            if rt.cfg.mode == "ev" and wall is not None:
                out = self.evmode.decide(rt.cfg, EvInputs(
                    now=now, wall=wall, net_w=net, draw_w=draws[rt.cfg.id],
                    head_w=self._ev_headroom(ordered, rt, net), threshold_w=threshold,
                    state=rt.state or {}))
                rt.ev_current_a, rt.ev_phases = out.current_a, out.phases
                self._command(rt, now, out.level_w, out.reason)
                step.events += out.events
            else:
                on = rt.cfg.mode == "on"
                rt.ev_current_a = rt.cfg.max_current_a if on else 0.0
                rt.ev_phases = rt.cfg.phases
                self._command(rt, now, rt.ev_current_a * self.params.ev.voltage_v * rt.ev_phases,
                              "on: mode on (full current)" if on else (
                                  "off: mode off" if rt.cfg.mode != "ev" else
                                  "paused: the reading has no time"))
            if (before > 0) != (rt.ev_current_a > 0):
                step.events.append(f"output {rt.cfg.id}: {rt.reason}")

    # -- proportional --------------------------------------------------------------
    def _proportional(self, now: float, net: float, ordered: list[OutputRuntime]) -> None:
        props = [rt for rt in ordered if rt.proportional]
        if not props:
            return
        household = self._household_w(net, ordered)
        head = self.headroom_w(ordered)
        taken = 0.0
        for rt in props:
            share = rt.cfg.target_net_w - household - taken
            cap, note = self._guard_cap(rt, share, head)
            share = min(max(share, 0.0), cap)
            new = proportional_step(rt.level_w, share, self.params.gain, rt.cfg.rated_w,
                                    self.params.deadband_w)
            new = min(new, cap)
            if head is not None and rt.cfg.peak_guard:
                head -= new - rt.level_w
            rt.guard_note = note
            drawing = rt.drawing  # before a probe may find that it draws after all
            new, reason = self._proportional_level(rt, now, net, new, cap, household, taken)
            if drawing:
                taken += share
            if note:
                reason += f"; {note}"
            self._command(rt, now, round(new * 1000.0 / rt.cfg.rated_w) * rt.cfg.rated_w / 1000.0,
                          reason)

    def _household_w(self, net: float, ordered: list[OutputRuntime]) -> float:
        """The household without the proportional loads, after the switch decisions.

        A ramp (PV under a cloud edge) goes on while the commands take effect: the
        estimate leads it by ``ramp_lead_s``.
        """
        household = net
        for rt in ordered:
            if rt.proportional:
                household -= rt.effective_w
            else:
                household += rt.level_w - rt.visible_w
        measured = net - sum(rt.effective_w for rt in ordered)
        if self.prev_net_w is None:
            self.household_hist.clear()
        self.household_hist = [*self.household_hist[-3:], measured]
        ramp = ramp_w(self.household_hist)
        household += ramp * self.params.ramp_lead_s / self.period_s
        return household

    @staticmethod
    def _guard_cap(rt: OutputRuntime, share: float, head: float | None) -> tuple[float, str | None]:
        """The most the peak guard lets ``rt`` take, and a note when it limits or is off."""
        cap = rt.cfg.rated_w
        if not rt.cfg.peak_guard:
            return cap, None
        if head is None:
            return cap, "peak guard inactive: no recent forecast"
        cap = min(cap, max(0.0, rt.level_w + head))
        if share > cap:
            return cap, f"limited by the peak guard (headroom {fmt_w(head)})"
        return cap, None

    def _proportional_level(
        self, rt: OutputRuntime, now: float, net: float, new: float, cap: float,
        household: float, taken: float,
    ) -> tuple[float, str]:
        """The level to command (``new`` unless the load just resumed or is probed) and why."""
        if rt.drawing and rt.resumed_at == now:
            # the thermostat closed during this reading's second: the reading shows
            # only part of the load, and the level held for it is right already
            held = min(rt.level_w, cap)
            return held, (f"{self._pct_text(rt, held)}: the load draws again, keeping the "
                          f"level held for it")
        if rt.drawing:
            return new, self._prop_reason(rt, new, household, taken)
        holding = (f"{self._pct_text(rt, new)}: holding at the surplus, the load does "
                   f"not draw (thermostat cut out?)")
        new, probing = self._probe(rt, now, net, new)
        return new, probing or holding

    def _probe(self, rt: OutputRuntime, now: float, net: float, held_w: float) -> tuple[float, str]:
        """Is a load judged not drawing really cut out? Holding a constant level gives the
        meter nothing to tell, so a wrong verdict would hold at the wrong level for as long
        as the household stays constant. ``probe_s`` after the verdict the command drops to
        0 for ``probe_hold_s``: if the net falls by about the held level, the load draws
        after all. A probe costs nothing when the load is really cut out (it draws nothing
        either way), and each probe that confirms the cut-out doubles the wait to the next
        one (up to ``probe_max_s``): a boiler whose tank is hot is probed a handful of
        times an hour, not every 30 s."""
        p = self.params
        assert rt.model is not None
        if rt.probe is None:
            since = rt.not_drawing_since if rt.not_drawing_since is not None else now
            wait = rt.probe_wait_s or p.probe_s
            if held_w < rt.model.margin_w or now - since < wait:
                return held_w, ""
            rt.probe = (now, net, held_w)
            return 0.0, f"0.0 %: probing whether the load draws (held {fmt_w(held_w)})"
        started, net_before, level = rt.probe
        if now - started < p.probe_hold_s:
            return 0.0, f"0.0 %: probing whether the load draws (held {fmt_w(level)})"
        rt.probe = None
        drop = net_before - net
        if 0.7 * level <= drop <= 1.3 * level:
            rt.model.set_drawing()
            rt.not_drawing_since = None
            log.info("output %s draws after all (probe: net fell %.0f W)", rt.cfg.id, drop)
            return level, (f"{self._pct_text(rt, level)}: the load draws after all "
                           f"(net fell {fmt_w(drop)} without it)")
        rt.not_drawing_since = now  # cut out indeed: back to the level held before
        rt.probe_wait_s = min(2 * (rt.probe_wait_s or p.probe_s), p.probe_max_s)
        return level, ""

    def _pct_text(self, rt: OutputRuntime, level_w: float) -> str:
        return f"{100.0 * level_w / rt.cfg.rated_w:.1f} %"

    def _prop_reason(self, rt: OutputRuntime, new: float, household: float, before: float) -> str:
        surplus = rt.cfg.target_net_w - household - before
        if new <= 0:
            return f"{self._pct_text(rt, new)}: no surplus (net {fmt_w(household + before)} without it)"
        if new >= rt.cfg.rated_w:
            return f"100.0 %: surplus {fmt_w(surplus)} >= rated {fmt_w(rt.cfg.rated_w)}"
        return (f"{self._pct_text(rt, new)}: absorbing the surplus {fmt_w(surplus)} "
                f"towards net {fmt_w(rt.cfg.target_net_w)}")

    # -- commands and status ---------------------------------------------------------
    def _command(self, rt: OutputRuntime, now: float, level_w: float, reason: str) -> None:
        if level_w != rt.level_w:
            rt.changed_at = now
        rt.level_w = level_w
        rt.reason = reason

    def _set_payload(self, rt: OutputRuntime, ts: str) -> dict[str, Any]:
        payload: dict[str, Any] = {"v": CONTRACT_VERSION, "ts": ts, "seq": rt.seq,
                                   "ttl_s": self.params.ttl_s}
        if rt.cfg.kind == "relay":
            payload["on"] = rt.level_w > 0
        elif rt.cfg.kind == "ev":
            payload["current_a"] = rt.ev_current_a if rt.level_w > 0 else 0.0
            payload["phases"] = rt.ev_phases
        else:
            payload["pct"] = rt.pct
        return payload

    def _emit(self, step: Step, now: float, ts: str) -> None:
        for rt in self._ordered():
            rt.seq += 1
            rt.track.command(now, rt.level_w, rt.seq)
            step.commands.append(Command(rt.cfg.id, self._set_payload(rt, ts)))
            event = self._follow(rt, now)
            if event:
                step.events.append(event)
        if self.emit_control:
            step.control = self.control(now, ts)

    def _follow(self, rt: OutputRuntime, now: float) -> str | None:
        """Compare what the device reports with what it was told."""
        before = rt.following
        st = rt.state
        if st is None:
            rt.following, rt.follow_note = None, "no state reports"
            return None
        if st.get("override"):
            rt.following, rt.follow_note = False, "device in manual override"
        elif rt.cfg.kind == "ev":
            self._follow_charger(rt, st, now)
        else:
            want_on = rt.level_w > 0
            if rt.cfg.kind == "relay" or "pct" not in st:
                matches = bool(st.get("on")) == want_on
                got = "on" if st.get("on") else "off"
                want = "on" if want_on else "off"
            else:
                got_pct = st.get("pct")
                matches = isinstance(got_pct, (int, float)) and abs(float(got_pct) - rt.pct) <= 1.0
                got, want = f"{got_pct} %", f"{rt.pct} %"
            if matches:
                rt.following, rt.follow_note = True, "follows"
            elif now - rt.changed_at >= self.params.follow_timeout_s:
                rt.following = False
                rt.follow_note = (f"does not follow: commanded {want} "
                                  f"{now - rt.changed_at:.0f} s ago, device reports {got}")
            else:
                rt.follow_note = f"waiting for the device to apply {want}"
        if before is not False and rt.following is False:
            return f"output {rt.cfg.id} {rt.follow_note}"
        if before is False and rt.following is True:
            return f"output {rt.cfg.id} follows again"
        return None

    def _follow_charger(self, rt: OutputRuntime, st: dict[str, Any], now: float) -> None:
        want = rt.ev_current_a if rt.level_w > 0 else 0.0
        got = st.get("current_a")
        if st.get("connected") is False:
            rt.following, rt.follow_note = True, "no car plugged in"
        elif isinstance(got, (int, float)) and abs(float(got) - want) <= 0.5:
            rt.following, rt.follow_note = True, "follows"
        elif now - rt.changed_at >= self.params.follow_timeout_s:
            rt.following = False
            rt.follow_note = (f"does not follow: commanded {want:g} A {now - rt.changed_at:.0f} s "
                              f"ago, charger reports {got} A")
        else:
            rt.follow_note = f"waiting for the charger to apply {want:g} A"

    def control(self, now: float, ts: str) -> dict[str, Any]:
        outputs = []
        head = self.headroom_w(self._ordered())
        for rt in self._ordered():
            timers = rt.surplus.timers(now, rt.cfg.on_delay_s, rt.cfg.min_on_s)
            item: dict[str, Any] = {
                "id": rt.cfg.id,
                "kind": rt.cfg.kind,
                "mode": rt.cfg.mode,
                "priority": rt.cfg.priority,
                "decision": ("pct" if rt.proportional else "current" if rt.cfg.kind == "ev"
                             else ("on" if rt.on else "off")),
                "on": rt.on,
                "level_w": round(rt.level_w, 1),
                "reason": rt.reason,
                "on_delay_remaining_s": _round(timers["on_delay_remaining_s"]),
                "min_on_remaining_s": _round(timers["min_on_remaining_s"]),
                "following": rt.following,
                "device": rt.follow_note,
                "seq": rt.seq,
            }
            if rt.cfg.kind == "dimmer":
                item["pct"] = rt.pct
            if rt.proportional:
                item["drawing"] = rt.drawing
                if rt.model is not None:
                    item["delay_s"] = round(rt.model.best_delay_s(), 1)
            if rt.cfg.peak_guard:
                item["peak_guard"] = rt.guard_note or "active"
            if rt.state is not None:
                item["state"] = {k: rt.state[k] for k in ("on", "pct", "override", "seq")
                                 if k in rt.state}
            if rt.cfg.kind == "ev":
                item["ev"] = self.evmode.decision(rt.cfg, rt.state, self.wall or 0.0)
                item["ev"]["current_a"] = rt.ev_current_a if rt.level_w > 0 else 0.0
            outputs.append(item)
        doc: dict[str, Any] = {"v": CONTRACT_VERSION, "site": self.site, "ts": ts,
                               "watchdog": self.watchdog, "outputs": outputs}
        if self.net_w is not None:
            doc["net_w"] = round(self.net_w, 1)
        if self.tariff is not None:
            doc["tariff"] = self.tariff
        if self.tariff_low is not None:
            doc["tariff_low"] = self.tariff_low
        if head is not None:
            doc["headroom_w"] = round(head, 1)
        return doc


def delay_grid(device_delay_s: float, period_s: float, step_s: float = 0.1) -> tuple[float, ...]:
    """The delay hypotheses of a proportional load: from ``device_delay_s`` - 0.5 s to
    ``device_delay_s`` + 2 telegram periods in ``step_s`` steps, the configured delay
    first (it wins ties), then the others by their distance from it."""
    lo = max(0.0, device_delay_s - 0.5)
    hi = device_delay_s + 2 * period_s
    n = round((hi - lo) / step_s)
    grid = {round(lo + i * step_s, 3) for i in range(n + 1)} | {round(device_delay_s, 3)}
    return tuple(sorted(grid, key=lambda d: (round(abs(d - device_delay_s), 3), d)))


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _num(value: float) -> str:
    return f"{value:g}"


def _epoch(ts: Any) -> float | None:
    """Seconds of an ISO timestamp with its offset (a reading's ``ts``), else None."""
    if not isinstance(ts, str) or not ts:
        return None
    try:
        value = dt.datetime.fromisoformat(ts)
    except ValueError:
        return None
    if value.tzinfo is None:
        return None
    return value.timestamp()


def _net(reading: dict[str, Any]) -> float | None:
    net = reading.get("net_w")
    if isinstance(net, (int, float)) and not isinstance(net, bool):
        return float(net)
    imp, exp = reading.get("import_w"), reading.get("export_w")
    if isinstance(imp, (int, float)) and isinstance(exp, (int, float)):
        return float(imp) - float(exp)
    return None
