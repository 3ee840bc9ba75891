"""Dutch and Belgian meters, night and day, end to end: telegrams on a pty -> p1-reader
(process) -> Mosquitto -> load-controller (process) -> the `set` of an output in mode
`tariff`. A Dutch meter's tariff 1 is the low one; a Belgian meter's tariff 2 is night.

Telegrams: real captures (tests/data/telegrams) with only the tariff object changed and
the CRC recomputed, so p1-reader accepts them as a meter would send them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from p1r_support import telegram_bytes, with_crc
from test_p1r_end_to_end import Pty

from p1common.topics import Topics
from support import Mosquitto, Subscriber, wait_for

T = Topics()
BRUSSELS = ZoneInfo("Europe/Brussels")  # Dutch and Belgian meters both keep CET/CEST


def with_tariff(telegram: bytes, code: int) -> bytes:
    """The telegram with 0-0:96.14.0 set to ``code``, the meter clock set to now (a meter's
    clock moves on: the load-controller's watchdog follows it) and a CRC that matches again."""
    start = telegram.index(b"0-0:96.14.0(") + len(b"0-0:96.14.0(")
    body = telegram[:start] + b"%04d" % code + telegram[start + 4:]
    now = datetime.now(BRUSSELS)
    clock = now.strftime("%y%m%d%H%M%S").encode() + (b"S" if now.dst() else b"W")
    start = body.index(b"0-0:1.0.0(") + len(b"0-0:1.0.0(")
    return with_crc(body[:start] + clock + body[start + 13:])


CASES = {
    # country: (fixture, {meter code: (tariff_low, heater decision, reason)})
    "nl": ("nielsbasjes__ISK5_AM550T_real.txt",
           {1: (True, "on", "on: low tariff (night)"), 2: (False, "off", "off: normal tariff (day)")}),
    "be": ("dsmr_parser__fluvius_v171.txt",
           {2: (True, "on", "on: low tariff (night)"), 1: (False, "off", "off: normal tariff (day)")}),
}


@pytest.mark.parametrize("country", sorted(CASES))
def test_tariff_mode_switches_on_the_low_tariff(mosquitto: Mosquitto, tmp_path: Path, country: str) -> None:
    fixture, codes = CASES[country]
    site = f"tariff{country}{os.getpid()}"
    link = tmp_path / "ttyP1"
    pty = Pty(link)
    cfg = tmp_path / "outputs.json"
    cfg.write_text(json.dumps({"v": 1, "outputs": [
        {"id": "heater", "kind": "relay", "rated_w": 2000, "mode": "tariff"}]}))
    env = {**os.environ, "MQTT_URL": mosquitto.url, "P1_SITE": site, "P1_STATE_DIR": str(tmp_path),
           "P1_HA_DISCOVERY": "false"}
    sub = Subscriber(mosquitto.port, T.reading(site), T.control(site), T.output_set(site, "heater"))
    procs = [
        subprocess.Popen([sys.executable, "-m", "p1_reader.cli", "--serial", str(link), "--profile", "dsmr4"],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True),
        subprocess.Popen([sys.executable, "-m", "load_controller.cli", "--config", str(cfg)],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True),
    ]
    base = telegram_bytes(fixture)
    try:
        for code, (low, decision, reason) in codes.items():
            def decided(code: int = code, reason: str = reason) -> Any:
                pty.write(with_tariff(base, code))
                controls = sub.on(T.control(site))
                if controls and controls[-1].json()["outputs"][0]["reason"] == reason:
                    return controls[-1].json()
                return None

            control = wait_for(decided, timeout_s=20, interval_s=0.3)
            reading = sub.on(T.reading(site))[-1].json()
            assert (reading["tariff"], reading["tariff_low"]) == (code, low)
            assert (control["tariff"], control["tariff_low"]) == (code, low)
            heater = control["outputs"][0]
            assert (heater["id"], heater["mode"], heater["decision"]) == ("heater", "tariff", decision)
            # the set of that decision left with it (QoS 1 may land just after the control)
            wait_for(lambda decision=decision: [m.json()["on"] for m in sub.on(T.output_set(site, "heater"))]
                     [-1:] == [decision == "on"], timeout_s=10)
    finally:
        for proc in procs:
            proc.terminate()
        outputs = [proc.communicate(timeout=20)[0] for proc in procs]
        sub.close()
        pty.close()
    assert [proc.returncode for proc in procs] == [0, 0], outputs
