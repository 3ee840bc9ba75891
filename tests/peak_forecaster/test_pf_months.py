"""Month peak, 2.5 kW floor, rollover, billed average, cost, meter values winning."""

from __future__ import annotations

from pf_support import Meter, feed, months, quarters

from peak_forecaster.engine import PeakSettings
from peak_forecaster.months import MonthState


def test_floor_of_2500_w_when_no_quarter_reaches_it() -> None:
    m = Meter("2026-01-15T10:00:00+01:00")
    rs = [m.reading(), *m.run(900, 10, 5), *m.run(900, 10, 2)]  # 1800 W, then 720 W
    _, res = feed(rs)
    last = months(res)[-1]
    assert (last["peak_w"], last["our_peak_w"], last["peak_start"], last["source"]) == (
        2500.0, 1800.0, None, "ours")
    assert last["billed_w"] == 2500.0 and last["cost_eur_year"] == 132.5


def test_month_and_year_rollover() -> None:
    m = Meter("2026-12-31T23:30:00+01:00")
    rs = [m.reading(), *m.run(900, 10, 10), *m.run(900, 10, 40), *m.run(1800, 10, 10)]
    _, res = feed(rs, settings=PeakSettings(price_eur_per_kw_year=53.0))
    assert [(q["start"], q["avg_w"]) for q in quarters(res)] == [
        ("2026-12-31T23:30:00+01:00", 3600.0),
        ("2026-12-31T23:45:00+01:00", 14400.0),
        ("2027-01-01T00:00:00+01:00", 3600.0),
        ("2027-01-01T00:15:00+01:00", 3600.0),
    ]
    recs = months(res)
    assert [(r["month"], r["peak_w"], r["peak_start"]) for r in recs] == [
        ("2026-12", 2500.0, None),
        ("2026-12", 3600.0, "2026-12-31T23:30:00+01:00"),
        ("2026-12", 14400.0, "2026-12-31T23:45:00+01:00"),  # the month's final record
        ("2027-01", 2500.0, None),
        ("2027-01", 3600.0, "2027-01-01T00:00:00+01:00"),
    ]
    jan = recs[-1]
    assert jan["history"] == [{"month": "2026-12", "peak_w": 14400.0},
                              {"month": "2027-01", "peak_w": 3600.0}]
    assert jan["billed_w"] == 9000.0
    assert jan["cost_eur_year"] == 477.0


def test_threshold_follows_the_month_peak_dynamic_threshold() -> None:
    m = Meter("2026-01-15T10:00:00+01:00")
    rs = [m.reading(), *m.run(900, 10, 10), *m.run(10, 10, 10)]
    eng, res = feed(rs, settings=PeakSettings(manual_threshold_w=3000.0))
    assert res[0].peak is not None and res[0].peak["threshold_w"] == 3000.0
    assert res[-1].peak is not None and res[-1].peak["threshold_w"] == 3600.0
    assert eng.threshold_w == 3600.0


HISTORY = [{"month": "2025-01", "ts": "2025-01-20T18:00:00+01:00", "peak_w": 9000.0}] + [
    {"month": f"2025-{i:02d}", "ts": f"2025-{i:02d}-10T18:00:00+01:00",
     "peak_w": 2000.0 if i == 6 else 3000.0}
    for i in range(2, 13)
]


def test_history_from_98_1_0_billed_average_and_cost() -> None:
    m = Meter("2026-01-15T10:00:00+01:00")
    m.extra = {"month_max_history": HISTORY}
    rs = [m.reading(), *m.run(900, 10, 10)]
    _, res = feed(rs)
    rec = months(res)[-1]
    assert len(rec["history"]) == 12
    assert rec["history"][0] == {"month": "2025-02", "peak_w": 3000.0}  # 2025-01 is out of the window
    assert {"month": "2025-06", "peak_w": 2500.0} in rec["history"]  # floored
    assert rec["history"][-1] == {"month": "2026-01", "peak_w": 3600.0}
    # (10 x 3000 + 2500 + 3600) / 12
    assert rec["billed_w"] == 3008.3
    assert rec["cost_eur_year"] == 159.44


def test_meter_month_max_wins_and_the_difference_is_published() -> None:
    m = Meter("2026-01-15T10:00:00+01:00")
    m.extra = {"month_max_w": 4100.0, "month_max_ts": "2026-01-10T18:15:00+01:00",
               "avg_demand_w": 3500.0}
    rs = [m.reading(), *m.run(900, 10, 10), *m.run(10, 10, 10)]
    _, res = feed(rs)
    rec = months(res)[-1]
    assert (rec["peak_w"], rec["our_peak_w"], rec["meter_peak_w"], rec["meter_diff_w"],
            rec["source"], rec["peak_start"]) == (
        4100.0, 3600.0, 4100.0, -500.0, "meter", "2026-01-10T18:15:00+01:00")
    peak = res[-1].peak
    assert peak is not None
    assert peak["threshold_w"] == 4100.0 and peak["month_peak_w"] == 4100.0
    assert peak["meter_avg_demand_w"] == 3500.0
    assert quarters(res)[0]["meter_avg_w"] == 3500.0


def test_meter_month_max_of_last_month_is_ignored_after_the_rollover() -> None:
    m = Meter("2026-02-01T00:00:00+01:00")
    m.extra = {"month_max_w": 6000.0, "month_max_ts": "2026-01-20T18:15:00+01:00"}
    _, res = feed([m.reading(), *m.run(60, 10, 1)])
    rec = months(res)[-1]
    assert (rec["month"], rec["peak_w"], rec["meter_peak_w"]) == ("2026-02", 2500.0, None)


def test_meter_history_overrides_our_closed_month() -> None:
    st = MonthState()
    st.enter("2026-01")
    st.add_quarter(14400.0, "2026-01-31T23:45:00+01:00")
    st.enter("2026-02")
    assert st.window()[0] == {"month": "2026-01", "peak_w": 14400.0}
    st.meter_history([{"month": "2026-01", "peak_w": 14000.0}])
    assert st.window() == [{"month": "2026-01", "peak_w": 14000.0},
                           {"month": "2026-02", "peak_w": 2500.0}]
    assert st.history["2026-01"]["ours_w"] == 14400.0


def test_month_state_round_trips() -> None:
    st = MonthState()
    st.enter("2026-01")
    st.add_quarter(3000.0, "2026-01-02T10:00:00+01:00")
    st.meter_history(HISTORY)
    again = MonthState.from_dict(st.to_dict())
    assert again.record("home", 53.0) == st.record("home", 53.0)
