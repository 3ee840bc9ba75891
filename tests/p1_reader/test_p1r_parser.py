"""The parser and the payload builders, with exact values from real telegrams."""

from __future__ import annotations

import re

import pytest
from p1r_support import ALL_FILES, BAD_CRC, NO_END_LINE, telegram_bytes

from p1_reader.reading import build_live, build_reading, changed
from p1common.dsmr.parser import TelegramError, decode_hex_text, parse_telegram, parse_timestamp
from p1common.payloads import Live, Reading


def parse_body(data: bytes) -> dict:
    """Objects in a made-up frame ('/X', no CRC): parsing alone, without the checks that
    refuse a CRC-less telegram that is not a meter's (see test_line_noise_*)."""
    return parse_telegram(data, check_crc=False)

FLUVIUS_V171 = {
    "header": "FLU5\\253769484_A",
    "dsmr_version": "50217",
    "meter_id": "1SAG3101021605",
    "ts": "2020-05-12T13:54:09+02:00",
    "import_t1_kwh": 0.034,
    "import_t2_kwh": 15.758,
    "export_t1_kwh": 0.0,
    "export_t2_kwh": 0.011,
    "avg_demand_w": 2351.0,
    "month_max_ts": "2020-05-09T13:45:58+02:00",
    "month_max_w": 2589.0,
    "month_max_history": [
        {"month": "2020-02", "ts": "2020-02-10T03:54:21+01:00", "peak_w": 4318.0},
        {"month": "2020-03", "ts": "2020-03-05T12:21:39+02:00", "peak_w": 5980.0},
        {"month": "2020-04", "ts": "2020-04-23T19:25:38+02:00", "peak_w": 3695.0},
    ],
    "tariff": 1,
    "tariff_low": False,  # Belgian eMUCS: tariff 1 is the day (normal) tariff
    "import_w": 0.0,
    "export_w": 0.0,
    "l1_import_w": 0.0,
    "l2_import_w": 0.0,
    "l3_import_w": 0.0,
    "l1_export_w": 0.0,
    "l2_export_w": 0.0,
    "l3_export_w": 0.0,
    "l1_voltage_v": 234.7,
    "l2_voltage_v": 234.7,
    "l3_voltage_v": 234.7,
    "l1_current_a": 0.0,
    "l2_current_a": 0.0,
    "l3_current_a": 0.0,
    "breaker": 1,
    "import_kwh": 15.792,
    "export_kwh": 0.011,
    "net_w": 0.0,
    "gas_m3": 112.384,
    "gas_ts": "2020-05-12T13:45:58+02:00",
    "gas_id": "7FLO2119033733",
    "gas_valve": 1,
    "water_m3": 872.234,
    "water_ts": "2020-05-12T13:45:58+02:00",
    "water_id": "8SAG1234567890",
    "mbus": [
        {"channel": 1, "device_type": 3, "kind": "gas", "equipment_id": "7FLO2119033733",
         "value": 112.384, "unit": "m3", "ts": "2020-05-12T13:45:58+02:00", "valve": 1},
        {"channel": 2, "device_type": 7, "kind": "water", "equipment_id": "8SAG1234567890",
         "value": 872.234, "unit": "m3", "ts": "2020-05-12T13:45:58+02:00"},
    ],
}


def test_fluvius_171_every_field() -> None:
    assert parse_telegram(telegram_bytes("dsmr_parser__fluvius_v171.txt")) == FLUVIUS_V171


def test_fluvius_alt_invalid_history_timestamp_is_left_out() -> None:
    r = parse_telegram(telegram_bytes("dsmr_parser__fluvius_v171_alt.txt"))
    assert r["month_max_history"][0] == {"month": "2023-07", "peak_w": 0.0}
    assert [e["month"] for e in r["month_max_history"]] == [
        "2023-07", "2023-08", "2023-09", "2023-10"]
    assert r["ts"] == "2023-11-02T12:15:48+01:00"


def test_dsmr22_gas_on_its_own_line() -> None:
    r = parse_telegram(telegram_bytes("dsmr_parser__v2_2.txt"))
    assert (r["gas_m3"], r["gas_ts"], r["gas_valve"]) == (1.001, "2016-11-07T19:00:00+01:00", 1)
    assert r["import_w"] == 1010.0 and r["import_kwh"] == 2.002
    assert "ts" not in r  # DSMR 2.2 has no clock object
    assert "extra" not in r


