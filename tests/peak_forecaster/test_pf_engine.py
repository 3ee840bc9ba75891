"""Engine state round trip, replay CLI over JSON lines and real telegrams."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

from pf_support import Meter, feed, months, quarters

from peak_forecaster.engine import BadReading, PeakSettings, SiteEngine
from support import TELEGRAMS


def day_of_readings(seed: int = 1, seconds: int = 3 * 3600, step_s: int = 5) -> list[dict]:
    """A house: base load, a few heavy loads switching on and off."""
    rng = random.Random(seed)
    m = Meter("2026-01-15T17:00:00+01:00", site="pfeng")
    rs = [m.reading(400)]
    power = 400.0
    for _ in range(seconds // step_s):
        if rng.random() < 0.01:
            power = rng.choice([300.0, 800.0, 2500.0, 4200.0, 7400.0])
        wh = round(power * step_s / 3600 + rng.random() * 0.5)
        m.advance(step_s, wh)
        rs.append(m.reading(power, avg_demand_w=power))
    return rs


def test_state_round_trip_at_any_point_gives_identical_records() -> None:
    rs = day_of_readings()
    _, ref = feed(rs)
    ref_q, ref_m = quarters(ref), months(ref)
    assert len(ref_q) == 12
    for cut in (1, 333, 1080, 1081, 1500):
        eng, first = feed(rs[:cut])
        state = json.loads(json.dumps(eng.to_state()))
        again = SiteEngine.from_state(state)
        _, second = feed(rs[cut:], again)
        assert quarters(first) + quarters(second) == ref_q, cut
        assert [r.peak for r in first + second] == [r.peak for r in ref], cut
        assert (months(first) + months(second))[-1] == ref_m[-1]


def test_bad_readings_are_refused_with_a_reason() -> None:
    eng = SiteEngine("x")
    for bad, why in (({"import_kwh": 1.0}, "no ts"),
                     ({"ts": "yesterday", "import_kwh": 1.0}, "not ISO 8601"),
                     ({"ts": "2026-01-15T10:00:00+01:00"}, "no import counter")):
        try:
            eng.process(bad)
        except BadReading as exc:
            assert why in str(exc)
        else:
            raise AssertionError(f"{bad} accepted")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "peak_forecaster.cli", *args],
                          capture_output=True, text=True, timeout=60)


def test_replay_json_lines_prints_quarters_and_months(tmp_path: Path) -> None:
    rs = day_of_readings()
    f = tmp_path / "readings.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rs))
    out = _cli("replay", str(f))
    assert out.returncode == 0, out.stderr
    lines = [json.loads(x) for x in out.stdout.splitlines()]
    _, ref = feed(rs)
    assert [x for x in lines if "start" in x] == quarters(ref)
    assert [x for x in lines if "month" in x] == months(ref)
    base = _cli("replay", "--baseline", "--threshold-w", "3000", str(f))
    qs = [json.loads(x) for x in base.stdout.splitlines() if '"start"' in x]
    _, ref_b = feed(rs, settings=PeakSettings(manual_threshold_w=3000.0, algorithm="baseline"))
    assert qs == quarters(ref_b)
    assert all(q["algorithm"] == "baseline" for q in qs)


def test_replay_a_real_emucs_telegram() -> None:
    out = _cli("replay", "--peaks", str(TELEGRAMS / "dsmr_parser__fluvius_v171.txt"))
    assert out.returncode == 0, out.stderr
    month, peak = (json.loads(x) for x in out.stdout.splitlines())
    assert (month["month"], month["peak_w"], month["meter_peak_w"], month["source"]) == (
        "2020-05", 2589.0, 2589.0, "meter")
    assert [h["month"] for h in month["history"]] == ["2020-02", "2020-03", "2020-04", "2020-05"]
    assert month["billed_w"] == 4145.5  # (4318 + 5980 + 3695 + 2589) / 4
    assert (peak["quarter_start"], peak["meter_avg_demand_w"], peak["threshold_w"]) == (
        "2020-05-12T13:45:00+02:00", 2351.0, 2589.0)


def test_replay_missing_file_and_help() -> None:
    assert _cli("replay", "/nonexistent").returncode == 2
    h = _cli("--help")
    assert h.returncode == 0 and "PEAK_SHARDS" in h.stdout and "replay" in h.stdout
