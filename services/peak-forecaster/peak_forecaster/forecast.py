"""Quarter forecasts and warning levels: the original algorithm and a better default.

Pure logic: every call gets the quarter's elapsed seconds, the energy so far and
the power, never a clock.

Levels: ``ok``; ``warn`` when the forecast passes ``warn_fraction`` (90 %) of the
threshold (getting close, a heads-up); ``alarm`` when the quarter is expected to end
above the threshold unless something is switched off. ``alarm`` is what the
original's red LED showed; a quarter's ``warned_at`` is its first ``alarm``. The
baseline alarms when its extrapolation passes the threshold; the default when its
forecast passes a bound that depends on the time in the quarter
(:meth:`ForecastParams.alarm_fraction`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from .quarters import QUARTER_S

LEVELS = ("ok", "warn", "alarm")


def headroom_w(threshold_w: float, forecast_wh: float, remaining_s: float) -> float:
    """Constant extra power that can still be drawn until the quarter ends, on top of
    the forecast, without the quarter's average passing ``threshold_w``.

    ``(threshold_w x 0.25 h - forecast_wh) / remaining_h`` with the remaining time
    taken as at least 1 s. Negative: that much must be shed, on average, for the
    rest of the quarter.
    """
    return (threshold_w * QUARTER_S / 3600.0 - forecast_wh) * 3600.0 / max(remaining_s, 1.0)


@dataclass
class Forecast:
    forecast_wh: float
    level: str
    warned: bool  # True when this reading raised the quarter's first alarm

    @property
    def forecast_w(self) -> float:
        return self.forecast_wh * 3600.0 / QUARTER_S


# ---------------------------------------------------------------------------------------
# The original algorithm (baseline)
# ---------------------------------------------------------------------------------------
BASELINE_CHECKS_S = (300.0, 600.0)


@dataclass
class BaselineForecaster:
    """At minute 5 and 10: energy so far extrapolated to 15 min vs the threshold.

    Exactly the original: the energy at the check instant (interpolated between
    the readings around it, like a boundary; pro rata of the energy so far when the
    quarter was joined after the check) times 3 at minute 5 and times 1.5 at
    minute 10; above the dynamic threshold -> warning, which stays until the next
    quarter. Between checks the published forecast is the plain linear
    extrapolation of the energy so far.
    """

    checks_done: int = 0
    alarm: bool = False
    last_check_wh: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BaselineForecaster:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    def new_quarter(self) -> None:
        self.checks_done, self.alarm, self.last_check_wh = 0, False, None

    def update(
        self, elapsed_s: float, energy_wh: float, prev_elapsed_s: float, prev_energy_wh: float,
        power_w: float | None, threshold_w: float,
    ) -> Forecast:
        raised = False
        while self.checks_done < len(BASELINE_CHECKS_S):
            c = BASELINE_CHECKS_S[self.checks_done]
            if elapsed_s < c:
                break
            if elapsed_s > prev_elapsed_s and prev_elapsed_s < c:
                e_c = prev_energy_wh + (energy_wh - prev_energy_wh) * (c - prev_elapsed_s) / (
                    elapsed_s - prev_elapsed_s
                )
            elif elapsed_s > c and prev_elapsed_s >= elapsed_s:
                # no reading of this quarter before the check (joined it after that
                # instant): the energy at the check pro rata of the quarter's so far
                e_c = energy_wh * c / elapsed_s
            else:
                e_c = energy_wh
            self.last_check_wh = e_c * QUARTER_S / c
            self.checks_done += 1
            if not self.alarm and self.last_check_wh * 3600.0 / QUARTER_S > threshold_w:
                self.alarm = raised = True
        linear = energy_wh * QUARTER_S / elapsed_s if elapsed_s > 0 else energy_wh
        return Forecast(linear, "alarm" if self.alarm else "ok", raised)


# ---------------------------------------------------------------------------------------
# The default forecaster
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ForecastParams:
    fast_tau_s: float = 30.0
    """Smoothing of the measured power (1 s telegram noise, motor start-ups)."""
    base_tau_s: float = 1800.0
    """The prior: a slow average of the house's power, what it returns to."""
    persist_tau_s: float = 300.0
    """How long an excess over the prior is expected to last (mean reversion)."""
    warn_fraction: float = 0.9
    hysteresis_fraction: float = 0.05
    hold_s: float = 30.0
    """A level drops only after the forecast stayed below it (minus hysteresis) this long."""
    early_alarm_fraction: float = 1.4
    """Before ``confirm_s`` an alarm needs the forecast this far above the threshold: early
    in the quarter the forecast is uncertain and most early crossings end below."""
    confirm_s: float = 600.0
    confirm_fraction: float = 0.95
    last_call_s: float = 660.0
    """From ``confirm_s`` to ``last_call_s`` (the last moment that still gives 4 min of
    lead) the alarm bound is ``confirm_fraction`` of the threshold; after it, the
    threshold itself."""
    learned_from_s: float = 540.0
    learned_cut: float | None = None
    """When set (opt-in, ``PEAK_LEARNED_CUT``; 0.6 is the cut-off the benchmark chose) and the
    site's learner gives a probability: from ``learned_from_s`` on the alarm is raised when
    P(the quarter ends above) >= ``learned_cut`` instead of the forecast bounds (before it,
    the early bound above). ``None``: the rule alone decides; the probability is stated."""

    @property
    def stay_fraction(self) -> float:
        """The lowest alarm bound; an alarm lasts until the forecast stays under it minus the
        hysteresis for ``hold_s``."""
        return min(self.early_alarm_fraction, self.confirm_fraction, 1.0)

    def alarm_fraction(self, elapsed_s: float) -> float:
        """The alarm bound, as a fraction of the threshold, at ``elapsed_s`` into the quarter."""
        if elapsed_s < self.confirm_s:
            return self.early_alarm_fraction
        if elapsed_s <= self.last_call_s:
            return self.confirm_fraction
        return 1.0


