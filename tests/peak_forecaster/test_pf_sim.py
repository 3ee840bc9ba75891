"""A simulated meter day (meter-sim telegrams): replay offline and through the real broker."""

from __future__ import annotations

import datetime as dt
import json
import re
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


# -- the expected quarters, from the telegrams themselves --------------------------------
# Read here with a few regular expressions (not with the forecaster's reader): the meter's
# clock (0-0:1.0.0, W = +01:00, S = +02:00), its import counters 1-0:1.8.1 + 1-0:1.8.2 in
# whole Wh, its running quarter average 1-0:1.4.0 in W and its month maximum 1-0:1.6.0.
# meter-sim sends a telegram every 10 s from 00:00:10 to 24:00:00, so every quarter
# boundary but the first has a telegram: a quarter's energy is the counter difference
# between its two boundaries; the first quarter's 10 s before the first telegram are the
# meter's 1-0:1.4.0 at that telegram over 10 s. 1-0:1.4.0 starts again from 0 at each
# boundary, so the meter's own average of a quarter is the one 10 s before its end.

TS = re.compile(r"0-0:1\.0\.0\((\d{12})([SW])\)")
COUNTER = re.compile(r"1-0:1\.8\.[12]\((\d+)\.(\d{3})\*kWh\)")
AVG = re.compile(r"1-0:1\.4\.0\((\d+)\.(\d{3})\*kW\)")
MONTH_MAX = re.compile(r"1-0:1\.6\.0\(\d{12}[SW]\)\((\d+)\.(\d{3})\*kW\)")


def _telegrams(path: Path) -> list[tuple[dt.datetime, int, int, int]]:
    """(meter time, import Wh, 1-0:1.4.0 W, 1-0:1.6.0 W) per telegram."""
    rows = []
    for tel in path.read_text().split("/")[1:]:
        ts = TS.search(tel)
        if not ts:
            continue
        offset = dt.timezone(dt.timedelta(hours=1 if ts.group(2) == "W" else 2))
        when = dt.datetime.strptime(ts.group(1), "%y%m%d%H%M%S").replace(tzinfo=offset)
        wh = sum(int(kwh + frac) for kwh, frac in COUNTER.findall(tel))
        avg, mmax = AVG.search(tel), MONTH_MAX.search(tel)
        assert avg and mmax, tel
        rows.append((when, wh, int(avg.group(1) + avg.group(2)),
                     int(mmax.group(1) + mmax.group(2))))
    return rows


def expected_quarters(path: Path) -> list[dict]:
    rows = _telegrams(path)
    at = {r[0]: r for r in rows}
    day = dt.datetime(2026, 1, 15, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    out = []
    for i in range(96):
        start, end = day + dt.timedelta(minutes=15 * i), day + dt.timedelta(minutes=15 * (i + 1))
        if start in at:
            wh: float = at[end][1] - at[start][1]
        else:
            first = rows[0]
            wh = at[end][1] - first[1] + first[2] * (first[0] - start).total_seconds() / 3600
        out.append({"start": start.isoformat(), "end": end.isoformat(),
                    "energy_wh": round(wh, 3), "avg_w": round(wh * 4, 1),
                    "meter_avg_w": float(at[end - dt.timedelta(seconds=10)][2]),
                    "complete": True, "avg_source": "counters" if start in at else "meter",
                    "threshold_w": float(rows[-1][3]), "warned_at": None})
    return out


def _fields(records: list[dict]) -> list[dict]:
    keys = ("start", "end", "energy_wh", "avg_w", "meter_avg_w", "complete", "avg_source",
            "threshold_w", "warned_at")
    return [{k: r[k] for k in keys} for r in records]


def test_expected_quarters_are_those_of_the_day(sim_day: Path) -> None:
    """The oracle itself: 96 quarters, the first joined 10 s late, energies adding up to
    the day's counters."""
    rows, exp = _telegrams(sim_day), expected_quarters(sim_day)
    assert len(rows) == 8640 and len(exp) == 96
    assert rows[0][0].isoformat() == "2026-01-15T00:00:10+01:00"
    assert rows[-1][0].isoformat() == "2026-01-16T00:00:00+01:00"
    assert round(sum(q["energy_wh"] for q in exp), 3) == round(
        rows[-1][1] - rows[0][1] + rows[0][2] * 10 / 3600, 3)


def test_replay_of_a_simulated_day_matches_the_meter(sim_day: Path) -> None:
    recs = _replay(sim_day, "--site", "pfsim")
    exp = expected_quarters(sim_day)
    assert _fields([r for r in recs if "start" in r]) == exp
    month = [r for r in recs if "month" in r][-1]
    assert month["source"] == "meter" and len(month["history"]) == 12
    meter_peak = exp[0]["threshold_w"]  # 1-0:1.6.0: this month's peak, before this day
    assert month["our_peak_w"] == max(q["avg_w"] for q in exp)
    assert month["meter_peak_w"] == meter_peak
    assert month["meter_diff_w"] == round(month["our_peak_w"] - meter_peak, 1)


def test_simulated_day_through_the_broker_gives_the_expected_quarters(
    sim_day: Path, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    exp = expected_quarters(sim_day)
    readings = list(readings_from([sim_day], "pfsimmq"))
    svc = Service(mosquitto, tmp_path, "--no-ha-discovery", client_id="pf-sim")
    sub = Subscriber(mosquitto.port, "p1/pfsimmq/peak/#")
    svc.start()
    try:
        publish_all(sub, readings)
        wait_for(lambda: len(sub.on("p1/pfsimmq/peak/quarter")) >= len(exp), 60)
        assert _fields([x.json() for x in sub.on("p1/pfsimmq/peak/quarter")]) == exp
    finally:
        svc.stop()
        sub.close()
