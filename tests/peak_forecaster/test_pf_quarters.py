"""Quarter rules with exact numbers: energy, boundaries, gaps, DST, meter swap, clock jumps."""

from __future__ import annotations

from pf_support import Meter, brief, feed, quarters

from peak_forecaster.quarters import QuarterTracker, parse_ts, quarter_floor


def test_quarter_energy_and_average_from_t1_plus_t2() -> None:
    m = Meter("2026-01-15T10:00:00+01:00")
    rs = [m.reading(3600), *m.run(1800, 10, 10, 3600)]  # 1 Wh/s = 3600 W
    _, res = feed(rs)
    qs = quarters(res)
    assert brief(qs) == [
        ("2026-01-15T10:00:00+01:00", "2026-01-15T10:15:00+01:00", 900.0, True),
        ("2026-01-15T10:15:00+01:00", "2026-01-15T10:30:00+01:00", 900.0, True),
    ]
    assert [q["avg_w"] for q in qs] == [3600.0, 3600.0]
    assert qs[0]["threshold_w"] == 2500.0 and qs[0]["flags"] == []


def test_boundary_counter_is_interpolated_between_the_telegrams_around_it() -> None:
    m = Meter("2026-01-15T10:00:00+01:00")
    rs = [m.reading(), *m.run(890, 10, 20)]  # ... 10:14:50, +1780 Wh
    m.advance(20, 60)  # 10:15:10: 60 Wh in 20 s, 30 of them before the boundary
    rs.append(m.reading())
    rs += m.run(900, 10, 20)  # to 10:30:10
    _, res = feed(rs)
    qs = quarters(res)
    assert brief(qs) == [
        ("2026-01-15T10:00:00+01:00", "2026-01-15T10:15:00+01:00", 1810.0, True),
        ("2026-01-15T10:15:00+01:00", "2026-01-15T10:30:00+01:00", 1810.0, True),
    ]
    assert qs[0]["avg_w"] == 7240.0


def test_gap_across_boundaries_is_spread_linearly_and_loses_nothing() -> None:
    m = Meter("2026-01-15T10:00:00+01:00")
    rs = [m.reading(), *m.run(600, 10, 10)]  # 10:10:00, +600 Wh
    m.advance(1800, 3000)  # nothing until 10:40:00, 3000 Wh later
    rs.append(m.reading())
    eng, res = feed(rs)
    qs = quarters(res)
    assert brief(qs) == [
        ("2026-01-15T10:00:00+01:00", "2026-01-15T10:15:00+01:00", 1100.0, False),
        ("2026-01-15T10:15:00+01:00", "2026-01-15T10:30:00+01:00", 1500.0, False),
    ]
    assert qs[0]["flags"] == ["gap"]
    assert eng.tracker.energy_wh == 1000.0  # 10:30 -> 10:40 so far
    assert res[-1].peak is not None and res[-1].peak["complete"] is False
    assert sum(q["energy_wh"] for q in qs) + 1000.0 == 3600.0


def test_short_gaps_inside_a_quarter_keep_it_complete() -> None:
    m = Meter("2026-01-15T10:00:00+01:00")
    rs = [m.reading(), *m.run(900, 60, 60)]  # one telegram a minute: MAX_GAP_S is 60
    _, res = feed(rs)
    assert brief(quarters(res)) == [
        ("2026-01-15T10:00:00+01:00", "2026-01-15T10:15:00+01:00", 900.0, True)]


def test_first_reading_mid_quarter_gives_a_partial_quarter() -> None:
    m = Meter("2026-01-15T10:05:00+01:00")
    rs = [m.reading(), *m.run(600, 10, 10)]
    _, res = feed(rs)
    (q,) = quarters(res)
    assert (q["start"], q["energy_wh"], q["complete"], q["flags"]) == (
        "2026-01-15T10:00:00+01:00", 600.0, False, ["partial"])


def test_dst_spring_forward_last_sunday_of_march() -> None:
    m = Meter("2026-03-29T01:45:00+01:00")
    rs = [m.reading(), *m.run(1800, 10, 10)]
    assert rs[-1]["ts"] == "2026-03-29T03:15:00+02:00"
    _, res = feed(rs)
    assert brief(quarters(res)) == [
        ("2026-03-29T01:45:00+01:00", "2026-03-29T03:00:00+02:00", 900.0, True),
        ("2026-03-29T03:00:00+02:00", "2026-03-29T03:15:00+02:00", 900.0, True),
    ]


def test_dst_fall_back_repeated_hour_gives_two_distinct_sets_of_quarters() -> None:
    m = Meter("2026-10-25T02:00:00+02:00")
    rs = [m.reading(), *m.run(3600, 10, 10), *m.run(3600, 10, 20)]
    assert rs[360]["ts"] == "2026-10-25T02:00:00+01:00"
    eng, res = feed(rs)
    assert brief(quarters(res)) == [
        ("2026-10-25T02:00:00+02:00", "2026-10-25T02:15:00+02:00", 900.0, True),
        ("2026-10-25T02:15:00+02:00", "2026-10-25T02:30:00+02:00", 900.0, True),
        ("2026-10-25T02:30:00+02:00", "2026-10-25T02:45:00+02:00", 900.0, True),
        ("2026-10-25T02:45:00+02:00", "2026-10-25T02:00:00+01:00", 900.0, True),
        ("2026-10-25T02:00:00+01:00", "2026-10-25T02:15:00+01:00", 1800.0, True),
        ("2026-10-25T02:15:00+01:00", "2026-10-25T02:30:00+01:00", 1800.0, True),
        ("2026-10-25T02:30:00+01:00", "2026-10-25T02:45:00+01:00", 1800.0, True),
        ("2026-10-25T02:45:00+01:00", "2026-10-25T03:00:00+01:00", 1800.0, True),
    ]
    assert eng.month.our_peak_w == 7200.0
    assert eng.month.our_peak_start == "2026-10-25T02:00:00+01:00"