def test_wh_and_w_units_luxembourg_sagemcom() -> None:
    r = parse_telegram(telegram_bytes("dsmr_parser__sagemcom_t210_d_r.txt"))
    assert (r["import_kwh"], r["import_t1_kwh"], r["import_t2_kwh"]) == (6545.766, 5017.12, 1528.646)
    assert (r["export_kwh"], r["import_w"], r["export_w"], r["net_w"]) == (0.058, 286.0, 0.0, 286.0)
    assert (r["reactive_import_kvarh"], r["reactive_import_t1_kvarh"],
            r["reactive_import_t2_kvarh"]) == (0.747, 0.0, 0.747)
    assert (r["reactive_export_kvarh"], r["reactive_export_t1_kvarh"],
            r["reactive_export_t2_kvarh"]) == (3897.726, 2692.848, 1204.878)
    assert (r["reactive_import_var"], r["reactive_export_var"]) == (0.0, 166.0)
    assert "extra" not in r


def test_empty_gas_slot_gives_no_gas_field() -> None:
    r = parse_telegram(telegram_bytes("dsmrreader__fluvius_without_gas.txt"))
    assert "gas_m3" not in r and "gas_ts" not in r
    assert r["mbus"] == [{"channel": 1, "device_type": 3, "kind": "gas",
                          "equipment_id": "12345678901234567890123456789012", "value": 0.0,
                          "valve": 0}]
    two = parse_telegram(telegram_bytes("dsmr_parser__v5_two_mbus.txt"))
    assert (two["gas_m3"], two["gas_ts"]) == (246.138, "2020-04-26T22:30:01+02:00")


def test_heat_meter_gj_and_unpadded_crc() -> None:
    r = parse_telegram(telegram_bytes("dsmr_parser__unpadded_crc.txt"))
    assert (r["heat_gj"], r["heat_ts"]) == (240.86, "2026-02-15T20:05:23+01:00")


def test_unknown_obis_kept_in_extra() -> None:
    r = parse_telegram(telegram_bytes("dsmr_parser__v5_eon_hu.txt"))
    assert r["extra"]["1-0:15.8.0"] == "(000800.817*kWh)"
    assert r["extra"]["1-0:7.7.0"] == "(00.504*kvar)"  # reactive power per quadrant


def test_eon_hungary_frequency_power_factor_four_tariffs_fuses() -> None:
    r = parse_telegram(telegram_bytes("dsmr_parser__v5_eon_hu.txt"))
    assert r["frequency_hz"] == 50.0
    assert (r["power_factor"], r["l1_power_factor"], r["l2_power_factor"],
            r["l3_power_factor"]) == (4.556, 4.591, 4.542, 4.552)
    assert (r["import_t3_kwh"], r["import_t4_kwh"], r["export_t3_kwh"],
            r["export_t4_kwh"]) == (0.0, 0.0, 0.0, 0.0)
    assert (r["import_kwh"], r["export_kwh"]) == (173.64, 627.177)  # the meter's own totals
    assert (r["fuse_limit_a"], r["l2_fuse_limit_a"], r["l3_fuse_limit_a"]) == (200.0, 200.0, 200.0)
    assert (r["reactive_import_kvarh"], r["reactive_export_kvarh"]) == (0.123, 303.131)
    assert r["limiter_w"] == 90000.0


def test_total_is_the_sum_of_every_tariff_register() -> None:
    r = parse_body(b"/X\r\n\r\n1-0:1.8.1(1.5*kWh)\r\n1-0:1.8.2(2.25*kWh)\r\n"
                       b"1-0:1.8.3(0.125*kWh)\r\n1-0:1.8.4(4*kWh)\r\n1-0:2.8.1(1*kWh)\r\n"
                       b"1-0:2.8.2(2*kWh)\r\n1-0:2.8.3(3*kWh)\r\n!\r\n")
    assert (r["import_kwh"], r["export_kwh"]) == (7.875, 6.0)


