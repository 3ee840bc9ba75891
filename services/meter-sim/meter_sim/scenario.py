"""Scenario files (YAML): the house, PV, meter state, controllable loads and scripted events.

Every key is optional; an empty file is the default house. See docs/meter-sim.md
for the full form. Times of events: ``at: "2026-01-15T12:03"`` (local time, an
offset such as ``+01:00`` picks one side of the repeated DST hour), ``at: "12:03"``
(that time on the start day; quote it, or YAML reads 12:03 as a number), or
``after: 15m`` (from the start; a number is seconds).
"""

from __future__ import annotations

import random
from dataclasses import fields, replace
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml

from .clock import (
    TZ,
    local_month,
    month_start_utc,
    next_month,
    parse_duration,
    parse_local,
    prev_month,
)
from .ev import EvConfig
from .house import HouseConfig
from .loads import DEFAULT_LOADS, LoadConfig
from .meter import HistoryEntry, MeterConfig
from .pv import PvConfig
from .sim import Event, SimConfig
from .telegram import FORMATS

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

_Config = TypeVar("_Config", bound="DataclassInstance")
_TOP_LEVEL_KEYS = frozenset({"seed", "start", "format", "house", "pv", "meter", "loads", "events",
                             "command_delay_s", "watchdog_s", "ev"})


class ScenarioError(ValueError):
    """The scenario file is invalid; the message names the key."""


