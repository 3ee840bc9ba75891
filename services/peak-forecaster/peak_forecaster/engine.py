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

from .forecast import (
    BaselineForecaster,
    DefaultForecaster,
    Forecast,
    ForecastParams,
    headroom_w,
)
from .learner import Estimate, Learner
from .months import MonthState
from .quarters import QUARTER_S, ClosedQuarter, QuarterTracker, Step, iso, local_month, parse_ts

STATE_VERSION = 1
CONTROL_FRESH_S = 30.0
"""The load-controller's ``control`` counts for this long (reading time)."""
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


def reading_time(reading: dict[str, Any]) -> tuple[str, float, int]:
    """The reading's ``ts`` as given, and as (epoch seconds, UTC offset seconds)."""
    ts = reading.get("ts")
    if not isinstance(ts, str):
        raise BadReading("no ts")
    try:
        t, off = parse_ts(ts)
    except ValueError:
        raise BadReading(f"ts {ts!r} is not ISO 8601") from None
    return ts, t, off


def _text(reading: dict[str, Any], key: str) -> str | None:
    value = reading.get(key)
    return value if isinstance(value, str) else None


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
        self.rule = DefaultForecaster()
        """Today's rule alone (the default without the learner), for comparison."""
        self.learner = Learner()
        self.estimate: Estimate | None = None
        self.controlled_w = 0.0
        """What the load-controller can shed (its ``control``), at ``controlled_t``."""
        self.controlled_t: float | None = None
        self.q_threshold_w: float | None = None
        self.q_warned_at: dict[str, str | None] = {"default": None, "baseline": None, "rule": None}
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
            "rule": self.rule.to_dict(),
            "learner": self.learner.to_dict(),
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
        eng.rule = DefaultForecaster.from_dict(state.get("rule") or state["default"])
        eng.learner = Learner.from_dict(state.get("learner") or {})
        eng.q_threshold_w = state.get("q_threshold_w")
        eng.q_warned_at = {"default": None, "baseline": None, "rule": None,
                           **(state.get("q_warned_at") or {})}
        return eng

    # -- configuration -------------------------------------------------------------------
    def set_settings(self, settings: PeakSettings) -> None:
        if settings != self.settings:
            if settings.price_eur_per_kw_year != self.settings.price_eur_per_kw_year:
                self.month.dirty = True
            self.settings = settings

    def set_controlled(self, t: float, watts: float) -> None:
        """The load-controller's sheddable power (W) as of ``t`` (its ``control``)."""
        self.controlled_t, self.controlled_w = t, max(0.0, watts)

    @property
    def threshold_w(self) -> float:
        """The dynamic threshold of the original: max(manual threshold, month peak)."""
        return max(self.settings.manual_threshold_w, self.month.peak_w)

    # -- one reading -------------------------------------------------------------------------
    def process(self, reading: dict[str, Any]) -> Result:
        """One reading: the quarters it closed, the running quarter's ``peak``, month records."""
        ts, t, off = reading_time(reading)
        counter_wh = import_counter_wh(reading)
        meter_avg_w = _num(reading.get("avg_demand_w"))

        tracker = self.tracker
        first = not tracker.started
        step = tracker.update(t, off, counter_wh, _text(reading, "meter_id"), meter_avg_w)
        res = Result(events=list(step.events))
        if not step.accepted:
            return res
        if first:
            self._enter_month(local_month(tracker.q_start, tracker.q_off), res)
            self._new_quarter()
        for quarter in step.closed:
            self._close_quarter(quarter, res)
        if step.closed:
            self._enter_month(local_month(tracker.q_start, tracker.q_off), res)
        self._take_meter_peaks(reading)

        threshold_w = self.threshold_w
        self.q_threshold_w = threshold_w
        forecast = self._forecast(step, ts, _num(reading.get("import_w")), threshold_w)
        res.peak = self._peak(ts, threshold_w, forecast, meter_avg_w)
        self._month_record(res)
        return res

    def _close_quarter(self, quarter: ClosedQuarter, res: Result) -> None:
        """A quarter is over: its ``peak/quarter`` record, the month's peak, a new quarter."""
        self._enter_month(local_month(quarter.start_t, quarter.start_off), res)
        res.quarters.append(self._quarter_record(quarter))
        whole = quarter.complete and quarter.avg_source != "partial"
        self.learner.close_quarter(quarter.avg_w if whole else None, quarter.start_t, quarter.start_off)
        self.month.add_quarter(quarter.avg_w, quarter.start)
        self._new_quarter()

    def _quarter_record(self, quarter: ClosedQuarter) -> dict[str, Any]:
        threshold_w = self.q_threshold_w if self.q_threshold_w is not None else self.threshold_w
        record: dict[str, Any] = {
            "v": 1, "site": self.site, "start": quarter.start, "end": quarter.end,
            "energy_wh": round(quarter.energy_wh, 3), "avg_w": round(quarter.avg_w, 1),
            "meter_avg_w": quarter.meter_avg_w, "complete": quarter.complete,
            "threshold_w": round(threshold_w, 1),
            "warned_at": self.q_warned_at.get(self.settings.algorithm),
            "warned_at_default": self.q_warned_at.get("default"),
            "warned_at_baseline": self.q_warned_at.get("baseline"),
            "warned_at_rule": self.q_warned_at.get("rule"),
            "algorithm": self.settings.algorithm,
            "flags": quarter.flags,
            "avg_source": quarter.avg_source,
        }
        if record["meter_avg_w"] is None:
            del record["meter_avg_w"]
        return record

    def _take_meter_peaks(self, reading: dict[str, Any]) -> None:
        """The meter's own peaks: 1-0:1.6.0 this month, 0-0:98.1.0 the history."""
        month_max_w = _num(reading.get("month_max_w"))
        if month_max_w is not None:
            month_max_ts = _text(reading, "month_max_ts")
            max_month = None
            if month_max_ts:
                try:
                    max_month = local_month(*parse_ts(month_max_ts))
                except ValueError:
                    month_max_ts = None
            self.month.meter_month_max(month_max_w, month_max_ts, max_month)
        history = reading.get("month_max_history")
        if isinstance(history, list) and history != self._last_history:
            self._last_history = history
            self.month.meter_history([e for e in history if isinstance(e, dict)])

    def _forecast(
        self, step: Step, ts: str, power_w: float | None, threshold_w: float,
    ) -> Forecast:
        """Both forecasters' view of the running quarter (their warnings noted); the chosen one."""
        tracker = self.tracker
        elapsed, energy = tracker.elapsed_s, tracker.energy_wh
        raw_w = power_w
        if power_w is None and step.prev_t is not None and step.t > step.prev_t and step.prev_wh is not None:
            power_w = (tracker.last_wh - step.prev_wh) * 3600.0 / (step.t - step.prev_t)
        # where the quarter stood at the reading before (0 when this one opened it)
        if step.closed or step.prev_t is None:
            prev_elapsed, prev_energy = (0.0, 0.0) if step.closed else (elapsed, energy)
        else:
            prev_elapsed = step.prev_t - tracker.q_start
            prev_energy = (step.prev_wh or 0.0) - tracker.q_start_wh
        by_baseline = self.baseline.update(
            elapsed, energy, prev_elapsed, prev_energy, power_w, threshold_w)
        self.learner.observe_power(step.t, raw_w)
        if power_w is not None:
            self.default.smooth(step.t, power_w, self.params)
        self.estimate = self._estimate(step.t, elapsed, energy, threshold_w)
        p_fast, p_base = self.default.p_fast_w, self.default.p_base_w
        prob = self.estimate.probability if self.estimate else None
        by_default = self.default.decide(step.t, elapsed, energy, threshold_w, self.params, prob,
                                         p_fast, p_base)
        by_rule = self.rule.decide(step.t, elapsed, energy, threshold_w, self.params, None, p_fast, p_base)
        for name, fc in (("baseline", by_baseline), ("default", by_default), ("rule", by_rule)):
            if fc.warned:
                self.q_warned_at[name] = ts
        return by_baseline if self.settings.algorithm == "baseline" else by_default

    def _estimate(self, t: float, elapsed: float, energy: float, threshold_w: float) -> Estimate | None:
        """The learner's view: note the quarter's sample, P(ends above) and why."""
        p = self.default.p_fast_w
        if p is None or not self.tracker.complete:
            return None
        p_free = p  # the part nobody controls: only that one is forecast as staying on
        if self.controlled_t is not None and abs(t - self.controlled_t) <= CONTROL_FRESH_S:
            p_free = max(0.0, p - self.controlled_w)
        f_w = energy * 3600.0 / QUARTER_S + p_free * max(0.0, QUARTER_S - elapsed) / QUARTER_S
        off = self.tracker.q_off
        self.learner.note(t, off, elapsed, p, f_w)
        return self.learner.estimate(t, off, elapsed, p, f_w, threshold_w)

    def _peak(
        self, ts: str, threshold_w: float, forecast: Forecast, meter_avg_w: float | None,
    ) -> dict[str, Any]:
        """The ``peak`` payload: the running quarter so far and where it is heading."""
        tracker = self.tracker
        elapsed, energy = tracker.elapsed_s, tracker.energy_wh
        remaining = QUARTER_S - elapsed
        peak: dict[str, Any] = {
            "v": 1, "site": self.site, "ts": ts,
            "quarter_start": iso(tracker.q_start, tracker.q_off),
            "quarter_end": iso(tracker.q_end, tracker.q_off),
            "elapsed_s": round(elapsed, 1),
            "energy_wh": round(energy, 3),
            "avg_w": round(energy * 3600.0 / QUARTER_S, 1),
            "forecast_w": round(forecast.forecast_w, 1),
            "threshold_w": round(threshold_w, 1),
            "headroom_w": round(headroom_w(threshold_w, forecast.forecast_wh, remaining), 1),
            "level": forecast.level,
            "month_peak_w": round(self.month.peak_w, 1),
            "month_peak_is_floor": self.month.is_floor,
            "algorithm": self.settings.algorithm,
            "complete": tracker.complete,
            "avg_source": tracker.q_avg_source,
        }
        if tracker.q_avg_source != "counters" and tracker.q_first_t is not None:
            peak["observed_from"] = iso(tracker.q_first_t, tracker.q_off)
        if self.default.p_fast_w is not None:
            peak["power_w"] = round(self.default.p_fast_w, 1)
        if meter_avg_w is not None:
            peak["meter_avg_demand_w"] = meter_avg_w
            if elapsed > 0:  # like for like: 1-0:1.4.0 is energy so far / time elapsed
                peak["meter_diff_w"] = round(energy * 3600.0 / elapsed - meter_avg_w, 1) + 0.0  # no -0.0
        warned = self.q_warned_at.get(self.settings.algorithm)
        if warned:
            peak["warned_at"] = warned
        peak["days_learned"] = self.learner.days_learned
        if self.estimate is not None:
            if self.estimate.probability is not None:
                peak["probability"] = round(self.estimate.probability, 3)
            peak["reason"] = self.estimate.reason
        return peak

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
        self.rule.new_quarter()
        self.q_warned_at = {"default": None, "baseline": None, "rule": None}