def test_limiter_in_a_kva_or_kw() -> None:
    assert parse_telegram(telegram_bytes("dsmr_parser__v3.txt"))["limiter_a"] == 16.0
    lux = parse_telegram(telegram_bytes("dsmrreader__luxembourg_smarty.txt"))
    assert lux["limiter_va"] == 27600.0 and "limiter_w" not in lux and "limiter_a" not in lux
    assert (lux["reactive_import_kvarh"], lux["reactive_export_kvarh"]) == (120.721, 697.336)
    assert (lux["reactive_import_var"], lux["reactive_export_var"]) == (0.0, 0.0)
    fluvius = parse_telegram(telegram_bytes("dsmr_parser__fluvius_v171.txt"))
    # 0-0:17.0.0(999.9*kW) and 1-0:31.4.0(999*A) mean "no limit": left out, not 999900 W
    assert {"limiter_w", "limiter_a", "limiter_va", "fuse_limit_a"} & fluvius.keys() == set()
    set_limits = parse_body(b"/X\r\n\r\n0-0:17.0.0(013.8*kW)\r\n1-0:31.4.0(025*A)\r\n!\r\n")
    assert (set_limits["limiter_w"], set_limits["fuse_limit_a"]) == (13800.0, 25.0)
    assert "limiter_a" not in parse_body(b"/X\r\n\r\n0-0:17.0.0(999*A)\r\n!\r\n")
    odd = parse_body(b"/X\r\n\r\n0-0:17.0.0(12*V)\r\n!\r\n")
    assert odd["extra"] == {"0-0:17.0.0": "(12*V)"}


def test_reactive_power_per_phase_in_var() -> None:
    r = parse_body(b"/X\r\n\r\n1-0:23.7.0(0001.229*kVAr)\r\n1-0:43.7.0(0.5*kvar)\r\n"
                       b"1-0:63.7.0(12*var)\r\n1-0:24.7.0(0000.391*kVAr)\r\n1-0:44.7.0()\r\n"
                       b"1-0:3.8.0(00001234.432*kVArh)\r\n1-0:4.8.0(000259742*varh)\r\n"
                       b"1-0:14.7.0(49.98*Hz)\r\n1-0:64.7.0(1*kW)\r\n!\r\n")
    assert (r["l1_reactive_import_var"], r["l2_reactive_import_var"],
            r["l3_reactive_import_var"], r["l1_reactive_export_var"]) == (1229.0, 500.0, 12.0, 391.0)
    assert "l2_reactive_export_var" not in r
    assert (r["reactive_import_kvarh"], r["reactive_export_kvarh"]) == (1234.432, 259.742)
    assert r["frequency_hz"] == 49.98
    assert r["extra"] == {"1-0:64.7.0": "(1*kW)"}  # a unit that makes no sense: kept raw
    sweden = parse_telegram(telegram_bytes("dsmrreader__sweden_kamstrup.txt"))
    assert sweden["l3_reactive_export_var"] == 0.0 and "extra" not in sweden


def test_emucs_2_ean_and_mbus_breaker() -> None:
    name = "athombv__emucs-p1-v2.1.1-spec-example-1.txt"  # spec example: placeholder CRC
    r = parse_telegram(telegram_bytes(name), check_crc=False)
    assert r["ean"] == "541440012345678900"
    assert r["mbus"][0] == {
        "channel": 1, "device_type": 3, "kind": "gas", "equipment_id": "7FLO2119033733",
        "ean": "541440012345678900", "value": 112.384, "unit": "m3",
        "ts": "2020-05-12T13:45:58+02:00", "valve": 1, "breaker": 0}
    assert r["mbus"][1]["ean"] == "541440012345678903"
    assert r["mbus"][3] == {"channel": 4, "kind": "other", "breaker": 0}
    assert r["extra"] == {"1-0:94.32.1": "(400)"}


def test_heat_meter_id() -> None:
    r = parse_telegram(telegram_bytes("dsmr_parser__unpadded_crc.txt"))
    assert (r["heat_gj"], r["heat_id"]) == (240.86, "621848012D2C0B0C")


@pytest.mark.parametrize("name", ALL_FILES)
def test_every_fixture_reading_validates_against_the_contract(name: str) -> None:
    parsed = parse_telegram(
        telegram_bytes(name), check_crc=name not in BAD_CRC, allow_missing_end=name in NO_END_LINE
    )
    reading = build_reading(parsed, site="home", source="p1", now=1_700_000_000.0)
    Reading.model_validate(reading)
    assert None not in reading.values()
    Live.model_validate(build_live(reading))


