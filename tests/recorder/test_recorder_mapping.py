"""The mapping table: contract payloads -> exact line-protocol lines."""

from __future__ import annotations

import pytest

from p1common.payloads import MonthRecord, OutputState, Peak, QuarterRecord, Reading
from p1common.topics import Topics
from recorder.mapping import MEASUREMENTS, Mapper, MappingError, Point, parse_ts_s

T = Topics("p1")

READING = {
    "v": 1, "site": "home", "source": "p1", "ts": "2026-01-15T13:45:01+01:00",
    "meter_id": "E0043007", "tariff": 1, "tariff_low": True,
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
    s = 1768481101  # 2026-01-15T12:45:01Z, in seconds (written with precision s)
    assert lines(T.reading("home"), READING) == [
        "reading,site=home tariff=1,tariff_low=1,import_t1_kwh=1234.567,import_t2_kwh=2000,"
        "export_t1_kwh=10.5,export_t2_kwh=0,import_kwh=3234.567,export_kwh=10.5,import_w=1523,"
        f"export_w=0,net_w=1523,l1_import_w=500.5,l1_voltage_v=231.2,l1_current_a=2,breaker=1 {s}",
        "gas,site=home gas_m3=4567.891 1768478400",
    ]
    # tariff_low is a bool in the payload and a float 0/1 in InfluxDB (Flux can average it)
    normal = lines(T.reading("home"), {**READING, "tariff": 2, "tariff_low": False}, Mapper())
    assert normal[0].startswith("reading,site=home tariff=2,tariff_low=0,import_t1_kwh=1234.567,")


def test_every_numeric_contract_field_is_recorded() -> None:
    r = {"v": 1, "site": "home", "source": "p1", "ts": "2026-01-15T13:45:01+01:00",
         "frequency_hz": 50.01, "l1_power_factor": 0.98, "limiter_a": 25}
    Reading.model_validate(r)
    assert lines(T.reading("home"), r) == [
        "reading,site=home frequency_hz=50.01,l1_power_factor=0.98,limiter_a=25 1768481101"
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
    assert later[1] == "gas,site=home gas_m3=4568 1768482000"
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
        "headroom_w=-400.5,month_peak_w=3500,level_code=1 1768481400"
    ]


def test_quarter_at_its_start() -> None:
    payload = {"v": 1, "site": "home", "start": "2026-01-15T13:45:00+01:00",
               "end": "2026-01-15T14:00:00+01:00", "energy_wh": 812.5, "avg_w": 3250,
               "meter_avg_w": 3249, "complete": True, "threshold_w": 3500,
               "warned_at": "2026-01-15T13:50:00+01:00"}
    QuarterRecord.model_validate(payload)
    assert lines(T.peak_quarter("home"), payload) == [
        "quarter,site=home energy_wh=812.5,avg_w=3250,meter_avg_w=3249,threshold_w=3500,"
        "complete=1,warned=1 1768481100"
    ]
    not_warned = lines(T.peak_quarter("home"), {**payload, "warned_at": None, "complete": False})
    assert not_warned[0].endswith("complete=0,warned=0 1768481100")


def test_month_and_history_at_month_start_utc() -> None:
    payload = {"v": 1, "site": "home", "month": "2026-01", "peak_w": 4100.5,
               "peak_start": "2026-01-10T18:00:00+01:00",
               "history": [{"month": "2025-12", "peak_w": 3800}, {"month": "2026-01", "peak_w": 4100.5}],
               "billed_w": 3950.25, "cost_eur_year": 209.36}
    MonthRecord.model_validate(payload)
    assert lines(T.peak_month("home"), payload) == [
        "month,site=home peak_w=3800 1764547200",  # 2025-12-01T00:00:00Z
        "month,site=home peak_w=4100.5,billed_w=3950.25,cost_eur_year=209.36 1767225600",
    ]


def test_output_state_and_control() -> None:
    state = {"v": 1, "ts": "2026-01-15T13:45:01+01:00", "pct": 41.5, "override": False, "seq": 17}
    OutputState.model_validate(state)
    assert lines(T.output_state("home", "boiler"), state) == [
        "output,output=boiler,site=home pct=41.5,override=0,seq=17 1768481101"
    ]
    control = {"v": 1, "site": "home", "ts": "2026-01-15T13:45:01+01:00", "outputs": [
        {"id": "boiler", "mode": "proportional", "pct": 41.5, "on": True, "reason": "surplus"},
        {"id": "pump", "mode": "off"},
    ]}
    assert lines(T.control("home"), control) == [
        "control,output=boiler,site=home on=1,pct=41.5 1768481101"
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
    assert parse_ts_s("2026-01-15T13:45:01.250+01:00", "ts") == 1768481101  # fraction dropped
    assert parse_ts_s("2026-01-15T13:45:01.999+01:00", "ts") == 1768481101


def test_measurements_table_lists_every_written_field() -> None:
    assert set(MEASUREMENTS) == {"reading", "gas", "water", "heat", "peak", "quarter", "month",
                                 "output"}
    assert "import_w" in MEASUREMENTS["reading"] and "l3_voltage_v" in MEASUREMENTS["reading"]
    assert "tariff_low" in MEASUREMENTS["reading"]


def peak_at(second: int, level: str = "ok", quarter: str = "2026-01-15T13:45:00+01:00",
            site: str = "home") -> dict:
    """A peak payload ``second`` s after 2026-01-15T13:45:00+01:00 (1768481100); avg_w = second."""
    minutes, secs = divmod(second, 60)
    ts = f"2026-01-15T{13 + (45 + minutes) // 60:02d}:{(45 + minutes) % 60:02d}:{secs:02d}+01:00"
    return {"v": 1, "site": site, "ts": ts, "quarter_start": quarter, "energy_wh": 1.0,
            "avg_w": float(second), "forecast_w": 2.0, "threshold_w": 2500.0, "headroom_w": 3.0,
            "level": level, "month_peak_w": 2500.0}


def written(mapper: Mapper, payloads: list[dict]) -> list[int]:
    """Seconds after 13:45:00 of the peak points written for ``payloads``, in order."""
    out = []
    for p in payloads:
        Peak.model_validate(p)
        for line in lines(T.peak(p["site"]), p, mapper):
            assert line.startswith(f"peak,site={p['site']} ")
            out.append(int(line.rsplit(" ", 1)[1]) - 1768481100)
    return out


def test_peak_every_10_s_not_every_second() -> None:
    assert written(Mapper(), [peak_at(i) for i in range(35)]) == [0, 10, 20, 30]
    assert written(Mapper(peak_every_s=0), [peak_at(i) for i in range(5)]) == [0, 1, 2, 3, 4]
    assert written(Mapper(peak_every_s=60), [peak_at(i) for i in range(0, 200, 7)]) == [0, 63, 126, 189]


def test_peak_level_change_is_written_at_once() -> None:
    levels = ["ok"] * 13 + ["warn"] * 6 + ["alarm"] * 3 + ["ok"] * 20
    got = written(Mapper(), [peak_at(i, level) for i, level in enumerate(levels)])
    # 0; warn at 13 (and the 10 s count restarts there); alarm at 19; ok at 22; then 32
    assert got == [0, 10, 13, 19, 22, 32]


def test_peak_quarter_end_keeps_the_last_of_the_quarter() -> None:
    q1, q2 = "2026-01-15T13:45:00+01:00", "2026-01-15T14:00:00+01:00"
    payloads = [peak_at(i, quarter=q1) for i in range(15)] + [peak_at(i, quarter=q2) for i in range(15, 40)]
    # 14 is the ended quarter's last peak (its final average), written when 15 opens the next
    assert written(Mapper(), payloads) == [0, 10, 14, 15, 25, 35]
    # nothing held back when the last one was written anyway
    payloads = [peak_at(i, quarter=q1) for i in range(11)] + [peak_at(11, quarter=q2)]
    assert written(Mapper(), payloads) == [0, 10, 11]


def test_peak_sites_are_thinned_apart_and_time_going_back_is_written() -> None:
    mapper = Mapper()
    payloads = [peak_at(0), peak_at(0, site="b"), peak_at(5), peak_at(5, site="b"),
                peak_at(10, site="b"), peak_at(11)]
    assert written(mapper, payloads) == [0, 0, 10, 11]
    assert written(mapper, [peak_at(3), peak_at(4)]) == [3]  # clock stepped back: a new start
