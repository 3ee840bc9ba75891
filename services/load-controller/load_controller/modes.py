"""The control laws, one small pure piece each: no clocks, no sockets, time passed in.

- :class:`LevelTrack` answers "which of my commands does the meter reading taken at
  time t already show?" (commands take effect late: device delay, telegram period).
- :class:`SurplusSwitch` is the original injection switch (mini switch, module 2):
  on after export >= threshold for the on-delay (*inschakelvertraging*), then on for
  at least the minimum on-time (*uitschakelvertraging*) whatever happens, then on
  until there is import again.
- :func:`tariff_on` is the original tariff switch: on while the reading says the low tariff
  is in force (``tariff_low``; Fluvius tariff 2, Dutch tariff 1).
- :class:`ResponseModel` tells how late a proportional load follows its commands and
  whether it draws at all (a boiler whose thermostat has cut out draws nothing).
- :func:`proportional_step` moves a proportional load towards its share of the
  surplus with a gain below 1.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field


def fmt_w(value: float) -> str:
    """Whole watts for reasons shown to people: ``2140 W``."""
    return f"{round(value):d} W"


def fmt_s(value: float) -> str:
    value = max(0.0, value)
    return f"{value:.0f} s" if value >= 10 or value == int(value) else f"{value:.1f} s"


# -- command visibility ------------------------------------------------------------


@dataclass
class _Entry:
    t: float
    level_w: float
    seq: int
    applied_t: float | None = None


@dataclass
class LevelTrack:
    """The levels an output was commanded, and what of them each meter reading shows.

    A command is *applied* ``delay_s`` after it was sent (the configured
    ``device_delay_s``, or a hypothesis of :class:`ResponseModel`); a device that
    reports its ``seq`` in a state report has applied it by the time the report
    arrives, so a confirmed command counts as applied at the earlier of the two (a
    state report can come late: meter-sim publishes them with the next telegram).
    Without a delay hypothesis (switches), a command is applied when confirmed, or
    ``device_delay_s`` after it was sent for a device that never reports, or
    ``confirm_timeout_s`` after for one that reports but has not confirmed yet.

    The meter averages the power over ``average_s`` (1 s: a DSMR 5 / Fluvius meter's
    telegram carries the mean power of the second before it) and the reading arrives
    ``meter_lag_s`` after that window closes. So a reading received at ``t`` shows the
    time-weighted mean of the applied level over ``[t - meter_lag_s - average_s,
    t - meter_lag_s]``: a command applied in the middle of that window shows for the
    part of the window after it, and for the rest in the next reading. ``average_s`` 0
    is a meter that samples at one instant. Only level changes are kept (heartbeats
    that repeat a level are not).
    """

    device_delay_s: float = 0.5
    confirm_timeout_s: float = 2.0
    meter_lag_s: float = 0.2
    average_s: float = 1.0
    reports_state: bool = False
    entries: list[_Entry] = field(default_factory=lambda: [_Entry(-math.inf, 0.0, -1, -math.inf)])

    @property
    def commanded_w(self) -> float:
        return self.entries[-1].level_w

    def command(self, t: float, level_w: float, seq: int) -> None:
        if level_w != self.entries[-1].level_w:
            self.entries.append(_Entry(t, level_w, seq))

    def confirm(self, t: float, seq: int) -> None:
        """The device says it applied every command up to ``seq``."""
        self.reports_state = True
        for e in self.entries:
            if e.applied_t is None and e.seq <= seq:
                e.applied_t = t

    def _applied_at(self, e: _Entry, delay_s: float | None = None) -> float:
        if delay_s is not None:
            at = e.t + delay_s
            return at if e.applied_t is None else min(at, e.applied_t)
        if e.applied_t is not None:
            return e.applied_t
        return e.t + (self.confirm_timeout_s if self.reports_state else self.device_delay_s)

    def visible_w(self, t_reading: float, delay_s: float | None = None) -> float:
        """The mean level the meter reading received at ``t_reading`` shows, if an
        unconfirmed command takes ``delay_s`` (default: the configured model) to apply."""
        end = t_reading - self.meter_lag_s
        start = end - self.average_s
        # the level in force at time x is that of the latest command applied by x; a
        # command is in force from its application until a later one is applied
        total = 0.0
        until = math.inf  # earliest application of the commands after this one
        for e in reversed(self.entries):
            at = self._applied_at(e, delay_s)
            if at < until:
                if self.average_s <= 0:
                    if at <= end:
                        return e.level_w
                else:
                    lo, hi = max(at, start), min(until, end)
                    if hi > lo:
                        total += e.level_w * (hi - lo)
                until = at
            if until <= start:
                break
        if self.average_s <= 0:
            return self.entries[0].level_w
        return total / self.average_s

    def prune(self, now: float, keep_s: float = 10.0) -> None:
        """Forget levels replaced more than ``keep_s`` ago (no hypothesis needs them)."""
        while len(self.entries) > 1 and self.entries[1].t < now - keep_s:
            del self.entries[0]

    def pending_w(self, t_reading: float) -> float:
        """Commanded minus visible: what the meter will still show of our commands."""
        return self.commanded_w - self.visible_w(t_reading)


# -- tariff switch -------------------------------------------------------------------


def tariff_on(tariff_low: bool | None, tariff: int | None = None) -> tuple[bool, str]:
    """On while the low (night) tariff is in force, as the reading says in ``tariff_low``.

    The meter's code alone means nothing here (Dutch 1 = low, Belgian 2 = night): the
    rule lives in p1common.dsmr.tariff, and a reading without ``tariff_low`` keeps it off.
    """
    if tariff_low is None:
        if tariff is None:
            return False, "off: the reading has no tariff"
        return False, (f"off: tariff {tariff}, but the reading does not say whether it is the low one "
                       "(set P1_TARIFF_LOW on p1-reader)")
    if tariff_low:
        return True, "on: low tariff (night)"
    return False, "off: normal tariff (day)"


# -- surplus switch ------------------------------------------------------------------


@dataclass
class SurplusSwitch:
    """The injection switch of the original mini switch, decided on each reading."""

    above_since: float | None = None
    on_since: float | None = None

    @property
    def on(self) -> bool:
        return self.on_since is not None

    def reset(self) -> None:
        self.above_since = None
        self.on_since = None

    def timers(self, now: float, on_delay_s: float, min_on_s: float) -> dict[str, float | None]:
        delay = None
        if self.on_since is None and self.above_since is not None:
            delay = max(0.0, on_delay_s - (now - self.above_since))
        min_on = None
        if self.on_since is not None:
            min_on = max(0.0, min_on_s - (now - self.on_since))
        return {"on_delay_remaining_s": delay, "min_on_remaining_s": min_on}

    def step_on(self, now: float, net_w: float, min_on_s: float) -> tuple[bool, str]:
        """Decide for a switch that is on; ``net_w`` is the net this output sees."""
        assert self.on_since is not None
        held = now - self.on_since
        if held < min_on_s:
            return True, f"on: minimum on-time, {fmt_s(min_on_s - held)} left"
        if net_w > 0:
            self.reset()
            return False, f"off: import {fmt_w(net_w)} after the minimum on-time"
        return True, f"on: no import (export {fmt_w(-net_w)}) after the minimum on-time"

    def step_off(
        self, now: float, net_w: float, threshold_w: float, on_delay_s: float
    ) -> tuple[bool, str]:
        """Decide for a switch that is off; switching on starts the minimum on-time."""
        export = -net_w
        if export < threshold_w:
            self.above_since = None
            return False, f"off: export {fmt_w(export)} < {fmt_w(threshold_w)}"
        if self.above_since is None:
            self.above_since = now
        held = now - self.above_since
        if held >= on_delay_s:
            self.above_since = None
            self.on_since = now
            return True, f"on: export {fmt_w(export)} >= {fmt_w(threshold_w)} for {fmt_s(held)}"
        return False, (
            f"off: export {fmt_w(export)} >= {fmt_w(threshold_w)} for {fmt_s(held)}"
            f" of {fmt_s(on_delay_s)}"
        )


# -- proportional --------------------------------------------------------------------


@dataclass
class ResponseModel:
    """Which story about a proportional load explains the meter best?

    Hypotheses: the load applies a command after ``delays_s[i]`` (several candidate
    delays, since a device that does not report its state may be slower than assumed),
    or the load draws nothing at all (thermostat cut out). For each, the household
    power is ``net - what the load draws under that hypothesis``. A household changes in
    occasional steps, and ramps (PV under a cloud edge), so the right hypothesis is the
    one under which the household looks flattest: a wrong one shows every command
    change as a spike. The cost of a reading is the household's change minus the ramp
    that hypothesis' household was on (:func:`trend`: the same-way changes of the three
    readings before), so a ramp costs only its start and end. Without that, while the
    controller follows a ramp (the net stays put and the level moves), "not drawing,
    constant household" would look flatter than "drawing, household ramping", and a PV
    ramp of 100 W/s over a few seconds would pass for a thermostat cut-out.

    Two decaying sums of the cost per hypothesis: ``scores`` (decay 0.7) decide whether
    the load draws: the verdict changes when the other story is better by ``margin_w``
    and by 20 % (to "not drawing": better than the delay in use and than the best delay
    by the slow score); ``slow`` (decay 0.97: a device's delay does not change from one reading
    to the next) picks the delay, by the same rule. A thermostat that closes again shows
    as the net rising by what the load was told to draw, over one or two readings (a
    meter that averages over the second splits a change across two readings).
    """

    delays_s: tuple[float, ...]
    decay: float = 0.7
    delay_decay: float = 0.97
    margin_w: float = 100.0
    current: int = 0
    scores: list[float] = field(default_factory=list)
    slow: list[float] = field(default_factory=list)
    prev_h: list[float | None] = field(default_factory=list)
    slopes: list[list[float]] = field(default_factory=list)
    prev2_net: float | None = None  # net minus others two readings ago

    def __post_init__(self) -> None:
        n = len(self.delays_s) + 1
        self.scores = [0.0] * n
        self.slow = [0.0] * n
        self.prev_h = [None] * n
        self.slopes = [[] for _ in range(n)]

    @property
    def drawing(self) -> bool:
        return self.current < len(self.delays_s)

    def _best_delay(self) -> int:
        return min(range(len(self.delays_s)), key=lambda i: (self.slow[i], i))

    def best_delay_s(self) -> float:
        return self.delays_s[self.current if self.drawing else self._best_delay()]

    def _better(self, scores: list[float], a: int, b: int) -> bool:
        return scores[b] - scores[a] > self.margin_w and scores[a] < 0.8 * scores[b]

    def update(self, net_minus_others_w: float, levels_w: list[float]) -> bool:
        """One reading: ``levels_w`` = what the load draws under each hypothesis
        (the last one, not drawing, is 0). Returns True when the verdict changed."""
        before = self.prev_h[-1]
        jumps = [net_minus_others_w - p for p in (before, self.prev2_net) if p is not None]
        self.prev2_net = before
        for i, level in enumerate(levels_w):
            h = net_minus_others_w - level
            prev = self.prev_h[i]
            cost = 0.0
            if prev is not None:
                slope = h - prev
                cost = abs(slope - trend(self.slopes[i]))
                self.slopes[i] = [*self.slopes[i][-2:], slope]
            self.scores[i] = self.decay * self.scores[i] + cost
            self.slow[i] = self.delay_decay * self.slow[i] + cost
            self.prev_h[i] = h
        k = self._best_delay()
        off = len(self.delays_s)
        if not self.drawing:
            level = levels_w[k]
            if level >= self.margin_w and any(0.7 * level <= j <= 1.3 * level for j in jumps):
                # the net rose by what the load was told to draw: the thermostat closed
                self.current = k
                self.scores[-1] = self.scores[k] + 2 * self.margin_w
                return True
            if self._better(self.scores, k, off):
                self.current = k
                return True
            return False
        # not drawing only when neither the delay in use nor the best one so far
        # explains the meter as well
        if self._better(self.scores, off, self.current) and self._better(self.scores, off, k):
            self.current = off
            return True
        if k != self.current and self._better(self.slow, k, self.current):
            self.current = k  # a better delay: not a change of verdict
        return False

    def set_drawing(self) -> None:
        """A probe showed the load draws: back to the best delay hypothesis, fresh scores."""
        self.current = self._best_delay()
        self.scores = [0.0] * len(self.scores)
        self.scores[-1] = 2 * self.margin_w

    def reset_history(self) -> None:
        self.prev_h = [None] * len(self.prev_h)
        self.slopes = [[] for _ in self.slopes]
        self.prev2_net = None


def trend(changes: list[float], n: int = 3) -> float:
    """A ramp in the last ``n`` changes: the smallest of them when they all go the same
    way, else 0. A step (one change, or two with a meter that averages over the second)
    is no ramp."""
    if len(changes) < n:
        return 0.0
    tail = changes[-n:]
    if all(d > 0 for d in tail):
        return min(tail)
    if all(d < 0 for d in tail):
        return max(tail)
    return 0.0


def ramp_w(values: list[float], n: int = 3) -> float:
    """The household's ramp per reading from its last ``n`` + 1 values (:func:`trend` of
    their changes): a cloud edge moving over the PV goes on while the commands take
    effect, so the controller leads it; a step is corrected, not extrapolated."""
    tail = values[-(n + 1):]
    return trend([b - a for a, b in itertools.pairwise(tail)], n)


def proportional_step(current_w: float, target_w: float, gain: float, rated_w: float,
                      deadband_w: float) -> float:
    """Move ``current_w`` towards ``target_w`` by ``gain``; snap when close."""
    target_w = min(max(target_w, 0.0), rated_w)
    if abs(target_w - current_w) <= deadband_w:
        return target_w if target_w in (0.0, rated_w) else current_w
    new = current_w + gain * (target_w - current_w)
    if abs(target_w - new) <= deadband_w:
        new = target_w
    return min(max(new, 0.0), rated_w)
