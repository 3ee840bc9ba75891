"""The original warning (minute 5 and 10), the default forecaster, hysteresis, headroom."""

from __future__ import annotations

from pf_support import Meter, feed, quarters

from peak_forecaster.engine import PeakSettings
from peak_forecaster.forecast import DefaultForecaster, ForecastParams, headroom_w

BASELINE = PeakSettings(algorithm="baseline")


def _levels(res: list) -> list[tuple[str, str]]:
    """(ts, level) at every level change."""
    out: list[tuple[str, str]] = []
    for r in res:
        if r.peak and (not out or out[-1][1] != r.peak["level"]):
            out.append((r.peak["ts"], r.peak["level"]))
    return out


def test_baseline_warns_at_minute_5_and_clears_at_the_next_quarter() -> None:
    m = Meter("2026-01-15T10:00:00+01:00")
    # 3600 W: 300 Wh at minute 5, x3 = 900 Wh = 3600 W > 2500 W
    rs = [m.reading(3600), *m.run(600, 10, 10, 3600), *m.run(300, 10, 0, 0), *m.run(60, 10, 0, 0)]
    _, res = feed(rs, settings=BASELINE)
    assert _levels(res) == [
        ("2026-01-15T10:00:00+01:00", "ok"),
        ("2026-01-15T10:05:00+01:00", "alarm"),
        ("2026-01-15T10:15:00+01:00", "ok"),  # cleared at the next quarter, not before
    ]
    (q,) = quarters(res)
    assert (q["warned_at"], q["warned_at_baseline"], q["avg_w"]) == (
        "2026-01-15T10:05:00+01:00", "2026-01-15T10:05:00+01:00", 2400.0)


def test_baseline_warns_at_minute_10_only_when_minute_5_was_below() -> None:
    m = Meter("2026-01-15T10:00:00+01:00")
    # 3600 W for 5 min (forecast 3600 W < 4000 W), then 7200 W: 900 Wh x 1.5 = 5400 W at minute 10
    rs = [m.reading(), *m.run(300, 10, 10), *m.run(300, 10, 20), *m.run(300, 10, 0)]
    eng, res = feed(rs, settings=PeakSettings(manual_threshold_w=4000.0, algorithm="baseline"))
    assert eng.baseline.last_check_wh is None  # reset for the new quarter
    assert _levels(res)[1] == ("2026-01-15T10:10:00+01:00", "alarm")
    assert quarters(res)[0]["warned_at"] == "2026-01-15T10:10:00+01:00"


def test_baseline_interpolates_the_energy_at_the_check_instant() -> None:
    m = Meter("2026-01-15T10:00:00+01:00")
    rs = [m.reading(), *m.run(290, 10, 10)]  # 10:04:50, 290 Wh
    m.advance(20, 40)  # 10:05:10: 20 Wh of these before minute 5 -> 310 Wh, x3 = 930 Wh
    rs.append(m.reading())
    eng, res = feed(rs, settings=BASELINE)
    assert eng.baseline.last_check_wh == 930.0
    assert res[-1].peak is not None and res[-1].peak["level"] == "alarm"


def test_baseline_does_not_warn_below_the_threshold() -> None:
    m = Meter("2026-01-15T10:00:00+01:00")
    rs = [m.reading(), *m.run(900, 10, 6)]  # 2160 W
    _, res = feed(rs, settings=BASELINE)
    assert {r.peak["level"] for r in res if r.peak} == {"ok"}
    assert quarters(res)[0]["warned_at"] is None


def test_default_forecast_and_headroom_exact() -> None:
    m = Meter("2026-01-15T10:00:00+01:00")
    rs = [m.reading(1800), *m.run(300, 10, 5, 1800)]  # steady 1800 W: smoothing changes nothing
    _, res = feed(rs)
    p = res[-1].peak
    assert p is not None
    # 150 Wh so far + 1800 W x 600 s = 450 Wh -> 1800 W; headroom (625 - 450) Wh / 600 s
    assert (p["elapsed_s"], p["energy_wh"], p["avg_w"], p["forecast_w"], p["headroom_w"], p["level"]) == (
        300.0, 150.0, 600.0, 1800.0, 1050.0, "ok")
    assert headroom_w(2500.0, 450.0, 600.0) == 1050.0
    assert headroom_w(2500.0, 700.0, 0.0) == -270000.0  # remaining time taken as at least 1 s


def test_default_warns_before_minute_5_on_a_sustained_load() -> None:
    m = Meter("2026-01-15T09:30:00+01:00")
    rs = [m.reading(1200), *m.run(1800, 10, 3, 1080)]  # half an hour at ~1.1 kW
    rs += m.run(120, 10, 3, 1080) + m.run(600, 10, 25, 9000)  # a 9 kW load from 10:02
    _, res = feed(rs)
    (ts, _level) = next(x for x in _levels(res) if x[1] == "alarm")
    assert ts < "2026-01-15T10:05:00+01:00"
    q_baseline = feed(rs, settings=BASELINE)[1]
    assert next(x for x in _levels(q_baseline) if x[1] == "alarm")[0] == "2026-01-15T10:05:00+01:00"


def test_default_short_spike_early_in_the_quarter_does_not_alarm() -> None:
    m = Meter("2026-01-15T09:30:00+01:00")
    rs = [m.reading(500), *m.run(1800, 10, 1, 360)]  # half an hour at ~400 W
    rs += m.run(120, 10, 8, 2880)  # a 2.9 kW kettle for 2 min (a naive E + P x r would alarm)
    rs += m.run(780, 10, 1, 360)
    _, res = feed(rs)
    assert {r.peak["level"] for r in res if r.peak} <= {"ok", "warn"}
    assert all(q["warned_at"] is None for q in quarters(res))


def test_levels_have_hysteresis_and_a_hold_time() -> None:
    f = DefaultForecaster()
    p = ForecastParams(warn_fraction=0.9, hysteresis_fraction=0.05, hold_s=30.0)

    def at(t: float, forecast_w: float) -> str:  # elapsed 900: forecast == energy x 4 exactly
        return f.update(t, 900.0, forecast_w / 4, None, 2500.0, p).level

    assert at(0, 2000) == "ok"
    assert at(1, 2300) == "warn"  # > 90 %
    assert at(2, 2600) == "alarm"  # > 100 %
    assert at(3, 2450) == "alarm"  # below the threshold, above 95 %: stays
    assert at(4, 2300) == "alarm"  # below 95 %: the hold starts
    assert at(33, 2300) == "alarm"
    assert at(34, 2300) == "warn"  # 30 s below
    assert at(35, 2600) == "alarm"  # up at once
    assert at(36, 2000) == "alarm"
    assert at(50, 2450) == "alarm"  # back inside the band: the hold restarts
    assert at(60, 2000) == "alarm"
    assert at(90, 2000) == "ok"  # straight down past warn (below 85 %)


def test_default_level_does_not_flicker_on_a_noisy_load_near_the_threshold() -> None:
    m = Meter("2026-01-15T10:00:00+01:00")
    rs = [m.reading(2500)]
    for i in range(90):  # 2600 / 2400 W alternating every 10 s
        w = 2600 if i % 2 == 0 else 2400
        m.advance(10, round(w / 360))
        rs.append(m.reading(w))
    _, res = feed(rs)
    changes = _levels(res)
    assert len(changes) <= 3, changes
