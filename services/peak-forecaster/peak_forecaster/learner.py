"""A per-site learner: how the rest of a quarter goes in *this* house, at this hour.

Pure logic, online, bounded. At one instant of every quarter (its first reading at or
after ``SAMPLE_AT_S``, minute 10) it notes the situation and the naive forecast
``f = energy so far x 4 + p x r / 900`` (``p`` the smoothed power, minus what the
load-controller can shed; ``r`` the seconds left); when the quarter closes complete it
learns the *excess* of the rest of the quarter over ``p``:

    z = (final average - f) x 900 / r        (W: the rest's mean power minus p)

into a histogram of the situation's cell. A cell is (4-hour band of the day x weekday
or weekend) x power class x age class, where the age is the time since the power last
stepped by ``STEP_W`` or more between two readings (how long the load has been on):
an oven that went on at 18:05 on weekdays stays on, a kettle at 07:00 goes off. Every
sample also goes into the pooled cell of its (power class, age class), all hours, and
into the cell of its power class alone, so a situation seen rarely borrows from the
house's own habits at other hours.

The probability that the quarter ends above the threshold, at any reading, is the
share of the cell's ``z`` above ``z* = (threshold - f) x 900 / r``: the detailed cell's
counts plus ``POOL_WEIGHT`` pseudo-samples shaped like the pooled cell and as many shaped
like the power class's. Until ``MIN_DAYS`` days with samples are over and the power
class has ``MIN_SAMPLES`` samples, the probability is ``None`` and the forecaster uses its
rule (cold start).

Memory: counts are small integers (a cell is halved when it reaches ``CELL_CAP``
samples, so recent weeks weigh most); at most ``N_CELLS`` x ``N_BINS`` counts, stored
sparsely (empty cells are not stored): ``MAX_STATE_BYTES`` of JSON at most.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

STEP_W = 600.0
"""A change of the power by this much between two readings is a load step."""
SAMPLE_AT_S = 600.0
BAND_H = 4
N_SLOTS = (24 // BAND_H) * 2  # x weekday / weekend
POWER_EDGES = (1500.0, 2500.0)
AGE_EDGES = (180.0, 480.0)
N_POWER, N_AGE = len(POWER_EDGES) + 1, len(AGE_EDGES) + 1
N_DETAIL = N_SLOTS * N_POWER * N_AGE
N_POOLED = N_POWER * N_AGE
N_CELLS = N_DETAIL + N_POOLED + N_POWER  # detailed + pooled + power class alone
Z_LO, Z_STEP, Z_INNER = -3000.0, 250.0, 24
N_BINS = Z_INNER + 2  # + a tail below Z_LO and one above Z_LO + Z_INNER x Z_STEP
HELD_BIN = 1 + int((-Z_STEP - Z_LO) // Z_STEP)
"""The first bin of z >= -Z_STEP: the rest of the quarter held the power (or more)."""
TAIL_W = 1000.0  # a tail bin is taken as this wide (probabilities inside it are linear)
CELL_CAP = 120
POOL_WEIGHT = 4.0
MIN_DAYS = 2
MIN_SAMPLES = 8
MAX_STATE_BYTES = 14_000
"""A bound on ``len(json.dumps(learner.to_dict()))``, checked by the tests at the worst case:
every cell with 26 counts under ``CELL_CAP`` in all, as many of them with 2 digits as that
allows (11 x 10 + 9 x 1): 11.8 kB."""


def _cls(x: float, edges: tuple[float, ...]) -> int:
    for i, e in enumerate(edges):
        if x < e:
            return i
    return len(edges)


def _bin(z: float) -> int:
    if z < Z_LO:
        return 0
    return min(N_BINS - 1, 1 + int((z - Z_LO) // Z_STEP))


def _bin_lo(i: int) -> float:
    """Lower edge of bin ``i`` (the lower tail starts ``TAIL_W`` below ``Z_LO``)."""
    return Z_LO - TAIL_W if i == 0 else Z_LO + (i - 1) * Z_STEP


def _bin_width(i: int) -> float:
    return TAIL_W if i in (0, N_BINS - 1) else Z_STEP


def share_above(counts: list[float], z_star: float) -> float:
    """Share of the histogram's mass above ``z_star``; uniform inside a bin."""
    total = sum(counts)
    if total <= 0:
        return 0.0
    above = 0.0
    for i, c in enumerate(counts):
        if not c:
            continue
        lo = _bin_lo(i)
        hi = lo + _bin_width(i)
        if z_star <= lo:
            above += c
        elif z_star < hi:
            above += c * (hi - z_star) / (hi - lo)
    return above / total