@dataclass
class DefaultForecaster:
    """Energy so far + the expected energy for the rest of the quarter.

    The rest is forecast from the smoothed current power ``p`` reverting to a prior
    ``b`` (a slow average of the power): the excess ``p - b`` is expected to last
    ``persist_tau_s`` on average, so over the remaining ``r`` seconds

        rest_wh = (b x r + (p - b) x tau x (1 - exp(-r / tau))) / 3600

    Near the end of the quarter that is the current power times the remaining time;
    early in it a short spike (a kettle) weighs less than a load that has been on.

    ``alarm`` when the forecast passes ``alarm_fraction(elapsed)`` x threshold: 140 %
    before minute 10 (early forecasts are uncertain), 95 % from minute 10 to 11 (the
    last chance for 4 min of lead), 100 % after. Levels go up at once, down only after
    ``hold_s`` below the lowest bound of the level minus the hysteresis, so they do not
    flicker and an alarm of minute 10 is not withdrawn at minute 11.
    """

    p_fast_w: float | None = None
    p_base_w: float | None = None
    last_t: float | None = None
    level: str = "ok"
    below_since: float | None = None
    alarmed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DefaultForecaster:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    def new_quarter(self) -> None:
        self.level, self.below_since, self.alarmed = "ok", None, False

    def smooth(self, t: float, power_w: float, params: ForecastParams) -> None:
        if self.p_fast_w is None or self.p_base_w is None or self.last_t is None:
            self.p_fast_w = self.p_base_w = power_w
        else:
            dt_s = max(0.0, t - self.last_t)
            a = 1.0 - math.exp(-dt_s / params.fast_tau_s)
            b = 1.0 - math.exp(-dt_s / params.base_tau_s)
            self.p_fast_w += a * (power_w - self.p_fast_w)
            self.p_base_w += b * (power_w - self.p_base_w)
        self.last_t = t

    def update(
        self, t: float, elapsed_s: float, energy_wh: float, power_w: float | None,
        threshold_w: float, params: ForecastParams, p_above: float | None = None,
    ) -> Forecast:
        """Smooth the power, then :meth:`decide`."""
        if power_w is not None:
            self.smooth(t, power_w, params)
        return self.decide(t, elapsed_s, energy_wh, threshold_w, params, p_above,
                           self.p_fast_w, self.p_base_w)

    def decide(
        self, t: float, elapsed_s: float, energy_wh: float, threshold_w: float,
        params: ForecastParams, p_above: float | None, p_fast_w: float | None, p_base_w: float | None,
    ) -> Forecast:
        """The forecast and the level from the smoothed powers (``p_above``: the learner's
        probability, ``None`` while it learns: then the rule alone decides)."""
        p = p_fast_w if p_fast_w is not None else 0.0
        b = p_base_w if p_base_w is not None else p
        r = max(0.0, QUARTER_S - elapsed_s)
        tau = params.persist_tau_s
        rest_wh = (b * r + (p - b) * tau * (1.0 - math.exp(-r / tau))) / 3600.0
        forecast_wh = energy_wh + max(0.0, rest_wh)
        forecast_w = forecast_wh * 3600.0 / QUARTER_S

        bound = params.alarm_fraction(elapsed_s)
        target = self._target(forecast_w, threshold_w, params, bound, 0.0)
        if p_above is not None and params.learned_cut is not None and elapsed_s >= params.learned_from_s:
            if p_above >= params.learned_cut:
                target = "alarm"
            elif target == "alarm":
                target = "warn"
        cur = LEVELS.index(self.level)
        if LEVELS.index(target) >= cur:
            self.level, self.below_since = target, None
        else:
            # drop only when below the lowest alarm bound (minus the hysteresis) for hold_s:
            # an alarm raised in the confirmation window is not withdrawn after it
            lower = self._target(forecast_w, threshold_w, params, params.stay_fraction,
                                 params.hysteresis_fraction)
            if LEVELS.index(lower) < cur:
                if self.below_since is None:
                    self.below_since = t
                elif t - self.below_since >= params.hold_s:
                    self.level, self.below_since = lower, None
            else:
                self.below_since = None
        raised = self.level == "alarm" and not self.alarmed
        if raised:
            self.alarmed = True
        return Forecast(forecast_wh, self.level, raised)

    @staticmethod
    def _target(forecast_w: float, threshold_w: float, params: ForecastParams, alarm_fraction: float,
                hyst: float) -> str:
        if forecast_w > threshold_w * (alarm_fraction - hyst):
            return "alarm"
        if forecast_w > threshold_w * (min(params.warn_fraction, alarm_fraction) - hyst):
            return "warn"
        return "ok"
