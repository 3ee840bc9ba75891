"""The mapping table: contract payloads -> exact line-protocol lines."""

from __future__ import annotations

import pytest

from p1common.payloads import MonthRecord, OutputState, Peak, QuarterRecord, Reading
from p1common.topics import Topics
from recorder.mapping import MEASUREMENTS, Mapper, MappingError, Point, parse_ts_ns

T = Topics("p1")

READING = {
    "v": 1, "site": "home", "source": "p1", "ts": "2026-01-15T13:45:01+01:00",
    "meter_id": "E0043007", "tariff": 1,
    "import_t1_kwh": 1234.567, "import_t2_kwh": 2000, "export_t1_kwh": 10.5, "export_t2_kwh": 0,
    "import_kwh": 3234.567, "export_kwh": 10.5,
    "import_w": 1523, "export_w": 0, "net_w": 1523.0,
    "l1_import_w": 500.5, "l1_voltage_v": 231.2, "l1_current_a": 2.0,
    "gas_m3": 4567.891, "gas_ts": "2026-01-15T13:00:00+01:00",
    "message": "hello", "breaker": 1,
}


def lines(topic: str, payload: dict, mapper: Mapper | None = None) -> list[str]:
    parsed = T.parse(topic)
    assert parsed is not None
    return [p.line() for p in (mapper or Mapper()).points(parsed, payload)]


def test_reading_fields_units_and_meter_time() -> None:
    Reading.model_validate(READING)
    ns = 1768481101 * 10**9  # 2026-01-15T12:45:01Z
    assert lines(T.reading("home"), READING) == [
        "reading,site=home tariff=1,import_t1_kwh=1234.567,import_t2_kwh=2000,export_t1_kwh=10.5,"
        "export_t2_kwh=0,import_kwh=3234.567,export_kwh=10.5,import_w=1523,export_w=0,net_w=1523,"
        f"l1_import_w=500.5,l1_voltage_v=231.2,l1_current_a=2,breaker=1 {ns}",
        f"gas,site=home gas_m3=4567.891 {1768478400 * 10**9}",
    ]


def test_every_numeric_contract_field_is_recorded() -> None:
    r = {"v": 1, "site": "home", "source": "p1", "ts": "2026-01-15T13:45:01+01:00",
         "frequency_hz": 50.01, "l1_power_factor": 0.98, "limiter_a": 25}
    Reading.model_validate(r)
    assert lines(T.reading("home"), r) == [
        f"reading,site=home frequency_hz=50.01,l1_power_factor=0.98,limiter_a=25 {1768481101 * 10**9}"
    ]


def test_gas_recorded_once_per_meter_timestamp() -> None:
    mapper = Mapper()
    first = lines(T.reading("home"), READING, mapper)
    again = lines(T.reading("home"), {**READING, "ts": "2026-01-15T13:45:02+01:00"}, mapper)
    later = lines(T.reading("home"), {**READING, "ts": "2026-01-15T14:00:02+01:00",
                                      "gas_m3": 4568.0, "gas_ts": "2026-01-15T14:00:00+01:00"},
                  mapper)
    assert [line.split(",")[0] for line in first] == ["reading", "gas"]
    assert [line.split(",")[0] for line in again] == ["reading"]
    assert later[1] == f"gas,site=home gas_m3=4568 {1768482000 * 10**9}"
    # another site has its own memory
    other = lines(T.reading("other"), READING, mapper)
    assert other[1].startswith("gas,site=other ")


def test_peak_with_level_code() -> None:
    payload = {"v": 1, "site": "home", "ts": "2026-01-15T13:50:00+01:00",
               "quarter_start": "2026-01-15T13:45:00+01:00", "energy_wh": 300.25, "avg_w": 3603,
               "forecast_w": 3900.5, "threshold_w": 3500, "headroom_w": -400.5, "level": "warn",
               "month_peak_w": 3500}
    Peak.model_validate(payload)
    assert lines(T.peak("home"), payload) == [
        "peak,site=home energy_wh=300.25,avg_w=3603,forecast_w=3900.5,threshold_w=3500,"
        f"headroom_w=-400.5,month_peak_w=3500,level_code=1 {1768481400 * 10**9}"
    ]