def test_timestamps() -> None:
    assert parse_timestamp("200512135409S") == "2020-05-12T13:54:09+02:00"
    assert parse_timestamp("231102121548W") == "2023-11-02T12:15:48+01:00"
    assert parse_timestamp("632525252525W") is None
    assert parse_timestamp("000000000000W") is None
    assert parse_timestamp("250000000000W") is None
    assert parse_timestamp("200512135409X") is None
    assert parse_timestamp("161107190000") == "2016-11-07T19:00:00+01:00"
    assert parse_timestamp("160722190000") == "2016-07-22T19:00:00+02:00"


def test_hex_text() -> None:
    assert decode_hex_text("4530303334") == "E0034"
    assert decode_hex_text("12345678901234567890123456789012") == "12345678901234567890123456789012"
    assert decode_hex_text("serienummer") == "serienummer"
    assert decode_hex_text("ABC") == "ABC"


@pytest.mark.parametrize(
    ("data", "reason", "message"),
    [
        (b"1-0:1.8.1(1*kWh)\r\n!\r\n", "no_start", "does not start with '/'"),
        (b"/ABC", "truncated", "no line after the '/' header"),
        (b"/ABC\r\n1-0:1.8.1(1*kWh)\r\n", "truncated", "no '!' end line"),
        (b"/ABC\r\n1-0:1.8.1(1*kWh\r\n!\r\n", "unparsable", "line 2 '1-0:1.8.1(1*kWh' is not OBIS"),
        (b"/ABC\r\n1-0:1.8.1(1x*kWh)\r\n!\r\n", "unparsable", "1-0:1.8.1: '1x' is not a number"),
        (b"/ABC\r\n!XYZ\r\n", "crc", "CRC field 'XYZ' after '!' is not 1-4 hex digits"),
    ],
)
def test_refused_with_reason(data: bytes, reason: str, message: str) -> None:
    with pytest.raises(TelegramError) as err:
        parse_telegram(data)
    assert err.value.reason == reason
    assert message in str(err.value)


def test_crc_good_and_one_bit_off() -> None:
    good = telegram_bytes("nielsbasjes__ISK5_AM550T_real.txt")
    assert parse_telegram(good)["import_w"] == 377.0
    bad = good.replace(b"00.377*kW", b"00.376*kW")
    with pytest.raises(TelegramError, match="CRC mismatch"):
        parse_telegram(bad)
    assert parse_telegram(bad, check_crc=False)["import_w"] == 376.0


def test_reading_envelope_and_host_clock_fallback() -> None:
    parsed = parse_telegram(telegram_bytes("dsmr_parser__fluvius_v171.txt"))
    reading = build_reading(parsed, site="home", source="p1", now=0.0)
    assert list(reading)[:5] == ["v", "site", "source", "ts", "ts_source"]
    assert (reading["v"], reading["ts"], reading["ts_source"]) == (
        1, "2020-05-12T13:54:09+02:00", "meter")
    assert build_live(reading) == {"ts": 1589284449, "imp": 0, "exp": 0, "tar": 1}
    dsmr22 = build_reading(parse_telegram(telegram_bytes("dsmr_parser__v2_2.txt")),
                           site="x", source="replay", now=1_700_000_000.0)
    assert dsmr22["ts_source"] == "host"
    assert build_live(dsmr22)["ts"] == 1_700_000_000


def test_changed_ignores_the_clock() -> None:
    a = {"ts": "2020-01-01T00:00:00+01:00", "import_w": 10.0}
    assert changed(None, a)
    assert not changed(a, {"ts": "2020-01-01T00:00:01+01:00", "import_w": 10.0})
    assert changed(a, {"ts": "2020-01-01T00:00:01+01:00", "import_w": 11.0})


def test_fast_crc_equals_the_common_one() -> None:
    from p1common.dsmr_crc import USING_C_EXTENSION, crc16, crc16_python

    for name in ALL_FILES:
        data = telegram_bytes(name)
        assert crc16(data) == crc16_python(data), name
    assert USING_C_EXTENSION, "crcmod's C extension is not in use"


