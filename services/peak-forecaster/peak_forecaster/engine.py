"""One site's capacity-tariff state machine: readings in, payloads out.

Ties :mod:`quarters`, :mod:`months` and :mod:`forecast` together. Pure: a reading
is a dict (the ``reading`` payload), outputs are the dicts to publish; the whole
state round-trips through :meth:`SiteEngine.to_state` / :meth:`SiteEngine.from_state`
as plain JSON, so a restart continues with the same numbers.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from .forecast import BaselineForecaster, DefaultForecaster, ForecastParams, headroom_w
from .months import MonthState
from .quarters import QUARTER_S, QuarterTracker, iso, local_month, parse_ts

STATE_VERSION = 1
ALGORITHMS = ("default", "baseline")


class BadReading(ValueError):
    """A reading this service cannot use (no timestamp, no import counter)."""


@dataclass(frozen=True)
class PeakSettings:
    """The ``p1/config/<site>/peak`` document as this engine uses it."""

    manual_threshold_w: float = 2500.0
    price_eur_per_kw_year: float = 53.0
    algorithm: str = "default"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PeakSettings:
        return cls(
            float(d.get("manual_threshold_w", 2500.0)),
            float(d.get("price_eur_per_kw_year", 53.0)),
            str(d.get("algorithm", "default")),
        )


@dataclass
class Result:
    peak: dict[str, Any] | None = None
    quarters: list[dict[str, Any]] = field(default_factory=list)
    months: list[dict[str, Any]] = field(default_factory=list)
    """``peak/month`` records: the final one of a month that just ended, then the new one."""
    events: list[str] = field(default_factory=list)


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    f = float(value)
    return f if math.isfinite(f) else None


def import_counter_wh(reading: dict[str, Any]) -> float:
    """T1 + T2 import counter in Wh (``import_kwh`` when given, else the sum)."""
    total = _num(reading.get("import_kwh"))
    if total is None:
        t1, t2 = _num(reading.get("import_t1_kwh")), _num(reading.get("import_t2_kwh"))
        if t1 is None and t2 is None:
            raise BadReading("no import counter (import_kwh / import_t1_kwh / import_t2_kwh)")
        total = (t1 or 0.0) + (t2 or 0.0)
    return round(total * 1000.0, 3)  # meters count whole Wh; drop float dust


class SiteEngine:
    def __init__(
        self, site: str, settings: PeakSettings | None = None, params: ForecastParams | None = None,
    ) -> None:
        self.site = site
        self.settings = settings or PeakSettings()
        self.params = params or ForecastParams()
        self.tracker = QuarterTracker()
        self.month = MonthState()
        self.baseline = BaselineForecaster()
        self.default = DefaultForecaster()
        self.q_threshold_w: float | None = None
        self.q_warned_at: dict[str, str | None] = {"default": None, "baseline": None}
        self._last_history: Any = None
        self._last_month_record: dict[str, Any] | None = None

    # -- persistence -------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        return {
            "v": STATE_VERSION,
            "site": self.site,
            "settings": asdict(self.settings),
            "tracker": self.tracker.to_dict(),
            "month": self.month.to_dict(),
            "baseline": self.baseline.to_dict(),
            "default": self.default.to_dict(),
            "q_threshold_w": self.q_threshold_w,
            "q_warned_at": dict(self.q_warned_at),
        }

    @classmethod
    def from_state(
        cls, state: dict[str, Any], settings: PeakSettings | None = None,
        params: ForecastParams | None = None,
    ) -> SiteEngine:
        if state.get("v") != STATE_VERSION:
            raise ValueError(f"state version {state.get('v')!r}, expected {STATE_VERSION}")
        eng = cls(state["site"], settings or PeakSettings.from_dict(state.get("settings", {})), params)
        eng.tracker = QuarterTracker.from_dict(state["tracker"])
        eng.month = MonthState.from_dict(state["month"])
        eng.baseline = BaselineForecaster.from_dict(state["baseline"])
        eng.default = DefaultForecaster.from_dict(state["default"])
        eng.q_threshold_w = state.get("q_threshold_w")
        eng.q_warned_at = dict(state.get("q_warned_at") or {"default": None, "baseline": None})
        return eng

    # -- configuration -------------------------------------------------------------------
    def set_settings(self, settings: PeakSettings) -> None:
        if settings != self.settings:
            if settings.price_eur_per_kw_year != self.settings.price_eur_per_kw_year:
                self.month.dirty = True
            self.settings = settings

    @property
    def threshold_w(self) -> float:
        """The dynamic threshold of the original: max(manual threshold, month peak)."""
        return max(self.settings.manual_threshold_w, self.month.peak_w)

    # -- one reading -------------------------------------------------------------------------
    def process(self, reading: dict[str, Any]) -> Result:
        ts = reading.get("ts")
        if not isinstance(ts, str):
            raise BadReading("no ts")
        try:
            t, off = parse_ts(ts)
        except ValueError:
            raise BadReading(f"ts {ts!r} is not ISO 8601") from None
        counter_wh = import_counter_wh(reading)
        meter_id = reading.get("meter_id") if isinstance(reading.get("meter_id"), str) else None
        meter_avg = _num(reading.get("avg_demand_w"))

        tr = self.tracker
        first = not tr.started
        step = tr.update(t, off, counter_wh, meter_id, meter_avg)
        res = Result(events=list(step.events))
        if not step.accepted:
            return res
        if first:
            self._enter_month(local_month(tr.q_start, tr.q_off), res)
            self._new_quarter()

        for q in step.closed:
            self._enter_month(local_month(q.start_t, q.start_off), res)
            rec = {
                "v": 1, "site": self.site, "start": q.start, "end": q.end,
                "energy_wh": round(q.energy_wh, 3), "avg_w": round(q.avg_w, 1),
                "meter_avg_w": q.meter_avg_w, "complete": q.complete,
                "threshold_w": round(self.q_threshold_w if self.q_threshold_w is not None
                                     else self.threshold_w, 1),
                "warned_at": self.q_warned_at.get(self.settings.algorithm),
                "warned_at_default": self.q_warned_at.get("default"),
                "warned_at_baseline": self.q_warned_at.get("baseline"),
                "algorithm": self.settings.algorithm,
                "flags": q.flags,
                "avg_source": q.avg_source,
            }
            if rec["meter_avg_w"] is None:
                del rec["meter_avg_w"]
            res.quarters.append(rec)
            self.month.add_quarter(q.avg_w, q.start)
            self._new_quarter()
        if step.closed:
            self._enter_month(local_month(tr.q_start, tr.q_off), res)

        # meter values: 1-0:1.6.0 this month, 0-0:98.1.0 the history
        mm = _num(reading.get("month_max_w"))
        if mm is not None:
            mts = reading.get("month_max_ts") if isinstance(reading.get("month_max_ts"), str) else None
            mmonth = None
            if mts:
                try:
                    mmonth = local_month(*parse_ts(mts))
                except ValueError:
                    mts = None
            self.month.meter_month_max(mm, mts, mmonth)
        hist = reading.get("month_max_history")
        if isinstance(hist, list) and hist != self._last_history:
            self._last_history = hist
            self.month.meter_history([e for e in hist if isinstance(e, dict)])

        thr = self.threshold_w
        self.q_threshold_w = thr
        elapsed = tr.elapsed_s
        energy = tr.energy_wh
        power = _num(reading.get("import_w"))
        if power is None and step.prev_t is not None and step.t > step.prev_t and step.prev_wh is not None:
            power = (tr.last_wh - step.prev_wh) * 3600.0 / (step.t - step.prev_t)

        if step.closed or step.prev_t is None:
            prev_e, prev_en = (0.0, 0.0) if step.closed else (elapsed, energy)
        else:
            prev_e = step.prev_t - tr.q_start
            prev_en = (step.prev_wh or 0.0) - tr.q_start_wh
        fb = self.baseline.update(elapsed, energy, prev_e, prev_en, power, thr)
        fd = self.default.update(step.t, elapsed, energy, power, thr, self.params)
        if fb.warned:
            self.q_warned_at["baseline"] = ts
        if fd.warned:
            self.q_warned_at["default"] = ts
        f = fb if self.settings.algorithm == "baseline" else fd

        remaining = QUARTER_S - elapsed
        peak: dict[str, Any] = {
            "v": 1, "site": self.site, "ts": ts,
            "quarter_start": iso(tr.q_start, tr.q_off),
            "quarter_end": iso(tr.q_end, tr.q_off),
            "elapsed_s": round(elapsed, 1),
            "energy_wh": round(energy, 3),
            "avg_w": round(energy * 3600.0 / QUARTER_S, 1),
            "forecast_w": round(f.forecast_w, 1),
            "threshold_w": round(thr, 1),
            "headroom_w": round(headroom_w(thr, f.forecast_wh, remaining), 1),
            "level": f.level,
            "month_peak_w": round(self.month.peak_w, 1),
            "month_peak_is_floor": self.month.is_floor,
            "algorithm": self.settings.algorithm,
            "complete": tr.complete,
            "avg_source": tr.q_avg_source,
        }
        if tr.q_avg_source != "counters" and tr.q_first_t is not None:
            peak["observed_from"] = iso(tr.q_first_t, tr.q_off)
        if self.default.p_fast_w is not None:
            peak["power_w"] = round(self.default.p_fast_w, 1)
        if meter_avg is not None:
            peak["meter_avg_demand_w"] = meter_avg
            if elapsed > 0:  # like for like: 1-0:1.4.0 is energy so far / time elapsed
                peak["meter_diff_w"] = round(energy * 3600.0 / elapsed - meter_avg, 1) + 0.0  # no -0.0
        warned = self.q_warned_at.get(self.settings.algorithm)
        if warned:
            peak["warned_at"] = warned
        res.peak = peak

        self._month_record(res)
        return res

    def _month_record(self, res: Result) -> None:
        if self.month.dirty and self.month.month is not None:
            self.month.dirty = False
            rec = self.month.record(self.site, self.settings.price_eur_per_kw_year)
            if rec != self._last_month_record:
                self._last_month_record = rec
                res.months.append(rec)

    def _enter_month(self, month: str, res: Result) -> None:
        """Roll the month over, first emitting the final record of the one ending."""
        if self.month.month is not None and self.month.month != month:
            self._month_record(res)
        self.month.enter(month)

    def _new_quarter(self) -> None:
        self.baseline.new_quarter()
        self.default.new_quarter()
        self.q_warned_at = {"default": None, "baseline": None}
