"""The electricity meter: counters per tariff, phases, and the eMUCS 1.7.1 quarter-peak objects.

Integer arithmetic on purpose: each simulated second the meter gets the power of
each phase in whole watts, adds it to its registers in joules (watt-seconds), so
counter deltas, quarter energy and the demand values follow exactly from the
powers a test scripts. The total is the sum of the phases (vector summation, as
Belgian and Dutch meters count): import when the sum is positive, export when
negative.

Tariff (Belgium, the Fluvius default): tariff 2 (night) on weekdays from 22:00 to
07:00 and the whole weekend (Saturday and Sunday); tariff 1 (day) otherwise. The
hours are settings (some areas switch at 21:00/06:00). Public holidays are not
modelled.

Quarter objects as an eMUCS 1.7.1 meter keeps them:
- 1-0:1.4.0, current average demand: import energy of the running quarter divided
  by the time elapsed in it (0 at the first second of a quarter).
- 1-0:1.6.0, this month's maximum: at the end of each quarter, energy x 4; a new
  maximum replaces the old one with its timestamp (the end of that quarter by
  default, ``peak_ts="start"`` for its start). Before the month's first quarter
  ends it shows 0 kW at the month start.
- 0-0:98.1.0, the history: when the first quarter of a new month begins, the
  previous month's maximum is stored with the timestamp of the new month's start
  (00:00 on the 1st), at most 13 entries, oldest first.
Quarters start at :00, :15, :30, :45 local time; as the offset is a whole hour they
are multiples of 900 UTC seconds, so the repeated October hour gives two distinct
quarters with the same wall-clock times (different S/W flags).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from .clock import LocalClock, local_month, month_start_utc

J_PER_WH = 3600


@dataclass
class HistoryEntry:
    month_start: int  # UTC seconds of the 1st, 00:00 local, of the month after the peak
    max_ts: int | None  # None: the month had no value (written 632525252525W)
    max_w: float


@dataclass(frozen=True)
class MeterConfig:
    equipment_id: str = "1SAG1100123456"
    night_start_h: int = 22
    night_end_h: int = 7
    weekend_night: bool = True
    peak_ts: str = "end"  # timestamp of a quarter peak: "end" or "start" of the quarter
    import_t1_kwh: float = 0.0
    import_t2_kwh: float = 0.0
    export_t1_kwh: float = 0.0
    export_t2_kwh: float = 0.0
    month_max_w: float = 0.0
    month_max_ts: int | None = None
    history: tuple[HistoryEntry, ...] = field(default_factory=tuple)
    gas_m3: float = 0.0
    water_m3: float = 0.0
    voltage_v: float = 230.0
    grid_ohm: float = 0.25  # voltage drop per ampere of the phase current
    seed: int = 0

    def __post_init__(self) -> None:
        if self.peak_ts not in ("end", "start"):
            raise ValueError("peak_ts must be 'end' or 'start'")
        for name in ("night_start_h", "night_end_h"):
            if not 0 <= getattr(self, name) <= 23:
                raise ValueError(f"{name} must be an hour from 0 to 23")


class Meter:
    def __init__(self, cfg: MeterConfig, start: int, clock: LocalClock | None = None) -> None:
        self.cfg = cfg
        self.clock = clock or LocalClock()
        self.now = start
        self.imp_j = [round(cfg.import_t1_kwh * 3.6e6), round(cfg.import_t2_kwh * 3.6e6)]
        self.exp_j = [round(cfg.export_t1_kwh * 3.6e6), round(cfg.export_t2_kwh * 3.6e6)]
        self.start = start
        self.q_start = start - start % 900
        self.q_imp_j = 0
        self.month = local_month(start, self.clock.tz)
        self.month_max_w = cfg.month_max_w
        self.month_max_ts = cfg.month_max_ts
        self.history: list[HistoryEntry] = list(cfg.history)[-13:]
        self.last_quarter_w: float | None = None
        self.phase_w = (0, 0, 0)
        self.volts = [cfg.voltage_v] * 3
        self.amps = [0.0, 0.0, 0.0]
        self._drift = [0.0, 0.0, 0.0]
        self._rng = random.Random(f"{cfg.seed}:voltage")
        self._v_offset = [self._rng.uniform(-2.0, 3.0) for _ in range(3)]
        self.gas_m3 = cfg.gas_m3
        self.water_m3 = cfg.water_m3
        self.gas_capture = (start - start % 300, cfg.gas_m3)
        self.water_capture = (start - start % 300, cfg.water_m3)
        self.update_volts()

    # -- tariff -------------------------------------------------------------------------
    def tariff_at(self, t: int) -> int:
        h = self.clock.hour(t)
        c = self.cfg
        if c.weekend_night and h.weekday >= 5:
            return 2
        if c.night_start_h > c.night_end_h:
            night = h.hour >= c.night_start_h or h.hour < c.night_end_h
        else:
            night = c.night_start_h <= h.hour < c.night_end_h
        return 2 if night else 1

    @property
    def tariff(self) -> int:
        return self.tariff_at(self.now)

    # -- one second ----------------------------------------------------------------------
    def integrate(self, l1_w: int, l2_w: int, l3_w: int, gas_m3: float = 0.0,
                  water_m3: float = 0.0) -> None:
        """The second [now, now+1) drew these phase powers (W, negative = export)."""
        net = l1_w + l2_w + l3_w
        ti = self.tariff_at(self.now) - 1
        if net > 0:
            self.imp_j[ti] += net
            self.q_imp_j += net
        elif net < 0:
            self.exp_j[ti] -= net
        self.gas_m3 += gas_m3
        self.water_m3 += water_m3
        self.phase_w = (l1_w, l2_w, l3_w)
        self.now += 1
        now = self.now
        if now % 300 == 0:
            self.gas_capture = (now, self.gas_m3)
            self.water_capture = (now, self.water_m3)
        if now % 900 == 0:
            self._close_quarter(now)

    def _close_quarter(self, end: int) -> None:
        demand = self.q_imp_j / 900.0
        self.last_quarter_w = demand
        month = local_month(end - 900, self.clock.tz)
        if month != self.month:  # started mid-month elsewhere; cannot happen in a run
            self.month = month
        if demand > self.month_max_w:
            self.month_max_w = demand
            self.month_max_ts = end if self.cfg.peak_ts == "end" else end - 900
        new_month = local_month(end, self.clock.tz)
        if new_month != self.month:
            self.history.append(HistoryEntry(end, self.month_max_ts, self.month_max_w))
            del self.history[:-13]
            self.month = new_month
            self.month_max_w = 0.0
            self.month_max_ts = None
        self.q_start = end
        self.q_imp_j = 0

    def update_volts(self) -> None:
        """New voltages and currents for the phase powers; called per telegram, not per second."""
        rng = self._rng
        sod = self.clock.seconds_of_day(self.now)
        # the street: lower in the evening peak, higher around noon
        daily = -2.5 if 61200 <= sod < 75600 else (1.5 if 39600 <= sod < 54000 else 0.0)
        for i in range(3):
            d = self._drift[i] * 0.998 + rng.gauss(0.0, 0.08)
            self._drift[i] = d
            p = self.phase_w[i]
            v = self.cfg.voltage_v + self._v_offset[i] + daily + d + rng.gauss(0.0, 0.15)
            a = abs(p) / v
            v -= self.cfg.grid_ohm * a if p > 0 else -self.cfg.grid_ohm * a
            self.volts[i] = v
            self.amps[i] = abs(p) / v

    # -- what the telegram shows ---------------------------------------------------------
    @property
    def import_w(self) -> int:
        return max(0, sum(self.phase_w))

    @property
    def export_w(self) -> int:
        return max(0, -sum(self.phase_w))

    @property
    def avg_demand_w(self) -> float:
        elapsed = self.now - max(self.q_start, self.start)  # a run started mid-quarter
        return self.q_imp_j / elapsed if elapsed > 0 else 0.0

    @property
    def month_max_display(self) -> tuple[int, float]:
        """(timestamp, W) of 1-0:1.6.0; the month start and 0 before any quarter ended."""
        if self.month_max_ts is None:
            return month_start_utc(*self.month, tz=self.clock.tz), self.month_max_w
        return self.month_max_ts, self.month_max_w

    def counters_wh(self) -> tuple[int, int, int, int]:
        """(import T1, import T2, export T1, export T2) in whole Wh, truncated as meters do."""
        return (self.imp_j[0] // J_PER_WH, self.imp_j[1] // J_PER_WH,
                self.exp_j[0] // J_PER_WH, self.exp_j[1] // J_PER_WH)