def test_timestamp_validation_without_datetime() -> None:
    from p1common.dsmr.parser import convert_timestamp

    assert convert_timestamp("240229235959W") == "2024-02-29T23:59:59+01:00"  # leap day
    assert convert_timestamp("230229000000W") is None  # no 29 February in 2023
    assert convert_timestamp("240229240000W") is None  # hour 24
    assert convert_timestamp("240229236000W") is None  # minute 60
    assert convert_timestamp("240229235960W") is None  # second 60
    assert convert_timestamp("991231235959S") == "1999-12-31T23:59:59+02:00"
    assert convert_timestamp("681231235959S") == "2068-12-31T23:59:59+02:00"
    # latin-1 '²' counts as a digit for str.isdigit(): not a timestamp, not a crash
    assert convert_timestamp("\xb240229235959W") is None
    assert convert_timestamp("24022923595\xb2") is None


def test_superscript_digit_in_a_count_is_kept_raw_not_a_crash() -> None:
    body = b"/ABC\r\n\r\n1-0:99.97.0(\xb2)(0-0:96.7.19)\r\n0-0:98.1.0(\xb2)(1-0:1.6.0)(1-0:1.6.0)\r\n!\r\n"
    r = parse_body(body)
    assert r["extra"] == {"1-0:99.97.0": "(\xb2)(0-0:96.7.19)",
                          "0-0:98.1.0": "(\xb2)(1-0:1.6.0)(1-0:1.6.0)"}


def test_fast_path_falls_back_to_the_general_code() -> None:
    # values the one-lookup fast path does not take: same result as the general code
    r = parse_body(
        b"/ABC\r\n\r\n1-0:1.7.0(1.5*kW)\r\n1-0:2.7.0(0.0001*kW)\r\n1-0:21.7.0(12*W)\r\n"
        b"1-0:22.7.0()\r\n1-0:1.8.1(12*Wh)\r\n1-0:32.7.0(230)\r\n0-0:96.14.0(0002)(x)\r\n"
        b"0-0:1.0.0(200512135409S)(x)\r\n!\r\n")
    assert (r["import_w"], r["export_w"], r["l1_import_w"], r["import_t1_kwh"]) == (
        1500.0, 0.1, 12.0, 0.012)
    assert (r["l1_voltage_v"], r["tariff"], r["ts"]) == (230.0, 2, "2020-05-12T13:54:09+02:00")
    assert "l1_export_w" not in r
    for bad, message in [(b"1-0:1.7.0(1.2.345*kW)", "1-0:1.7.0: '1.2.345' is not a number"),
                         (b"1-0:1.7.0(-0.3x5*kW)", "1-0:1.7.0: '-0.3x5' is not a number"),
                         (b"0-0:96.14.0(1x)", "'1x' is not an integer")]:
        with pytest.raises(TelegramError, match=re.escape(message)):
            parse_telegram(b"/ABC\r\n\r\n" + bad + b"\r\n!\r\n")


def test_caches_are_bounded_and_history_entries_are_fresh() -> None:
    from p1common.dsmr import parser

    parser.clear_caches()
    for i in range(parser._CACHE_MAX + 10):
        parser.parse_timestamp(f"2001{i // 3600 % 28 + 1:02d}{i // 60 % 60:02d}{i % 60:02d}00W")
    assert 0 < len(parser._TS_CACHE) <= parser._CACHE_MAX
    data = telegram_bytes("dsmr_parser__fluvius_v171.txt")
    first = parse_telegram(data)
    first["month_max_history"][0]["peak_w"] = -1.0  # a consumer changing its reading
    assert parse_telegram(data) == FLUVIUS_V171


def test_line_noise_without_crc_is_refused() -> None:
    # a header and a bare '!': the shape of a DSMR 2.2 telegram, none of its content
    for junk, message in [
        (b"/\x13\x07\r\n\r\n!\r\n", "is not a meter's (3 letters and a digit)"),
        (b"/ISk5\\2MT382-1000\r\n\r\n!\r\n", "carries no energy counter nor power"),
        (b"/ISk5\\2MT382-1000\r\n\r\n0-0:96.14.0(0002)\r\n!\r\n", "carries no energy counter nor power"),
        (b"/X\r\n\r\n1-0:1.8.1(1.5*kWh)\r\n!\r\n", "'X' is not a meter's"),
    ]:
        with pytest.raises(TelegramError, match=re.escape(message)) as err:
            parse_telegram(junk)
        assert err.value.reason == "unparsable"
    # the real DSMR 2.2/3 telegrams without CRC are still read
    for name in ("dsmr_parser__v2_2.txt", "dsmr_parser__v3.txt", "dsmrreader__iskra.txt"):
        assert parse_telegram(telegram_bytes(name))["import_t1_kwh"] > 0
