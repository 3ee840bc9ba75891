"""TelegramHandler (no broker): what gets published, when, and what gets refused."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest
from p1r_support import telegram_bytes, with_crc
from prometheus_client import REGISTRY

from p1_reader.service import ReaderSettings, TelegramHandler
from p1common.discovery import READING_BY_FIELD
from p1common.payloads import Live, Reading
from p1common.plausibility import ReadingGuard
from p1common.settings import SettingsError
from p1common.topics import Topics

GOOD = telegram_bytes("nielsbasjes__ISK5_AM550T_real.txt")
FLUVIUS = telegram_bytes("dsmr_parser__fluvius_v171.txt")


class Sink:
    def __init__(self) -> None:
        self.sent: list[tuple[str, Any, int, bool]] = []

    def __call__(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        self.sent.append((topic, payload, qos, retain))

    def on(self, topic: str) -> list[Any]:
        return [p for t, p, _, _ in self.sent if t == topic]


def handler(sink: Sink, **kw: Any) -> TelegramHandler:
    settings = ReaderSettings(**{"ha_discovery": False, **kw})
    # the fixtures are captures of 2017-2024: their meter clocks are not checked against this one
    return TelegramHandler(settings, Topics(), "home", "p1", sink, "p1/status/p1-reader-test",
                           clock=lambda: 1_700_000_000.0, guard=ReadingGuard(max_drift_s=None, tolerate_extra=False))


def bad_count(reason: str) -> float:
    return REGISTRY.get_sample_value("p1_reader_bad_telegrams_total", {"reason": reason}) or 0.0


def test_publishes_reading_live_not_raw() -> None:
    sink = Sink()
    handler(sink).feed(GOOD)
    (reading,) = [json.loads(p) for p in sink.on("p1/home/reading")]
    Reading.model_validate(reading)
    assert (reading["import_w"], reading["import_t1_kwh"], reading["source"]) == (
        377.0, 3432.827, "p1")
    (live,) = [json.loads(p) for p in sink.on("p1/home/live")]
    assert Live.model_validate(live).model_dump(exclude_none=True) == {
        "ts": 1553436320, "imp": 377, "exp": 0, "tar": 1}
    assert sink.on("p1/home/raw") == []
    assert [(q, r) for t, _, q, r in sink.sent if t == "p1/home/reading"] == [(0, True)]


def test_raw_opt_in_and_every_nth() -> None:
    sink = Sink()
    h = handler(sink, publish_raw=True, publish_every=3)
    for _ in range(7):
        h.feed(GOOD)
    assert len(sink.on("p1/home/reading")) == 3  # telegrams 1, 4, 7
    assert sink.on("p1/home/raw") == [GOOD] * 3


def test_on_change_only() -> None:
    sink = Sink()
    h = handler(sink, publish_on_change=True, check_crc=False)
    h.feed(GOOD)
    h.feed(GOOD)
    h.feed(GOOD.replace(b"0-0:1.0.0(190324150520W)", b"0-0:1.0.0(190324150521W)"))
    assert len(sink.on("p1/home/reading")) == 1  # same values, only the clock moved
    h.feed(GOOD.replace(b"00.377*kW", b"00.378*kW"))
    assert [json.loads(p)["import_w"] for p in sink.on("p1/home/reading")] == [377.0, 378.0]


def test_bad_crc_counted_never_published() -> None:
    sink = Sink()
    before = bad_count("crc")
    h = handler(sink)
    h.feed(GOOD.replace(b"00.377*kW", b"00.378*kW") + GOOD)
    assert bad_count("crc") == before + 1
    assert [json.loads(p)["import_w"] for p in sink.on("p1/home/reading")] == [377.0]


def test_truncated_and_overflow_counted() -> None:
    sink = Sink()
    before_t, before_o = bad_count("truncated"), bad_count("overflow")
    h = handler(sink)
    h.feed(GOOD[:300] + b"\r\n" + GOOD)
    h.feed(b"/" + b"1-0:1.8.1(000001.000*kWh)\r\n" * 400)
    assert bad_count("truncated") == before_t + 1
    assert bad_count("overflow") >= before_o + 1
    assert len(sink.on("p1/home/reading")) == 1


def test_discovery_for_every_field_sent_as_home_assistant_needs() -> None:
    sink = Sink()
    h = handler(sink, ha_discovery=True)
    h.feed(FLUVIUS)
    configs = {t: json.loads(p) for t, p, q, r in sink.sent if t.startswith("homeassistant/")}
    assert all(r and q == 1 for t, _, q, r in sink.sent if t.startswith("homeassistant/"))
    reading = json.loads(sink.on("p1/home/reading")[0])
    expected = sorted(k for k in reading if k in READING_BY_FIELD)
    assert sorted(t.split("/")[3] for t in configs) == expected
    assert "gas_m3" in expected and "water_m3" in expected and "l3_voltage_v" in expected
    unique = {c["unique_id"] for c in configs.values()}
    assert len(unique) == len(configs)
    by_field = {t.split("/")[3]: c for t, c in configs.items()}
    assert all(t.startswith(("homeassistant/sensor/p1_reader_home/",
                             "homeassistant/binary_sensor/p1_reader_home/")) for t in configs)
    # one device per site, shared with peak-forecaster's entities
    assert {c["device"]["identifiers"][0] for c in configs.values()} == {"p1_home"}
    for c in configs.values():
        assert c["state_topic"] == "p1/home/reading"
        assert c["availability_topic"] == "p1/status/p1-reader-test"
        assert (c["payload_available"], c["payload_not_available"]) == ("online", "offline")
        assert c["expire_after"] == 10  # eMUCS: a telegram every second
    want = {
        "import_kwh": ("energy", "total_increasing", "kWh"),
        "import_w": ("power", "measurement", "W"),
        "l1_voltage_v": ("voltage", "measurement", "V"),
        "l1_current_a": ("current", "measurement", "A"),
        "gas_m3": ("gas", "total_increasing", "m³"),
        "water_m3": ("water", "total_increasing", "m³"),
    }
    for field, (dc, sc, unit) in want.items():
        c = by_field[field]
        assert (c["device_class"], c["state_class"], c["unit_of_measurement"]) == (dc, sc, unit)
        assert c["value_template"] == (
            "{{ value_json.%s if value_json.%s is defined else None }}" % (field, field))  # noqa: UP031
        assert c["default_entity_id"] == f"sensor.p1_home_{field}"
        assert c["unique_id"] == f"p1_reader_home_{field}"
    assert by_field["import_kwh"]["device"]["model"] == "FLU5\\253769484_A"
    sink.sent.clear()
    h.feed(FLUVIUS)  # nothing new: no discovery again
    assert [t for t, *_ in sink.sent if t.startswith("homeassistant/")] == []
    h.announce()  # Home Assistant birth message
    assert len([t for t, *_ in sink.sent if t.startswith("homeassistant/")]) == len(configs)


def test_discovery_of_the_new_contract_fields() -> None:
    sink = Sink()
    # four meters, each on a reader of its own (one site has one meter: its counters follow on)
    handler(sink, ha_discovery=True).feed(telegram_bytes("dsmr_parser__v5_eon_hu.txt"))
    handler(sink, ha_discovery=True).feed(telegram_bytes("dsmr_parser__sagemcom_t210_d_r.txt"))
    handler(sink, ha_discovery=True).feed(
        telegram_bytes("dsmrreader__luxembourg_smarty.txt") + b"\r\n")  # file ends at the CRC
    handler(sink, ha_discovery=True).feed(telegram_bytes("dsmr_parser__v3.txt"))  # no CRC
    by_field = {t.split("/")[3]: json.loads(p) for t, p, _, _ in sink.sent
                if t.startswith("homeassistant/")}
    want = {
        "frequency_hz": ("frequency", "measurement", "Hz"),
        "power_factor": ("power_factor", "measurement", None),
        "l3_power_factor": ("power_factor", "measurement", None),
        "import_t3_kwh": ("energy", "total_increasing", "kWh"),
        "reactive_import_kvarh": ("reactive_energy", "total_increasing", "kvarh"),
        "reactive_export_t2_kvarh": ("reactive_energy", "total_increasing", "kvarh"),
        "reactive_export_var": ("reactive_power", "measurement", "var"),
        "l2_fuse_limit_a": ("current", None, "A"),
        "limiter_va": ("apparent_power", None, "VA"),
        "limiter_a": ("current", None, "A"),
    }
    for field, (dc, sc, unit) in want.items():
        c = by_field[field]
        assert (c["device_class"], c.get("state_class"), c.get("unit_of_measurement")) == (
            dc, sc, unit), field
    assert "unit_of_measurement" not in by_field["power_factor"]
    assert by_field["l2_fuse_limit_a"]["entity_category"] == "diagnostic"
    assert "entity_category" not in by_field["frequency_hz"]


def test_settings_from_env_and_errors() -> None:
    s = ReaderSettings.from_env({"P1_SERIAL_URL": "socket://h:1", "P1_PUBLISH_EVERY": "5",
                                 "P1_SERIAL_PROFILE": "dsmr2", "P1_PUBLISH_RAW": "yes"})
    assert (s.serial_url, s.publish_every, s.profile, s.publish_raw) == (
        "socket://h:1", 5, "dsmr2", True)
    with pytest.raises(SettingsError, match="P1_SERIAL_PROFILE"):
        ReaderSettings.from_env({"P1_SERIAL_PROFILE": "fast"})
    with pytest.raises(SettingsError, match="P1_PUBLISH_EVERY"):
        ReaderSettings.from_env({"P1_PUBLISH_EVERY": "0"})
    with pytest.raises(SettingsError, match="P1_CHECK_CRC"):
        ReaderSettings.from_env({"P1_CHECK_CRC": "maybe"})


def test_expire_after_follows_the_measured_telegram_interval() -> None:
    """A DSMR 5 meter is assumed to send every second (expire_after 10 s); one that sends
    every 10 s is re-announced with 60 s once three gaps are seen, then left alone."""

    def at(second: int) -> bytes:
        return GOOD.replace(b"0-0:1.0.0(190324150520W)",
                            b"0-0:1.0.0(1903241505%02dW)" % second)

    def expiries(sink: Sink) -> list[int]:
        return [json.loads(p)["expire_after"] for t, p, *_ in sink.sent
                if t == "homeassistant/sensor/p1_reader_home/import_kwh/config"]

    slow, fast = Sink(), Sink()
    h_slow = handler(slow, ha_discovery=True, check_crc=False)
    h_fast = handler(fast, ha_discovery=True, check_crc=False)
    for n in range(5):
        h_slow.feed(at(10 * n))
        h_fast.feed(at(n))
    assert expiries(slow) == [10, 60]
    assert expiries(fast) == [10]


def test_an_implausible_reading_is_counted_and_not_published() -> None:
    """Good CRC, impossible content: the counter went backwards, or the clock is years off."""
    sink = Sink()
    good = telegram_bytes("nielsbasjes__ISK5_AM550T_real.txt")
    assert b"1-0:1.8.1(003432.827*kWh)" in good
    h = TelegramHandler(ReaderSettings(ha_discovery=False), Topics(), "home", "p1", sink, "p1/status/x",
                        clock=lambda: datetime.fromisoformat("2019-03-24T15:05:30+01:00").timestamp())
    before = bad_count("implausible")
    assert h.handle(good) is not None
    backwards = with_crc(good.replace(b"1-0:1.8.1(003432.827*kWh)", b"1-0:1.8.1(003422.827*kWh)"))
    assert h.handle(backwards) is None
    assert bad_count("implausible") == before + 1
    assert len(sink.on("p1/home/reading")) == 1
    later = TelegramHandler(ReaderSettings(ha_discovery=False), Topics(), "home", "p1", sink, "p1/status/x",
                            clock=lambda: datetime.fromisoformat("2026-01-01T00:00:00+01:00").timestamp())
    assert later.handle(good) is None  # a meter clock 7 years behind this host's
    assert bad_count("implausible") == before + 2
