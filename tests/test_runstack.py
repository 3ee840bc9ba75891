"""`make run` brought up for real: broker, simulator on a pty, p1-reader, the services; a reading arrives."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from support import REPO, Subscriber, free_port, wait_for


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
    mqtt_port, web_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("MQTT_URL", "SERIAL", "INFLUX_URL")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "p1common.runstack", "--mqtt-port", str(mqtt_port),
         "--web-port", str(web_port), "--state-dir", str(tmp_path)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        def connect():
            try:
                return Subscriber(mqtt_port, "p1/#")
            except (OSError, AssertionError):
                return None
        sub = wait_for(connect, timeout_s=30, interval_s=0.5)
        msgs = sub.wait("p1/home/reading", count=2, timeout_s=40)
        reading = json.loads(msgs[-1].payload)
        assert reading["site"] == "home"
        assert reading["source"] == "p1"
        assert reading["import_kwh"] == pytest.approx(reading["import_t1_kwh"] + reading["import_t2_kwh"])
        sub.close()
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
        print(out.decode(errors="replace")[-4000:])
    assert proc.returncode is not None
    time.sleep(0.1)
