"""Every fixture telegram with a valid CRC (or none) against dsmr_parser, field by field.

dsmr_parser (the parser Home Assistant uses) is the reference: for each object it
finds, our reading must hold the same value in our units, or keep the object in
``extra`` when the contract has no field for it. Deliberate differences are listed.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from dsmr_parser import telegram_specifications as specs
from dsmr_parser.parsers import TelegramParser
from p1r_support import BAD_CRC, GOOD_FILES, NO_END_LINE, STREAM, TELEGRAMS, telegram_bytes

from p1common.dsmr.parser import TelegramError, decode_hex_text, parse_telegram

LOCAL = ZoneInfo("Europe/Brussels")


def spec_for(name: str, text: str) -> dict[str, Any]:
    if "fluvius" in name:
        return specs.BELGIUM_FLUVIUS
    if "sagemcom_t210" in name:  # plain-text variant of the (encrypted) spec
        return {k: v for k, v in specs.SAGEMCOM_T210_D_R.items() if k != "general_global_cipher"}
    table = {
        "luxembourg_smarty": specs.LUXEMBOURG_SMARTY,
        "sweden": specs.SWEDEN,
        "esy5q3d": specs.Q3D,
        "iskra_ie": specs.ISKRA_IE,
        "eon_hu": specs.EON_HUNGARY,
    }
    for key, spec in table.items():
        if key in name:
            return spec
    if "1-3:0.2.8(4" in text:
        return specs.V4
    if "1-3:0.2.8(5" in text:
        return specs.V5
    return specs.V2_2


ENERGY = {
    "ELECTRICITY_USED_TARIFF_1": "import_t1_kwh",
    "ELECTRICITY_USED_TARIFF_2": "import_t2_kwh",
    "ELECTRICITY_DELIVERED_TARIFF_1": "export_t1_kwh",
    "ELECTRICITY_DELIVERED_TARIFF_2": "export_t2_kwh",
    "ELECTRICITY_IMPORTED_TOTAL": "import_kwh",
    "ELECTRICITY_EXPORTED_TOTAL": "export_kwh",
    "ELECTRICITY_USED_TARIFF_3": "import_t3_kwh",
    "ELECTRICITY_USED_TARIFF_4": "import_t4_kwh",
    "ELECTRICITY_DELIVERED_TARIFF_3": "export_t3_kwh",
    "ELECTRICITY_DELIVERED_TARIFF_4": "export_t4_kwh",
}
REACTIVE_ENERGY = {  # kvarh (varh / 1000)
    "ELECTRICITY_REACTIVE_IMPORTED_TOTAL": "reactive_import_kvarh",
    "ELECTRICITY_REACTIVE_EXPORTED_TOTAL": "reactive_export_kvarh",
    "ELECTRICITY_REACTIVE_IMPORTED_TARIFF_1": "reactive_import_t1_kvarh",
    "ELECTRICITY_REACTIVE_IMPORTED_TARIFF_2": "reactive_import_t2_kvarh",
    "ELECTRICITY_REACTIVE_EXPORTED_TARIFF_1": "reactive_export_t1_kvarh",
    "ELECTRICITY_REACTIVE_EXPORTED_TARIFF_2": "reactive_export_t2_kvarh",
}
REACTIVE_POWER = {  # var (kvar * 1000)
    "CURRENT_REACTIVE_IMPORTED": "reactive_import_var",
    "CURRENT_REACTIVE_EXPORTED": "reactive_export_var",
    **{f"INSTANTANEOUS_REACTIVE_POWER_L{i}_POSITIVE": f"l{i}_reactive_import_var" for i in (1, 2, 3)},
    **{f"INSTANTANEOUS_REACTIVE_POWER_L{i}_NEGATIVE": f"l{i}_reactive_export_var" for i in (1, 2, 3)},
}
POWER = {
    "CURRENT_ELECTRICITY_USAGE": "import_w",
    "CURRENT_ELECTRICITY_DELIVERY": "export_w",
    "BELGIUM_CURRENT_AVERAGE_DEMAND": "avg_demand_w",
    **{f"INSTANTANEOUS_ACTIVE_POWER_L{i}_POSITIVE": f"l{i}_import_w" for i in (1, 2, 3)},
    **{f"INSTANTANEOUS_ACTIVE_POWER_L{i}_NEGATIVE": f"l{i}_export_w" for i in (1, 2, 3)},
}
PLAIN_NUMBER = {
    **{f"INSTANTANEOUS_VOLTAGE_L{i}": f"l{i}_voltage_v" for i in (1, 2, 3)},
    **{f"INSTANTANEOUS_CURRENT_L{i}": f"l{i}_current_a" for i in (1, 2, 3)},
    "FUSE_THRESHOLD_L1": "fuse_limit_a",
    "FUSE_THRESHOLD_L2": "l2_fuse_limit_a",
    "FUSE_THRESHOLD_L3": "l3_fuse_limit_a",
    "FREQUENCY": "frequency_hz",
    "INSTANTANEOUS_POWER_FACTOR_TOTAL": "power_factor",
    **{f"INSTANTANEOUS_POWER_FACTOR_L{i}": f"l{i}_power_factor" for i in (1, 2, 3)},
}
# The meters' "no limit" codes (DSMR 4/5 and eMUCS: 999.9 kW and 999 A; DSMR 2.2: 999 A):
# dsmr_parser passes them on, our reading leaves them out.
NO_LIMIT = {"limiter_w": 999.9 * 1000, "limiter_va": 999.9 * 1000, "limiter_a": 999.0,
            "fuse_limit_a": 999.0, "l2_fuse_limit_a": 999.0, "l3_fuse_limit_a": 999.0}
INTEGER = {
    "ELECTRICITY_ACTIVE_TARIFF": "tariff",
    "ACTUAL_SWITCH_POSITION": "breaker",
    "SHORT_POWER_FAILURE_COUNT": "power_failures",
    "LONG_POWER_FAILURE_COUNT": "long_power_failures",
    **{f"VOLTAGE_SAG_L{i}_COUNT": f"l{i}_voltage_sags" for i in (1, 2, 3)},
    **{f"VOLTAGE_SWELL_L{i}_COUNT": f"l{i}_voltage_swells" for i in (1, 2, 3)},
}
TEXT = {
    "P1_MESSAGE_HEADER": "dsmr_version",
    "BELGIUM_VERSION_INFORMATION": "dsmr_version",
}
HEXTEXT = {
    "EQUIPMENT_IDENTIFIER": "meter_id",
    "BELGIUM_EQUIPMENT_IDENTIFIER": "meter_id",
    "LUXEMBOURG_EQUIPMENT_IDENTIFIER": "meter_id",
    "COSEM_LOGICAL_DEVICE_NAME": "meter_id",  # 0-0:42.0.0 (no 96.1.1 in those telegrams)
    "TEXT_MESSAGE": "message",
    "TEXT_MESSAGE_CODE": "message_code",
}
# Deliberate differences: (file, what) -> why
KNOWN_DIFFERENCES = {
    ("dsmrreader__landisgyr350_dsmr40.txt", "mbus1.ts"):
        "the meter writes a lower-case 's' flag (150701190000s); we read it, dsmr_parser drops it",
}


def same_instant(ours: str | None, theirs: datetime | None) -> bool:
    """Equal instants; or, where the S/W flag contradicts the calendar (S in December in
    a synthetic telegram, an Irish meter), we follow the flag and dsmr_parser the
    Amsterdam calendar: then they differ by exactly that offset difference."""
    if ours is None or theirs is None:
        return ours is None and theirs is None
    mine = datetime.fromisoformat(ours)
    if mine.timestamp() == theirs.timestamp():
        return True
    calendar = mine.replace(tzinfo=LOCAL).utcoffset()
    flag = mine.utcoffset()
    assert calendar is not None and flag is not None
    return calendar != flag and theirs.timestamp() - mine.timestamp() == (
        flag - calendar).total_seconds()


def instant(value: str | None) -> float | None:
    return None if value is None else datetime.fromisoformat(value).timestamp()


def their_instant(dt: datetime | None) -> float | None:
    return None if dt is None else dt.timestamp()


def in_our_units(value: Decimal, unit: str | None, kind: str) -> float:
    u = (unit or "").lower()
    if kind == "energy":
        return float(value) / 1000 if u in ("wh", "varh") else float(value)
    if kind == "power":
        return float(value) if u in ("w", "var", "va") else float(value) * 1000
    return float(value)


def assert_close(ours: Any, theirs: float, what: str) -> None:
    assert ours == pytest.approx(theirs, rel=1e-12, abs=1e-9), what


def obis_in_extra(ours: dict[str, Any], pattern: str) -> bool:
    regex = re.compile(pattern, re.DOTALL | re.MULTILINE)
    return any(regex.match(k + v + "\r\n") for k, v in ours.get("extra", {}).items())


def compare(name: str, ours: dict[str, Any], telegram: Any, spec: dict[str, Any]) -> int:
    """Assert every object dsmr_parser found; returns how many values were compared."""
    patterns = {o["value_name"]: o["obis_reference"] for o in spec["objects"]}
    checked = 0
    for key, obj in telegram:
        what = f"{name}: {key}"
        if key == "MBUS_DEVICES":
            checked += compare_mbus(name, ours, obj)
            continue
        if isinstance(obj, list):  # BELGIUM_MAXIMUM_DEMAND_13_MONTHS
            history = {e["month"]: e for e in ours["month_max_history"]}
            assert len(history) == len(obj), what
            for peak in obj:
                local = peak.datetime.astimezone(LOCAL)
                month = f"{local.year:04d}-{local.month - 1 or 12:02d}" if local.month > 1 else (
                    f"{local.year - 1:04d}-12")
                entry = history[month]
                assert same_instant(entry.get("ts"), peak.occurred), what
                assert_close(entry["peak_w"], in_our_units(peak.value, peak.unit, "power"), what)
                checked += 1
            continue
        value = obj.value
        unit = obj.unit if hasattr(obj, "unit") else None
        if key in ENERGY:
            assert_close(ours[ENERGY[key]], in_our_units(value, unit, "energy"), what)
        elif key in POWER:
            assert_close(ours[POWER[key]], in_our_units(value, unit, "power"), what)
        elif key in REACTIVE_ENERGY:
            assert_close(ours[REACTIVE_ENERGY[key]], in_our_units(value, unit, "energy"), what)
        elif key in REACTIVE_POWER:
            assert_close(ours[REACTIVE_POWER[key]], in_our_units(value, unit, "power"), what)
        elif key in PLAIN_NUMBER and float(value) >= NO_LIMIT.get(PLAIN_NUMBER[key], float("inf")):
            assert PLAIN_NUMBER[key] not in ours, what  # "no limit" is not a threshold
        elif key in PLAIN_NUMBER:
            assert_close(ours[PLAIN_NUMBER[key]], float(value), what)
        elif key in INTEGER:
            assert ours[INTEGER[key]] == int(value), what
        elif key in TEXT:
            assert ours[TEXT[key]] == value, what
        elif key in HEXTEXT:
            if value is None:
                assert HEXTEXT[key] not in ours or key == "BELGIUM_EQUIPMENT_IDENTIFIER", what
            else:
                assert ours[HEXTEXT[key]] == decode_hex_text(str(value)), what
        elif key == "P1_MESSAGE_TIMESTAMP":
            assert same_instant(ours.get("ts"), value), what
        elif key == "BELGIUM_MAXIMUM_DEMAND_MONTH":
            assert same_instant(ours.get("month_max_ts"), obj.datetime), what
            assert_close(ours["month_max_w"], in_our_units(value, unit, "power"), what)
        elif key == "ACTUAL_TRESHOLD_ELECTRICITY":
            field = {"kw": "limiter_w", "w": "limiter_w", "kva": "limiter_va", "va": "limiter_va",
                     "a": "limiter_a"}[(unit or "").lower()]
            expected = in_our_units(value, unit, "power" if field != "limiter_a" else "number")
            if expected >= NO_LIMIT[field]:  # "no limit" is not a threshold
                assert {"limiter_w", "limiter_va", "limiter_a"} & ours.keys() == set(), what
            else:
                assert_close(ours[field], expected, what)
                assert {"limiter_w", "limiter_va", "limiter_a"} & ours.keys() == {field}, what
        elif key == "POWER_EVENT_FAILURE_LOG":
            raw = [v["value"] for v in obj.values]
            pairs = [(raw[i], raw[i + 1]) for i in range(2, len(raw), 2)]
            expected = [(their_instant(ts), int(d)) for ts, d in pairs if ts is not None]
            got = [(instant(e["end_ts"]), e["duration_s"]) for e in ours["power_failure_log"]]
            assert got == expected, what
        else:  # no field in the contract: the raw object must be in extra
            assert obis_in_extra(ours, patterns[key]), f"{what} missing from extra"
        checked += 1
    return checked


def compare_mbus(name: str, ours: dict[str, Any], devices: list[Any]) -> int:
    by_channel = {d["channel"]: d for d in ours.get("mbus", [])}
    checked = 0
    for device in devices:
        dev = by_channel[device.channel_id]
        for key, obj in device:
            what = f"{name}: mbus {device.channel_id} {key}"
            if key in ("MBUS_DEVICE_TYPE", "DEVICE_TYPE"):
                if obj.value is None:
                    assert "device_type" not in dev, what
                else:
                    assert dev["device_type"] == int(obj.value), what
            elif key in ("MBUS_EQUIPMENT_IDENTIFIER", "EQUIPMENT_IDENTIFIER_GAS", "EQUIPMENT_IDENTIFIER"):
                if obj.value is None:
                    assert "equipment_id" not in dev, what
                else:
                    assert dev["equipment_id"] == decode_hex_text(obj.value), what
            elif key in ("MBUS_VALVE_POSITION", "VALVE_POSITION_GAS"):
                assert dev["valve"] == int(obj.value), what
            elif key in ("MSN_MBUS_SWITCH_POSITION",):
                assert dev["breaker"] == int(obj.value), what
            elif key in ("MBUS_METER_READING", "HOURLY_GAS_METER_READING", "GAS_METER_READING"):
                assert_close(dev["value"], float(obj.value), what)
                if obj.unit:
                    assert dev["unit"] == obj.unit, what
                if (name, f"mbus{device.channel_id}.ts") in KNOWN_DIFFERENCES:
                    assert obj.datetime is None and "ts" in dev, what
                else:
                    assert same_instant(dev.get("ts"), obj.datetime), what
            else:
                raise AssertionError(f"{what}: not compared")
            checked += 1
    return checked


@pytest.mark.parametrize("name", GOOD_FILES)
def test_same_values_as_dsmr_parser(name: str) -> None:
    data = telegram_bytes(name)
    ours = parse_telegram(data, allow_missing_end=name in NO_END_LINE)
    spec = spec_for(name, data.decode("latin-1"))
    text = data.decode("latin-1")
    if name in NO_END_LINE:
        text += "!\r\n"  # dsmr_parser's patterns need every line to end in CRLF
    theirs = TelegramParser(spec).parse(text)
    assert compare(name, ours, theirs, spec) >= 2


@pytest.mark.parametrize("name", sorted(BAD_CRC))
def test_bad_crc_refused_with_clear_error(name: str) -> None:
    given, computed = BAD_CRC[name]
    with pytest.raises(TelegramError) as err:
        parse_telegram(telegram_bytes(name))
    assert err.value.reason == "crc"
    assert str(err.value) == (
        f"CRC mismatch: the telegram says {given}, its content gives {computed}"
    )


def test_no_end_line_refused_unless_allowed() -> None:
    data = (TELEGRAMS / "athombv__iskra-mt-382-no-crc.txt").read_bytes()
    with pytest.raises(TelegramError, match="no '!' end line") as err:
        parse_telegram(data)
    assert err.value.reason == "truncated"


def _stream_cases() -> list[tuple[str, list[bytes], dict[str, Any]]]:
    from meter_sim.clock import parse_local
    from meter_sim.scenario import build
    from meter_sim.sim import Simulator
    from p1common.dsmr.framer import TelegramFramer

    capture = TelegramFramer().feed(STREAM.read_bytes())
    cases = [("566 capture", capture, specs.V5)]
    for fmt, spec in (("fluvius", specs.BELGIUM_FLUVIUS), ("dsmr5", specs.V5)):
        sim = Simulator(build({"seed": 5}, start=parse_local("2026-03-29T01:58"), fmt=fmt))
        telegrams = []
        for _ in range(150):  # across the spring DST change (W -> S at 02:00)
            sim.step()
            telegrams.append(sim.telegram())
        cases.append((f"meter-sim {fmt}", telegrams, spec))
    return cases


def test_every_telegram_of_a_stream_same_as_dsmr_parser() -> None:
    """The real 566-telegram capture and meter-sim streams (every telegram its own
    clock and values, across a DST change): each one field by field."""
    compared = 0
    for title, telegrams, spec in _stream_cases():
        assert len(telegrams) >= 150, title
        parser = TelegramParser(spec)
        for i, telegram in enumerate(telegrams):
            ours = parse_telegram(telegram)
            theirs = parser.parse(telegram.decode("latin-1"))
            compared += compare(f"{title} #{i}", ours, theirs, spec)
    assert compared > 20_000
