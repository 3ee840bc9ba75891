"""evcc as the charger driver: the topics and payloads the gateway writes and reads, checked
against evcc's documented MQTT API (tests/data/evcc/mqtt-api.md, a copy with provenance);
the gateway a real process on a real Mosquitto. evcc itself is not run here. And the
evcc.yaml we document: its jq expressions run (jq) on real readings."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from evgw_support import Gateway

from support import REPO, TELEGRAMS, Mosquitto, Subscriber, wait_for

SITE = "evevcc"
DOC = REPO / "tests" / "data" / "evcc" / "mqtt-api.md"
EVCC_YAML = REPO / "deploy" / "evcc" / "evcc.yaml"
OUTPUTS = {"v": 1, "outputs": [{
    "id": "car", "kind": "ev", "mode": "ev", "rated_w": 11040, "phases": 3,
    "min_current_a": 6, "max_current_a": 16, "charger": "evcc", "charger_ref": "1"}]}


def documented() -> tuple[set[str], set[str], set[str]]:
    """(read-only loadpoint values, writable loadpoint values, mode values) from the copy."""
    text = DOC.read_text()
    read_part, write_part = text.split("## Writable Topics")
    names = re.compile(r"^- `evcc/loadpoints/<id>/([A-Za-z]+)`", re.M)
    modes = set(re.findall(r"`(\w+)`", re.search(r"/mode`: charge mode \(([^)]*)\)",
                                                 write_part).group(1)))  # type: ignore[union-attr]
    assert "append `/set` to the topic" in write_part
    return set(names.findall(read_part)), set(names.findall(write_part)), modes


def test_the_copy_of_evccs_api_says_what_the_gateway_relies_on() -> None:
    read, write, modes = documented()
    assert read == {"connected", "charging", "mode", "chargePower", "chargedEnergy",
                    "phasesActive"}
    assert write == {"mode", "phasesConfigured", "minCurrent", "maxCurrent"}
    assert modes == {"off", "smart", "now"}


@pytest.mark.timeout(90)
def test_evcc_topics_and_payloads(mosquitto: Mosquitto, tmp_path: Path) -> None:
    read_names, write_names, modes = documented()
    sub = Subscriber(mosquitto.port, "evcc/#", f"p1/{SITE}/output/car/state")
    sub.publish(f"p1/config/{SITE}/outputs", OUTPUTS, retain=True)
    gw = Gateway(mosquitto, tmp_path, SITE, EVGW_OCPP_PORT="0").start()
    seq = iter(range(1, 100))

    def send_set(current: float, phases: int, ttl_s: float = 3600) -> int:
        n = next(seq)
        sub.publish(f"p1/{SITE}/output/car/set", {"v": 1, "ts": "2026-01-14T22:00:00+01:00",
                                                  "seq": n, "ttl_s": ttl_s,
                                                  "current_a": current, "phases": phases})
        return n

    def writes() -> list[tuple[str, str]]:
        return [(m.topic, m.payload.decode()) for m in sub.on("evcc/loadpoints/+/+/set")]

    def state() -> dict[str, Any]:
        msgs = sub.on(f"p1/{SITE}/output/car/state")
        doc = dict(msgs[-1].json()) if msgs else {}
        doc.pop("ts", None)
        return doc

    lp = "evcc/loadpoints/1"
    try:
        wait_for(lambda: "pause-on-failure connection up" in gw.output(), 10)
        # no set yet: the loadpoint is paused
        wait_for(lambda: writes() == [(f"{lp}/mode/set", "off")], 10)
        n = send_set(16, 3)
        expected = [(f"{lp}/mode/set", "off"), (f"{lp}/phasesConfigured/set", "3"),
                    (f"{lp}/maxCurrent/set", "16"), (f"{lp}/mode/set", "now")]
        wait_for(lambda: writes() == expected, 10)
        # what evcc publishes of the loadpoint (plain values) comes back as our state
        for name, value in (("connected", "true"), ("charging", "true"),
                            ("chargePower", "11040"), ("chargedEnergy", "5230.5"),
                            ("phasesActive", "3")):
            assert name in read_names
            sub.publish(f"{lp}/{name}", value, retain=True)
        want = {"v": 1, "current_a": 16.0, "phases": 3, "on": True, "seq": n,
                "connected": True, "charging": True, "power_w": 11040.0, "session_wh": 5230.5}
        wait_for(lambda: state() == want, 10)
        # a bad set (a number as a string) is refused, named in the log, and not applied:
        # the next writes are those of the good set after it, on the same connection
        sub.publish(f"p1/{SITE}/output/car/set", {"v": 1, "ts": "2026-01-14T22:00:00+01:00",
                                                  "seq": 90, "ttl_s": 3600, "current_a": "20"})
        send_set(7.5, 1)
        expected += [(f"{lp}/phasesConfigured/set", "1"), (f"{lp}/maxCurrent/set", "7.5"),
                     (f"{lp}/mode/set", "now")]
        wait_for(lambda: writes() == expected, 10)
        assert ("ignored a bad payload on p1/evevcc/output/car/set: set for car: current_a: "
                "Input should be a valid number") in gw.output()
        send_set(4, 1)  # below the charger's 6 A minimum: pause
        expected += [(f"{lp}/mode/set", "off")]
        wait_for(lambda: writes() == expected, 10)
        send_set(10, 3, ttl_s=1.0)  # and then the controller goes silent: the watchdog pauses
        expected += [(f"{lp}/phasesConfigured/set", "3"), (f"{lp}/maxCurrent/set", "10"),
                     (f"{lp}/mode/set", "now"), (f"{lp}/mode/set", "off")]
        wait_for(lambda: writes() == expected, 10)
        send_set(12, 3)
        expected += [(f"{lp}/phasesConfigured/set", "3"), (f"{lp}/maxCurrent/set", "12"),
                     (f"{lp}/mode/set", "now")]
        wait_for(lambda: writes() == expected, 10)
        # the gateway dies while the car charges: the broker sends its last will, mode off
        gw.kill()
        expected += [(f"{lp}/mode/set", "off")]
        wait_for(lambda: writes() == expected, 30)
    finally:
        for name in ("connected", "charging", "chargePower", "chargedEnergy", "phasesActive"):
            sub.publish(f"{lp}/{name}", b"", retain=True)
        sub.publish(f"p1/config/{SITE}/outputs", b"", retain=True)
        sub.close()
        gw.stop()
    # every write is a documented writable loadpoint topic + /set, with a documented value
    for topic, payload in expected:
        m = re.fullmatch(r"evcc/loadpoints/(\d+)/(\w+)/set", topic)
        assert m and m.group(2) in write_names, topic
        if m.group(2) == "mode":
            assert payload in modes
        elif m.group(2) == "phasesConfigured":
            assert payload in ("1", "3")
        else:
            assert re.fullmatch(r"\d+(\.\d)?", payload)


def readings(name: str) -> list[dict[str, Any]]:
    out = subprocess.run([str(Path(shutil.which("p1-reader") or REPO / ".venv/bin/p1-reader")),
                          "parse", "--site", "home", str(TELEGRAMS / name)],
                         capture_output=True, text=True, check=True).stdout
    return [json.loads(line) for line in out.splitlines()]


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed (make setup)")
def test_evcc_yaml_reads_our_reading_with_jq() -> None:
    cfg = yaml.safe_load(EVCC_YAML.read_text())
    (meter,) = cfg["meters"]
    assert cfg["site"]["meters"]["grid"] == meter["name"]
    plugins = [("power", meter["power"]), ("energy", meter["energy"])] + [
        (f"current{i + 1}", c) for i, c in enumerate(meter["currents"])]
    # a Dutch Kaifa exporting 1869 W; a Belgian Fluvius meter importing 338 W (1-0:1.7.0
    # 00.338 kW, 1-0:1.8.1 301.548 + 1-0:1.8.2 270.014 kWh, 31/51/71.7.0 0.27, 0.88, 0.52 A)
    expected = {
        "athombv__dsmr-4.2-kfm-1.txt": {"power": -1869.0, "energy": 9570.775,
                                        "current1": 3.0, "current2": 3.0, "current3": 2.0},
        "dsmr_parser__fluvius_v171_alt.txt": {"power": 338.0, "energy": 571.562,
                                              "current1": 0.27, "current2": 0.88,
                                              "current3": 0.52},
    }
    for name, values in expected.items():
        (reading,) = readings(name)[:1]
        for what, plugin in plugins:
            assert plugin["source"] == "mqtt" and plugin["topic"] == "p1/home/reading"
            got = subprocess.run(["jq", "-c", plugin["jq"]], input=json.dumps(reading),
                                 capture_output=True, text=True, check=True).stdout.strip()
            assert json.loads(got) == values[what], (name, what, got)


def test_the_docs_show_the_evcc_yaml_as_it_is() -> None:
    doc = (REPO / "docs" / "ev-chargers.md").read_text()
    assert f"```yaml\n{EVCC_YAML.read_text()}```" in doc
