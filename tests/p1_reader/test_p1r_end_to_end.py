"""End to end: a real pty / TCP socket written by the test, p1-reader on the other end,
the real Mosquitto in the middle, a subscriber checking exact values."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import termios
import threading
import time
import tty
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from p1r_support import TELEGRAMS, telegram_bytes
from prometheus_client import REGISTRY

from p1_reader.service import ReaderSettings, run
from p1common.payloads import Reading
from p1common.settings import CommonSettings
from support import Mosquitto, Subscriber, wait_for

GOOD = telegram_bytes("nielsbasjes__ISK5_AM550T_real.txt")
FLUVIUS = telegram_bytes("dsmr_parser__fluvius_v171.txt")
BAD_CRC = GOOD.replace(b"00.377*kW", b"00.999*kW")


def metric(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


@contextmanager
def reader(broker: Mosquitto, site: str, url: str, **kw: Any) -> Iterator[None]:
    """p1-reader in a thread of this process (so its Prometheus counters are visible)."""
    stop = threading.Event()
    settings = ReaderSettings(serial_url=url, **{"profile": "dsmr4", **kw})
    # the fixtures are captures of 2017-2024: their meter clocks are not checked against this one
    common = CommonSettings.from_env({"MQTT_URL": broker.url, "P1_SITE": site, "P1_MAX_CLOCK_DRIFT_S": "0"})
    thread = threading.Thread(
        target=run, args=(settings, common), kwargs={"install_signals": False, "stop": stop},
        daemon=True,
    )
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)
        assert not thread.is_alive()


def assert_retained(broker: Mosquitto, topic: str) -> None:
    late = Subscriber(broker.port, topic)
    try:
        assert late.wait(topic)[0].retain
    finally:
        late.close()


class Pty:
    """A pty pair; the test writes the master, p1-reader opens the slave through a symlink."""

    def __init__(self, link: Path) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        attrs = termios.tcgetattr(self.slave)
        attrs[4] = attrs[5] = termios.B115200  # ispeed, ospeed
        termios.tcsetattr(self.slave, termios.TCSANOW, attrs)
        tmp = link.with_suffix(".new")
        os.symlink(os.ttyname(self.slave), tmp)
        os.replace(tmp, link)

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def close(self) -> None:
        os.close(self.master)
        os.close(self.slave)


def write_until(pty_or_conn: Any, data: bytes, sub: Subscriber, topic: str, count: int = 1,
                timeout_s: float = 15.0) -> list[Any]:
    """Write the telegram every 0.3 s until ``count`` messages arrived (port opening races)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pty_or_conn.write(data)
        time.sleep(0.3)
        if len(sub.on(topic)) >= count:
            return sub.on(topic)
    raise AssertionError(f"no {topic} within {timeout_s} s")


def test_pty_to_mqtt_exact_values_and_reopen(mosquitto: Mosquitto, tmp_path: Path) -> None:
    link = tmp_path / "ttyP1"
    first = Pty(link)
    sub = Subscriber(mosquitto.port, "p1/e2e-pty/#")
    opens = metric("p1_reader_port_opens_total")
    try:
        with reader(mosquitto, "e2e-pty", str(link)):
            msgs = write_until(first, GOOD, sub, "p1/e2e-pty/reading")
            reading = msgs[0].json()
            Reading.model_validate(reading)
            assert_retained(mosquitto, "p1/e2e-pty/reading")
            expected = {
                "v": 1, "site": "e2e-pty", "source": "p1", "ts": "2019-03-24T15:05:20+01:00",
                "ts_source": "meter", "meter_id": "E0044007131650618", "tariff": 1,
                "import_t1_kwh": 3432.827, "import_t2_kwh": 3224.632, "import_kwh": 6657.459,
                "export_kwh": 0.0, "import_w": 377.0, "export_w": 0.0, "net_w": 377.0,
                "l1_import_w": 45.0, "l2_import_w": 11.0, "l3_import_w": 325.0,
                "l1_voltage_v": 237.2, "l1_current_a": 0.0, "l3_current_a": 2.0,
                "power_failures": 5, "long_power_failures": 3, "dsmr_version": "50",
            }
            assert {k: reading.get(k) for k in expected} == expected
            live = sub.wait("p1/e2e-pty/live")[0].json()
            assert live == {"ts": 1553436320, "imp": 377, "exp": 0, "tar": 1}
            assert sub.on("p1/e2e-pty/raw") == []
            # the port disappears (USB unplugged) and comes back under the same name
            first.close()
            # p1-reader has seen it go (its port gauge drops) before the new one appears
            wait_for(lambda: REGISTRY.get_sample_value("p1_reader_port_open") == 0, 10)
            second = Pty(link)
            try:
                n = len(sub.on("p1/e2e-pty/reading"))
                write_until(second, FLUVIUS, sub, "p1/e2e-pty/reading", count=n + 1)
                last = sub.on("p1/e2e-pty/reading")[-1].json()
                assert (last["gas_m3"], last["month_max_w"]) == (112.384, 2589.0)
                assert metric("p1_reader_port_opens_total") >= opens + 2
            finally:
                second.close()
    finally:
        sub.close()