def power_cell(pooled: int) -> int:
    """The cell of the power class alone (all hours, any age) of a pooled cell."""
    return N_DETAIL + N_POOLED + (pooled - N_DETAIL) // N_AGE


def _slot(t: float, off: int) -> tuple[int, str]:
    d = dt.datetime.fromtimestamp(t + off, dt.UTC)
    weekend = d.weekday() >= 5
    band = d.hour // BAND_H
    return (1 if weekend else 0) * (24 // BAND_H) + band, d.date().isoformat()


@dataclass
class Estimate:
    probability: float | None
    reason: str
    cell_samples: int


@dataclass
class Learner:
    counts: dict[int, list[int]] = field(default_factory=dict)
    last_w: float | None = None
    step_t: float | None = None
    """When the power last stepped (>= STEP_W between two readings)."""
    step_w: float = 0.0
    """That step's size (signed)."""
    pending: list[float] | None = None
    """[detail cell, pooled cell, f, r] noted at minute 10 of the running quarter."""
    days_learned: int = 0
    """Days (the meter's) with samples that are over."""
    last_day: str | None = None
    samples: int = 0
    _memo: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """Not state: the slot of the running quarter and the last reason, so most readings need
    no date arithmetic."""

    # -- persistence -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"counts": {str(k): v for k, v in sorted(self.counts.items())}, "last_w": self.last_w,
                "step_t": self.step_t, "step_w": self.step_w, "pending": self.pending,
                "days_learned": self.days_learned, "last_day": self.last_day, "samples": self.samples}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Learner:
        counts: dict[int, list[int]] = {}
        for k, v in (d.get("counts") or {}).items():
            cell = int(k)
            if not 0 <= cell < N_CELLS or not isinstance(v, list) or len(v) != N_BINS:
                raise ValueError(f"learner.counts[{k}]: not a cell of {N_BINS} counts")
            cnt = [max(0, min(CELL_CAP, int(c))) for c in v]
            while sum(cnt) >= CELL_CAP:  # as learning keeps it: under CELL_CAP samples a cell
                cnt = [c // 2 for c in cnt]
            counts[cell] = cnt
        pending = d.get("pending")
        return cls(counts, d.get("last_w"), d.get("step_t"), float(d.get("step_w") or 0.0),
                   list(pending) if isinstance(pending, list) and len(pending) == 4 else None,
                   int(d.get("days_learned") or 0), d.get("last_day"), int(d.get("samples") or 0))

    # -- observing -----------------------------------------------------------------------
    def observe_power(self, t: float, raw_w: float | None) -> None:
        """Every reading: detect load steps on the raw power."""
        if raw_w is None:
            return
        if self.last_w is None or self.step_t is None:
            self.step_t = t
        elif abs(raw_w - self.last_w) >= STEP_W:
            self.step_t, self.step_w = t, raw_w - self.last_w
        self.last_w = raw_w

    def cells(self, t: float, off: int, p_w: float) -> tuple[int, int, int]:
        """(detailed cell, pooled cell, age in s) of the situation at ``t``; the power
        class's own cell is :func:`power_cell` of the pooled one."""
        age = t - self.step_t if self.step_t is not None else 0.0
        qi = (t + off) // 900.0
        if self._memo.get("qi") != qi:  # a band of the day holds whole quarters
            self._memo["qi"], self._memo["slot"] = qi, _slot(t, off)[0]
        slot = self._memo["slot"]
        pa = _cls(p_w, POWER_EDGES) * N_AGE + _cls(age, AGE_EDGES)
        return slot * N_POOLED + pa, N_DETAIL + pa, int(age)

    def note(self, t: float, off: int, elapsed_s: float, p_w: float, f_w: float) -> None:
        """The quarter's sample instant: remember the situation and the naive forecast."""
        if self.pending is None and elapsed_s >= SAMPLE_AT_S:
            d, pooled, _ = self.cells(t, off, p_w)
            self.pending = [float(d), float(pooled), f_w, max(1.0, 900.0 - elapsed_s)]

    def close_quarter(self, avg_w: float | None, t: float, off: int) -> None:
        """The quarter closed: learn from it when it was whole (``avg_w`` not None)."""
        pending, self.pending = self.pending, None
        if pending is None or avg_w is None:
            return
        d, pooled, f_w, r = pending
        b = _bin((avg_w - f_w) * 900.0 / r)
        for cell in (int(d), int(pooled), power_cell(int(pooled))):
            c = self.counts.setdefault(cell, [0] * N_BINS)
            c[b] += 1
            if sum(c) >= CELL_CAP:
                self.counts[cell] = [x // 2 for x in c]
        self.samples += 1
        _, day = _slot(t, off)
        if day != self.last_day:  # a day with samples is behind us
            self.days_learned += self.last_day is not None
            self.last_day = day

    # -- estimating ----------------------------------------------------------------------
    def mixed(self, d: int, pooled: int) -> tuple[list[float], int, int]:
        """The detailed cell's counts + ``POOL_WEIGHT`` samples shaped like the pooled cell +
        ``POOL_WEIGHT`` shaped like the power class's cell; (mix, n detailed, n power class)."""
        det = self.counts.get(d)
        mix = [float(x) for x in det] if det else [0.0] * N_BINS
        n = [sum(det) if det else 0, 0]
        for i, cell in enumerate((pooled, power_cell(pooled))):
            c = self.counts.get(cell)
            total = sum(c) if c else 0
            if c and total:
                w = POOL_WEIGHT / total
                mix = [m + w * x for m, x in zip(mix, c, strict=True)]
            n[1] = total if i == 1 else n[1]
        return mix, n[0], n[1]

    def estimate(self, t: float, off: int, elapsed_s: float, p_w: float, f_w: float,
                 threshold_w: float) -> Estimate:
        """P(the quarter ends above ``threshold_w``) and the reason, in words."""
        d, pooled, age = self.cells(t, off, p_w)
        if self.days_learned < MIN_DAYS:
            return Estimate(None, f"learning this house: {self.days_learned} of {MIN_DAYS} days", 0)
        mix, n_det, n_power = self.mixed(d, pooled)
        if n_power < MIN_SAMPLES:
            return Estimate(None, f"learning this house: {n_power} of {MIN_SAMPLES} quarters at this power seen", 0)
        r = max(1.0, 900.0 - elapsed_s)
        prob = share_above(mix, (threshold_w - f_w) * 900.0 / r)
        key = (d, pooled, round(p_w / 100.0), self.step_t, age // 60, self.samples)
        if self._memo.get("reason_key") != key:
            self._memo["reason_key"], self._memo["reason"] = key, self._reason(t, off, p_w, age, d, pooled)
        return Estimate(prob, self._memo["reason"], n_det)

    def _reason(self, t: float, off: int, p_w: float, age: int, d: int, pooled: int) -> str:
        """E.g. "3.2 kW step at 18:03, 3.6 kW now; on weekdays 16-20 h the power held or rose in
        4 of 8 similar quarters" (this hour's cell; the pooled one, "at any hour", when empty)."""
        local = dt.datetime.fromtimestamp(t + off, dt.UTC)
        band = local.hour // BAND_H * BAND_H
        days = "weekends" if local.weekday() >= 5 else "weekdays"
        if self.step_t is not None and self.step_w >= STEP_W:
            on = dt.datetime.fromtimestamp(self.step_t + off, dt.UTC).strftime("%H:%M")
            what = f"{self.step_w / 1000:.1f} kW step at {on}, {p_w / 1000:.1f} kW now"
        else:
            what = f"{p_w / 1000:.1f} kW for {age // 60} min"
        counts, where = self.counts.get(d), f"on {days} {band:02d}-{band + BAND_H:02d} h"
        if not counts or not sum(counts):
            counts, where = self.counts.get(pooled) or [0] * N_BINS, "at any hour"
        held = sum(counts[HELD_BIN:])
        return f"{what}; {where} the power held or rose in {held} of {sum(counts)} similar quarters"
