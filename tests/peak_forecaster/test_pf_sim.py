"""A simulated meter day (meter-sim telegrams): replay offline and through the real broker."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_pf_service import Service, publish_all

from peak_forecaster.cli import readings_from
from support import Mosquitto, Subscriber, wait_for

pytest.importorskip("meter_sim.cli", reason="meter-sim is not there yet")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sim_day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pfsim") / "day.txt"
    subprocess.run(
        [sys.executable, "-m", "meter_sim.cli", "--out", str(out), "--start", "2026-01-15T00:00",
         "--duration", "1d", "--speed", "0", "--interval", "10", "--no-mqtt", "--seed", "3"],
        check=True, capture_output=True, timeout=120,
    )
    return out


def _replay(path: Path, *args: str) -> list[dict]:
    out = subprocess.run([sys.executable, "-m", "peak_forecaster.cli", "replay", *args, str(path)],
                         capture_output=True, text=True, timeout=120, check=True)
    return [json.loads(x) for x in out.stdout.splitlines()]


def test_replay_of_a_simulated_day_matches_the_meter(sim_day: Path) -> None:
    recs = _replay(sim_day, "--site", "pfsim")
    qs = [r for r in recs if "start" in r]
    assert len(qs) == 96
    assert qs[0]["start"] == "2026-01-15T00:00:00+01:00"
    assert qs[-1]["end"] == "2026-01-16T00:00:00+01:00"
    # the first telegram is at 00:00:10: the 10 s before it come from the meter's 1-0:1.4.0
    readings = list(readings_from([sim_day], "pfsim"))
    assert readings[0]["ts"] == "2026-01-15T00:00:10+01:00"
    assert [q["avg_source"] for q in qs] == ["meter"] + ["counters"] * 95
    assert [q["complete"] for q in qs] == [True] * 96
    before_wh = round(readings[0]["avg_demand_w"] * 10 / 3600, 3)
    used = readings[-1]["import_kwh"] - readings[0]["import_kwh"]
    assert round(sum(q["energy_wh"] for q in qs), 3) == round(used * 1000 + before_wh, 3)
    # the simulated meter's own 1-0:1.4.0 at the last telegram (10 s before the end)
    for q in qs:
        assert abs(q["avg_w"] - q["meter_avg_w"]) <= 60, q
    month = [r for r in recs if "month" in r][-1]
    assert month["source"] == "meter" and len(month["history"]) == 12
    assert abs(month["meter_diff_w"]) <= 60 or month["our_peak_w"] < month["meter_peak_w"]


def test_simulated_day_through_the_broker_gives_the_replay_records(
    sim_day: Path, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    ref = [r for r in _replay(sim_day, "--site", "pfsimmq") if "start" in r]
    readings = list(readings_from([sim_day], "pfsimmq"))
    svc = Service(mosquitto, tmp_path, "--no-ha-discovery", client_id="pf-sim")
    sub = Subscriber(mosquitto.port, "p1/pfsimmq/peak/#")
    svc.start()
    try:
        publish_all(sub, readings)
        wait_for(lambda: len(sub.on("p1/pfsimmq/peak/quarter")) >= len(ref), 60)
        assert [x.json() for x in sub.on("p1/pfsimmq/peak/quarter")] == ref
    finally:
        svc.stop()
        sub.close()
