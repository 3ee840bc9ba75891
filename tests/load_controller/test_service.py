"""Through the real Mosquitto: config retained in, readings in, set and control out."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from load_controller.config import LoadControllerSettings, parse_outputs
from load_controller.control import Params
from load_controller.service import LoadControllerService, scaled_clock
from p1common.payloads import Control, OutputSet
from p1common.service import ServiceRuntime
from p1common.settings import CommonSettings, SettingsError
from p1common.topics import Topics
from support import REPO, Subscriber, wait_for

T = Topics("p1")
_sites = itertools.count()


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


Svc = tuple[LoadControllerService, str, Clock, Subscriber]


@pytest.fixture()
def svc(mosquitto: Any) -> Iterator[Svc]:
    site = f"lc{next(_sites)}"
    service, runtime, clock = start_service(mosquitto, site)
    sub = Subscriber(mosquitto.port, T.output_sets(site), T.control(site))
    yield service, site, clock, sub
    sub.close()
    runtime.close()


def start_service(mosquitto: Any, site: str) -> tuple[LoadControllerService, ServiceRuntime, Clock]:
    settings = CommonSettings.from_env({"MQTT_URL": mosquitto.url, "P1_SITE": site})
    runtime = ServiceRuntime("load-controller", settings, client_id=f"lc-test-{site}",
                             install_signals=False)
    clock = Clock()
    service = LoadControllerService(runtime, site, Params(), clock=clock)
    runtime.start()
    assert runtime.mqtt.wait_connected(5)
    return service, runtime, clock


CONFIG = {"v": 1, "outputs": [
    {"id": "heater", "kind": "relay", "rated_w": 2000, "mode": "on"},
    {"id": "boiler", "kind": "dimmer", "rated_w": 2400, "mode": "tariff", "priority": 5},
]}
_ts = itertools.count()


def stamp(n: int) -> str:
    """The meter clock of the n-th test reading: one second apart, like a DSMR 5 meter."""
    return (datetime(2026, 1, 15, 12, 0, tzinfo=UTC) + timedelta(seconds=n)).isoformat()


def reading(svc: Svc, net: float, tariff: int = 2, tariff_low: bool = True) -> None:
    """One reading, one second after the last; returns once the service has decided on
    it and handed its set / control messages to the client (so the test clock cannot
    move while the service reads it, and no decision of it is still in the making)."""
    service, site, clock, sub = svc
    handled = service.readings_handled
    clock.t += 1.0
    sub.publish(T.reading(site), {"v": 1, "site": site, "source": "sim", "ts": stamp(next(_ts)),
                                  "net_w": net, "tariff": tariff, "tariff_low": tariff_low}, qos=0)
    wait_for(lambda: service.readings_handled > handled)


def latest_set(svc: Svc, output_id: str) -> Any:
    """The ``set`` of the service's latest decision for ``output_id`` (matched by ``seq``:
    heartbeats of earlier decisions may still be on their way to the subscriber)."""
    service, site, _, sub = svc
    seq = service.ctl.outputs[output_id].seq

    def find() -> Any:
        return next((m for m in sub.on(T.output_set(site, output_id)) if m.json()["seq"] == seq),
                    None)
    return wait_for(find)


def latest_control(svc: Svc) -> Any:
    """The ``control`` document of the service's latest decision (every output's ``seq``)."""
    service, site, _, sub = svc
    seqs = [rt.seq for rt in service.ctl._ordered()]

    def find() -> Any:
        return next((d for d in (m.json() for m in sub.on(T.control(site)))
                     if [o["seq"] for o in d["outputs"]] == seqs), None)
    return wait_for(find)


def test_config_readings_set_and_control(svc: Svc) -> None:
    service, site, _, sub = svc
    sub.publish(T.config(site, "outputs"), CONFIG, retain=True)
    wait_for(lambda: len(service.ctl.outputs) == 2)
    reading(svc, 500)  # the very first live reading is acted upon
    heater = latest_set(svc, "heater")
    assert heater.qos == 1 and heater.retain is False
    h, b = heater.json(), latest_set(svc, "boiler").json()
    OutputSet.model_validate(h)
    assert {k: h[k] for k in ("v", "ttl_s", "on")} == {"v": 1, "ttl_s": 10.0, "on": True}
    assert b["pct"] == 100.0 and "on" not in b
    doc = latest_control(svc)
    Control.model_validate(doc)
    assert doc["net_w"] == 500.0 and doc["watchdog"] is False
    assert [(o["id"], o["decision"], o["reason"]) for o in doc["outputs"]] == [
        ("boiler", "on", "on: low tariff (night)"), ("heater", "on", "on: mode on")]
    # heartbeat: every reading sends set again with a higher seq
    reading(svc, 500)
    assert latest_set(svc, "heater").json()["seq"] == h["seq"] + 1
    # the same telegram again (same ts) is not new data: no decision, no heartbeat
    sub.publish(T.reading(site), {"v": 1, "site": site, "source": "sim",
                                  "ts": stamp(next(_ts) - 1), "net_w": 1}, qos=0)
    reading(svc, 400)
    wait_for(lambda: service.ctl.net_w == 400.0)  # the duplicate came before: seen and dropped
    with service.lock:
        assert service.ctl.outputs["heater"].seq == h["seq"] + 2
    assert latest_control(svc)["net_w"] == 400.0


def test_a_retained_reading_is_no_live_meter(mosquitto: Any) -> None:
    """A reading retained from long ago, replayed on subscribing, neither drives the
    outputs nor counts as meter data; the first live one does."""
    site = f"lc{next(_sites)}"
    sub = Subscriber(mosquitto.port, T.output_sets(site), T.control(site))
    sub.publish(T.config(site, "outputs"), CONFIG, retain=True)
    sub.publish(T.reading(site), {"v": 1, "site": site, "source": "sim", "ts": "old",
                                  "net_w": 700, "tariff": 2, "tariff_low": True}, retain=True)
    # subscribed after the reading topic: once this retained state is in, so was the reading
    sub.publish(T.output_state(site, "heater"), {"v": 1, "ts": "x", "on": False}, retain=True)
    service, runtime, clock = start_service(mosquitto, site)
    try:
        wait_for(lambda: "heater" in service.ctl.outputs and
                 service.ctl.outputs["heater"].state is not None)
        assert service.readings_handled == 0 and service.ctl.last_reading_t is None
        assert sub.on(T.output_sets(site)) == [] and sub.on(T.control(site)) == []
        svc = (service, site, clock, sub)
        reading(svc, 300)
        assert latest_set(svc, "heater").json()["on"] is True
        assert latest_control(svc)["net_w"] == 300.0
    finally:
        for topic in (T.config(site, "outputs"), T.reading(site), T.output_state(site, "heater")):
            sub.publish(topic, b"", retain=True)
        sub.close()
        runtime.close()


def test_config_change_applies_live_and_invalid_keeps_the_last_good(svc: Svc) -> None:
    service, site, _, sub = svc
    sub.publish(T.config(site, "outputs"), CONFIG, retain=True)
    wait_for(lambda: len(service.ctl.outputs) == 2)
    reading(svc, 0)
    assert latest_set(svc, "heater").json()["on"] is True
    changed = json.loads(json.dumps(CONFIG))
    changed["outputs"][0]["mode"] = "off"
    sub.publish(T.config(site, "outputs"), changed, retain=True)
    wait_for(lambda: service.ctl.outputs["heater"].cfg.mode == "off")
    reading(svc, 0)
    assert latest_set(svc, "heater").json()["on"] is False
    bad = json.loads(json.dumps(CONFIG))
    bad["outputs"][0]["rated_w"] = -5
    sub.publish(T.config(site, "outputs"), bad, retain=True)
    wait_for(lambda: service.config_error is not None)
    assert service.config_error.startswith("outputs[0].rated_w: Input should be greater than 0")
    reading(svc, 0)
    assert latest_set(svc, "heater").json()["on"] is False  # last good: off
    assert latest_control(svc)["config_error"].startswith("outputs[0].rated_w")
    # an output removed from the configuration gets one final off
    sub.clear()
    sub.publish(T.config(site, "outputs"), {"v": 1, "outputs": [CONFIG["outputs"][0]]},
                retain=True)
    assert sub.wait(T.output_set(site, "boiler"))[-1].json()["pct"] == 0.0
    assert service.config_error is None


def test_watchdog_tick_and_device_state(svc: Svc) -> None:
    service, site, clock, sub = svc
    sub.publish(T.config(site, "outputs"), CONFIG, retain=True)
    wait_for(lambda: len(service.ctl.outputs) == 2)
    reading(svc, 0)  # heater commanded on at clock 1001
    assert latest_set(svc, "heater").json()["on"] is True
    # a device that reports off although told on: reported after the 5 s follow timeout
    sub.publish(T.output_state(site, "heater"), {"v": 1, "ts": "x", "on": False, "seq": 1},
                retain=True)
    wait_for(lambda: service.ctl.outputs["heater"].state is not None)
    for _ in range(4):
        reading(svc, 0)
    doc = latest_control(svc)
    assert (doc["outputs"][1]["following"], doc["outputs"][1]["device"]) == (
        None, "waiting for the device to apply on")
    reading(svc, 0)  # 5 s after the command
    doc = latest_control(svc)
    assert doc["outputs"][1]["following"] is False
    assert doc["outputs"][1]["device"] == (
        "does not follow: commanded on 5 s ago, device reports off")
    # no reading for 9.5 s: nothing yet; for 10 s: every output off, on every tick
    seqs = [rt.seq for rt in service.ctl.outputs.values()]
    clock.t += 9.5
    service.tick()
    assert service.ctl.watchdog is False
    assert [rt.seq for rt in service.ctl.outputs.values()] == seqs  # nothing sent
    clock.t += 0.5
    service.tick()
    doc = latest_control(svc)
    assert doc["watchdog"] is True
    assert [o["reason"] for o in doc["outputs"]] == ["watchdog: no meter data for 10 s"] * 2
    assert latest_set(svc, "heater").json()["on"] is False
    assert latest_set(svc, "boiler").json()["pct"] == 0.0
    # control resumes by itself with the next reading
    reading(svc, 0)
    assert latest_set(svc, "heater").json()["on"] is True
    assert latest_control(svc)["watchdog"] is False


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "load_controller.cli", *args],
                          capture_output=True, text=True, timeout=60)


def test_cli_help_and_check_config(tmp_path: Any) -> None:
    res = run_cli("--help")
    assert res.returncode == 0 and "LOADCTL_CONFIG" in res.stdout
    good = tmp_path / "good.json"
    good.write_text(json.dumps(CONFIG))
    res = run_cli("--check-config", str(good))
    assert res.returncode == 0 and json.loads(res.stdout)["outputs"][0]["min_on_s"] == 300
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"v": 1, "outputs": [{"id": "x", "rated_w": 100,
                                                    "mode": "proportional"}]}))
    res = run_cli("--check-config", str(bad))
    assert res.returncode == 1
    assert "outputs[0].mode: proportional mode needs kind 'dimmer' (a relay can only switch)" in res.stderr
    res = subprocess.run([sys.executable, "-m", "load_controller.cli"], capture_output=True,
                         text=True, timeout=60, env={"LOADCTL_GAIN": "3", "PATH": "/usr/bin"})
    assert res.returncode == 2 and "LOADCTL_GAIN: 3.0 is above the maximum 1.0" in res.stderr


def test_cli_process_end_to_end(mosquitto: Any, tmp_path: Any) -> None:
    site = f"lc{next(_sites)}"
    cfg = tmp_path / "outputs.json"
    cfg.write_text(json.dumps({"v": 1, "outputs": [{"id": "pump", "rated_w": 800,
                                                    "mode": "tariff"}]}))
    sub = Subscriber(mosquitto.port, T.output_sets(site), T.control(site))
    env = {"MQTT_URL": mosquitto.url, "P1_SITE": site, "LOADCTL_CONFIG": str(cfg),
           "PATH": "/usr/bin", "P1_STATE_DIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "load_controller.cli"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        def got_set() -> bool:
            sub.publish(T.reading(site), {"v": 1, "site": site, "source": "sim",
                                          "ts": stamp(next(_ts)), "net_w": 0, "tariff": 2, "tariff_low": True}, qos=0)
            return bool(sub.on(T.output_set(site, "pump")))

        wait_for(got_set, timeout_s=20, interval_s=0.3)
        assert sub.on(T.output_set(site, "pump"))[-1].json()["on"] is True
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
        sub.close()
    assert proc.returncode == 0, out
    assert f"site {site}, 1 output(s)" in out


def test_demo_config_is_the_default_until_a_retained_config_arrives(mosquitto: Any,
                                                                    tmp_path: Any) -> None:
    """`load-controller --config deploy/demo/outputs.json` (what `make run` starts): the
    demo outputs drive the sets from the first reading; a retained config replaces them."""
    demo = REPO / "deploy" / "demo" / "outputs.json"
    assert [o.id for o in parse_outputs(json.loads(demo.read_text()))] == ["boiler", "relay1"]
    site = f"lc{next(_sites)}"
    sub = Subscriber(mosquitto.port, T.output_sets(site), T.control(site))
    env = {"MQTT_URL": mosquitto.url, "P1_SITE": site, "PATH": "/usr/bin",
           "P1_STATE_DIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "load_controller.cli", "--config", str(demo)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    net = [-1000.0]

    def control() -> Any:
        sub.publish(T.reading(site), {"v": 1, "site": site, "source": "sim",
                                      "ts": stamp(next(_ts)), "net_w": net[0], "tariff": 1, "tariff_low": False}, qos=0)
        return sub.on(T.control(site)) and sub.on(T.control(site))[-1].json()

    try:
        doc = wait_for(control, timeout_s=20, interval_s=0.3)
        assert [(o["id"], o["mode"]) for o in doc["outputs"]] == [
            ("boiler", "proportional"), ("relay1", "surplus")]
        assert sub.on(T.output_set(site, "boiler"))[-1].json()["pct"] > 0
        assert sub.on(T.output_set(site, "relay1"))[-1].json()["on"] is False
        sub.publish(T.config(site, "outputs"), {"v": 1, "outputs": [
            {"id": "relay1", "kind": "relay", "rated_w": 1500, "mode": "on"}]}, retain=True)
        wait_for(lambda: (d := control()) and [o["id"] for o in d["outputs"]] == ["relay1"],
                 timeout_s=20, interval_s=0.3)
        wait_for(lambda: sub.on(T.output_set(site, "relay1"))[-1].json()["on"] is True)
        # the boiler, gone from the configuration, got its final off
        assert sub.on(T.output_set(site, "boiler"))[-1].json()["pct"] == 0.0
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
        sub.publish(T.config(site, "outputs"), b"", retain=True)
        sub.close()
    assert proc.returncode == 0, out
    assert f"site {site}, 2 output(s) from {demo}" in out


def test_speed_setting_and_scaled_clock() -> None:
    assert LoadControllerSettings.from_env({}).speed == 1.0
    assert LoadControllerSettings.from_env({"LOADCTL_SPEED": "10"}).speed == 10.0
    assert LoadControllerSettings.from_env({"LOADCTL_SPEED": "10"}, {"speed": 5}).speed == 5.0
    with pytest.raises(SettingsError, match="LOADCTL_SPEED"):
        LoadControllerSettings.from_env({"LOADCTL_SPEED": "0"})
    with pytest.raises(SettingsError, match=r"--speed: 0\.0 is not within 0\.01\.\.1000"):
        LoadControllerSettings.from_env({}, {"speed": 0})
    assert scaled_clock(1) is time.monotonic
    clock = scaled_clock(10)
    a, w = clock(), time.monotonic()
    time.sleep(0.05)
    assert clock() - a >= 10 * (time.monotonic() - w) - 0.01


def test_meter_model_settings() -> None:
    d = LoadControllerSettings.from_env({}).params
    assert (d.gain, d.meter_lag_s, d.meter_average_s, d.ramp_lead_s, d.deadband_w) == (
        0.9, 0.1, 1.0, 1.5, 0.0)
    p = LoadControllerSettings.from_env({"LOADCTL_METER_AVERAGE_S": "0",
                                         "LOADCTL_RAMP_LEAD_S": "0"}).params
    assert (p.meter_average_s, p.ramp_lead_s) == (0.0, 0.0)
    with pytest.raises(SettingsError, match=r"LOADCTL_RAMP_LEAD_S: 50\.0 is above the maximum 10"):
        LoadControllerSettings.from_env({"LOADCTL_RAMP_LEAD_S": "50"})
    with pytest.raises(SettingsError, match="LOADCTL_METER_AVERAGE_S"):
        LoadControllerSettings.from_env({"LOADCTL_METER_AVERAGE_S": "-1"})
