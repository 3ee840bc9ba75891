"""peak-forecaster SIGKILLed at random moments over a replayed simulated period.

The period (meter-sim ``--out`` at speed 0, one telegram a minute) starts on the night
of the autumn DST change (2026-10-25, 03:00 -> 02:00: a repeated hour) and ends after
the month rollover into November, so kills land around both. The readings go through
the real broker to the real service; after each kill it restarts (state from disk) and
the publisher resumes a little before where it was (what the service already has is
skipped, as after a real restart with a retained reading). Closed quarters, the month
records (peaks, 12-month history, billed value) must be identical to the offline replay
of the same file (``peak-forecaster replay``), which is an uninterrupted run.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
from rel_support import Proc

from peak_forecaster.cli import readings_from
from support import Mosquitto, Subscriber, wait_for

SITE = "relpfkill"


@pytest.fixture(scope="module")
def period(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict], list[dict]]:
    out = tmp_path_factory.mktemp("pfkill") / "week.txt"
    subprocess.run(
        [sys.executable, "-m", "meter_sim.cli", "--out", str(out), "--start",
         "2026-10-25T00:30", "--duration", "171h", "--speed", "0", "--interval", "60",
         "--no-mqtt", "--seed", "5", "--heat-pump-w", "2500"],
        check=True, capture_output=True, timeout=120)
    ref = subprocess.run([sys.executable, "-m", "peak_forecaster.cli", "replay", "--site", SITE,
                          str(out)], check=True, capture_output=True, text=True, timeout=120)
    records = [json.loads(x) for x in ref.stdout.splitlines()]
    return list(readings_from([out], SITE)), records


def test_period_crosses_dst_and_month_end(period: tuple[list[dict], list[dict]]) -> None:
    readings, records = period
    quarters = [r for r in records if "start" in r]
    # the repeated hour 02:00-03:00 comes twice, once +02:00 and once +01:00: 8 quarters
    repeated = [q["start"] for q in quarters if q["start"].startswith("2026-10-25T02:")]
    assert repeated == [f"2026-10-25T02:{m:02d}:00{off}" for off in ("+02:00", "+01:00")
                        for m in (0, 15, 30, 45)]
    months = [r["month"] for r in records if "month" in r]
    assert "2026-10" in months and months[-1] == "2026-11"
    assert readings[-1]["ts"].startswith("2026-11-01T02:")


def _reached(sub: Subscriber, ts: str) -> bool:
    target = datetime.fromisoformat(ts)
    return any(datetime.fromisoformat(m.json()["ts"]) >= target
               for m in sub.on(f"p1/{SITE}/peak"))


def _kill_run(broker: Mosquitto, tmp: Path, readings: list[dict], records: list[dict],
              kills: int, seed: int) -> None:
    rnd = random.Random(seed)
    ref_q = [r for r in records if "start" in r]
    ref_m = [r for r in records if "month" in r]
    kill_at = sorted(rnd.sample(range(200, len(readings) - 200), kills))
    sub = Subscriber(broker.port, f"p1/{SITE}/peak/#", f"p1/{SITE}/peak")
    svc = Proc("peak-forecaster", ["run", "--no-ha-discovery"], broker, tmp,
               client_id="rel-pfkill", PEAK_PERSIST_S="0.5", METRICS_PORT="0")
    svc.start()
    pos = 0
    try:
        for stop in [*kill_at, len(readings)]:
            while pos < stop:  # in chunks, so the kill finds the service busy
                end = min(stop, pos + 120)
                for r in readings[pos:end]:
                    sub.client.publish(f"p1/{SITE}/reading", json.dumps(r), qos=0)
                pos = end
                if pos < stop:
                    last = readings[pos - 1]["ts"]
                    # caught up: a peak at or after that reading (after a restart the
                    # readings it had already handled are ignored, so "at" may never come)
                    wait_for(lambda last=last: _reached(sub, last), 20)
            if stop == len(readings):
                break
            time.sleep(rnd.random() * 0.05)
            svc.kill()
            svc.start()
            pos = max(0, pos - 300)  # the publisher goes back a little (lost in flight)
        wait_for(lambda: _reached(sub, readings[-1]["ts"]), 30)
        got: dict[str, dict] = {}
        for m in sub.on(f"p1/{SITE}/peak/quarter"):
            q = m.json()
            assert got.setdefault(q["start"], q) == q, "a quarter came twice, different"
        assert list(got.values()) == ref_q
        months = [m.json() for m in sub.on(f"p1/{SITE}/peak/month")]
        assert months[-1] == ref_m[-1]  # peak, history, billed value, cost
        by_month = {m["month"]: m for m in months}
        assert by_month["2026-10"]["peak_w"] == max(
            r["peak_w"] for r in ref_m if r["month"] == "2026-10")
        assert svc.alive()
    finally:
        svc.stop()
        sub.close()


@pytest.mark.slow
def test_sigkill_five_times(private_mosquitto: Mosquitto, tmp_path: Path,
                           period: tuple[list[dict], list[dict]]) -> None:
    _kill_run(private_mosquitto, tmp_path, *period, kills=5, seed=1)


@pytest.mark.soak
@pytest.mark.timeout(3600)
def test_soak_sigkill_hundred_times(private_mosquitto: Mosquitto, tmp_path: Path,
                                    period: tuple[list[dict], list[dict]]) -> None:
    _kill_run(private_mosquitto, tmp_path, *period, kills=100, seed=2)
