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
    # confirm_fraction 1.0: every alarm bound after minute 10 is the threshold itself
    p = ForecastParams(warn_fraction=0.9, hysteresis_fraction=0.05, hold_s=30.0, confirm_fraction=1.0)

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


def test_alarm_bound_depends_on_the_time_in_the_quarter() -> None:
    p = ForecastParams()
    assert [p.alarm_fraction(e) for e in (0.0, 599.0, 600.0, 660.0, 661.0, 900.0)] == [
        1.4, 1.4, 0.95, 0.95, 1.0, 1.0]
    assert p.stay_fraction == 0.95

    def level(elapsed_s: float, forecast_w: float) -> str:
        # no power known: the forecast is the energy so far x 4, exactly
        return DefaultForecaster().update(0.0, elapsed_s, forecast_w / 4, None, 2500.0, p).level

    assert [level(300.0, w) for w in (2200, 2300, 3400, 3550)] == ["ok", "warn", "warn", "alarm"]
    assert [level(590.0, 2400), level(600.0, 2400), level(660.0, 2400), level(670.0, 2400)] == [
        "warn", "alarm", "alarm", "warn"]
    assert level(670.0, 2510) == "alarm"


def test_alarm_raised_in_the_confirmation_window_is_not_withdrawn_after_it() -> None:
    f = DefaultForecaster()
    p = ForecastParams()

    def at(t: float, elapsed_s: float, forecast_w: float) -> str:
        return f.update(t, elapsed_s, forecast_w / 4, None, 2500.0, p).level

    assert at(0, 600.0, 2400) == "alarm"  # 96 % in the window
    assert at(100, 700.0, 2300) == "alarm"  # 92 %: above 95 % - 5 %, kept
    assert at(200, 800.0, 2300) == "alarm"
    assert at(210, 810.0, 2200) == "alarm"  # 88 %: the hold starts
    assert at(240, 840.0, 2200) == "warn"  # 30 s below 90 %
    assert f.alarmed


def test_default_confirms_at_minute_10_where_the_original_stays_silent() -> None:
    m = Meter("2026-01-15T09:00:00+01:00")
    rs = [m.reading(2400), *m.run(3600, 30, 20, 2400)]  # an hour at 2400 W: 20 Wh per 30 s
    rs += m.run(720, 30, 20, 2400) + m.run(180, 30, 25, 3000)  # 10:12: +600 W for 3 min
    _, res = feed(rs)
    p = next(r.peak for r in res if r.peak and r.peak["ts"] == "2026-01-15T10:10:00+01:00")
    # 400 Wh + 2400 W x 300 s = 600 Wh: 2400 W = 96 % of 2500 W, in the window from minute 10
    assert (p["forecast_w"], p["headroom_w"], p["level"]) == (2400.0, 300.0, "alarm")
    q = quarters(res)[-1]
    assert (q["start"], q["avg_w"], q["warned_at_default"], q["warned_at_baseline"]) == (
        "2026-01-15T10:00:00+01:00", 2520.0, "2026-01-15T10:10:00+01:00", None)


def test_default_ignores_an_early_burst_that_fooled_the_original() -> None:
    m = Meter("2026-01-15T09:30:00+01:00")
    rs = [m.reading(1500), *m.run(1800, 30, 12, 1440)]  # half an hour at 1440 W
    rs += m.run(300, 30, 25, 3000) + m.run(600, 30, 12, 1440)  # 3 kW for the first 5 minutes
    _, res = feed(rs)
    q = quarters(res)[-1]
    # minute 5: 250 Wh x 3 = 750 Wh = 3000 W > 2500 W for the original; the quarter ends at 1960 W
    assert (q["start"], q["avg_w"], q["warned_at_default"], q["warned_at_baseline"]) == (
        "2026-01-15T10:00:00+01:00", 1960.0, None, "2026-01-15T10:05:00+01:00")
    assert {r.peak["level"] for r in res[-30:] if r.peak} <= {"ok", "warn"}
