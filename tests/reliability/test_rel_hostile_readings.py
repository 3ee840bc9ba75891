"""Readings no meter can send, through the real peak-forecaster process.

One absurd value used to stop the forecaster for good: an ``import_w`` of 1.7e308 went
into its state and every later ``peak`` failed to publish ("Out of range float values"),
and a reading stamped 2099 moved the month record to 2099-06 and dropped the history
(ZeroDivisionError / OverflowError tracebacks). Now each is refused where it enters,
counted, logged in one line naming the field, and changes nothing: the month record, the
state file and the next good peak are exactly what a run without them gives.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from rel_support import Proc

from support import Mosquitto, Subscriber, wait_for

BRUSSELS = ZoneInfo("Europe/Brussels")


def reading(site: str, when: datetime, import_kwh: float, import_w: float = 1200.0, **kw: Any) -> dict:
    return {"v": 1, "site": site, "source": "p1", "ts": when.isoformat(), "import_kwh": import_kwh,
            "export_kwh": 0.0, "import_w": import_w, "export_w": 0.0, "net_w": import_w, **kw}


HOSTILE = [
    ("import_w", {"import_w": 1.7e308}),
    ("import_w", {"import_w": True}),
    ("ts", {"ts": "2099-06-15T12:00:00+02:00"}),  # within the year range: the clock rule refuses it
    ("ts", {"ts": "0001-01-01T00:00:00+00:00"}),
    ("ts", {"ts": "9999-12-31T23:59:59+00:00"}),
    ("import_kwh", {"import_kwh": 1.0}),  # backwards
    ("import_kwh", {"import_kwh": 1e6}),  # a jump no 100 kW meter makes in a second
]


def run_day(broker: Mosquitto, tmp: Path, site: str, start: datetime,
            hostile: bool) -> tuple[dict, dict, str, dict]:
    """20 good readings a second apart from ``start`` (a minute ago), the hostile ones in
    the middle when asked; returns the last peak, the month record, the log, the counts
    and the state file."""
    tmp.mkdir(parents=True, exist_ok=True)
    pf = Proc("peak-forecaster", [], broker, tmp, P1_MAX_CLOCK_DRIFT_S="3600").start()
    sub = Subscriber(broker.port, f"p1/{site}/peak", f"p1/{site}/peak/month")
    try:
        for n in range(20):
            good = reading(site, start + timedelta(seconds=n), 1000.0 + n * 0.0003)
            sub.publish(f"p1/{site}/reading", good, qos=1)
            if n == 10 and hostile:
                for _field, change in HOSTILE:
                    sub.publish(f"p1/{site}/reading", {**good, **change}, qos=1)
        # this run's own answers only: the run before left its peak and month retained
        def fresh(topic: str) -> dict | None:
            msgs = [m for m in sub.on(topic) if not m.retain]
            return msgs[-1].json() if msgs else None

        last = (start + timedelta(seconds=19)).isoformat()
        wait_for(lambda: (fresh(f"p1/{site}/peak") or {}).get("ts") == last, 30)
        bad = pf.metric("p1_mqtt_bad_payloads_total", topic_kind="reading")
        peak = fresh(f"p1/{site}/peak")
        month = fresh(f"p1/{site}/peak/month")
    finally:
        pf.stop()
        sub.close()
    state = json.loads((tmp / "peak-forecaster" / f"{site}.json").read_text())
    return peak, month or {}, pf.output(), {"bad": bad, "state": state}


def test_absurd_readings_are_refused_and_change_nothing(private_mosquitto: Mosquitto, tmp_path: Path) -> None:
    start = datetime.now(BRUSSELS).replace(microsecond=0) - timedelta(seconds=60)
    clean = run_day(private_mosquitto, tmp_path / "clean", "hostile", start, hostile=False)
    attacked = run_day(private_mosquitto, tmp_path / "attacked", "hostile", start, hostile=True)
    assert clean[3]["bad"] == 0
    assert attacked[3]["bad"] == len(HOSTILE)
    # the same peak, month record and quarter state as without them
    assert attacked[0] == clean[0]
    assert attacked[1] == clean[1]
    assert attacked[3]["state"] == clean[3]["state"]  # the whole state file, month and tracker included
    assert attacked[1].get("month", datetime.now(BRUSSELS).strftime("%Y-%m")) == datetime.now(BRUSSELS).strftime(
        "%Y-%m")
    assert "2099" not in json.dumps(attacked[3]["state"]) and "1.7e+308" not in json.dumps(attacked[3]["state"])
    log = attacked[2]
    assert "Traceback" not in log and "ZeroDivisionError" not in log and "OverflowError" not in log
    refusals = [line for line in log.splitlines() if "ignored a bad payload on p1/hostile/reading" in line]
    assert [line.split("reading: ", 1)[1].split(":", 1)[0] for line in refusals] == [f for f, _ in HOSTILE]
