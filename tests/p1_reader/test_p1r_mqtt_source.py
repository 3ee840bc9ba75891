"""P1_SOURCE=mqtt end to end: real telegrams published on p1/<site>/raw (as an ESP P1
dongle does) -> the real Mosquitto -> a p1-reader process -> p1/<site>/reading with exact
values; corrupt payloads counted and never published; a broker restart -> subscribed
again. Expected values are read off the telegram text in tests/data/telegrams."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from p1r_support import ReaderProc, telegram_bytes

from p1_reader.sources import NotATelegram, telegram_from_payload
from support import Mosquitto, Subscriber, wait_for

FLUVIUS = telegram_bytes("dsmr_parser__fluvius_v171.txt")  # CRLF, as the meter sends it
ISK5 = telegram_bytes("nielsbasjes__ISK5_AM550T_real.txt")
V5 = telegram_bytes("dsmr_parser__v5.txt")
BAD_CRC = ISK5.replace(b"00.377*kW", b"00.999*kW")

FLUVIUS_EXPECTED = {  # dsmr_parser__fluvius_v171.txt
    "source": "p1", "ts": "2020-05-12T13:54:09+02:00", "meter_id": "1SAG3101021605",
    "import_t1_kwh": 0.034, "import_t2_kwh": 15.758, "import_kwh": 15.792, "export_kwh": 0.011,
    "import_w": 0.0, "month_max_w": 2589.0, "avg_demand_w": 2351.0, "gas_m3": 112.384,
    "water_m3": 872.234, "l1_voltage_v": 234.7, "tariff": 1, "tariff_low": False,
}
ISK5_EXPECTED = {  # nielsbasjes__ISK5_AM550T_real.txt
    "ts": "2019-03-24T15:05:20+01:00", "meter_id": "E0044007131650618", "import_w": 377.0,
    "import_kwh": 6657.459, "l3_import_w": 325.0, "l1_voltage_v": 237.2, "power_failures": 5,
}
V5_EXPECTED = {  # dsmr_parser__v5.txt
    "ts": "2017-01-02T19:20:02+01:00", "meter_id": "K8EG004046395507", "import_w": 244.0,
    "import_kwh": 6.825, "export_kwh": 2.444, "gas_m3": 0.107, "tariff": 2,
}


def lf_only_padded(telegram: bytes) -> bytes:
    """What some dongle firmwares send: LF line ends, no final line end, blanks around."""
    return b"\n  " + telegram.replace(b"\r\n", b"\n").rstrip(b"\n") + b" \t\n\n"


def subset(reading: dict, expected: dict) -> dict:
    return {k: reading.get(k) for k in expected}


def test_payload_forms_accepted_and_refused() -> None:
    assert telegram_from_payload(FLUVIUS) == FLUVIUS
    assert telegram_from_payload(lf_only_padded(ISK5)) == ISK5
    assert telegram_from_payload(FLUVIUS.rstrip(b"\r\n")) == FLUVIUS
    refused = {b"": "empty", b" \r\n": "empty", b"hello": "no_start", ISK5[:300]: "no_end",
               ISK5 + ISK5: "several", ISK5 + b"junk": "several", b"x" * 9000: "too_long",
               ISK5[:ISK5.index(b"\r\n", 150) + 2] + ISK5: "several"}
    for payload, reason in refused.items():
        with pytest.raises(NotATelegram) as err:
            telegram_from_payload(payload)
        assert err.value.reason == reason, payload[:40]


def test_mqtt_source_end_to_end(private_mosquitto: Mosquitto, tmp_path: Path) -> None:
    broker, site = private_mosquitto, "mqtt-src"
    raw, reading = f"p1/{site}/raw", f"p1/{site}/reading"
    sub = Subscriber(broker.port, reading, raw)
    proc = ReaderProc(broker.url, broker.port, site, tmp_path, ["--source", "mqtt"])
    try:
        sub.publish(raw, FLUVIUS)
        first = sub.wait(reading)[0].json()
        assert subset(first, FLUVIUS_EXPECTED) == FLUVIUS_EXPECTED
        sub.publish(raw, lf_only_padded(ISK5))
        assert subset(sub.wait(reading, 2)[1].json(), ISK5_EXPECTED) == ISK5_EXPECTED
        # corrupt: a bad CRC (parsed, refused), half a telegram, two in one, an empty payload
        for bad in (BAD_CRC, ISK5[:300], ISK5 + ISK5, b""):
            sub.publish(raw, bad)
        sub.publish(raw, V5)  # the marker: handled after everything published before it
        readings = [m.json() for m in sub.wait(reading, 3)]
        assert len(readings) == 3
        assert subset(readings[2], V5_EXPECTED) == V5_EXPECTED
        assert proc.metric("p1_reader_bad_telegrams_total", reason="crc") == 1
        assert proc.metric("p1_reader_source_errors_total", source="mqtt", reason="no_end") == 1
        assert proc.metric("p1_reader_source_errors_total", source="mqtt", reason="several") == 1
        assert proc.metric("p1_reader_source_errors_total", source="mqtt", reason="empty") == 1
        assert proc.metric("p1_reader_telegrams_total") == 3
        assert len(sub.on(raw)) == 7  # only the test's own: p1-reader publishes no raw here
        sub.close()

        broker.restart()  # a fresh broker: no session, no retained message
        sub = Subscriber(broker.port, reading, proc.status_topic)
        # p1-reader's retained "online" in the fresh broker: it has reconnected and sent its
        # SUBSCRIBE before it (same connection, in order)
        wait_for(lambda: any(m.payload == b"online" for m in sub.on(proc.status_topic)), 20)
        sub.publish(raw, FLUVIUS)
        again = sub.wait(reading)[-1].json()
        assert subset(again, FLUVIUS_EXPECTED) == FLUVIUS_EXPECTED
        assert proc.metric("p1_reader_telegrams_total") == 4
    finally:
        sub.close()
        code = proc.stop()
    assert code == 0, proc.output()


@pytest.mark.parametrize(("args", "field"), [
    (["--source", "mqtt", "--publish-raw", "true"], "P1_PUBLISH_RAW"),
    (["--source", "mqtt", "--publish-raw", "true", "--raw-topic", "p1/loop/raw"], "P1_PUBLISH_RAW"),
    (["--source", "mqtt", "--raw-topic", "dongles/+/raw"], "P1_RAW_TOPIC"),
    (["--source", "carrier-pigeon"], "--source"),
])
def test_looping_or_bad_source_config_refused(args: list[str], field: str) -> None:
    exe = Path(sys.executable).parent / "p1-reader"
    done = subprocess.run([str(exe), "--site", "loop", *args], capture_output=True, text=True,
                          timeout=30, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 2, done.stderr
    assert field in done.stderr
