"""The meter's rules, exactly: tariffs, counters, quarter objects across quarters, months, DST."""

from __future__ import annotations

from msim_support import fields, run_to, scripted

from meter_sim.clock import LocalClock, parse_local
from meter_sim.meter import Meter, MeterConfig


def tariff_at(local: str) -> int:
    t = parse_local(local)
    return Meter(MeterConfig(), t).tariff_at(t)


def test_belgian_tariff_hours_and_weekend() -> None:
    # 2026-01-15 is a Thursday
    assert tariff_at("2026-01-15T06:59:59") == 2
    assert tariff_at("2026-01-15T07:00:00") == 1
    assert tariff_at("2026-01-15T21:59:59") == 1
    assert tariff_at("2026-01-15T22:00:00") == 2
    assert tariff_at("2026-01-16T21:59:59") == 1  # Friday evening
    assert tariff_at("2026-01-16T22:00:00") == 2
    assert tariff_at("2026-01-17T12:00:00") == 2  # Saturday noon
    assert tariff_at("2026-01-18T23:59:59") == 2  # Sunday
    assert tariff_at("2026-01-19T06:59:59") == 2  # Monday morning
    assert tariff_at("2026-01-19T07:00:00") == 1


def test_counters_switch_tariff_at_22h_in_the_telegram() -> None:
    sim = scripted([{"at": "21:00", "load": {"id": "heater", "w": 1000, "phase": 1}},
                    {"at": "23:00", "load": {"id": "heater", "w": 0}}],
                   start="2026-01-15T20:00")
    tg = run_to(sim, "260115215959W")
    assert fields(tg)["0-0:96.14.0"] == ["0001"]
    tg = run_to(sim, "260115220000W")
    f = fields(tg)
    assert f["0-0:96.14.0"] == ["0002"]
    assert f["1-0:1.8.1"] == ["000001.000*kWh"]
    assert f["1-0:1.8.2"] == ["000000.000*kWh"]
    f = fields(run_to(sim, "260115233000W"))
    assert f["1-0:1.8.1"] == ["000001.000*kWh"]
    assert f["1-0:1.8.2"] == ["000001.000*kWh"]
    assert f["1-0:1.7.0"] == ["00.000*kW"]


def test_quarter_average_and_month_max_on_scripted_steps() -> None:
    sim = scripted([{"at": "12:00", "load": {"id": "oven", "w": 2000, "phase": 1}},
                    {"at": "12:05", "load": {"id": "oven", "w": 0}},
                    {"at": "12:15", "load": {"id": "hob", "w": 3000, "phase": 3}},
                    {"at": "12:30", "load": {"id": "hob", "w": 0}},
                    {"at": "12:45", "load": {"id": "kettle", "w": 1200, "phase": 2}}],
                   start="2026-01-15T11:45")
    f = fields(run_to(sim, "260115120000W"))
    assert f["1-0:1.4.0"] == ["00.000*kW"]
    assert f["1-0:1.6.0"] == ["260101000000W", "00.000*kW"]  # no quarter with import yet
    f = fields(run_to(sim, "260115120500W"))
    assert f["1-0:1.4.0"] == ["02.000*kW"]
    assert f["1-0:21.7.0"] == ["02.000*kW"]  # the power of the second that just ended
    assert fields(run_to(sim, "260115120501W"))["1-0:21.7.0"] == ["00.000*kW"]
    f = fields(run_to(sim, "260115121000W"))
    assert f["1-0:1.4.0"] == ["01.000*kW"]  # 2000 W x 300 s / 600 s
    f = fields(run_to(sim, "260115121500W"))
    assert f["1-0:1.6.0"] == ["260115121500W", "00.667*kW"]  # 2000 x 300 / 900
    assert f["1-0:1.4.0"] == ["00.000*kW"]
    f = fields(run_to(sim, "260115122959W"))
    assert f["1-0:1.4.0"] == ["03.000*kW"]
    assert f["1-0:1.6.0"] == ["260115121500W", "00.667*kW"]
    f = fields(run_to(sim, "260115123000W"))
    assert f["1-0:1.6.0"] == ["260115123000W", "03.000*kW"]
    f = fields(run_to(sim, "260115130000W"))  # a lower quarter does not replace the maximum
    assert f["1-0:1.6.0"] == ["260115123000W", "03.000*kW"]
    assert sim.meter.last_quarter_w == 1200.0


def test_peak_timestamp_can_be_the_quarter_start() -> None:
    sim = scripted([{"at": "12:00", "load": {"id": "a", "w": 2000}}], start="2026-01-15T12:00",
                   peak_ts="start")
    f = fields(run_to(sim, "260115121500W"))
    assert f["1-0:1.6.0"] == ["260115120000W", "02.000*kW"]