class TcpMeter:
    """A ser2net-like TCP server: accepts p1-reader and lets the test write to it."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.conn: socket.socket | None = None
        self._accepted = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self.conn, _ = self.server.accept()
        self._accepted.set()

    def write(self, data: bytes) -> None:
        if self._accepted.wait(0.1) and self.conn is not None:
            self.conn.sendall(data)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.server.close()


def test_socket_url_bad_crc_not_published_but_counted(mosquitto: Mosquitto) -> None:
    meter = TcpMeter()
    sub = Subscriber(mosquitto.port, "p1/e2e-tcp/reading", "p1/e2e-tcp/raw")
    bad_before = metric("p1_reader_bad_telegrams_total", {"reason": "crc"})
    opens = metric("p1_reader_port_opens_total")
    try:
        with reader(mosquitto, "e2e-tcp", f"socket://127.0.0.1:{meter.port}",
                    profile="auto", publish_raw=True):
            # p1-reader drops what is waiting while it opens the port: write once it has
            wait_for(lambda: metric("p1_reader_port_opens_total") > opens, 10)
            meter.write(b"\x00garbage\xff" + BAD_CRC + b"noise" + GOOD)
            # GOOD came after the rest in the same write: once its reading and its raw
            # telegram (published after the reading) are here, the rest has been handled
            msgs = sub.wait("p1/e2e-tcp/reading")
            sub.wait("p1/e2e-tcp/raw")
            readings = [m.json() for m in sub.on("p1/e2e-tcp/reading")]
            assert [r["import_w"] for r in readings] == [377.0]
            assert readings[0]["meter_id"] == "E0044007131650618"
            assert [m.payload for m in sub.on("p1/e2e-tcp/raw")] == [GOOD]
            assert metric("p1_reader_bad_telegrams_total", {"reason": "crc"}) == bad_before + 1
            assert_retained(mosquitto, "p1/e2e-tcp/reading")
            assert msgs
    finally:
        sub.close()
        meter.close()


def test_ha_discovery_resent_on_home_assistant_birth(mosquitto: Mosquitto, tmp_path: Path) -> None:
    link = tmp_path / "ttyHA"
    pty = Pty(link)
    sub = Subscriber(mosquitto.port, "homeassistant/sensor/p1_reader_e2e-ha/#", "p1/e2e-ha/reading")
    try:
        with reader(mosquitto, "e2e-ha", str(link), ha_discovery=True):
            write_until(pty, FLUVIUS, sub, "p1/e2e-ha/reading")
            # p1-reader announced every field before its reading; the marker (QoS 1, sent
            # now, so queued for us after those QoS 1 configs) says they are all here
            configs_topic = "homeassistant/sensor/p1_reader_e2e-ha/+/config"
            marker = "homeassistant/sensor/p1_reader_e2e-ha/marker"
            sub.publish(marker, "1")
            sub.wait(marker)
            configs = sub.on(configs_topic)
            n = len(configs)
            assert n >= 20
            gas = next(m for m in configs if m.topic.endswith("/gas_m3/config")).json()
            assert (gas["device_class"], gas["unit_of_measurement"]) == ("gas", "m³")
            assert gas["availability_topic"].startswith("p1/status/p1-reader-e2e-ha")
            sub.publish("homeassistant/status", "online")  # Home Assistant's birth: all again
            sub.wait(configs_topic, count=2 * n)
            sub.publish(marker, "2")
            sub.wait(marker, count=2)
            assert len(sub.on(configs_topic)) == 2 * n
    finally:
        sub.close()
        pty.close()


def test_console_script_replay_and_parse(mosquitto: Mosquitto) -> None:
    exe = Path(sys.executable).parent / "p1-reader"
    stream = TELEGRAMS / "nielsbasjes__ttyUSB0-raw_566x.dsmr"
    sub = Subscriber(mosquitto.port, "p1/e2e-replay/reading")
    env = {**os.environ, "MQTT_URL": mosquitto.url, "P1_SITE": "e2e-replay",
           "P1_HA_DISCOVERY": "false"}
    try:
        done = subprocess.run([str(exe), "--replay", str(stream), "--speed", "0"], env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        msgs = sub.wait("p1/e2e-replay/reading", count=566, timeout_s=20)
        assert len(msgs) == 566
        assert {m.json()["source"] for m in msgs} == {"replay"}
        assert msgs[-1].json()["ts"] == "2019-03-24T15:14:45+01:00"
    finally:
        sub.close()
    files = [str(TELEGRAMS / "dsmr_parser__v5.txt"), str(TELEGRAMS / "athombv__dsmr-4.0-isk-1.txt")]
    done = subprocess.run([str(exe), "parse", *files], capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["gas_m3"] == 0.107
    assert done.stderr == (f"{files[1]}: telegram 1: CRC mismatch: the telegram says 522B, "
                           "its content gives 8FC7\n")
    with stream.open("rb") as fh:
        done = subprocess.run([str(exe), "parse", "-"], stdin=fh, capture_output=True, timeout=30)
    assert done.returncode == 0 and len(done.stdout.splitlines()) == 566


@pytest.mark.parametrize("args", [["--help"], ["parse", "--help"]])
def test_help_is_clear(args: list[str]) -> None:
    exe = Path(sys.executable).parent / "p1-reader"
    done = subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0
    assert "usage: p1-reader" in done.stdout
    if args == ["--help"]:
        assert "P1_SERIAL_URL" in done.stdout and "socket://" in done.stdout
