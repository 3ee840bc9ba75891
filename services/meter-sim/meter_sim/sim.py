"""The engine: house + PV + controllable loads + scripted events -> the meter, second by second.

Pure: the caller owns wall time. :meth:`Simulator.step` advances the simulated
clock by one second (the power of the second that starts at ``now`` is computed
and integrated), :meth:`Simulator.telegram` renders what the meter shows at
``now``. A telegram at time t therefore carries the counters at t and the power of
the second that just ended, so the counters move by exactly the sum of the
powers of the telegrams in between.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from .clock import LocalClock
from .ev import EvCharger, EvConfig
from .house import DAY_S, DayProfile, HouseConfig, day_profile
from .loads import DEFAULT_LOADS, ControllableLoad, LoadConfig
from .meter import Meter, MeterConfig
from .pv import PvConfig, clear_sky_day, cloud_day
from .telegram import TelegramWriter


@dataclass(frozen=True)
class Event:
    """A scripted change at UTC second ``at`` (see scenario.py for the YAML form)."""

    at: int
    kind: str  # load | pv | pv_w | cloud | set | house
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SimConfig:
    start: int
    seed: int = 1
    fmt: str = "fluvius"
    house: HouseConfig | None = field(default_factory=HouseConfig)
    pv: PvConfig | None = field(default_factory=PvConfig)
    meter: MeterConfig = field(default_factory=MeterConfig)
    loads: tuple[LoadConfig, ...] = DEFAULT_LOADS
    events: tuple[Event, ...] = ()
    evs: tuple[EvConfig, ...] = ()
    gas: bool = True
    water: bool = True


@dataclass
class _PvDay:
    key: int
    clear: list[float]
    clouds: list[float]
    kind: str


class Simulator:
    def __init__(self, cfg: SimConfig) -> None:
        self.cfg = cfg
        self.clock = LocalClock()
        self.meter = Meter(cfg.meter, cfg.start, self.clock)
        gas = cfg.gas and (cfg.house is None or cfg.house.gas)
        water = cfg.water and (cfg.house is None or cfg.house.water)
        self.writer = TelegramWriter(cfg.fmt, cfg.meter.equipment_id, gas=gas, water=water)
        self.loads: dict[str, ControllableLoad | EvCharger] = {
            lc.id: ControllableLoad(lc, self.clock.iso) for lc in cfg.loads}
        self.evs = {ec.id: EvCharger(ec, cfg.seed, self.clock.iso) for ec in cfg.evs}
        self.loads.update(self.evs)
        for load in self.loads.values():
            load.initial_state(cfg.start)
        self._tank_loads = [ld for ld in self.loads.values() if isinstance(ld, ControllableLoad)
                            and ld.cfg.tank_l > 0 and ld.cfg.hot_water]
        self.events = sorted(cfg.events, key=lambda e: e.at)
        self._ev = 0
        self.house_on = cfg.house is not None
        self.pv_on = cfg.pv is not None
        self.scripted: dict[str, tuple[int, int]] = {}  # name -> (phase 0..3, W)
        self.cloud_override: float | None = None
        self.pv_fixed_w: float | None = None
        self._house: DayProfile | None = None
        self._house_key: date | None = None
        self._taps: list[float] = []
        self._pv: _PvDay | None = None
        self.house_w = 0
        self.pv_w = 0
        self.load_w: dict[str, float] = {}

    @property
    def now(self) -> int:
        return self.meter.now

    # -- inputs ---------------------------------------------------------------------------
    def command(self, output_id: str, payload: dict[str, Any], at: float | None = None) -> bool:
        """A ``set`` for a controllable load, arrived at ``at`` (UTC seconds, default the
        start of the next second, ``now``); False when there is no such load."""
        load = self.loads.get(output_id)
        if load is None:
            return False
        load.command(self.now if at is None else at, payload)
        return True

    def drain_states(self) -> list[tuple[str, dict[str, Any]]]:
        out: list[tuple[str, dict[str, Any]]] = []
        for ident, load in self.loads.items():
            out.extend((ident, s) for s in load.drain())
        return out

    # -- one second -------------------------------------------------------------------------
    def step(self) -> None:
        t = self.meter.now
        while self._ev < len(self.events) and self.events[self._ev].at <= t:
            self._apply(self.events[self._ev])
            self._ev += 1
        phases = [0, 0, 0]
        gas = water = 0.0
        tap = 0.0
        if self.house_on and self.cfg.house is not None:
            prof = self._house_day(t)
            sod = self.clock.seconds_of_day(t)
            a, b, c = prof.phases
            phases[0], phases[1], phases[2] = a[sod], b[sod], c[sod]
            gas = prof.gas_m3_per_min[sod // 60] / 60
            water = prof.water_l_per_min[sod // 60] / 60000
            if self._tank_loads:
                tap = self._taps[sod]
        self.house_w = phases[0] + phases[1] + phases[2]
        for name_phase_w in self.scripted.values():
            _add(phases, name_phase_w[0], name_phase_w[1])
        for ident, load in self.loads.items():
            w = load.step(t, 1.0, tap if load in self._tank_loads else 0.0)
            self.load_w[ident] = w
            if w:
                _add(phases, load.phase if isinstance(load, EvCharger) else load.cfg.phase, round(w))
        pv = self._pv_power(t) if self.pv_on else 0
        self.pv_w = pv
        if pv:
            if self.cfg.pv is not None and self.cfg.pv.phases == 1:
                phases[0] -= pv
            else:
                _add(phases, 0, -pv)
        self.meter.integrate(phases[0], phases[1], phases[2], gas, water)

    def telegram(self) -> bytes:
        return self.writer.render(self.meter)

    # -- parts -------------------------------------------------------------------------------
    def _house_day(self, t: int) -> DayProfile:
        h = self.clock.hour(t)
        key = h.date
        if key != self._house_key or self._house is None:
            assert self.cfg.house is not None
            self._house = day_profile(self.cfg.house, self.cfg.seed, key)
            self._house_key = key
            if self._tank_loads:
                taps = [0.0] * DAY_S
                for tp in self._house.taps:
                    for s in range(tp.start_s, min(DAY_S, tp.start_s + tp.duration_s)):
                        taps[s] += tp.flow_lps
                self._taps = taps
        return self._house

    def _pv_power(self, t: int) -> int:
        if self.pv_fixed_w is not None:
            return round(self.pv_fixed_w)
        key = t // DAY_S
        if self._pv is None or self._pv.key != key:
            assert self.cfg.pv is not None
            day = date.fromordinal(date(1970, 1, 1).toordinal() + key)
            kind, clouds = cloud_day(self.cfg.seed, day)
            self._pv = _PvDay(key, clear_sky_day(self.cfg.pv, day), clouds, kind)
        idx = t - key * DAY_S
        clear = self._pv.clear[idx]
        if clear <= 0:
            return 0
        factor = self.cloud_override if self.cloud_override is not None else self._pv.clouds[idx]
        assert self.cfg.pv is not None
        limit = self.cfg.pv.inverter_w if self.cfg.pv.inverter_w is not None else self.cfg.pv.kwp * 1000
        return round(min(limit, clear * factor))

    def _apply(self, ev: Event) -> None:
        d = ev.data
        if ev.kind == "load":
            if d.get("w", 0):
                self.scripted[str(d["id"])] = (int(d.get("phase", 1)), round(d["w"]))
            else:
                self.scripted.pop(str(d["id"]), None)
        elif ev.kind == "pv":
            self.pv_on = bool(d["on"]) and self.cfg.pv is not None
        elif ev.kind == "pv_w":
            self.pv_fixed_w = None if d["w"] is None else float(d["w"])
            if self.pv_fixed_w is not None:
                self.pv_on = True
        elif ev.kind == "cloud":
            self.cloud_override = None if d["factor"] is None else float(d["factor"])
        elif ev.kind == "house":
            self.house_on = bool(d["on"]) and self.cfg.house is not None
        elif ev.kind == "set":
            payload = {k: v for k, v in d.items() if k != "id"}
            self.command(str(d["id"]), payload)
        else:
            raise ValueError(f"unknown event kind {ev.kind!r}")


def _add(phases: list[int], phase: int, w: int) -> None:
    if phase == 0:
        third, rest = divmod(w, 3)
        phases[0] += third + rest
        phases[1] += third
        phases[2] += third
    else:
        phases[phase - 1] += w