def test_month_rollover_stores_history_and_resets_max() -> None:
    history = [{"month_start": f"2025-{m:02d}-01T00:00", "max_ts": f"2025-{m - 1:02d}-10T18:15",
                "kw": 3 + m / 10} for m in range(2, 13)]
    history.append({"month_start": "2026-01-01T00:00", "max_ts": "2025-12-20T19:00", "kw": 4.5})
    history.insert(0, {"month_start": "2025-01-01T00:00", "max_ts": None, "kw": 0})
    sim = scripted([{"after": 0, "load": {"id": "heat", "w": 4000, "phase": 0}}],
                   start="2026-01-31T23:30", history=history)
    f = fields(run_to(sim, "260131234500W"))
    assert f["1-0:1.6.0"] == ["260131234500W", "04.000*kW"]
    hist = f["0-0:98.1.0"]
    assert hist[:3] == ["13", "1-0:1.6.0", "1-0:1.6.0"]
    assert hist[3:6] == ["250101000000W", "632525252525W", "00.000*kW"]
    f = fields(run_to(sim, "260201000000W"))
    assert f["1-0:1.6.0"] == ["260201000000W", "00.000*kW"]
    hist = f["0-0:98.1.0"]
    assert hist[0] == "13"  # at most 13 months: the oldest went
    assert hist[3:6] == ["250201000000W", "250110181500W", "03.200*kW"]
    # an equal quarter (00:00) does not replace the first maximum (23:45)
    assert hist[-3:] == ["260201000000W", "260131234500W", "04.000*kW"]
    f = fields(run_to(sim, "260201001500W"))
    assert f["1-0:1.6.0"] == ["260201001500W", "04.000*kW"]


def test_spring_dst_quarters_and_flags() -> None:
    # 2026-03-29: 02:00 W becomes 03:00 S
    sim = scripted([{"after": 0, "load": {"id": "a", "w": 1000}},
                    {"at": "2026-03-29T03:00", "load": {"id": "a", "w": 2000}}],
                   start="2026-03-29T01:45")
    assert fields(run_to(sim, "260329015959W"))["1-0:1.6.0"][1] == "00.000*kW"
    f = fields(run_to(sim, "260329030000S"))  # the very next second
    assert f["1-0:1.6.0"] == ["260329030000S", "01.000*kW"]
    f = fields(run_to(sim, "260329031500S"))
    assert f["1-0:1.6.0"] == ["260329031500S", "02.000*kW"]


def test_autumn_dst_repeated_hour_keeps_quarters_apart() -> None:
    # 2026-10-25: 03:00 S becomes 02:00 W; 02:00-02:15 happens twice
    sim = scripted([{"at": "2026-10-25T02:00+02:00", "load": {"id": "a", "w": 1000}},
                    {"at": "2026-10-25T02:15+02:00", "load": {"id": "a", "w": 0}},
                    {"at": "2026-10-25T02:00+01:00", "load": {"id": "a", "w": 2000}},
                    {"at": "2026-10-25T02:15+01:00", "load": {"id": "a", "w": 0}}],
                   start="2026-10-25T01:45+02:00")
    f = fields(run_to(sim, "261025021500S"))
    assert f["1-0:1.6.0"] == ["261025021500S", "01.000*kW"]
    f = fields(run_to(sim, "261025020500W"))
    assert f["1-0:1.4.0"] == ["02.000*kW"]  # a new quarter, not merged with 02:00-02:15 S
    f = fields(run_to(sim, "261025021500W"))
    assert f["1-0:1.6.0"] == ["261025021500W", "02.000*kW"]
    assert f["1-0:1.8.2"] == ["000000.750*kWh"]  # Sunday: tariff 2; 250 + 500 Wh


def test_export_goes_to_export_counters_and_phases_net() -> None:
    sim = scripted([{"after": 0, "load": {"id": "a", "w": 500, "phase": 1}},
                    {"after": 0, "pv_w": 3000}], start="2026-06-15T12:00")
    f = fields(run_to(sim, "260615130000S"))
    assert f["1-0:2.7.0"] == ["02.500*kW"]
    assert f["1-0:1.7.0"] == ["00.000*kW"]
    assert f["1-0:22.7.0"] == ["00.500*kW"]  # 500 - 1000 on L1
    assert f["1-0:42.7.0"] == ["01.000*kW"]
    assert f["1-0:2.8.1"] == ["000002.500*kWh"]
    assert f["1-0:1.4.0"] == ["00.000*kW"]


def test_clock_writes_flags_and_quarters_align() -> None:
    c = LocalClock()
    assert c.dsmr(parse_local("2026-07-01T12:34:56")) == "260701123456S"
    assert c.dsmr(parse_local("2026-12-31T23:59:59")) == "261231235959W"
    assert parse_local("2026-07-01T12:15") % 900 == 0
