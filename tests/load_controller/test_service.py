"""Through the real Mosquitto: config retained in, readings in, set and control out."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from load_controller.control import Params
from load_controller.service import LoadControllerService
from p1common.payloads import Control, OutputSet
from p1common.service import ServiceRuntime
from p1common.settings import CommonSettings
from p1common.topics import Topics
from support import Subscriber, wait_for

T = Topics("p1")
_sites = itertools.count()


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture()
def svc(mosquitto: Any) -> Iterator[tuple[LoadControllerService, str, Clock, Subscriber]]:
    site = f"lc{next(_sites)}"
    settings = CommonSettings.from_env({"MQTT_URL": mosquitto.url, "P1_SITE": site})
    runtime = ServiceRuntime("load-controller", settings, client_id=f"lc-test-{site}",
                             install_signals=False)
    clock = Clock()
    service = LoadControllerService(runtime, site, Params(), clock=clock)
    sub = Subscriber(mosquitto.port, T.output_sets(site), T.control(site))
    runtime.start()
    assert runtime.mqtt.wait_connected(5)
    yield service, site, clock, sub
    sub.close()
    runtime.close()


CONFIG = {"v": 1, "outputs": [
    {"id": "heater", "kind": "relay", "rated_w": 2000, "mode": "on"},
    {"id": "boiler", "kind": "dimmer", "rated_w": 2400, "mode": "tariff", "priority": 5},
]}
_ts = itertools.count()


def reading(sub: Subscriber, site: str, clock: Clock, net: float, tariff: int = 2) -> None:
    clock.t += 1.0
    sub.publish(T.reading(site), {"v": 1, "site": site, "source": "sim", "ts": f"t{next(_ts)}",
                                  "net_w": net, "tariff": tariff}, qos=0)


def last(sub: Subscriber, topic: str) -> Any:
    return sub.on(topic)[-1].json()


def test_config_readings_set_and_control(svc: Any) -> None:
    service, site, clock, sub = svc
    sub.publish(T.config(site, "outputs"), CONFIG, retain=True)
    wait_for(lambda: len(service.ctl.outputs) == 2)
    reading(sub, site, clock, 500)  # the first one only primes (it may be an old retained one)
    reading(sub, site, clock, 500)
    heater = sub.wait(T.output_set(site, "heater"))[-1]
    boiler = sub.wait(T.output_set(site, "boiler"))[-1]
    assert heater.qos == 1 and heater.retain is False
    h, b = heater.json(), boiler.json()
    OutputSet.model_validate(h)
    assert {k: h[k] for k in ("v", "ttl_s", "on")} == {"v": 1, "ttl_s": 10.0, "on": True}
    assert b["pct"] == 100.0 and "on" not in b
    ctl = sub.wait(T.control(site))[-1]
    doc = ctl.json()
    Control.model_validate(doc)
    assert doc["net_w"] == 500.0 and doc["watchdog"] is False
    assert [(o["id"], o["decision"], o["reason"]) for o in doc["outputs"]] == [
        ("boiler", "on", "on: tariff 2 (night)"), ("heater", "on", "on: mode on")]
    # heartbeat: every reading sends set again with a higher seq
    reading(sub, site, clock, 500)
    sets = sub.wait(T.output_set(site, "heater"), 2)
    assert sets[-1].json()["seq"] == sets[-2].json()["seq"] + 1
    # the same reading again (a retained repeat after a reconnect) is not new data
    n = len(sub.on(T.output_set(site, "heater")))
    sub.publish(T.reading(site), {"v": 1, "site": site, "source": "sim",
                                  "ts": f"t{next(_ts) - 1}", "net_w": 1}, qos=0)
    reading(sub, site, clock, 500)
    sub.wait(T.output_set(site, "heater"), n + 1)
    assert len(sub.on(T.output_set(site, "heater"))) == n + 1


def test_config_change_applies_live_and_invalid_keeps_the_last_good(svc: Any) -> None:
    service, site, clock, sub = svc
    sub.publish(T.config(site, "outputs"), CONFIG, retain=True)
    wait_for(lambda: len(service.ctl.outputs) == 2)
    reading(sub, site, clock, 0)
    reading(sub, site, clock, 0)
    sub.wait(T.output_set(site, "heater"))
    changed = json.loads(json.dumps(CONFIG))
    changed["outputs"][0]["mode"] = "off"
    sub.publish(T.config(site, "outputs"), changed, retain=True)
    wait_for(lambda: service.ctl.outputs["heater"].cfg.mode == "off")
    sub.clear()
    reading(sub, site, clock, 0)
    assert sub.wait(T.output_set(site, "heater"))[-1].json()["on"] is False
    bad = json.loads(json.dumps(CONFIG))
    bad["outputs"][0]["rated_w"] = -5
    sub.publish(T.config(site, "outputs"), bad, retain=True)
    wait_for(lambda: service.config_error is not None)
    assert service.config_error.startswith("outputs[0].rated_w: Input should be greater than 0")
    sub.clear()
    reading(sub, site, clock, 0)
    assert sub.wait(T.output_set(site, "heater"))[-1].json()["on"] is False  # last good: off
    doc = sub.wait(T.control(site))[-1].json()
    assert doc["config_error"].startswith("outputs[0].rated_w")
    # an output removed from the configuration gets one final off
    sub.clear()
    sub.publish(T.config(site, "outputs"), {"v": 1, "outputs": [CONFIG["outputs"][0]]},
                retain=True)
    assert sub.wait(T.output_set(site, "boiler"))[-1].json()["pct"] == 0.0
    assert service.config_error is None


def test_watchdog_tick_and_device_state(svc: Any) -> None:
    service, site, clock, sub = svc
    sub.publish(T.config(site, "outputs"), CONFIG, retain=True)
    wait_for(lambda: len(service.ctl.outputs) == 2)
    reading(sub, site, clock, 0)
    reading(sub, site, clock, 0)
    sub.wait(T.output_set(site, "heater"))
    # a device that reports off although told on: reported after the follow timeout
    sub.publish(T.output_state(site, "heater"), {"v": 1, "ts": "x", "on": False, "seq": 1},
                retain=True)
    wait_for(lambda: service.ctl.outputs["heater"].state is not None)
    for _ in range(6):
        reading(sub, site, clock, 0)
    wait_for(lambda: sub.on(T.control(site)) and
             sub.on(T.control(site))[-1].json()["outputs"][1]["following"] is False)
    doc = last(sub, T.control(site))
    assert doc["outputs"][1]["device"].startswith("does not follow: commanded on")
    wait_for(lambda: service.ctl.last_reading_t == clock.t)  # every reading handled
    clock.t += 9.5
    service.tick()
    sub.clear()
    clock.t += 0.5
    service.tick()
    # (heartbeats of the earlier readings may still be on their way: wait for the last)
    wait_for(lambda: sub.on(T.control(site)) and sub.on(T.control(site))[-1].json()["watchdog"])
    wait_for(lambda: sub.on(T.output_set(site, "heater"))[-1].json()["on"] is False)
    doc = last(sub, T.control(site))
    assert doc["outputs"][0]["reason"] == "watchdog: no meter data for 10 s"
    sub.clear()
    reading(sub, site, clock, 0)
    assert sub.wait(T.output_set(site, "heater"))[-1].json()["on"] is True


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
    assert "outputs[0].mode: proportional needs kind 'dimmer'" in res.stderr
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
                                          "ts": f"t{next(_ts)}", "net_w": 0, "tariff": 2}, qos=0)
            return bool(sub.on(T.output_set(site, "pump")))

        wait_for(got_set, timeout_s=20, interval_s=0.3)
        assert sub.on(T.output_set(site, "pump"))[-1].json()["on"] is True
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
        sub.close()
    assert proc.returncode == 0, out
    assert f"site {site}, 1 output(s)" in out
