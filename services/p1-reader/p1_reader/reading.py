"""A parse result -> the payloads p1-reader publishes (``reading``, ``live``, ``raw``).

Pure: the host time is passed in (used only when the meter sends no valid clock).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from p1common import CONTRACT_VERSION

# Fields that say nothing new from one telegram to the next; ``changed`` ignores them
# so that "publish on change" reacts to values, not to the meter clock.
_VOLATILE = frozenset({"ts", "ts_source", "month_max_history", "power_failure_log"})


def build_reading(
    parsed: dict[str, Any], *, site: str, source: str, now: float
) -> dict[str, Any]:
    """The ``reading`` payload: envelope first, then the parsed fields as they came."""
    reading: dict[str, Any] = {"v": CONTRACT_VERSION, "site": site, "source": source}
    ts = parsed.get("ts")
    if ts is None:
        reading["ts"] = datetime.fromtimestamp(now, UTC).astimezone().isoformat(
            timespec="seconds"
        )
        reading["ts_source"] = "host"
    else:
        reading["ts"] = ts
        reading["ts_source"] = "meter"
    for key, value in parsed.items():
        if key != "ts":
            reading[key] = value
    return reading


def build_live(reading: dict[str, Any]) -> dict[str, Any]:
    """The compact ``live`` payload for ESP8266 devices: ``{"ts","imp","exp","tar"}``."""
    live: dict[str, Any] = {
        "ts": int(datetime.fromisoformat(reading["ts"]).timestamp()),
        "imp": round(reading.get("import_w", 0.0)),
        "exp": round(reading.get("export_w", 0.0)),
    }
    if "tariff" in reading:
        live["tar"] = reading["tariff"]
    return live


def changed(previous: dict[str, Any] | None, reading: dict[str, Any]) -> bool:
    """True when a value other than the clock differs from the previous reading."""
    if previous is None:
        return True
    keys = (previous.keys() | reading.keys()) - _VOLATILE
    return any(previous.get(k) != reading.get(k) for k in keys)
