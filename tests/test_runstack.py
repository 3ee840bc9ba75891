"""`make run` brought up for real: broker, simulator on a pty, p1-reader, the services; a reading arrives."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from support import running_stack


def test_procfile_lists_the_stack(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "p1common.runstack", "--procfile", "--state-dir", str(tmp_path),
         "--mqtt-port", "1"],
        capture_output=True, text=True, check=True, env={**os.environ, "MQTT_URL": ""},
    ).stdout
    names = [line.split(":", 1)[0] for line in out.splitlines()]
    assert names[0] == "broker"
    assert "meter-sim" in names and "p1-reader" in names


@pytest.mark.slow
def test_make_run_publishes_readings(tmp_path):
    pytest.importorskip("meter_sim.cli")
    pytest.importorskip("p1_reader.cli")
    with running_stack(tmp_path) as stack:
        msgs = stack.sub.wait("p1/home/reading", count=2, timeout_s=40)
        reading = json.loads(msgs[-1].payload)
        assert reading["site"] == "home"
        assert reading["source"] == "p1"
        assert reading["import_kwh"] == pytest.approx(reading["import_t1_kwh"] + reading["import_t2_kwh"])
    assert stack.proc.returncode is not None  # the runner stopped on Ctrl-C
