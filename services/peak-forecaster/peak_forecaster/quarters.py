"""Quarter-hour energy from cumulative import counters, on the meter's own clock.

Pure logic: no clock, no I/O. Time is a pair (UTC instant in epoch seconds, UTC
offset of the meter's clock in seconds), taken from the reading's ISO timestamp.

Why the rules are what they are:

- Quarters are keyed by their UTC instant. Boundaries fall at :00/:15/:30/:45 of
  the meter's local clock; with the whole-hour offsets of CET/CEST those are the
  same instants as UTC quarter boundaries, so the repeated hour of the October
  change gives two distinct quarters (02:00+02:00 and 02:00+01:00), never one.
- The counter value at a boundary is interpolated linearly between the last
  reading before and the first at or after it. With 1 s telegrams that is exact to
  a fraction of a Wh; across a gap it spreads the gap's energy over the quarters
  it spans in proportion to time (those quarters say ``complete: false``). The
  counters are cumulative, so nothing is ever lost: the quarters' energies always
  add up to the counter difference.
- A counter that goes down (a new meter, a reset) restarts the baseline: a running
  offset keeps our "virtual counter" continuous, no negative energy is made.
- A meter clock that goes back a little is clamped (time never runs backwards
  inside a quarter); one that goes back more than a quarter re-anchors on the new
  time. A clock that jumps forward is a gap.
- A quarter joined mid-way (the first reading ever, or the first after a gap too
  long to spread, comes after the quarter's start) has no counter value at its
  start. Where the meter sends 1-0:1.4.0 (the quarter's average demand so far:
  energy since the quarter's start / time elapsed), the energy before the join is
  that average x the elapsed time minus what the counters saw since the join, and
  the quarter is whole again (``avg_source`` ``meter``). Without it the quarter
  counts only from the join (``partial``: its energy is a lower bound, ``complete``
  false).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

QUARTER_S = 900
MAX_GAP_S = 60.0
"""A quarter is ``complete`` only if no two consecutive readings in it are further apart."""
CLOCK_BACK_CLAMP_S = 900.0
"""A backward clock step up to this is clamped; a bigger one re-anchors."""
MAX_INTERPOLATED_S = 7 * 86400.0
"""Longer gaps are not spread over (thousands of) quarters: their energy is reported lost."""
MAX_PLAUSIBLE_W = 250_000.0
"""A counter jump implying more than this is a meter swap, not consumption."""
AVG_SOURCES = ("counters", "meter", "partial")
"""Where a quarter's energy comes from: our counters from its start; the meter's
1-0:1.4.0 for the part before a mid-way join; or only the part we saw (partial)."""

_TZ: dict[int, dt.timezone] = {}


def tz_for(offset_s: int) -> dt.timezone:
    tz = _TZ.get(offset_s)
    if tz is None:
        tz = _TZ[offset_s] = dt.timezone(dt.timedelta(seconds=offset_s))
    return tz


def parse_ts(ts: str) -> tuple[float, int]:
    """ISO 8601 with offset -> (epoch seconds, offset seconds). No offset: UTC."""
    d = dt.datetime.fromisoformat(ts)
    off = d.utcoffset()
    if off is None:
        d = d.replace(tzinfo=dt.UTC)
        return d.timestamp(), 0
    return d.timestamp(), int(off.total_seconds())


def iso(t: float, offset_s: int) -> str:
    """Epoch seconds -> ISO 8601 on the meter's clock (seconds, with offset)."""
    return dt.datetime.fromtimestamp(round(t), tz_for(offset_s)).isoformat()


def local_month(t: float, offset_s: int) -> str:
    """``YYYY-MM`` of an instant on the meter's clock."""
    d = dt.datetime.fromtimestamp(t + offset_s, dt.UTC)
    return f"{d.year:04d}-{d.month:02d}"


def quarter_floor(t: float, offset_s: int) -> float:
    """Start (epoch) of the quarter holding ``t`` on a clock ``offset_s`` from UTC."""
    local = t + offset_s
    return local - (local % QUARTER_S) - offset_s


