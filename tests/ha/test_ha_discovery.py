"""Discovery against a real Home Assistant 2025.4.4: simulated meters -> p1-reader ->
peak-forecaster -> Mosquitto -> Home Assistant, asserted from Home Assistant's own files
(entity and device registries, the recorder's SQLite, home-assistant.log) and APIs
(REST states, websocket energy/validate).

Two sites: ``home`` (meter-sim Fluvius eMUCS 1.7.1 with gas and water) and ``nl`` (meter-sim
DSMR 5 with gas), plus ``edge``: configs from the builder and one hand-made reading with
fields missing and a 300-character message (templates must give *unknown*, cut to 255, no
template warning).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from ha_support import HomeAssistant, skip_reason

from p1common.discovery import reading_discovery
from support import Mosquitto, Subscriber, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]

BIN = Path(sys.executable).parent
E = ("kWh", "energy", "total_increasing")
P = ("W", "power", "measurement")
# reading field -> (unit, device class, state class): what Home Assistant must show
READING = {
    **{f: E for f in ("import_kwh", "import_t1_kwh", "import_t2_kwh", "export_kwh",
                      "export_t1_kwh", "export_t2_kwh")},
    **{f: P for f in ("import_w", "export_w", "net_w", "avg_demand_w", "month_max_w",
                      *(f"l{n}_{d}_w" for n in (1, 2, 3) for d in ("import", "export")))},
    **{f"l{n}_voltage_v": ("V", "voltage", "measurement") for n in (1, 2, 3)},
    **{f"l{n}_current_a": ("A", "current", "measurement") for n in (1, 2, 3)},
    "month_max_ts": (None, "timestamp", None),
    "gas_m3": ("m³", "gas", "total_increasing"),
    "water_m3": ("m³", "water", "total_increasing"),
    "power_failures": (None, None, "total_increasing"),
    "long_power_failures": (None, None, "total_increasing"),
    "tariff": (None, None, None),
    "breaker": (None, None, None),
    "tariff_low": (None, None, None),  # binary_sensor
}
# peak-forecaster: key -> (unit, device class, state class, topic leaf, payload field)
FORECASTER = {
    "quarter_avg": ("W", "power", "measurement", "peak", "avg_w"),
    "quarter_forecast": ("W", "power", "measurement", "peak", "forecast_w"),
    "quarter_headroom": ("W", "power", "measurement", "peak", "headroom_w"),
    "peak_threshold": ("W", "power", "measurement", "peak", "threshold_w"),
    "peak_level": (None, "enum", None, "peak", "level"),
    "quarter_avg_source": (None, "enum", None, "peak", "avg_source"),
    # the learner: cold in this short run, so no probability (unknown, never invented)
    "peak_probability": ("%", None, "measurement", "peak", "probability"),
    "peak_days_learned": (None, None, None, "peak", "days_learned"),
    "month_peak": ("W", "power", "measurement", "peak/month", "peak_w"),
    "billed_peak": ("W", "power", "measurement", "peak/month", "billed_w"),
    "capacity_cost": ("EUR", "monetary", None, "peak/month", "cost_eur_year"),
    "month_peak_is_floor": (None, None, None, "peak/month", "peak_is_floor"),
}
BINARY = {"tariff_low", "month_peak_is_floor"}
SITES = {"home": "fluvius", "nl": "dsmr5"}
BAD_LOG = re.compile(r"^\S+ \S+ (WARNING|ERROR) .*(mqtt|[Tt]emplate)", re.MULTILINE)


def entity_id(site: str, key: str) -> str:
    return f"{'binary_sensor' if key in BINARY else 'sensor'}.p1_{site}_{key}"


@pytest.fixture()
def ha_dir(tmp_path: Path) -> Path:
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    return tmp_path


class Proc:
    def __init__(self, name: str, args: list[str], env: dict[str, str], log: Path) -> None:
        self.name, self.log = name, log
        with log.open("ab") as fh:
            self.proc = subprocess.Popen([str(BIN / name), *args], env={**os.environ, **env},
                                         stdout=fh, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@contextmanager
def stack(broker: Mosquitto, tmp: Path) -> Iterator[dict[str, Proc]]:
    """One meter-sim (pty) + p1-reader per site, one peak-forecaster for every site."""
    procs: dict[str, Proc] = {}
    env = {"MQTT_URL": broker.url, "LOG_LEVEL": "INFO"}
    try:
        for site, fmt in SITES.items():
            link = tmp / f"tty-{site}"
            procs[f"sim-{site}"] = Proc(
                "meter-sim", ["--pty-link", str(link), "--format", fmt, "--speed", "1",
                              "--no-mqtt", "--site", site],
                env, tmp / f"sim-{site}.log")
            wait_for(link.exists, 15)
            procs[f"reader-{site}"] = Proc(
                "p1-reader", ["--serial", str(link), "--profile", "dsmr4"],
                {**env, "P1_SITE": site, "MQTT_CLIENT_ID": f"p1-reader-{site}"},
                tmp / f"reader-{site}.log")
        procs["forecaster"] = Proc(
            "peak-forecaster", ["run"],
            {**env, "MQTT_CLIENT_ID": "peak-forecaster", "P1_STATE_DIR": str(tmp / "pf")},
            tmp / "forecaster.log")
        yield procs
    finally:
        for p in reversed(procs.values()):
            p.stop()
        for p in procs.values():
            print(f"--- {p.name} ---\n" + p.log.read_text(errors="replace")[-1500:])


EDGE_READING = {"v": 1, "site": "edge", "source": "p1", "ts": "2026-01-15T12:00:00+01:00",
                "header": "EDGE1", "import_kwh": 5.5, "tariff_low": False,
                "message": "0123456789" * 30}
EDGE_FIELDS = ["import_kwh", "import_t1_kwh", "month_max_w", "month_max_ts", "power_failures",
               "tariff_low", "message", "limiter_w"]


def publish_edge(sub: Subscriber) -> None:
    """Configs from the builder for fields mostly absent from the reading it then gets."""
    for topic, cfg in reading_discovery(EDGE_FIELDS, site="edge", state_topic="test/edge/reading",
                                        status_topic="p1/status/edge-test", reading=EDGE_READING):
        sub.publish(topic, cfg, retain=True)
    sub.publish("p1/status/edge-test", "online", retain=True)
    sub.publish("test/edge/reading", EDGE_READING, retain=True)
    # the same config without object_id: Home Assistant before 2025.10 drops the unknown
    # default_entity_id and names the entity after device and entity names instead
    ((topic, cfg),) = reading_discovery(["import_kwh"], site="legacy", state_topic="test/edge/reading",
                                        status_topic=None, reading=None)
    del cfg["object_id"]
    sub.publish(topic, cfg, retain=True)


def num(x: Any) -> float:
    return float(x)


def test_home_assistant_takes_the_discovery(private_mosquitto: Mosquitto, ha_dir: Path) -> None:
    broker = private_mosquitto
    sub = Subscriber(broker.port, "p1/#", "homeassistant/#")
    ha = HomeAssistant(ha_dir / "config", broker.port)
    with ExitStack() as cleanup:
        cleanup.callback(sub.close)
        cleanup.callback(lambda: print("--- home-assistant.log ---\n" + ha.log()[-6000:]))
        cleanup.callback(ha.stop)
        ha.start()
        sub.wait("homeassistant/status")  # Home Assistant's MQTT birth: discovery is on
        publish_edge(sub)
        procs = cleanup.enter_context(stack(broker, ha_dir))

        # -- which entities each site must get: the fields its meter sends, and the forecaster's
        want: dict[str, dict[str, tuple[str | None, str | None, str | None]]] = {}
        for site in SITES:
            reading = sub.wait(f"p1/{site}/reading")[0].json()
            fields = {f: READING[f] for f in reading if f in READING}
            want[site] = {entity_id(site, f): spec for f, spec in fields.items()}
            want[site].update({entity_id(site, k): v[:3] for k, v in FORECASTER.items()})
        home = set(sub.wait("p1/home/reading")[0].json())
        assert {"import_t1_kwh", "export_t2_kwh", "gas_m3", "water_m3", "tariff_low",
                "month_max_ts", "month_max_w"} <= home
        assert {"power_failures", "gas_m3", "tariff_low"} <= set(sub.wait("p1/nl/reading")[0].json())

        def live(eid: str) -> bool:
            st = ha.state(eid)
            return st is not None and st["state"] not in ("unavailable",)

        wait_for(lambda: all(live(e) for s in want.values() for e in s), timeout_s=90,
                 interval_s=1)

        # -- the edge site: absent fields unknown, never 0 or a warning; message cut to 255
        edge = {f: ha.state(entity_id("edge", f)) for f in EDGE_FIELDS}
        assert {f: s["state"] for f, s in edge.items() if s} == {
            "import_kwh": "5.5", "import_t1_kwh": "unknown", "month_max_w": "unknown",
            "month_max_ts": "unknown", "power_failures": "unknown", "tariff_low": "off",
            "message": ("0123456789" * 30)[:255], "limiter_w": "unknown"}
        assert "month_max_history" not in edge["month_max_w"]["attributes"]  # type: ignore[index]
        # 2025.4.4 takes the entity id from object_id only (default_entity_id is 2025.10+)
        assert ha.state("sensor.p1_legacy_import_kwh") is None
        assert ha.state("sensor.p1_meter_legacy_energy_import")["state"] == "5.5"  # type: ignore[index]

        # -- Energy dashboard: HA's own validation of the grid, gas and water sensors
        def flow(key: str, field: str) -> dict[str, Any]:
            return {key: f"sensor.p1_home_{field}", "stat_cost" if key == "stat_energy_from"
                    else "stat_compensation": None, "entity_energy_price": None,
                    "number_energy_price": None}

        prefs = {"energy_sources": [
            {"type": "grid", "cost_adjustment_day": 0,
             "flow_from": [flow("stat_energy_from", "import_t1_kwh"),
                           flow("stat_energy_from", "import_t2_kwh")],
             "flow_to": [flow("stat_energy_to", "export_t1_kwh"),
                         flow("stat_energy_to", "export_t2_kwh")]},
            {"type": "gas", **flow("stat_energy_from", "gas_m3")},
            {"type": "water", **flow("stat_energy_from", "water_m3")},
        ], "device_consumption": []}
        _, _, validation = ha.ws({"type": "energy/save_prefs", **prefs},
                                 {"type": "p1_test/compile_statistics"},
                                 {"type": "energy/validate"})
        assert validation == {"energy_sources": [[], [], []], "device_consumption": []}

        # -- availability: the forecaster stops -> its entities; a meter stops -> expire_after
        procs["forecaster"].stop()
        wait_for(lambda: ha.state("sensor.p1_home_quarter_avg")["state"] == "unavailable", 15)  # type: ignore[index]
        nl_configs = [m.json() for m in sub.on("homeassistant/+/p1_reader_nl/+/config")]
        assert nl_configs and {c["expire_after"] for c in nl_configs} == {10}
        t_stop = datetime.now()
        procs["sim-nl"].stop()  # the cable is unplugged: p1-reader nl stays online
        wait_for(lambda: all(ha.state(f"{c}.p1_nl_{k}")["state"] == "unavailable"  # type: ignore[index]
                             for c, k in (("sensor", "import_kwh"), ("binary_sensor", "tariff_low"))),
                 timeout_s=25, interval_s=0.5)
        assert (datetime.now() - t_stop).total_seconds() >= 7  # expire_after 10 s: not at once
        assert sub.on("p1/status/p1-reader-nl")[-1].payload == b"online"
        assert live("sensor.p1_home_import_kwh")
        ha.stop()  # registries written, recorder closed

        # -- registries: one device per site, every entity on it, exact entity ids
        devices = {d["id"]: d for d in ha.storage("core.device_registry")["devices"]}
        entities = [e for e in ha.storage("core.entity_registry")["entities"]
                    if e["platform"] == "mqtt"]
        by_site: dict[str, list[dict[str, Any]]] = {}
        for d in devices.values():
            for domain, ident in d["identifiers"]:
                if domain == "mqtt":  # (Home Assistant's own "backup" device aside)
                    by_site.setdefault(ident, []).append(d)
        assert sorted(by_site) == ["p1_edge", "p1_home", "p1_legacy", "p1_nl"]
        assert all(len(v) == 1 for v in by_site.values())
        for site in SITES:
            (dev,) = by_site[f"p1_{site}"]
            reading = sub.on(f"p1/{site}/reading")[0].json()
            assert (dev["name"], dev["manufacturer"], dev["model"], dev["serial_number"],
                    dev["sw_version"]) == (f"P1 meter {site}", "P1 energy stack",
                                           reading["header"], reading["meter_id"],
                                           reading["dsmr_version"])
            mine = {e["entity_id"] for e in entities if e["device_id"] == dev["id"]}
            assert mine == set(want[site])
        assert len(entities) == sum(len(w) for w in want.values()) + len(EDGE_FIELDS) + 1

        # -- recorder: a real state with the right unit/device class/state class, a value sent
        recorded = ha.recorded_states()
        sent: dict[str, list[dict[str, Any]]] = {}
        for m in sub.messages:
            if m.topic.startswith("p1/") and m.payload[:1] == b"{":
                sent.setdefault(m.topic, []).append(m.json())
        for site, entities_of_site in want.items():
            for eid, (unit, dclass, sclass) in entities_of_site.items():
                key = eid.split(f"p1_{site}_", 1)[1]
                if key in FORECASTER:
                    topic, field = f"p1/{site}/{FORECASTER[key][3]}", FORECASTER[key][4]
                else:
                    topic, field = f"p1/{site}/reading", key
                values = [p[field] for p in sent[topic] if field in p]
                states = [(s, a) for s, a in recorded[eid] if s not in ("unknown", "unavailable")]
                if not values:  # the payload does not carry it (yet): unknown, never invented
                    assert states == [], (eid, states)
                    continue
                assert states, eid
                for state, attrs in states:
                    assert (attrs.get("unit_of_measurement"), attrs.get("device_class"),
                            attrs.get("state_class")) == (unit, dclass, sclass), eid
                    if isinstance(values[0], bool):
                        assert state in {"on" if v else "off" for v in values}, eid
                    elif dclass == "timestamp":
                        assert datetime.fromisoformat(state) in {
                            datetime.fromisoformat(v) for v in values}, eid
                    elif isinstance(values[0], str):
                        assert state in values, eid
                    else:
                        assert num(state) in {num(v) for v in values}, (eid, state)
        histories = [a["month_max_history"] for _, a in recorded["sensor.p1_home_month_max_w"]
                     if "month_max_history" in a]
        assert histories
        assert all(h in [r["month_max_history"] for r in sent["p1/home/reading"]] for h in histories)

        # -- Home Assistant's log: no MQTT or template warning or error
        bad = [line for line in ha.log().splitlines() if BAD_LOG.match(line)]
        assert bad == []
        configs = [m.json() for m in sub.on("homeassistant/+/+/+/config")]
        assert {json.dumps(c["origin"], sort_keys=True) for c in configs} == {
            json.dumps(configs[0]["origin"], sort_keys=True)}
