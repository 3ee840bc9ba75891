"""Hand-built meter readings for the peak-forecaster tests.

A :class:`Meter` keeps an integer Wh counter and a UTC clock; each reading carries the
meter's local time in Europe/Brussels (the S/W flag's offset), like p1-reader's.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

from peak_forecaster.engine import PeakSettings, Result, SiteEngine

BRUSSELS = zoneinfo.ZoneInfo("Europe/Brussels")


def local_iso(utc: dt.datetime) -> str:
    return utc.astimezone(BRUSSELS).isoformat()


def utc(s: str) -> dt.datetime:
    """Parse a local ISO time with offset -> aware UTC datetime."""
    return dt.datetime.fromisoformat(s).astimezone(dt.UTC)


class Meter:
    def __init__(self, start_local: str, wh: int = 1_000_000, site: str = "home") -> None:
        self.t = utc(start_local)
        self.wh = wh
        self.site = site
        self.extra: dict[str, Any] = {}

    def reading(self, power_w: float | None = None, **extra: Any) -> dict[str, Any]:
        r: dict[str, Any] = {
            "v": 1, "site": self.site, "source": "sim", "ts": local_iso(self.t),
            "import_t1_kwh": round(self.wh * 0.6) / 1000,  # split over the two tariffs
            "import_t2_kwh": (self.wh - round(self.wh * 0.6)) / 1000,
        }
        if power_w is not None:
            r["import_w"] = power_w
        r.update(self.extra)
        r.update(extra)
        return r

    def advance(self, seconds: float, wh: int) -> None:
        self.t += dt.timedelta(seconds=seconds)
        self.wh += wh

    def run(self, seconds: int, step_s: int, wh_per_step: int, power_w: float | None = None,
            **extra: Any) -> list[dict[str, Any]]:
        """Readings every ``step_s`` for ``seconds``, the first ``step_s`` after now."""
        out = []
        for _ in range(seconds // step_s):
            self.advance(step_s, wh_per_step)
            out.append(self.reading(power_w, **extra))
        return out


def feed(readings: list[dict[str, Any]], engine: SiteEngine | None = None,
         settings: PeakSettings | None = None) -> tuple[SiteEngine, list[Result]]:
    eng = engine or SiteEngine(readings[0]["site"] if readings else "home", settings)
    return eng, [eng.process(r) for r in readings]


def quarters(results: list[Result]) -> list[dict[str, Any]]:
    return [q for r in results for q in r.quarters]


def months(results: list[Result]) -> list[dict[str, Any]]:
    return [m for r in results for m in r.months]


def brief(qs: list[dict[str, Any]]) -> list[tuple[str, str, float, bool]]:
    return [(q["start"], q["end"], q["energy_wh"], q["complete"]) for q in qs]