@dataclass
class ClosedQuarter:
    start_t: float
    end_t: float
    start_off: int
    end_off: int
    energy_wh: float
    complete: bool
    flags: list[str]
    meter_avg_w: float | None = None
    avg_source: str = "counters"

    @property
    def start(self) -> str:
        return iso(self.start_t, self.start_off)

    @property
    def end(self) -> str:
        return iso(self.end_t, self.end_off)

    @property
    def avg_w(self) -> float:
        return self.energy_wh * 3600.0 / (self.end_t - self.start_t)


@dataclass
class Step:
    """What one reading did to the quarters."""

    accepted: bool
    closed: list[ClosedQuarter] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    t: float = 0.0  # the reading's time as used (after clamping)
    prev_t: float | None = None
    prev_wh: float | None = None


@dataclass
class QuarterTracker:
    """State of the running quarter; :meth:`to_dict`/:meth:`from_dict` round-trip it."""

    offset_wh: float = 0.0  # added to the meter's counter: continuity across meter swaps
    last_t: float | None = None
    last_off: int = 0
    last_wh: float = 0.0
    meter_id: str | None = None
    q_start: float = 0.0
    q_off: int = 0
    q_start_wh: float = 0.0
    q_complete: bool = True
    q_flags: list[str] = field(default_factory=list)
    q_meter_avg_w: float | None = None
    q_avg_source: str = "counters"
    q_first_t: float | None = None  # first reading of a quarter joined mid-way
    q_first_wh: float | None = None  # our counter at that reading
    q_floor_wh: float | None = None  # the counter before the join (None: first start)

    # -- persistence ---------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["q_flags"] = list(self.q_flags)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> QuarterTracker:
        tr = cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})
        if "q_avg_source" not in d:  # a state file from before avg_source
            if "partial" in tr.q_flags:
                tr.q_avg_source, tr.q_first_wh = "partial", tr.q_start_wh
            else:
                tr.q_avg_source = "counters"
        if tr.q_avg_source not in AVG_SOURCES:
            raise ValueError(f"tracker.q_avg_source {tr.q_avg_source!r} is not one of {AVG_SOURCES}")
        return tr

    # -- queries ---------------------------------------------------------------------
    @property
    def started(self) -> bool:
        return self.last_t is not None

    @property
    def q_end(self) -> float:
        return self.q_start + QUARTER_S

    @property
    def energy_wh(self) -> float:
        """Energy of the running quarter so far (up to the last reading)."""
        return self.last_wh - self.q_start_wh

    @property
    def elapsed_s(self) -> float:
        return (self.last_t or 0.0) - self.q_start

    @property
    def complete(self) -> bool:
        """No data missing: no long gap, no meter swap, not ``partial``."""
        return self.q_complete and self.q_avg_source != "partial"

    def _flag(self, flag: str) -> None:
        if flag not in self.q_flags:
            self.q_flags.append(flag)

    def _open(self, start: float, off: int, start_wh: float, complete: bool) -> None:
        self.q_start, self.q_off, self.q_start_wh = start, off, start_wh
        self.q_complete = complete
        self.q_flags = []
        self.q_meter_avg_w = None
        self.q_avg_source = "counters"
        self.q_first_t = self.q_first_wh = self.q_floor_wh = None

    def _join(self, t: float, wh: float, floor_wh: float | None) -> None:
        """The running quarter was opened at ``t``, after its start: no counter at its start."""
        if t <= self.q_start:
            return
        self.q_avg_source = "partial"
        self.q_first_t, self.q_first_wh, self.q_floor_wh = t, wh, floor_wh
        self._flag("partial")

    def _repair(self, t: float, wh: float, meter_avg_w: float | None, step: Step) -> None:
        """A ``partial`` quarter and the meter's 1-0:1.4.0: the energy before the join.

        1-0:1.4.0 is the quarter's average demand so far (energy since the quarter's
        start / time elapsed), so the energy since the start is avg x elapsed; minus
        what our counters counted since the join, that is the part before it. It is
        kept >= 0 and, after a gap, <= the counter difference across the gap.
        """
        if self.q_avg_source != "partial" or meter_avg_w is None or meter_avg_w < 0:
            return
        first_wh = self.q_first_wh if self.q_first_wh is not None else self.q_start_wh
        elapsed = t - self.q_start
        so_far = meter_avg_w * elapsed / 3600.0
        before = max(0.0, so_far - (wh - first_wh))
        if self.q_floor_wh is not None:
            before = min(before, max(0.0, first_wh - self.q_floor_wh))
        self.q_start_wh = first_wh - before
        self.q_avg_source = "meter"
        self.q_flags = [f for f in self.q_flags if f != "partial"]
        joined = iso(self.q_first_t, self.q_off) if self.q_first_t is not None else "a restart"
        step.events.append(
            f"quarter {iso(self.q_start, self.q_off)} joined mid-way at {joined}: the "
            f"{before:.1f} Wh before it taken from the meter's 1-0:1.4.0 "
            f"({meter_avg_w:.0f} W over the {elapsed:.0f} s elapsed)"
        )

    def _close(self, end: float, end_off: int, end_wh: float) -> ClosedQuarter:
        return ClosedQuarter(
            start_t=self.q_start, end_t=end, start_off=self.q_off, end_off=end_off,
            energy_wh=end_wh - self.q_start_wh, complete=self.complete,
            flags=list(self.q_flags), meter_avg_w=self.q_meter_avg_w,
            avg_source=self.q_avg_source,
        )

    # -- the one entry point -------------------------------------------------------
    def update(
        self, t: float, off: int, counter_wh: float, meter_id: str | None = None,
        meter_avg_w: float | None = None,
    ) -> Step:
        """Take one reading: time, offset, the meter's import counter (T1+T2) in Wh."""
        if self.last_t is None:
            return self._start(t, off, counter_wh, meter_id, meter_avg_w)
        last_t = self.last_t
        step = Step(True, prev_t=last_t, prev_wh=self.last_wh)
        wh = self._continuous_counter(t, counter_wh, meter_id, step)
        if meter_id is not None:
            self.meter_id = meter_id

        # -- clock going backwards: stale duplicate, small step, or re-anchor -----------------
        if t <= last_t:
            if wh <= self.last_wh:
                return Step(False, t=last_t)  # a repeat or an old reading: nothing new
            back = last_t - t
            if back > CLOCK_BACK_CLAMP_S:
                return self._re_anchor(t, off, wh, meter_avg_w, step)
            if back > 0:
                self._flag("clock_jump")
                step.events.append(f"meter clock went back {back:.0f} s: clamped")
            t = last_t

        # -- forward: close every boundary passed, interpolating the counter ----------------
        gap = t - last_t
        if gap > MAX_GAP_S:
            self.q_complete = False
            self._flag("gap")
        if gap > MAX_INTERPOLATED_S and t >= self.q_end:
            self._skip_long_gap(t, off, wh, meter_avg_w, step)
        else:
            self._close_boundaries(t, off, wh, step)
        self.last_t, self.last_off, self.last_wh = t, off, wh
        if meter_avg_w is not None:
            self.q_meter_avg_w = meter_avg_w
        self._repair(t, wh, meter_avg_w, step)
        step.t = t
        return step

    def _start(
        self, t: float, off: int, counter_wh: float, meter_id: str | None,
        meter_avg_w: float | None,
    ) -> Step:
        """The first reading ever: open its quarter (joined mid-way unless ``t`` is its start)."""
        start = quarter_floor(t, off)
        self.offset_wh = 0.0
        self._open(start, off, counter_wh, complete=True)
        self._join(t, counter_wh, None)
        self.last_t, self.last_off, self.last_wh = t, off, counter_wh
        self.meter_id = meter_id
        self.q_meter_avg_w = meter_avg_w
        first = Step(True, t=t)
        self._repair(t, counter_wh, meter_avg_w, first)
        if self.q_avg_source == "partial":
            first.events.append(
                f"started mid-quarter at {iso(t, off)} and the meter sends no 1-0:1.4.0: "
                f"quarter {iso(start, off)} counts only from then on (partial)")
        return first

    def _continuous_counter(
        self, t: float, counter_wh: float, meter_id: str | None, step: Step,
    ) -> float:
        """The meter's counter on our continuous scale, restarting the baseline on a swap.

        A meter is replaced (or its counter reset) when its equipment id changes, its
        counter goes down, or the counter jumps faster than :data:`MAX_PLAUSIBLE_W`.
        """
        assert self.last_t is not None
        wh = counter_wh + self.offset_wh
        swapped = meter_id is not None and self.meter_id is not None and meter_id != self.meter_id
        if t > self.last_t and not swapped:
            rate_w = (wh - self.last_wh) * 3600.0 / (t - self.last_t)
            swapped = wh < self.last_wh - 1e-6 or rate_w > MAX_PLAUSIBLE_W
        if not swapped:
            return wh
        old_kwh = (self.last_wh - self.offset_wh) / 1000
        self.offset_wh += self.last_wh - wh
        step.events.append(
            f"meter replaced or counter reset (counter {old_kwh:.3f} -> "
            f"{counter_wh / 1000:.3f} kWh"
            + (f", meter id {self.meter_id} -> {meter_id}" if meter_id != self.meter_id else "")
            + "): baseline restarted, energy between the two readings unknown"
        )
        self._flag("meter_replaced")
        self.q_complete = False
        return self.last_wh

    def _re_anchor(
        self, t: float, off: int, wh: float, meter_avg_w: float | None, step: Step,
    ) -> Step:
        """The meter clock went back more than a quarter: close early, restart at ``t``."""
        assert self.last_t is not None
        back = self.last_t - t
        closed = self._close(self.last_t, self.last_off, self.last_wh)
        closed.complete = False
        closed.flags.append("clock_jump")
        step.closed.append(closed)
        step.events.append(f"meter clock went back {back:.0f} s: quarter closed early, re-anchored")
        self._open(quarter_floor(t, off), off, self.last_wh, complete=False)
        self._flag("clock_jump")
        self.last_t, self.last_off = t, off
        self.last_wh = wh
        step.t = t
        self.q_meter_avg_w = meter_avg_w
        return step

    def _skip_long_gap(
        self, t: float, off: int, wh: float, meter_avg_w: float | None, step: Step,
    ) -> None:
        """A gap over :data:`MAX_INTERPOLATED_S`: close the quarter, its energy not spread."""
        assert self.last_t is not None
        gap = t - self.last_t
        closed = self._close(self.q_end, off, self.last_wh)
        closed.complete = False
        step.closed.append(closed)
        floor_wh = self.last_wh
        self._open(quarter_floor(t, off), off, wh, complete=False)
        self._flag("gap")
        self._join(t, wh, floor_wh)
        self._repair(t, wh, meter_avg_w, step)
        step.events.append(
            f"data gap of {gap / 86400:.1f} days: {self.q_start_wh - floor_wh:.0f} Wh not spread "
            "over quarters"
        )

    def _close_boundaries(self, t: float, off: int, wh: float, step: Step) -> None:
        """Close every quarter boundary up to ``t``, the counter interpolated at each."""
        assert self.last_t is not None
        last_t = self.last_t
        while t >= self.q_end:
            boundary = self.q_end
            boundary_wh = self.last_wh + (wh - self.last_wh) * (boundary - last_t) / (t - last_t)
            step.closed.append(self._close(boundary, off, boundary_wh))
            self._open(boundary, off, boundary_wh, complete=True)
            if t - last_t > MAX_GAP_S and t > boundary:
                self.q_complete = False
                self._flag("gap")
