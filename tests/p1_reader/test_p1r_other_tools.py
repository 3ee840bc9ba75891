"""docs/other-tools.md's copy-paste configurations, checked against a reading p1-reader
really publishes here (a real DSMR 5 telegram from tests/data/telegrams, Iskra AM550,
nielsbasjes__ISK5_AM550T_real.txt). Expected values are read off that telegram's text:
1-0:1.7.0(00.377*kW) -> 377 W imported, 1-0:2.7.0(00.000*kW), 1-0:1.8.1 + 1-0:1.8.2 =
3432.827 + 3224.632 kWh, currents 000 / 000 / 002 A, 1-0:32.7.0(237.2*V), tariff 0001.

- evcc: every `jq` expression is run by the real jq (evcc's plugin is jq-compatible).
- Node-RED: the function node's JavaScript runs in the real Node.js on the payload as the
  `mqtt in` node (datatype json) hands it over.
- Telegraf: the json_v2 paths (plain GJSON field names) resolve in the reading, with the
  declared types; the timestamp parses as RFC 3339. (Telegraf itself is not installable
  here: no Debian or PyPI package.)
- Home Assistant: the DSMR versions the page names are ones dsmr_parser (HA's library) knows.
Every MQTT topic or filter in them must match the reading topic of the contract."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from typing import Any

import paho.mqtt.client as paho
import pytest
import yaml
from p1r_support import TELEGRAMS, ReaderProc

from p1common.topics import Topics
from support import REPO, Mosquitto, Subscriber

PAGE = REPO / "docs" / "other-tools.md"
READING_TOPIC = Topics().reading("home")


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", PAGE.read_text(), re.S)


@pytest.fixture(scope="module")
def reading(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The retained p1/home/reading p1-reader publishes for one real telegram file."""
    broker = Mosquitto()
    tmp = tmp_path_factory.mktemp("other-tools")
    try:
        sub = Subscriber(broker.port, READING_TOPIC)
        proc = ReaderProc(broker.url, broker.port, "home", tmp,
                          ["--serial", str(TELEGRAMS / "nielsbasjes__ISK5_AM550T_real.txt")])
        try:
            assert proc.wait() == 0, proc.output()
            payload: dict[str, Any] = sub.wait(READING_TOPIC)[0].json()
        finally:
            sub.close()
            proc.stop()
    finally:
        broker.close()
    return payload


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed (make setup)")
def test_evcc_grid_meter(reading: dict[str, Any]) -> None:
    (config,) = [yaml.safe_load(b) for b in blocks("yaml")]
    grid = next(m for m in config["meters"] if m["name"] == config["site"]["meters"]["grid"])
    assert grid["type"] == "custom"
    plugins = {"power": grid["power"], "energy": grid["energy"]}
    plugins |= {f"current{i}": p for i, p in enumerate(grid["currents"], 1)}
    values = {}
    for name, plugin in plugins.items():
        assert plugin["source"] == "mqtt" and plugin["topic"] == READING_TOPIC, name
        done = subprocess.run(["jq", plugin["jq"]], input=json.dumps(reading), text=True,
                              capture_output=True, timeout=30, check=True)
        values[name] = json.loads(done.stdout)
    assert values == {"power": 377.0, "energy": 6657.459,
                      "current1": 0.0, "current2": 0.0, "current3": 2.0}


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed (make setup)")
def test_node_red_flow(reading: dict[str, Any]) -> None:
    (flow,) = [json.loads(b) for b in blocks("json")]
    nodes = {n["id"]: n for n in flow}
    mqtt_in = next(n for n in flow if n["type"] == "mqtt in")
    assert paho.topic_matches_sub(mqtt_in["topic"], READING_TOPIC)
    assert mqtt_in["datatype"] == "json" and nodes[mqtt_in["broker"]]["type"] == "mqtt-broker"
    (func_id,) = mqtt_in["wires"][0]
    func = nodes[func_id]
    assert func["type"] == "function"
    script = ("const msg = {{topic: {}, payload: {}}};\n"
              "const out = (function (msg) {{\n{}\n}})(msg);\n"
              "process.stdout.write(JSON.stringify(out));\n").format(
        json.dumps(READING_TOPIC), json.dumps(reading), func["func"])
    done = subprocess.run(["node", "-e", script], capture_output=True, text=True, timeout=30,
                          check=True)
    assert json.loads(done.stdout) == {"topic": "grid_w", "payload": 377, "tariff_low": True,
                                       "ts": "2019-03-24T15:05:20+01:00"}
    # a reading without net_w (not a whole one) gives no message
    script = script.replace(json.dumps(reading), json.dumps({"v": 1, "site": "home"}))
    done = subprocess.run(["node", "-e", script], capture_output=True, text=True, timeout=30,
                          check=True)
    assert done.stdout == "null"


def test_telegraf_json_v2(reading: dict[str, Any]) -> None:
    from datetime import datetime

    (config,) = [tomllib.loads(b) for b in blocks("toml")]
    (consumer,) = config["inputs"]["mqtt_consumer"]
    assert any(paho.topic_matches_sub(t, READING_TOPIC) for t in consumer["topics"])
    assert consumer["data_format"] == "json_v2"
    (parser,) = consumer["json_v2"]
    assert parser["timestamp_format"] == "rfc3339"
    assert datetime.fromisoformat(reading[parser["timestamp_path"]]).isoformat() == (
        "2019-03-24T15:05:20+01:00")
    plain = re.compile(r"^[a-z0-9_]+$")  # no GJSON syntax: the path is the field name
    tags = {t["path"]: reading[t["path"]] for t in parser["tag"] if plain.match(t["path"])}
    assert tags == {"site": "home", "meter_id": "E0044007131650618"}
    kinds = {"float": (int, float), "int": (int,), "string": (str,), "bool": (bool,)}
    fields = {}
    for field in parser["field"]:
        assert plain.match(field["path"]), field
        value = reading[field["path"]]
        assert isinstance(value, kinds[field["type"]]) and not isinstance(value, bool), field
        fields[field["path"]] = value
    assert fields == {"net_w": 377.0, "import_w": 377.0, "export_w": 0.0,
                      "import_kwh": 6657.459, "export_kwh": 0.0, "l1_voltage_v": 237.2,
                      "tariff": 1}


def test_home_assistant_dsmr_versions_are_dsmr_parsers() -> None:
    from dsmr_parser.clients.protocol import create_dsmr_protocol

    section = PAGE.read_text().split("## Home Assistant DSMR integration", 1)[1].split("\n## ", 1)[0]
    versions = re.findall(r"`([0-9][0-9.]*[A-Z]?|Q3D)`\s+\(", section)
    assert set(versions) == {"5B", "5", "4", "2.2", "5L", "5S", "Q3D"}
    for version in versions:
        create_dsmr_protocol(version, lambda telegram: None)  # NotImplementedError if unknown
    assert "`2323`" in section and "P1_SERVE_RAW=0.0.0.0:2323" in section


def test_page_is_linked() -> None:
    assert "other-tools.md" in (REPO / "docs" / "README.md").read_text()
    assert "other-tools.md" in (REPO / "docs" / "p1-reader.md").read_text()