def test_quarter_at_its_start() -> None:
    payload = {"v": 1, "site": "home", "start": "2026-01-15T13:45:00+01:00",
               "end": "2026-01-15T14:00:00+01:00", "energy_wh": 812.5, "avg_w": 3250,
               "meter_avg_w": 3249, "complete": True, "threshold_w": 3500,
               "warned_at": "2026-01-15T13:50:00+01:00"}
    QuarterRecord.model_validate(payload)
    assert lines(T.peak_quarter("home"), payload) == [
        "quarter,site=home energy_wh=812.5,avg_w=3250,meter_avg_w=3249,threshold_w=3500,"
        f"complete=1,warned=1 {1768481100 * 10**9}"
    ]
    not_warned = lines(T.peak_quarter("home"), {**payload, "warned_at": None, "complete": False})
    assert not_warned[0].endswith(f"complete=0,warned=0 {1768481100 * 10**9}")


def test_month_and_history_at_month_start_utc() -> None:
    payload = {"v": 1, "site": "home", "month": "2026-01", "peak_w": 4100.5,
               "peak_start": "2026-01-10T18:00:00+01:00",
               "history": [{"month": "2025-12", "peak_w": 3800}, {"month": "2026-01", "peak_w": 4100.5}],
               "billed_w": 3950.25, "cost_eur_year": 209.36}
    MonthRecord.model_validate(payload)
    assert lines(T.peak_month("home"), payload) == [
        f"month,site=home peak_w=3800 {1764547200 * 10**9}",
        f"month,site=home peak_w=4100.5,billed_w=3950.25,cost_eur_year=209.36 {1767225600 * 10**9}",
    ]


def test_output_state_and_control() -> None:
    state = {"v": 1, "ts": "2026-01-15T13:45:01+01:00", "pct": 41.5, "override": False, "seq": 17}
    OutputState.model_validate(state)
    assert lines(T.output_state("home", "boiler"), state) == [
        f"output,output=boiler,site=home pct=41.5,override=0,seq=17 {1768481101 * 10**9}"
    ]
    control = {"v": 1, "site": "home", "ts": "2026-01-15T13:45:01+01:00", "outputs": [
        {"id": "boiler", "mode": "proportional", "pct": 41.5, "on": True, "reason": "surplus"},
        {"id": "pump", "mode": "off"},
    ]}
    assert lines(T.control("home"), control) == [
        f"control,output=boiler,site=home on=1,pct=41.5 {1768481101 * 10**9}"
    ]


def test_bad_payloads_raise_mapping_error() -> None:
    with pytest.raises(MappingError, match="ts"):
        lines(T.reading("home"), {"import_w": 5})
    with pytest.raises(MappingError, match="no UTC offset"):
        lines(T.reading("home"), {"import_w": 5, "ts": "2026-01-15T13:45:01"})
    with pytest.raises(MappingError, match="month"):
        lines(T.peak_month("home"), {"month": "2026-13", "peak_w": 1})


def test_topics_not_recorded() -> None:
    assert lines(T.live("home"), {"ts": 1, "imp": 5, "exp": 0}) == []
    assert lines(T.output_set("home", "boiler"), {"ts": "2026-01-15T13:45:01+01:00", "on": True}) == []


def test_escaping_and_float_format() -> None:
    p = Point("m", (("site", "a b,c=d"),), (("x", 1e21), ("y", -0.0), ("z", 0.1)), 5)
    assert p.line() == "m,site=a\\ b\\,c\\=d x=1e+21,y=-0,z=0.1 5"
    assert parse_ts_ns("2026-01-15T13:45:01.250+01:00", "ts") == 1768481101_250_000_000


def test_measurements_table_lists_every_written_field() -> None:
    assert set(MEASUREMENTS) == {"reading", "gas", "water", "heat", "peak", "quarter", "month",
                                 "output"}
    assert "import_w" in MEASUREMENTS["reading"] and "l3_voltage_v" in MEASUREMENTS["reading"]
