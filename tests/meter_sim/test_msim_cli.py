"""The meter-sim process: pty, TCP, file output, and loads following `set` through Mosquitto."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial
from dsmr_parser import telegram_specifications
from dsmr_parser.parsers import TelegramParser
from msim_support import fields

from p1common.dsmr_crc import crc_hex
from support import Subscriber, wait_for

BIN = Path(sys.executable).with_name("meter-sim")
TELEGRAM = re.compile(rb"/[^!]*![0-9A-F]{4}\r\n")
FLUVIUS = TelegramParser(telegram_specifications.BELGIUM_FLUVIUS, apply_checksum_validation=True)


class Sim:
    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        full_env = {k: v for k, v in os.environ.items() if k != "MQTT_URL"}
        full_env.update(env or {})
        self.proc = subprocess.Popen([str(BIN), *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=full_env)

    def announced(self, prefix: str) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode().strip()
        assert line.startswith(prefix + " "), (line, self.proc.stderr.read() if self.proc.stderr else "")
        return line.split(" ", 1)[1]

    def stop(self) -> int:
        self.proc.terminate()
        try:
            return self.proc.wait(10)
        finally:
            for stream in (self.proc.stdout, self.proc.stderr):
                if stream:
                    stream.close()


@pytest.fixture()
def sims() -> Iterator[list[Sim]]:
    made: list[Sim] = []
    yield made
    for s in made:
        if s.proc.poll() is None:
            s.stop()


def read_telegrams(read, count: int, timeout_s: float = 10.0) -> list[bytes]:
    buf = b""
    deadline = time.monotonic() + timeout_s
    found: list[bytes] = []
    while len(found) < count and time.monotonic() < deadline:
        buf += read()
        start = buf.find(b"/")
        if start < 0:
            continue
        found = TELEGRAM.findall(buf[start:])
    assert len(found) >= count, f"only {len(found)} telegrams in {timeout_s} s"
    return found[:count]


def check_crc(tg: bytes) -> None:
    body = tg[: tg.rindex(b"!") + 1]
    assert tg[len(body): len(body) + 4].decode() == crc_hex(body)


def test_pty_output_is_readable_like_a_serial_port(sims: list[Sim], tmp_path: Path) -> None:
    link = tmp_path / "p1"
    sim = Sim("--pty-link", str(link), "--no-mqtt", "--speed", "10", "--start",
              "2026-01-15T08:00", "--seed", "5")
    sims.append(sim)
    path = sim.announced("PTY")
    assert path.startswith("/dev/pts/") and os.readlink(link) == path
    with serial.serial_for_url(str(link), baudrate=115200, timeout=0.2) as port:
        tgs = read_telegrams(lambda: port.read(4096), 3)
    stamps = []
    for tg in tgs:
        check_crc(tg)
        FLUVIUS.parse(tg.decode())
        stamps.append(fields(tg)["0-0:1.0.0"][0])
    secs = [int(s[10:12]) + 60 * int(s[8:10]) for s in stamps]
    assert secs[1] - secs[0] == 1 and secs[2] - secs[1] == 1
    assert sim.stop() == 0
    assert not link.exists()


def test_tcp_output_serves_telegrams(sims: list[Sim]) -> None:
    sim = Sim("--tcp", "0", "--no-mqtt", "--speed", "20", "--format", "dsmr5")
    sims.append(sim)
    host, port = sim.announced("TCP").rsplit(":", 1)
    assert host == "127.0.0.1"
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.settimeout(0.2)

        def read() -> bytes:
            try:
                return conn.recv(65536)
            except TimeoutError:
                return b""

        tgs = read_telegrams(read, 2)
    v5 = TelegramParser(telegram_specifications.V5, apply_checksum_validation=True)
    for tg in tgs:
        check_crc(tg)
        assert tg.startswith(b"/Ene5\\T210-D ESMR5.0\r\n")
        v5.parse(tg.decode())
    assert sim.stop() == 0


def test_out_file_has_one_telegram_per_simulated_second(tmp_path: Path) -> None:
    out = tmp_path / "hour.txt"
    done = subprocess.run([str(BIN), "--out", str(out), "--start", "2026-01-15T00:00",
                           "--duration", "1h", "--speed", "0", "--no-mqtt"],
                          capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    tgs = TELEGRAM.findall(out.read_bytes())
    assert len(tgs) == 3600
    assert fields(tgs[0])["0-0:1.0.0"] == ["260115000001W"]
    assert fields(tgs[-1])["0-0:1.0.0"] == ["260115010000W"]


def test_bad_settings_exit_2_naming_the_variable() -> None:
    done = subprocess.run([str(BIN), "--duration", "1s"], capture_output=True, timeout=30,
                          env={**os.environ, "METER_SIM_SPEED": "fast"})
    assert done.returncode == 2
    assert b"METER_SIM_SPEED" in done.stderr


def test_loads_follow_set_and_the_watchdog_turns_them_off(sims: list[Sim], mosquitto) -> None:
    site = "simtest"
    sub = Subscriber(mosquitto.port, f"p1/{site}/output/+/state")
    # speed 5: the default 10 s device watchdog takes 2 wall seconds
    sim = Sim("--pty", "--mqtt", mosquitto.url, "--site", site, "--no-house", "--no-pv",
              "--speed", "5", "--start", "2026-01-15T12:00")
    sims.append(sim)
    path = sim.announced("PTY")
    relay_state = f"p1/{site}/output/relay1/state"
    boiler_state = f"p1/{site}/output/boiler/state"
    first = sub.wait(relay_state)[0].json()
    assert first["on"] is False and first["override"] is False
    port = serial.serial_for_url(path, baudrate=115200, timeout=0.1)

    def latest() -> dict[str, list[str]]:
        port.reset_input_buffer()
        return fields(read_telegrams(lambda: port.read(8192), 1)[0])

    def on_time(seq: int) -> None:
        sub.publish(f"p1/{site}/output/relay1/set",
                    {"v": 1, "ts": "2026-01-15T12:00:00+01:00", "seq": seq, "ttl_s": 10, "on": True})
        sub.publish(f"p1/{site}/output/boiler/set",
                    {"v": 1, "ts": "2026-01-15T12:00:00+01:00", "seq": seq, "ttl_s": 10, "pct": 50})

    sub.publish(f"p1/{site}/output/relay1/set", b"not json")  # refused, not fatal
    seq = 1
    on_time(seq)
    wait_for(lambda: any(m.json().get("on") for m in sub.on(relay_state)), 5)
    deadline = time.monotonic() + 3.0  # 15 simulated seconds of heartbeats every 2.5 s
    while time.monotonic() < deadline:
        f = latest()
        assert f["1-0:61.7.0"] == ["01.500*kW"]  # relay1 on L3
        assert f["1-0:41.7.0"] == ["01.200*kW"]  # boiler at 50 % of 2400 W on L2
        seq += 1
        on_time(seq)
        time.sleep(0.5)
    last_set = time.monotonic()
    states = [m.json() for m in sub.on(relay_state)]
    assert all(s["on"] for s in states[1:]), "went off during heartbeats"
    assert states[-1]["seq"] == seq and states[-1]["v"] == 1
    off = wait_for(lambda: [m for m in sub.on(relay_state) if m.json()["on"] is False][1:], 10)
    assert off[0].t - last_set > 1.0  # 10 s simulated = 2 s wall, not at once
    wait_for(lambda: sub.on(boiler_state)[-1].json()["pct"] == 0.0, 5)
    f = latest()
    assert f["1-0:61.7.0"] == ["00.000*kW"] and f["1-0:41.7.0"] == ["00.000*kW"]
    port.close()
    assert sim.stop() == 0
    # the state is retained for consumers that come later
    late = Subscriber(mosquitto.port, relay_state)
    msg = late.wait(relay_state)[0]
    assert msg.retain and json.loads(msg.payload)["on"] is False
    late.close()
    sub.close()