def test_counter_going_down_restarts_the_baseline_without_negative_energy() -> None:
    m = Meter("2026-01-15T10:00:00+01:00")
    rs = [m.reading(), *m.run(290, 10, 10)]  # 10:04:50
    m.advance(10, 0)
    m.wh = 500  # a new meter at 0.5 kWh
    rs.append(m.reading())
    rs += m.run(600, 10, 10) + m.run(900, 10, 10)  # 10:15:00, 10:30:00
    _, res = feed(rs)
    qs = quarters(res)
    assert brief(qs) == [
        ("2026-01-15T10:00:00+01:00", "2026-01-15T10:15:00+01:00", 890.0, False),
        ("2026-01-15T10:15:00+01:00", "2026-01-15T10:30:00+01:00", 900.0, True),
    ]
    assert qs[0]["flags"] == ["meter_replaced"]
    events = [e for r in res for e in r.events]
    assert len(events) == 1 and "1000.290 -> 0.500 kWh" in events[0]


def test_new_meter_id_is_a_replacement_even_when_the_counter_goes_up() -> None:
    m = Meter("2026-01-15T10:00:00+01:00")
    rs = [m.reading(meter_id="A"), *m.run(300, 10, 10, meter_id="A")]
    m.advance(10, 0)
    m.wh = 5_000_000  # the new meter's counter is higher
    rs.append(m.reading(meter_id="B"))
    rs += m.run(590, 10, 10, meter_id="B")
    _, res = feed(rs)
    (q,) = quarters(res)
    assert (q["energy_wh"], q["flags"]) == (890.0, ["meter_replaced"])


def test_meter_clock_small_step_back_is_clamped_and_energy_kept() -> None:
    m = Meter("2026-01-15T10:00:00+01:00")
    rs = [m.reading(), *m.run(420, 10, 10)]  # 10:07:00
    m.advance(-30, 10)  # the meter clock goes back 30 s: 10:06:30
    rs.append(m.reading())
    rs += m.run(510, 10, 10)  # to 10:15:00 on the meter clock
    _, res = feed(rs)
    (q,) = quarters(res)
    assert (q["start"], q["end"], q["energy_wh"], q["complete"], q["flags"]) == (
        "2026-01-15T10:00:00+01:00", "2026-01-15T10:15:00+01:00", 940.0, True, ["clock_jump"])


def test_meter_clock_big_step_back_re_anchors() -> None:
    m = Meter("2026-01-15T10:00:00+01:00")
    rs = [m.reading(), *m.run(420, 10, 10)]  # 10:07:00
    m.advance(-3590, 10)  # 09:07:10
    rs.append(m.reading())
    rs += m.run(470, 10, 10)  # 09:15:00
    _, res = feed(rs)
    qs = quarters(res)
    assert brief(qs) == [
        ("2026-01-15T10:00:00+01:00", "2026-01-15T10:07:00+01:00", 420.0, False),
        ("2026-01-15T09:00:00+01:00", "2026-01-15T09:15:00+01:00", 480.0, False),
    ]
    assert all("clock_jump" in q["flags"] for q in qs)


def test_meter_clock_jump_forward_is_a_gap() -> None:
    m = Meter("2026-01-15T10:00:00+01:00")
    rs = [m.reading(), *m.run(600, 10, 10)]  # 10:10:00
    m.advance(1210, 10)  # the clock jumps 20 min: next telegram says 10:30:10
    rs.append(m.reading())
    _, res = feed(rs)
    assert brief(quarters(res)) == [
        ("2026-01-15T10:00:00+01:00", "2026-01-15T10:15:00+01:00", 602.479, False),
        ("2026-01-15T10:15:00+01:00", "2026-01-15T10:30:00+01:00", 7.438, False),
    ]


def test_repeated_and_old_readings_are_ignored() -> None:
    m = Meter("2026-01-15T10:00:00+01:00")
    rs = [m.reading(), *m.run(100, 10, 10)]
    eng, res = feed(rs + rs[:5] + [rs[-1]])
    assert all(r.peak is None for r in res[len(rs):])
    assert eng.tracker.energy_wh == 100.0


def test_quarter_floor_on_a_half_hour_offset_clock() -> None:
    t, off = parse_ts("2026-01-15T10:20:00+05:30")
    assert quarter_floor(t, off) == parse_ts("2026-01-15T10:15:00+05:30")[0]
    tr = QuarterTracker()
    tr.update(t, off, 0.0)
    assert tr.q_end - tr.q_start == 900