def load_file(path: str | Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ScenarioError(f"scenario {path}: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ScenarioError(f"scenario {path}: the top level must be a mapping")
    return data


def _section(cls: type[_Config], raw: Any, where: str, **overrides: Any) -> _Config:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ScenarioError(f"{where}: expected a mapping, got {raw!r}")
    names = {f.name for f in fields(cls)}
    unknown = set(raw) - names - {"enabled"}
    if unknown:
        raise ScenarioError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    args = {k: v for k, v in raw.items() if k != "enabled"}
    args.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return cls(**args)
    except (TypeError, ValueError) as exc:
        raise ScenarioError(f"{where}: {exc}") from None


def _enabled(raw: Any) -> bool:
    if raw is False or raw == "off":
        return False
    return not (isinstance(raw, dict) and raw.get("enabled") is False)


def build(data: dict[str, Any], *, start: int | None = None, seed: int | None = None,
          fmt: str | None = None, pv_kwp: float | None = None,
          heat_pump_w: float | None = None, delay_s: float | None = None,
          watchdog_s: float | None = None, no_house: bool = False,
          no_pv: bool = False) -> SimConfig:
    """Scenario mapping (+ CLI overrides, which win) -> :class:`SimConfig`."""
    unknown = set(data) - _TOP_LEVEL_KEYS
    if unknown:
        raise ScenarioError(f"scenario: unknown key(s) {', '.join(sorted(unknown))}")
    seed = seed if seed is not None else int(data.get("seed", 1))
    start = start if start is not None else _start(data)
    fmt = fmt or str(data.get("format", "fluvius"))
    if fmt not in FORMATS:
        raise ScenarioError(f"format: {fmt!r} is not one of {', '.join(FORMATS)}")
    house = _optional_section(HouseConfig, data.get("house"), "house", off=no_house,
                              heat_pump_w=heat_pump_w)
    pv = _optional_section(PvConfig, data.get("pv"), "pv", off=no_pv, kwp=pv_kwp)
    meter = _meter(data.get("meter"), start, seed)
    loads = _loads(data, delay_s=delay_s, watchdog_s=watchdog_s)
    evs = _evs(data.get("ev"), {ld.id for ld in loads})
    events = _events(data.get("events"), start, {ld.id for ld in loads} | {e.id for e in evs})
    meter_raw = data.get("meter") or {}
    gas = house.gas if house else bool(meter_raw.get("gas", True))
    water = house.water if house else bool(meter_raw.get("water", True))
    return SimConfig(start=start, seed=seed, fmt=fmt, house=house, pv=pv, meter=meter,
                     loads=tuple(loads), events=tuple(events), evs=tuple(evs), gas=gas,
                     water=water)


def _start(data: dict[str, Any]) -> int:
    """The scenario's ``start`` (local time), else now."""
    if "start" not in data:
        return int(datetime.now(TZ).timestamp())
    try:
        return parse_local(data["start"])
    except ValueError as exc:
        raise ScenarioError(f"start: {exc}") from None


def _optional_section(cls: type[_Config], raw: Any, where: str, *, off: bool,
                      **overrides: Any) -> _Config | None:
    """A section that ``false``/``off``/``enabled: false`` (or a --no-... flag) turns off."""
    if off or not _enabled(raw):
        return None
    return _section(cls, raw if isinstance(raw, dict) else {}, where, **overrides)


def _loads(data: dict[str, Any], *, delay_s: float | None,
           watchdog_s: float | None) -> list[LoadConfig]:
    """The controllable loads (the default ones when the scenario has no ``loads``).

    Delay and watchdog of a load: the CLI flag, else the load's own key, else the
    scenario's top-level ``command_delay_s`` / ``watchdog_s``, else the built-in default.
    """
    defaults = {k: float(data[k]) for k in ("command_delay_s", "watchdog_s")
                if data.get(k) is not None}
    loads_raw = data.get("loads")
    if loads_raw is None:
        loads_raw = [{"id": ld.id} for ld in DEFAULT_LOADS]
        loads = list(DEFAULT_LOADS)
    elif isinstance(loads_raw, list):
        loads = [_section(LoadConfig, item, f"loads[{i}]") for i, item in enumerate(loads_raw)]
    else:
        raise ScenarioError("loads: expected a list")
    for i, item in enumerate(loads_raw):
        if "command_delay_s" in defaults and "delay_s" not in item:
            loads[i] = replace(loads[i], delay_s=defaults["command_delay_s"])
        if "watchdog_s" in defaults and "watchdog_s" not in item:
            loads[i] = replace(loads[i], watchdog_s=defaults["watchdog_s"])
    ids = [ld.id for ld in loads]
    if len(set(ids)) != len(ids):
        raise ScenarioError("loads: ids must be unique")
    if delay_s is not None:
        loads = [replace(ld, delay_s=float(delay_s)) for ld in loads]
    if watchdog_s is not None:
        loads = [replace(ld, watchdog_s=float(watchdog_s)) for ld in loads]
    return loads


def _evs(raw: Any, load_ids: set[str]) -> list[EvConfig]:
    """The EV chargers: ``ev:`` a mapping (one charger) or a list of them; absent: none."""
    if raw is None or raw is False or raw == "off":
        return []
    items = raw if isinstance(raw, list) else [raw]
    evs = [_section(EvConfig, item, "ev" if not isinstance(raw, list) else f"ev[{i}]")
           for i, item in enumerate(items) if _enabled(item)]
    ids = [e.id for e in evs]
    if len(set(ids)) != len(ids) or set(ids) & load_ids:
        raise ScenarioError("ev: ids must be unique, and differ from the loads' ids")
    return evs


def _meter(raw: Any, start: int, seed: int) -> MeterConfig:
    raw = dict(raw or {})
    synthetic = bool(raw.pop("synthetic", True))
    raw.pop("gas", None)
    raw.pop("water", None)
    history = raw.pop("history", None)
    if "month_max_kw" in raw:
        raw["month_max_w"] = float(raw.pop("month_max_kw")) * 1000
    if "month_max_ts" in raw and raw["month_max_ts"] is not None:
        raw["month_max_ts"] = parse_local(raw["month_max_ts"])
    r = random.Random(f"{seed}:meter")
    if synthetic:
        defaults = {
            "import_t1_kwh": round(r.uniform(3000, 9000), 3),
            "import_t2_kwh": round(r.uniform(3000, 9000), 3),
            "export_t1_kwh": round(r.uniform(1000, 5000), 3),
            "export_t2_kwh": round(r.uniform(200, 1500), 3),
            "gas_m3": round(r.uniform(2000, 8000), 3),
            "water_m3": round(r.uniform(200, 900), 3),
        }
        for k, v in defaults.items():
            raw.setdefault(k, v)
        if history is None:
            history = "synthetic"
        if "month_max_w" not in raw:
            y, m = local_month(start)
            first = month_start_utc(y, m)
            if start - first >= 86400:
                raw["month_max_w"] = float(round(r.uniform(2600, 4200)))
                quarter = first + r.randrange((start - first) // 900) * 900 + 900
                raw["month_max_ts"] = min(quarter, start - start % 900)
    raw["seed"] = seed
    if history == "synthetic":
        raw["history"] = tuple(_synthetic_history(start, r))
    elif history:
        if not isinstance(history, list):
            raise ScenarioError("meter.history: a list, 'synthetic' or empty")
        entries = []
        for i, h in enumerate(history):
            try:
                entries.append(HistoryEntry(
                    parse_local(h["month_start"]),
                    parse_local(h["max_ts"]) if h.get("max_ts") else None,
                    float(h["kw"]) * 1000,
                ))
            except (KeyError, TypeError, ValueError) as exc:
                raise ScenarioError(f"meter.history[{i}]: needs month_start, max_ts, kw ({exc})") from None
        raw["history"] = tuple(entries)
    return _section(MeterConfig, raw, "meter")


def _synthetic_history(start: int, r: random.Random) -> list[HistoryEntry]:
    """The 13 months before the start month: winter peaks higher than summer ones."""
    y, m = local_month(start)
    months = []
    for _ in range(13):
        y, m = prev_month(y, m)
        months.append((y, m))
    out = []
    for y, m in reversed(months):
        winter = m in (11, 12, 1, 2, 3)
        kw = r.uniform(3.4, 5.0) if winter else r.uniform(2.4, 3.8)
        first = month_start_utc(y, m)
        ny, nm = next_month(y, m)
        end = month_start_utc(ny, nm)
        day_start = first + r.randrange((end - first) // 86400) * 86400
        max_ts = day_start + (17 * 4 + r.randrange(12)) * 900
        out.append(HistoryEntry(end, min(max_ts, end), round(kw * 1000)))
    return out


def _at(ev: dict[str, Any], start: int, where: str) -> int:
    if "after" in ev:
        try:
            return start + parse_duration(str(ev["after"]))
        except ValueError as exc:
            raise ScenarioError(f"{where}.after: {exc}") from None
    at = ev.get("at")
    if at is None:
        raise ScenarioError(f"{where}: needs 'at' (a time) or 'after' (a duration)")
    if isinstance(at, (int, float)) and not isinstance(at, bool):
        raise ScenarioError(f"{where}.at: {at!r} is a number; quote times (\"12:03\") or use 'after'")
    if isinstance(at, str) and len(at) <= 8 and ":" in at and "-" not in at:
        day = datetime.fromtimestamp(start, TZ).date()
        at = f"{day.isoformat()}T{at}"
    try:
        return parse_local(at if isinstance(at, (datetime, date)) else str(at))
    except ValueError as exc:
        raise ScenarioError(f"{where}.at: {exc}") from None


def _events(raw: Any, start: int, load_ids: set[str]) -> list[Event]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ScenarioError("events: expected a list")
    out = []
    for i, ev in enumerate(raw):
        where = f"events[{i}]"
        if not isinstance(ev, dict):
            raise ScenarioError(f"{where}: expected a mapping")
        t = _at(ev, start, where)
        kinds = [k for k in ("load", "pv", "pv_w", "cloud", "set", "house") if k in ev]
        if len(kinds) != 1:
            raise ScenarioError(f"{where}: exactly one of load, pv, pv_w, cloud, set, house")
        kind = kinds[0]
        value = ev[kind]
        if kind == "load":
            if not isinstance(value, dict) or "id" not in value or "w" not in value:
                raise ScenarioError(f"{where}.load: needs id and w (and phase 1-3, 0 = all)")
            if int(value.get("phase", 1)) not in (0, 1, 2, 3):
                raise ScenarioError(f"{where}.load.phase: 1, 2, 3 or 0")
            out.append(Event(t, "load", dict(value)))
        elif kind in ("pv", "house"):
            on = value not in (False, "off", 0)
            out.append(Event(t, kind, {"on": on}))
        elif kind == "pv_w":
            out.append(Event(t, "pv_w", {"w": None if value is None else float(value)}))
        elif kind == "cloud":
            if value is not None and not 0 <= float(value) <= 1.5:
                raise ScenarioError(f"{where}.cloud: a transmission factor 0..1 (null = the model)")
            out.append(Event(t, "cloud", {"factor": None if value is None else float(value)}))
        else:
            if not isinstance(value, dict) or value.get("id") not in load_ids:
                raise ScenarioError(f"{where}.set: needs the id of a configured load")
            out.append(Event(t, "set", dict(value)))
    return out
