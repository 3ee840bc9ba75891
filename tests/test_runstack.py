"""`make run` brought up for real: broker, simulator on a pty, p1-reader, the services; a
reading arrives, the outputs come from the web's retained document, Ctrl-C stops it all
cleanly (services first, broker last, no ERROR, exit 0)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from support import REPO, Subscriber, mosquitto_bin, running_stack, wait_for

DEMO = str(REPO / "deploy" / "demo" / "outputs.json")


def _procfile(tmp_path, *extra: str) -> dict[str, str]:
    out = subprocess.run(
        [sys.executable, "-m", "p1common.runstack", "--procfile", "--state-dir", str(tmp_path),
         "--mqtt-port", "1", "--web-port", "1", "--broker-engine", "amqtt", *extra],
        capture_output=True, text=True, check=True, env={**os.environ, "MQTT_URL": ""},
    ).stdout
    return dict(line.split(": ", 1) for line in out.splitlines())


def test_procfile_lists_the_stack(tmp_path):
    procs = _procfile(tmp_path)
    assert list(procs)[:2] == ["broker", "meter-sim"]
    assert procs["broker"].startswith("p1-broker --host 127.0.0.1 --port ")
    assert procs["broker"].endswith(" --engine amqtt")
    # one source of truth for the outputs: the web seeds its store with the demo file, the
    # load-controller reads the retained document (no file of its own)
    assert procs["web"].endswith(f" --seed-outputs {DEMO}")
    assert procs["load-controller"] == "load-controller --speed 1.0"
    assert re.fullmatch(r"ev-gateway --ocpp-port \d+", procs["ev-gateway"])
    assert "p1-reader" in procs


def test_a_real_meter_gets_no_demo_outputs(tmp_path):
    procs = _procfile(tmp_path, "--serial", "/dev/ttyUSB9")
    assert "meter-sim" not in procs
    assert procs["p1-reader"] == "p1-reader --serial /dev/ttyUSB9"
    assert "--seed-outputs" not in procs["web"]
    assert procs["load-controller"] == "load-controller --speed 1.0"


ENGINES = ["amqtt", pytest.param("mosquitto", marks=pytest.mark.skipif(
    not mosquitto_bin(), reason="mosquitto is not installed"))]


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_make_run_publishes_readings_and_stops_cleanly(tmp_path, engine):
    pytest.importorskip("meter_sim.cli")
    pytest.importorskip("p1_reader.cli")
    with running_stack(tmp_path, broker_engine=engine) as stack:
        msgs = stack.sub.wait("p1/home/reading", count=2, timeout_s=40)
        reading = json.loads(msgs[-1].payload)
        assert reading["site"] == "home"
        assert reading["source"] == "p1"
        assert reading["import_kwh"] == pytest.approx(reading["import_t1_kwh"] + reading["import_t2_kwh"])
        # the load-controller drives the outputs the web published (retained)
        config = stack.sub.wait("p1/config/home/outputs", timeout_s=20)[-1].json()
        assert [o["id"] for o in config["outputs"]] == ["boiler", "relay1"]
        wait_for(lambda: [m for m in stack.sub.on("p1/home/control")
                          if [o["id"] for o in m.json()["outputs"]] == ["boiler", "relay1"]], 20)
        # the report: with `p1/#` held (stack.sub), a new subscriber to p1/home/peak got
        # the retained control and output states too (amqtt 0.12.1)
        stack.sub.wait("p1/home/output/+/state", timeout_s=20)
        peak = Subscriber(stack.mqtt_port, "p1/home/peak")
        try:
            wait_for(lambda: peak.messages, 20)
            assert {m.topic for m in peak.messages} == {"p1/home/peak"}
        finally:
            peak.close()
    out = stack.output
    assert stack.proc.returncode == 0, out  # Ctrl-C, every process stopped cleanly
    assert "Traceback" not in out
    assert not re.search(r"\bERROR\b", out), [ln for ln in out.splitlines() if "ERROR" in ln]
    lines = out.splitlines()

    def at(text: str) -> int:
        found = [i for i, ln in enumerate(lines) if text in ln]
        assert found, f"{text!r} not in the output"
        return found[0]

    services = ["p1-reader", "peak-forecaster", "load-controller", "web"]
    broker_term = at("sending SIGTERM to broker")
    for name in [*services, "meter-sim"]:
        assert at(f"| {name} stopped (rc=0)") < broker_term
    assert at("| broker stopped (rc=0)") > broker_term
    for name in services:  # p1-reader stops before the simulated meter it reads
        assert at(f"| {name} stopped (rc=0)") < at("sending SIGTERM to meter-sim")
