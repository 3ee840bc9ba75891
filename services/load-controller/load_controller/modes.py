"""The control laws, one small pure piece each: no clocks, no sockets, time passed in.

- :class:`LevelTrack` answers "which of my commands does the meter reading taken at
  time t already show?" (commands take effect late: device delay, telegram period).
- :class:`SurplusSwitch` is the original injection switch (mini switch, module 2):
  on after export >= threshold for the on-delay (*inschakelvertraging*), then on for
  at least the minimum on-time (*uitschakelvertraging*) whatever happens, then on
  until there is import again.
- :func:`tariff_on` is the original tariff switch: on while the meter says tariff 2.
- :class:`ResponseModel` tells how late a proportional load follows its commands and
  whether it draws at all (a boiler whose thermostat has cut out draws nothing).
- :func:`proportional_step` moves a proportional load towards its share of the
  surplus with a gain below 1.
"""

from __future__ import annotations

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
    """The levels an output was commanded, and when each one shows in the meter.

    A command is *applied* when the device confirms its ``seq`` in a state report;
    for a device that never reports, ``device_delay_s`` after it was sent; for one
    that does report but has not confirmed yet, ``confirm_timeout_s`` after it was
    sent. A reading received at ``t`` shows what was applied by ``t - meter_lag_s``.
    Only level changes are kept (heartbeats that repeat a level are not).
    """

    device_delay_s: float = 0.5
    confirm_timeout_s: float = 2.0
    meter_lag_s: float = 0.2
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
        if e.applied_t is not None:
            return e.applied_t
        if delay_s is None:
            delay_s = self.confirm_timeout_s if self.reports_state else self.device_delay_s
        return e.t + delay_s

    def visible_w(self, t_reading: float, delay_s: float | None = None) -> float:
        """The level the meter reading received at ``t_reading`` already shows, if an
        unconfirmed command takes ``delay_s`` (default: the configured model) to apply."""
        horizon = t_reading - self.meter_lag_s
        for e in reversed(self.entries):
            if self._applied_at(e, delay_s) <= horizon:
                return e.level_w
        return self.entries[0].level_w

    def prune(self, now: float, keep_s: float = 10.0) -> None:
        """Forget levels replaced more than ``keep_s`` ago (no hypothesis needs them)."""
        while len(self.entries) > 1 and self.entries[1].t < now - keep_s:
            del self.entries[0]

    def pending_w(self, t_reading: float) -> float:
        """Commanded minus visible: what the meter will still show of our commands."""
        return self.commanded_w - self.visible_w(t_reading)


# -- tariff switch -------------------------------------------------------------------


def tariff_on(tariff: int | None) -> tuple[bool, str]:
    if tariff is None:
        return False, "off: the reading has no tariff"
    if tariff == 2:
        return True, "on: tariff 2 (night)"
    return False, f"off: tariff {tariff} (day)"


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

    def force_off(self) -> None:
        self.reset()

    def timers(self, now: float, on_delay_s: float, min_on_s: float) -> dict[str, float | None]:
        delay = None
        if self.on_since is None and self.above_since is not None:
            delay = max(0.0, on_delay_s - (now - self.above_since))
        min_on = None
        if self.on_since is not None:
            min_on = max(0.0, min_on_s - (now - self.on_since))
        return {"on_delay_remaining_s": delay, "min_on_remaining_s": min_on}

    def must_stay_on(self, now: float, min_on_s: float) -> bool:
        return self.on_since is not None and now - self.on_since < min_on_s

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
    power is ``net - what the load draws under that hypothesis``; a household changes
    in occasional steps, so the right hypothesis is the one under which the household
    looks smoothest: the wrong ones show every command change as a spike. The score
    is a decaying sum of |step| per hypothesis; the best one wins with a margin.
    """

    delays_s: tuple[float, ...]
    decay: float = 0.7
    margin_w: float = 100.0
    current: int = 0
    scores: list[float] = field(default_factory=list)
    prev_h: list[float | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.delays_s) + 1
        self.scores = [0.0] * n
        self.prev_h = [None] * n

    @property
    def drawing(self) -> bool:
        return self.current < len(self.delays_s)

    def best_delay_s(self) -> float:
        k = min(range(len(self.delays_s)), key=lambda i: (self.scores[i], i))
        return self.delays_s[k] if not self.drawing else self.delays_s[self.current]

    def update(self, net_minus_others_w: float, levels_w: list[float]) -> bool:
        """One reading: ``levels_w`` = what the load draws under each hypothesis
        (the last one, not drawing, is 0). Returns True when the verdict changed."""
        jump = None if self.prev_h[-1] is None else net_minus_others_w - self.prev_h[-1]
        for i, level in enumerate(levels_w):
            h = net_minus_others_w - level
            prev = self.prev_h[i]
            step = 0.0 if prev is None else abs(h - prev)
            self.scores[i] = self.decay * self.scores[i] + step
            self.prev_h[i] = h
        if not self.drawing and jump is not None:
            k = min(range(len(self.delays_s)), key=lambda i: (self.scores[i], i))
            level = levels_w[k]
            if level >= self.margin_w and 0.7 * level <= jump <= 1.3 * level:
                # the net rose by what the load was told to draw: the thermostat closed
                self.current = k
                self.scores[-1] = self.scores[k] + 2 * self.margin_w
                return True
        best = min(range(len(self.scores)), key=lambda i: (self.scores[i], i))
        cur = self.scores[self.current]
        if best != self.current and cur - self.scores[best] > self.margin_w and \
                self.scores[best] < 0.8 * cur:
            self.current = best
            return True
        return False

    def set_drawing(self) -> None:
        """A probe showed the load draws: back to the best delay hypothesis, fresh scores."""
        self.current = min(range(len(self.delays_s)), key=lambda i: (self.scores[i], i))
        self.scores = [0.0] * len(self.scores)
        self.scores[-1] = 2 * self.margin_w

    def reset_history(self) -> None:
        self.prev_h = [None] * len(self.prev_h)


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
