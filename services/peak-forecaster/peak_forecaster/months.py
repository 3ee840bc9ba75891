"""Month peak, 12-month history, billed average and yearly cost (Fluvius capacity tariff).

Pure logic. Rules:

- A month's peak is its highest closed quarter (average W), billed never below
  :data:`FLOOR_W` (2.5 kW). While the floor applies, ``peak_is_floor`` says so and
  ``peak_start`` is null: the floor is no quarter and has no time.
- Where the meter sends its own values (eMUCS 1.7.1), they are what Fluvius bills,
  so they win: 1-0:1.6.0 for this month's peak, 0-0:98.1.0 for past months. Ours
  is kept beside them and the difference published.
- The billed value is the average of the peaks of the last 12 months: the running
  month and the 11 before it (those we know). Cost per year = billed kW x price.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

FLOOR_W = 2500.0
HISTORY_MONTHS = 12


def month_index(month: str) -> int:
    y, m = month.split("-")
    return int(y) * 12 + int(m) - 1


def floored(peak_w: float | None) -> float:
    return max(FLOOR_W, peak_w or 0.0)


@dataclass
class MonthState:
    month: str | None = None
    our_peak_w: float = 0.0  # highest closed quarter of the month (raw, may be < floor)
    our_peak_start: str | None = None
    meter_peak_w: float | None = None  # 1-0:1.6.0 for this month
    meter_peak_ts: str | None = None
    history: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Closed months: ``{"YYYY-MM": {"peak_w", "source": "ours"|"meter", "ours_w"}}``."""
    meter_history_seen: bool = False
    dirty: bool = True

    # -- persistence ---------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("dirty")
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MonthState:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__ and k != "dirty"})

    # -- the running month ---------------------------------------------------------
    @property
    def peak_w(self) -> float:
        """This month's peak as billed: the meter's when it sends one, else ours; floored."""
        return floored(self.meter_peak_w if self.meter_peak_w is not None else self.our_peak_w)

    @property
    def source(self) -> str:
        return "meter" if self.meter_peak_w is not None else "ours"

    @property
    def is_floor(self) -> bool:
        """``peak_w`` is the 2.5 kW minimum, not a quarter: the month's highest is below it."""
        raw = self.meter_peak_w if self.meter_peak_w is not None else self.our_peak_w
        return raw < FLOOR_W

    def enter(self, month: str) -> bool:
        """Make ``month`` the running one (at the first quarter opening in it).

        Returns True on a rollover. A month earlier than the running one (a clock
        that went back) does not roll back: its quarters count in the running month.
        """
        if self.month == month:
            return False
        if self.month is not None and month_index(month) < month_index(self.month):
            return False
        if self.month is not None:
            self.history[self.month] = {
                "peak_w": self.peak_w, "source": self.source, "ours_w": self.our_peak_w,
            }
        self.month = month
        self.our_peak_w, self.our_peak_start = 0.0, None
        self.meter_peak_w, self.meter_peak_ts = None, None
        self._trim()
        self.dirty = True
        return True

    def add_quarter(self, avg_w: float, start: str) -> None:
        if avg_w > self.our_peak_w:
            self.our_peak_w, self.our_peak_start = avg_w, start
            self.dirty = True

    def meter_month_max(self, peak_w: float, ts: str | None, ts_month: str | None) -> None:
        """1-0:1.6.0: taken when its timestamp is in the running month (or has none)."""
        if self.month is None or (ts_month is not None and ts_month != self.month):
            return
        if peak_w != self.meter_peak_w or ts != self.meter_peak_ts:
            self.meter_peak_w, self.meter_peak_ts = peak_w, ts
            self.dirty = True

    def meter_history(self, entries: list[dict[str, Any]]) -> None:
        """0-0:98.1.0: past months' peaks; the meter's value wins over ours."""
        changed = False
        for e in entries:
            month, peak = e.get("month"), e.get("peak_w")
            if not isinstance(month, str) or not isinstance(peak, (int, float)) or month == self.month:
                continue
            try:
                month_index(month)
            except ValueError:
                continue
            old = self.history.get(month)
            new = {"peak_w": floored(float(peak)), "source": "meter",
                   "ours_w": old.get("ours_w") if old else None, "meter_w": float(peak)}
            if old != new:
                self.history[month] = new
                changed = True
        self.meter_history_seen = True
        if changed:
            self._trim()
            self.dirty = True

    def _trim(self) -> None:
        if self.month is None:
            return
        lo = month_index(self.month) - (HISTORY_MONTHS - 1)
        for m in [m for m in self.history if month_index(m) < lo]:
            del self.history[m]

    # -- published values --------------------------------------------------------------
    def window(self) -> list[dict[str, Any]]:
        """The last 12 months (running one included) we know, oldest first."""
        if self.month is None:
            return []
        cur = month_index(self.month)
        out = [
            {"month": m, "peak_w": round(self.history[m]["peak_w"], 1)}
            for m in sorted(self.history, key=month_index)
            if cur - (HISTORY_MONTHS - 1) <= month_index(m) < cur
        ]
        out.append({"month": self.month, "peak_w": round(self.peak_w, 1)})
        return out

    def billed_w(self) -> float:
        w = self.window()
        return sum(e["peak_w"] for e in w) / len(w) if w else FLOOR_W

    def record(self, site: str, price_eur_per_kw_year: float) -> dict[str, Any]:
        """The ``peak/month`` payload."""
        billed = self.billed_w()
        if self.is_floor:
            peak_start = None  # the floor is no quarter: it has no time
        elif self.meter_peak_w is not None:
            peak_start = self.meter_peak_ts
        else:
            peak_start = self.our_peak_start
        return {
            "v": 1,
            "site": site,
            "month": self.month,
            "peak_w": round(self.peak_w, 1),
            "peak_is_floor": self.is_floor,
            "peak_start": peak_start,
            "history": self.window(),
            "billed_w": round(billed, 1),
            "cost_eur_year": round(billed / 1000.0 * price_eur_per_kw_year, 2),
            "source": self.source,
            "our_peak_w": round(self.our_peak_w, 1),
            "our_peak_start": self.our_peak_start,
            "meter_peak_w": self.meter_peak_w,
            "meter_peak_ts": self.meter_peak_ts,
            "meter_diff_w": (
                round(self.our_peak_w - self.meter_peak_w, 1) if self.meter_peak_w is not None else None
            ),
            "price_eur_per_kw_year": price_eur_per_kw_year,
        }
