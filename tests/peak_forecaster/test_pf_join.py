"""A quarter joined mid-way (service started, or restarted after a very long gap, after the
quarter began) and the month's 2.5 kW floor, with numbers worked out by hand.

1-0:1.4.0 (``avg_demand_w``) is the meter's average demand of the running quarter so far:
the energy since the quarter's start divided by the time elapsed in it. Joined at minute 7
with 413 W, the quarter had 413 W x 420 s = 48.1833 Wh before our first reading.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from pf_support import Meter, feed, months, quarters
from test_pf_service import Service, publish_all

from peak_forecaster.engine import PeakSettings, SiteEngine
from support import TELEGRAMS, Mosquitto, Subscriber, wait_for

NEW_TRACKER_KEYS = ("q_avg_source", "q_first_t", "q_first_wh", "q_floor_wh")


def meter_avg(energy_wh: float, elapsed_s: float) -> float:
    """What a meter shows as 1-0:1.4.0: energy since the quarter start / elapsed, whole W."""
    return round(energy_wh * 3600 / elapsed_s)


def joined_at_minute_7(with_meter: bool) -> list[dict]:
    """10:07:00 first reading (413 W); then 360 W (1 Wh every 10 s) until 10:15:10."""
    m = Meter("2026-01-15T10:07:00+01:00")
    rs = [m.reading(413, **({"avg_demand_w": 413.0} if with_meter else {}))]
    before = 413 * 420 / 3600
    for k in range(1, 50):  # 10:07:10 ... 10:15:10
        m.advance(10, 1)
        extra = {}
        if with_meter and k < 48:  # still the joined quarter (10:15:00 is the next one's first second)
            extra["avg_demand_w"] = float(meter_avg(before + k, 420 + 10 * k))
        rs.append(m.reading(360, **extra))
    return rs


def test_join_at_minute_7_with_the_meters_average_gives_the_whole_quarter() -> None:
    rs = joined_at_minute_7(with_meter=True)
    eng, res = feed(rs)
    p = res[0].peak
    assert p is not None
    # 413 W x 420 s / 3600 = 48.1833 Wh; x 4 = 192.73 W
    assert (p["energy_wh"], p["avg_w"], p["avg_source"], p["complete"], p["observed_from"]) == (
        48.183, 192.7, "meter", True, "2026-01-15T10:07:00+01:00")
    # default forecast: smoothed power = prior = 413 W for the 480 s left:
    # 48.1833 + 413 x 480 / 3600 = 103.25 Wh -> x 4 = 413.0 W
    # headroom: (2500 x 0.25 - 103.25) Wh / (480 / 3600) h = 3913.125 W
    assert (p["forecast_w"], p["headroom_w"], p["meter_diff_w"], p["elapsed_s"]) == (
        413.0, 3913.1, 0.0, 420.0)
    assert any("joined mid-way at 2026-01-15T10:07:00+01:00: the 48.2 Wh before it taken from "
               "the meter's 1-0:1.4.0 (413 W over the 420 s elapsed)" in e for e in res[0].events)

    p2 = res[1].peak  # 10:07:10, +1 Wh, 360 W
    assert p2 is not None
    # power smoothed over 10 s: p = 413 + (1 - e^(-10/30)) x (360 - 413) = 397.976
    #                           b = 413 + (1 - e^(-10/1800)) x (360 - 413) = 412.706
    # rest = (b x 470 + (p - b) x 300 x (1 - e^(-470/300))) / 3600 = 52.9098 Wh
    # forecast = (49.1833 + 52.9098) x 4 = 408.37 W; headroom (625 - 102.093) x 3600 / 470
    # meter_diff: ours 49.1833 Wh x 3600 / 430 s = 411.77 W vs the meter's 412 W
    assert (p2["energy_wh"], p2["avg_w"], p2["forecast_w"], p2["headroom_w"], p2["power_w"],
            p2["meter_avg_demand_w"], p2["meter_diff_w"]) == (
        49.183, 196.7, 408.4, 4005.2, 398.0, 412.0, -0.2)

    (q,) = quarters(res)
    # 48.1833 before the join + 48 Wh from 10:07:00 to 10:15:00 = 96.1833 Wh -> 384.73 W
    assert (q["start"], q["end"], q["energy_wh"], q["avg_w"], q["complete"], q["flags"],
            q["avg_source"], q["meter_avg_w"]) == (
        "2026-01-15T10:00:00+01:00", "2026-01-15T10:15:00+01:00", 96.183, 384.7, True, [],
        "meter", 385.0)
    last = res[-1].peak
    assert last is not None and (last["avg_source"], last["complete"]) == ("counters", True)
    assert "observed_from" not in last
    assert eng.tracker.energy_wh == 1.0  # 10:15:00 -> 10:15:10


def test_join_at_minute_7_without_the_meters_average_is_partial() -> None:
    rs = joined_at_minute_7(with_meter=False)
    _, res = feed(rs)
    p = res[0].peak
    assert p is not None
    # only what we saw: nothing yet; the forecast counts the 480 s left at 413 W:
    # 413 x 480 / 3600 = 55.0667 Wh -> 220.3 W, a lower bound of the quarter's
    assert (p["energy_wh"], p["avg_w"], p["forecast_w"], p["avg_source"], p["complete"],
            p["observed_from"]) == (0.0, 0.0, 220.3, "partial", False, "2026-01-15T10:07:00+01:00")
    assert "meter_diff_w" not in p and "meter_avg_demand_w" not in p
    assert any("started mid-quarter at 2026-01-15T10:07:00+01:00 and the meter sends no 1-0:1.4.0"
               in e for e in res[0].events)
    p2 = res[1].peak
    assert p2 is not None and (p2["energy_wh"], p2["avg_w"], p2["avg_source"]) == (1.0, 4.0, "partial")
    (q,) = quarters(res)
    # 48 Wh from 10:07:00 to 10:15:00 only
    assert (q["energy_wh"], q["avg_w"], q["complete"], q["flags"], q["avg_source"]) == (
        48.0, 192.0, False, ["partial"], "partial")
    assert "meter_avg_w" not in q


def test_a_partial_quarter_is_repaired_when_the_meters_average_comes_later() -> None:
    m = Meter("2026-01-15T10:07:00+01:00")
    rs = [m.reading(360)]
    m.advance(10, 1)
    rs.append(m.reading(360, avg_demand_w=420.0))
    _, res = feed(rs)
    assert res[0].peak is not None and res[0].peak["avg_source"] == "partial"
    p = res[1].peak
    assert p is not None
    # 420 W x 430 s / 3600 = 50.1667 Wh so far (49.1667 of it before the join)
    assert (p["energy_wh"], p["avg_w"], p["avg_source"], p["complete"], p["meter_diff_w"]) == (
        50.167, 200.7, "meter", True, 0.0)


def test_baseline_check_at_minute_5_after_a_join_at_minute_7_is_pro_rata() -> None:
    rs = joined_at_minute_7(with_meter=True)
    eng, res = feed(rs[:1], settings=PeakSettings(algorithm="baseline"))
    # energy at minute 5 = 48.1833 x 300 / 420 = 34.4167 Wh, x 3 = 103.25 Wh (413 W): no alarm
    assert eng.baseline.last_check_wh is not None and round(eng.baseline.last_check_wh, 6) == 103.25
    assert res[0].peak is not None and res[0].peak["level"] == "ok"
    # the same at 2000 W would have been above 2500 W at minute 7 x 3, not at minute 5 pro rata
    m = Meter("2026-01-15T10:07:00+01:00")
    eng2, res2 = feed([m.reading(2000, avg_demand_w=2000.0)], settings=PeakSettings(algorithm="baseline"))
    assert eng2.baseline.last_check_wh is not None and round(eng2.baseline.last_check_wh, 6) == 500.0
    assert res2[0].peak is not None and res2[0].peak["level"] == "ok"


def test_a_join_after_a_gap_of_more_than_7_days_uses_the_meter_but_never_more_than_the_gap() -> None:
    m = Meter("2026-01-15T10:00:00+01:00")
    rs = [m.reading(), *m.run(60, 10, 1)]  # 10:01:00
    m.advance(8 * 86400 + 360, 30)  # 8 days later, at 10:07:00, only 30 Wh more on the counter
    rs.append(m.reading(360, avg_demand_w=413.0))  # the meter claims 48.18 Wh since 10:00
    _, res = feed(rs)
    p = res[-1].peak
    assert p is not None
    # 48.18 Wh before the join is more than the 30 Wh across the gap: kept to 30 Wh
    assert (p["energy_wh"], p["avg_source"], p["complete"], p["quarter_start"]) == (
        30.0, "meter", False, "2026-01-23T10:00:00+01:00")
    assert quarters(res)[-1]["flags"] == ["gap"]
    assert any("data gap of 8.0 days: 0 Wh not spread over quarters" in e for e in res[-1].events)


def test_state_round_trip_in_a_joined_quarter_gives_identical_records() -> None:
    for with_meter in (True, False):
        rs = joined_at_minute_7(with_meter)
        _, ref = feed(rs)
        for cut in (1, 2, 30):
            eng, first = feed(rs[:cut])
            again = SiteEngine.from_state(json.loads(json.dumps(eng.to_state())))
            _, second = feed(rs[cut:], again)
            assert [r.peak for r in first + second] == [r.peak for r in ref], (with_meter, cut)
            assert quarters(first) + quarters(second) == quarters(ref)


def test_a_state_file_from_before_avg_source_loads_and_can_still_be_repaired() -> None:
    m = Meter("2026-01-15T10:07:00+01:00")
    eng, _ = feed([m.reading(360)])
    old = json.loads(json.dumps(eng.to_state()))
    for k in NEW_TRACKER_KEYS:
        del old["tracker"][k]  # what an older version wrote
    again = SiteEngine.from_state(old)
    assert again.tracker.q_avg_source == "partial" and again.tracker.q_first_wh == 1_000_000.0
    m.advance(10, 1)
    (res,) = [again.process(m.reading(360, avg_demand_w=420.0))]
    assert res.peak is not None
    assert (res.peak["energy_wh"], res.peak["avg_source"]) == (50.167, "meter")
    # and a whole quarter from an old file is "counters"
    m2 = Meter("2026-01-15T10:00:00+01:00")
    eng2, _ = feed([m2.reading(360)])
    old2 = json.loads(json.dumps(eng2.to_state()))
    for k in NEW_TRACKER_KEYS:
        del old2["tracker"][k]
    assert SiteEngine.from_state(old2).tracker.q_avg_source == "counters"


def test_month_on_the_floor_says_so_and_has_no_time() -> None:
    m = Meter("2026-01-15T10:00:00+01:00")
    rs = [m.reading(1800), *m.run(900, 10, 5, 1800), *m.run(900, 10, 10, 3600)]  # 1800 W, 3600 W
    _, res = feed(rs)
    recs = months(res)
    assert [(r["peak_w"], r["peak_is_floor"], r["peak_start"], r["our_peak_w"], r["our_peak_start"])
            for r in recs] == [
        (2500.0, True, None, 0.0, None),
        (2500.0, True, None, 1800.0, "2026-01-15T10:00:00+01:00"),
        (3600.0, False, "2026-01-15T10:15:00+01:00", 3600.0, "2026-01-15T10:15:00+01:00"),
    ]
    on_floor = [r.peak for r in res[1:91]]  # 10:00:10 ... 10:15:00
    assert all(p is not None and (p["month_peak_w"], p["month_peak_is_floor"]) == (2500.0, True)
               for p in on_floor)
    assert res[-1].peak is not None and (res[-1].peak["month_peak_w"],
                                         res[-1].peak["month_peak_is_floor"]) == (3600.0, False)


def test_meters_month_max_below_the_floor_gives_the_floor_without_the_meters_time() -> None:
    m = Meter("2026-12-01T00:10:00+01:00")
    # a meter at the month start: 0 kW at 00:00 on the 1st until a quarter ends
    m.extra = {"month_max_w": 0.0, "month_max_ts": "2026-12-01T00:00:00+01:00"}
    eng, res = feed([m.reading(400)])
    rec = months(res)[-1]
    assert (rec["peak_w"], rec["peak_is_floor"], rec["peak_start"], rec["source"],
            rec["meter_peak_w"], rec["meter_peak_ts"]) == (
        2500.0, True, None, "meter", 0.0, "2026-12-01T00:00:00+01:00")
    m.extra = {"month_max_w": 2600.0, "month_max_ts": "2026-12-01T00:15:00+01:00"}
    m.advance(10, 1)
    _, res = feed([m.reading(400)], eng)
    rec = months(res)[-1]
    assert (rec["peak_w"], rec["peak_is_floor"], rec["peak_start"]) == (
        2600.0, False, "2026-12-01T00:15:00+01:00")


def test_replay_a_real_fluvius_telegram_joined_mid_quarter_on_the_floor(tmp_path: Path) -> None:
    """dsmr-reader's Fluvius telegram: 15:50:56, 1-0:1.4.0 0.078 kW, 1-0:1.7.0 0.182 kW,
    1-0:1.6.0 1.566 kW at 02:00 on 1 February (below the floor)."""
    raw = (TELEGRAMS / "dsmrreader__fluvius_with_peak_data.txt").read_bytes()
    assert raw.endswith(b"!59A5")  # stored without the CRLF a meter sends after the CRC
    capture = tmp_path / "fluvius.txt"
    capture.write_bytes(raw + b"\r\n")
    out = subprocess.run([sys.executable, "-m", "peak_forecaster.cli", "replay", "--peaks",
                          str(capture)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    month, peak = (json.loads(x) for x in out.stdout.splitlines())
    # 78 W x 356 s (15:45:00 -> 15:50:56) / 3600 = 7.7133 Wh; x 4 = 30.85 W
    # forecast: 7.7133 + 182 W x 544 s / 3600 = 35.2156 Wh -> 140.86 W
    # headroom: (625 - 35.2156) x 3600 / 544 = 3903.0 W
    assert (peak["quarter_start"], peak["energy_wh"], peak["avg_w"], peak["forecast_w"],
            peak["headroom_w"], peak["avg_source"], peak["observed_from"], peak["meter_diff_w"],
            peak["month_peak_w"], peak["month_peak_is_floor"]) == (
        "2023-02-01T15:45:00+01:00", 7.713, 30.9, 140.9, 3903.0, "meter",
        "2023-02-01T15:50:56+01:00", 0.0, 2500.0, True)
    assert (month["peak_w"], month["peak_is_floor"], month["peak_start"], month["meter_peak_w"],
            month["meter_peak_ts"]) == (2500.0, True, None, 1566.0, "2023-02-01T02:00:00+01:00")
    assert "joined mid-way" in out.stderr



def test_every_payload_of_a_join_validates_against_the_contract_models_strictly() -> None:
    """As p1-web checks them (strict types); the new fields are typed, not extras."""
    from p1common.payloads import MonthRecord, Peak, QuarterRecord

    for with_meter in (True, False):
        _, res = feed(joined_at_minute_7(with_meter))
        for r in res:
            assert r.peak is not None
            Peak.model_validate(r.peak, strict=True)
            for q in r.quarters:
                QuarterRecord.model_validate(q, strict=True)
            for mo in r.months:
                MonthRecord.model_validate(mo, strict=True)
    for model, field in ((Peak, "avg_source"), (Peak, "observed_from"), (Peak, "month_peak_is_floor"),
                         (QuarterRecord, "avg_source"), (MonthRecord, "peak_is_floor")):
        assert field in model.model_fields, (model, field)
    try:
        Peak.model_validate({**res[0].peak, "avg_source": "guessed"}, strict=True)  # type: ignore[dict-item]
    except ValueError as exc:
        assert "avg_source" in str(exc)
    else:
        raise AssertionError("avg_source 'guessed' accepted")


def test_sigkill_in_a_partial_quarter_then_the_meters_average_after_the_restart(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """The new tracker fields go through the atomic state file: killed while ``partial``, the
    restarted service repairs the quarter from the next reading's 1-0:1.4.0 exactly as one
    uninterrupted engine does."""
    site = "pfjoinkill"
    m = Meter("2026-01-15T10:07:00+01:00", site=site)
    rs = [m.reading(360)]
    for _ in range(2):  # 10:07:10, 10:07:20: still no meter average
        m.advance(10, 1)
        rs.append(m.reading(360))
    before = 40.0  # what the house drew 10:00:00 -> 10:07:00
    for k in range(3, 50):  # 10:07:30 ... 10:15:10
        m.advance(10, 1)
        extra = {"avg_demand_w": float(meter_avg(before + k, 420 + 10 * k))} if k < 48 else {}
        rs.append(m.reading(360, **extra))
    _, ref = feed(rs)
    (ref_q,) = quarters(ref)
    # 10:07:30: avg = round((40 + 3) x 3600 / 450) = 344 W -> 344 x 450 / 3600 = 43.0 Wh so far,
    # so 40.0 before the join; the quarter: 40 + 48 = 88 Wh -> 352 W
    assert (ref_q["energy_wh"], ref_q["avg_w"], ref_q["avg_source"], ref_q["complete"]) == (
        88.0, 352.0, "meter", True)

    state_file = tmp_path / "peak-forecaster" / f"{site}.json"

    def saved_partial() -> bool:
        try:
            tr = json.loads(state_file.read_text())["tracker"]
        except (OSError, ValueError, KeyError):
            return False
        return tr["q_avg_source"] == "partial" and tr["last_wh"] == 1_000_002.0

    svc = Service(mosquitto, tmp_path, client_id="pf-joinkill")
    sub = Subscriber(mosquitto.port, f"p1/{site}/peak/#")
    svc.start()
    try:
        publish_all(sub, rs[:3])
        wait_for(saved_partial, 15)
        svc.kill()
        svc.start()
        publish_all(sub, rs)  # all again: the first three are already in the state
        wait_for(lambda: any(x.json()["ts"] == rs[-1]["ts"] for x in sub.on(f"p1/{site}/peak")), 30)
        got = [x.json() for x in sub.on(f"p1/{site}/peak/quarter")]
        assert got == [ref_q]
        peaks = {x.json()["ts"]: x.json() for x in sub.on(f"p1/{site}/peak")}
        assert peaks[rs[3]["ts"]] == ref[3].peak
        assert (peaks[rs[3]["ts"]]["avg_source"], peaks[rs[3]["ts"]]["energy_wh"]) == ("meter", 43.0)
        assert "joined mid-way at 2026-01-15T10:07:00+01:00" in svc.output()
    finally:
        svc.stop()
        sub.close()
