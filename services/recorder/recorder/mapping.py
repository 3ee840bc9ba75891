"""Which InfluxDB points a contract message becomes: a table, not code per topic.

Pure: no sockets, no clocks (time is the payload's own). A message (its parsed
topic and decoded JSON) goes in, line-protocol lines come out, timestamps in whole
seconds (written with precision ``s``). Every numeric field is written as a float,
so a value that arrives once as ``0`` and once as ``0.5`` never makes InfluxDB
refuse a batch for a field type conflict; booleans (``tariff_low``, ``complete``,
``on`` ...) become ``0.0``/``1.0``, so Flux can average and Grafana can graph them
(a bool field could not be downsampled with ``mean``). Field names are the
contract's names (units in the name).

| topic kind | measurement | tags | time | bucket |
|---|---|---|---|---|
| ``reading`` | ``reading`` | site | ``ts`` | raw |
| ``reading`` (gas/water/heat) | ``gas`` / ``water`` / ``heat`` | site | ``gas_ts`` ... | raw |
| ``peak`` | ``peak`` | site | ``ts`` (decimated, see :class:`PeakThinner`) | raw |
| ``peak/quarter`` | ``quarter`` | site | ``start`` | long-term |
| ``peak/month`` | ``month`` | site | first day of ``month``, 00:00 UTC | long-term |
| ``output/<id>/state`` | ``output`` | site, output | ``ts`` | raw |
| ``control`` | ``control`` | site, output | ``ts`` | raw |

Quarter and month records go to the long-term bucket only: they are few, they are
what the capacity tariff bills for years, and a month record is stamped at the start
of its month (history entries up to 13 months back), older than a raw bucket's
retention would accept.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from p1common.payloads import Reading, scalar_type
from p1common.topics import Parsed

# -- the fields recorded per measurement ------------------------------------------------

def _numeric_fields(model: type[BaseModel], skip: frozenset[str]) -> tuple[str, ...]:
    """Every number or boolean of a contract model, in the model's order: new contract
    fields are recorded without a change here."""
    return tuple(name for name in model.model_fields
                 if name not in skip and scalar_type(model, name) in (int, float, bool))


# the M-Bus values go to their own measurements (below); v is the contract version
READING_FIELDS: tuple[str, ...] = _numeric_fields(
    Reading, frozenset({"v", "gas_m3", "water_m3", "heat_gj", "gas_valve"})
)

PEAK_FIELDS: tuple[str, ...] = (
    "energy_wh", "avg_w", "forecast_w", "threshold_w", "headroom_w", "month_peak_w",
    "meter_avg_demand_w",
)
QUARTER_FIELDS: tuple[str, ...] = ("energy_wh", "avg_w", "meter_avg_w", "threshold_w", "complete")
MONTH_FIELDS: tuple[str, ...] = ("peak_w", "billed_w", "cost_eur_year")
OUTPUT_FIELDS: tuple[str, ...] = ("on", "pct", "override", "seq")

# M-Bus meters: measurement, value field, timestamp field (their own clock, hourly on DSMR 5)
MBUS_SERIES: tuple[tuple[str, str, str], ...] = (
    ("gas", "gas_m3", "gas_ts"),
    ("water", "water_m3", "water_ts"),
    ("heat", "heat_gj", "heat_ts"),
)

LEVEL_CODES = {"ok": 0.0, "warn": 1.0, "alarm": 2.0}

# measurements written to the long-term bucket instead of the raw one
LONG_TERM: frozenset[str] = frozenset({"quarter", "month"})

PEAK_EVERY_S = 10  # default: at most one peak point per 10 s (plus level changes, quarter ends)

_FIELD_KEY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class MappingError(ValueError):
    """A message lacks what its points need (a timestamp, a tag); it is not recorded."""


@dataclass(frozen=True)
class Point:
    measurement: str
    tags: tuple[tuple[str, str], ...]
    fields: tuple[tuple[str, float], ...]
    time_s: int

    def line(self) -> str:
        """Line protocol, time in seconds; tags sorted (what InfluxDB prefers), fields in
        table order."""
        head = _escape_key(self.measurement, measurement=True)
        for key, value in sorted(self.tags):
            head += f",{_escape_key(key)}={_escape_key(value)}"
        body = ",".join(f"{_escape_key(k)}={_float(v)}" for k, v in self.fields)
        return f"{head} {body} {self.time_s}"


def _escape_key(text: str, measurement: bool = False) -> str:
    out = text.replace("\\", "\\\\").replace(",", "\\,").replace(" ", "\\ ")
    if not measurement:
        out = out.replace("=", "\\=")
    return out.replace("\n", "\\n")


def _float(value: float) -> str:
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text  # a float field without 'i' stays a float


# -- value conversions -----------------------------------------------------------------------

def parse_ts_s(value: Any, name: str) -> int:
    """ISO 8601 with an offset (the contract's timestamps) -> Unix seconds, the fraction
    dropped (the meter's clock has whole seconds; a point belongs to the second it
    happened in)."""
    if not isinstance(value, str):
        raise MappingError(f"{name}: missing or not a timestamp string")
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise MappingError(f"{name}: {value!r} is not ISO 8601") from None
    if dt.tzinfo is None:
        raise MappingError(f"{name}: {value!r} has no UTC offset")
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return delta.days * 86400 + delta.seconds


def month_start_s(month: Any) -> int:
    if not isinstance(month, str) or not re.match(r"^\d{4}-\d{2}$", month):
        raise MappingError(f"month: {month!r} is not YYYY-MM")
    year, mon = int(month[:4]), int(month[5:])
    if not 1 <= mon <= 12:
        raise MappingError(f"month: {month!r} is not YYYY-MM")
    return parse_ts_s(f"{year:04d}-{mon:02d}-01T00:00:00+00:00", "month")


def as_number(value: Any) -> float | None:
    """JSON number or bool -> float; anything else (absent, null, text, NaN) -> None."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def pick(payload: dict[str, Any], names: Iterable[str]) -> tuple[tuple[str, float], ...]:
    out = []
    for name in names:
        number = as_number(payload.get(name))
        if number is not None:
            out.append((name, number))
    return tuple(out)


# -- one function per topic kind, chosen by the table at the end ------------------------------

@dataclass
class _PeakState:
    written_s: int  # time of the last peak point written
    level: float | None  # level_code of the last peak seen
    quarter: Any  # quarter_start of the last peak seen
    held: Point | None = None  # the newest peak not written (yet)


@dataclass
class Mapper:
    """Turns messages into points; remembers what it needs to keep series small.

    - The gas/water/heat values come with every reading (every second) but change
      once an hour: each is recorded once per meter timestamp.
    - ``peak`` also comes every second. A peak point is written when it is the first
      for its site, when ``peak_every_s`` seconds (payload time) have passed since the
      last one written (or time went backwards), when its level (ok/warn/alarm)
      differs from the previous peak's, and at the start of a new quarter, where the
      last peak of the ended quarter (its final average and forecast) is written
      first. Every other peak is dropped. ``peak_every_s = 0`` writes them all.
    """

    peak_every_s: int = PEAK_EVERY_S
    _mbus_seen: dict[tuple[str, str], str] = field(default_factory=dict)
    _peaks: dict[str, _PeakState] = field(default_factory=dict)

    def points(self, parsed: Parsed, payload: dict[str, Any]) -> list[Point]:
        fn = HANDLERS.get(parsed.kind)
        if fn is None or parsed.site is None:
            return []
        return fn(self, parsed, payload)

    def reading(self, parsed: Parsed, payload: dict[str, Any]) -> list[Point]:
        site = _site(parsed)
        time_s = parse_ts_s(payload.get("ts"), "ts")
        out: list[Point] = []
        fields = pick(payload, READING_FIELDS)
        if fields:
            out.append(Point("reading", (("site", site),), fields, time_s))
        for measurement, value_name, ts_name in MBUS_SERIES:
            value = as_number(payload.get(value_name))
            if value is None:
                continue
            ts_text = payload.get(ts_name)
            if isinstance(ts_text, str):
                if self._mbus_seen.get((site, measurement)) == ts_text:
                    continue
                mbus_s = parse_ts_s(ts_text, ts_name)
                self._mbus_seen[(site, measurement)] = ts_text
            else:
                mbus_s = time_s
            out.append(Point(measurement, (("site", site),), ((value_name, value),), mbus_s))
        return out

    def peak(self, parsed: Parsed, payload: dict[str, Any]) -> list[Point]:
        fields = pick(payload, PEAK_FIELDS)
        level = LEVEL_CODES.get(payload.get("level"))  # type: ignore[arg-type]
        if level is not None:
            fields += (("level_code", level),)
        points = _one("peak", parsed, fields, parse_ts_s(payload.get("ts"), "ts"))
        if not points:
            return []
        return self._thin_peak(_site(parsed), points[0], level, payload.get("quarter_start"))

    def _thin_peak(self, site: str, point: Point, level: float | None, quarter: Any) -> list[Point]:
        state = self._peaks.get(site)
        if state is None:
            self._peaks[site] = _PeakState(point.time_s, level, quarter)
            return [point]
        out: list[Point] = []
        new_quarter = quarter != state.quarter
        if new_quarter and state.held is not None:
            out.append(state.held)  # the ended quarter's last word
        elapsed = point.time_s - state.written_s
        if (new_quarter or level != state.level or elapsed < 0 or elapsed >= self.peak_every_s):
            out.append(point)
            state.written_s, state.held = point.time_s, None
        else:
            state.held = point
        state.level, state.quarter = level, quarter
        return out

    def quarter(self, parsed: Parsed, payload: dict[str, Any]) -> list[Point]:
        fields = pick(payload, QUARTER_FIELDS)
        if "warned_at" in payload:
            fields += (("warned", 0.0 if payload["warned_at"] is None else 1.0),)
        return _one("quarter", parsed, fields, parse_ts_s(payload.get("start"), "start"))

    def month(self, parsed: Parsed, payload: dict[str, Any]) -> list[Point]:
        site = _site(parsed)
        this_month = payload.get("month")
        out: list[Point] = []
        history = payload.get("history")
        if isinstance(history, list):
            for entry in history:
                if not isinstance(entry, dict) or entry.get("month") == this_month:
                    continue
                peak_w = as_number(entry.get("peak_w"))
                if peak_w is not None:
                    out.append(Point("month", (("site", site),), (("peak_w", peak_w),),
                                     month_start_s(entry.get("month"))))
        out.extend(_one("month", parsed, pick(payload, MONTH_FIELDS), month_start_s(this_month)))
        return out

    def output_state(self, parsed: Parsed, payload: dict[str, Any]) -> list[Point]:
        if not parsed.ident:
            return []
        tags = (("site", _site(parsed)), ("output", parsed.ident))
        fields = pick(payload, OUTPUT_FIELDS)
        if not fields:
            return []
        return [Point("output", tags, fields, parse_ts_s(payload.get("ts"), "ts"))]

    def control(self, parsed: Parsed, payload: dict[str, Any]) -> list[Point]:
        """Every numeric or boolean value of each output's entry (timers, pct, on ...)."""
        time_s = parse_ts_s(payload.get("ts"), "ts")
        site = _site(parsed)
        outputs = payload.get("outputs")
        out: list[Point] = []
        if not isinstance(outputs, list):
            return out
        for entry in outputs:
            if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
                continue
            names = sorted(k for k in entry if k != "id" and _FIELD_KEY.match(k))
            fields = pick(entry, names)
            if fields:
                out.append(Point("control", (("site", site), ("output", entry["id"])), fields,
                                 time_s))
        return out


def _site(parsed: Parsed) -> str:
    if not parsed.site:
        raise MappingError("topic has no site")
    return parsed.site


def _one(measurement: str, parsed: Parsed, fields: tuple[tuple[str, float], ...],
         time_s: int) -> list[Point]:
    if not fields:
        return []
    return [Point(measurement, (("site", _site(parsed)),), fields, time_s)]


HANDLERS: dict[str, Callable[[Mapper, Parsed, dict[str, Any]], list[Point]]] = {
    "reading": Mapper.reading,
    "peak": Mapper.peak,
    "peak/quarter": Mapper.quarter,
    "peak/month": Mapper.month,
    "output/state": Mapper.output_state,
    "control": Mapper.control,
}

# What the recorder writes, for the dashboards' test and the docs: measurement -> fields
MEASUREMENTS: dict[str, tuple[str, ...]] = {
    "reading": READING_FIELDS,
    "gas": ("gas_m3",),
    "water": ("water_m3",),
    "heat": ("heat_gj",),
    "peak": (*PEAK_FIELDS, "level_code"),
    "quarter": (*QUARTER_FIELDS, "warned"),
    "month": MONTH_FIELDS,
    "output": OUTPUT_FIELDS,
}
