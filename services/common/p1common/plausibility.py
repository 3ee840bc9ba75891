"""Is a reading physically possible? One place for every service that takes one in.

Three rules, on top of the ranges and strict types of :class:`p1common.payloads.Reading`:

1. **Type and range** (stateless): :func:`check_reading` validates strictly against the
   contract model (a bool is no number, no NaN, every number within its documented
   range) and checks that ``ts`` is a real time between 2000 and 2099.
2. **Counters** (per site): an energy, gas, water or heat counter never goes backwards
   and never rises faster than the largest power a P1 meter can show (99.999 kW;
   gas 1000 m³/h, water 100 m³/h, heat 10 GJ/h) allows over the time elapsed.
3. **Clock** (per site): the meter clock is within ``max_drift_s`` of this host's
   clock. Replay and simulation are exempt, explicitly: a guard made with
   ``max_drift_s=None`` (p1-reader --replay, meter-sim at another speed, readings with
   ``source`` replay or sim) does not check it.

A reading that breaks a rule raises :class:`Implausible` (a :class:`BadPayload`: the
MQTT wrapper counts it and logs one line naming the field) and changes no state.
A meter that is really replaced or reset (counters back to 0, meter id unchanged) would
be refused forever; so after ``rebase_after`` refused readings in a row that agree with
each other, the guard takes the new counters as its base and says so in the log.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .mqtt import BadPayload
from .payloads import Reading, Refused, check

log = logging.getLogger(__name__)

# counter -> the most it can rise per hour (its unit per hour), and the rounding of the register
_KWH_PER_H = 100.0  # 99.999 kW, the largest power a P1 telegram can carry (F5(3) kW)
COUNTERS: dict[str, tuple[float, float]] = {
    **{f: (_KWH_PER_H, 0.001) for f in (
        "import_kwh", "export_kwh", "import_t1_kwh", "import_t2_kwh", "export_t1_kwh",
        "export_t2_kwh", "import_t3_kwh", "import_t4_kwh", "export_t3_kwh", "export_t4_kwh")},
    "gas_m3": (1000.0, 0.001),
    "water_m3": (100.0, 0.001),
    "heat_gj": (10.0, 0.001),
}
MIN_YEAR, MAX_YEAR = 2000, 2099
DEFAULT_MAX_DRIFT_S = 3600.0
EXEMPT_SOURCES = frozenset({"replay", "sim"})


class Implausible(BadPayload):
    def __init__(self, field: str, why: str) -> None:
        super().__init__(f"{field}: {why}")
        self.field = field


def reading_time(reading: Mapping[str, Any]) -> float:
    """Epoch seconds of ``ts``; Implausible when it is no ISO time with an offset in range."""
    ts = reading.get("ts")
    try:
        when = datetime.fromisoformat(str(ts))
    except ValueError:
        raise Implausible("ts", f"{str(ts)[:40]!r} is not an ISO 8601 time") from None
    if when.tzinfo is None:
        raise Implausible("ts", f"{ts!r} has no UTC offset")
    if not MIN_YEAR <= when.year <= MAX_YEAR:
        raise Implausible("ts", f"{ts!r} is not between {MIN_YEAR} and {MAX_YEAR}")
    return when.timestamp()


def check_reading(reading: Any, tolerate_extra: bool = False) -> float:
    """Rule 1; returns the reading's time (epoch s). ``tolerate_extra``: a consumer lets a
    newer publisher add fields (adding a field does not break the contract)."""
    try:
        check(Reading, reading, tolerate_extra)
    except Refused as exc:
        raise Implausible(exc.field, exc.why) from None
    return reading_time(reading)


@dataclass
class _Site:
    meter_id: Any = None
    base_t: float | None = None
    base: dict[str, float] = field(default_factory=dict)
    pending: list[tuple[float, dict[str, float]]] = field(default_factory=list)


class ReadingGuard:
    """Rules 1-3 for every site a service sees; :meth:`check` raises or accepts."""

    def __init__(self, max_drift_s: float | None = DEFAULT_MAX_DRIFT_S, rebase_after: int = 10,
                 max_sites: int = 100_000, tolerate_extra: bool = True) -> None:
        """``tolerate_extra=False`` for a publisher (p1-reader, the bridge): every field it
        sends must be in the contract."""
        self.max_drift_s = max_drift_s
        self.tolerate_extra = tolerate_extra
        self.rebase_after = rebase_after
        self.max_sites = max_sites
        self._sites: dict[str, _Site] = {}

    def check(self, reading: Any, received_s: float) -> None:
        t = check_reading(reading, self.tolerate_extra)
        exempt = self.max_drift_s is None or reading.get("source") in EXEMPT_SOURCES
        if not exempt and reading.get("ts_source") != "host" and self.max_drift_s is not None:
            drift = t - received_s
            if abs(drift) > self.max_drift_s:
                raise Implausible("ts", f"meter clock {reading['ts']} is {drift:+.0f} s from this host's "
                                        f"clock (at most {self.max_drift_s:.0f} s)")
        self._counters(str(reading.get("site")), reading, t)

    def _counters(self, site: str, reading: Mapping[str, Any], t: float) -> None:
        values = {f: float(reading[f]) for f in COUNTERS if f in reading}
        st = self._sites.get(site)
        if st is None:
            if len(self._sites) >= self.max_sites:
                self._sites.pop(next(iter(self._sites)))
            st = self._sites[site] = _Site()
        meter_id = reading.get("meter_id")
        if meter_id is not None and st.meter_id is not None and meter_id != st.meter_id:
            log.info("site %s: meter %s replaced by %s: counters start afresh", site, st.meter_id, meter_id)
            st.base, st.base_t, st.pending = {}, None, []
        if meter_id is not None:
            st.meter_id = meter_id
        problem = _compare(st.base, st.base_t, values, t)
        if problem is None:
            st.base.update(values)
            st.base_t = t if st.base_t is None else max(st.base_t, t)
            st.pending = []
            return
        # refused; but a run of readings that agree with each other is a new base (a reset meter)
        if st.pending and _compare(st.pending[-1][1], st.pending[-1][0], values, t) is None:
            st.pending.append((t, values))
        else:
            st.pending = [(t, values)]
        if len(st.pending) >= self.rebase_after:
            log.warning("site %s: %d readings in a row agree with each other but not with the last "
                        "accepted counters (%s): taking them as the new base (meter reset?)",
                        site, len(st.pending), problem[1])
            st.base, st.base_t, st.pending = dict(values), t, []
            return
        raise Implausible(*problem)


def _compare(base: Mapping[str, float], base_t: float | None, values: Mapping[str, float],
             t: float) -> tuple[str, str] | None:
    """(field, why) of the first counter that cannot follow ``base``, or None."""
    if base_t is None:
        return None
    hours = max(t - base_t, 1.0) / 3600.0  # a repeated time stamp still allows one second
    for name, value in values.items():
        last = base.get(name)
        if last is None:
            continue
        per_hour, step = COUNTERS[name]
        if value < last - step / 2:
            return name, f"went backwards from {last} to {value}"
        if value - last > per_hour * hours + step:
            return name, (f"rose by {value - last:.3f} in {hours * 3600:.0f} s: more than "
                          f"{per_hour:g} per hour allows")
    return None
