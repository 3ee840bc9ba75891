"""EV outputs through the real Mosquitto: Home Assistant entities appear with a charger in the
outputs document and go (empty retained configs) when it leaves; the state file is written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from load_controller.control import Params
from load_controller.service import LoadControllerService
from p1common.service import ServiceRuntime
from p1common.settings import CommonSettings
from p1common.topics import Topics
from support import Subscriber, wait_for

T = Topics("p1")
CAR = {"id": "car", "kind": "ev", "rated_w": 11040, "mode": "ev", "phases": 3,
       "departure": "07:30", "energy_kwh": 10}


def test_ev_entities_follow_the_configuration_and_state_is_saved(mosquitto: Any,
                                                                  tmp_path: Path) -> None:
    site = "evha"
    settings = CommonSettings.from_env({"MQTT_URL": mosquitto.url, "P1_SITE": site})
    runtime = ServiceRuntime("load-controller", settings, client_id="lc-test-evha",
                             install_signals=False)
    clock = [1000.0]
    service = LoadControllerService(runtime, site, Params(), clock=lambda: clock[0],
                                    state_path=tmp_path / "evha.json", ha_discovery=True)
    sub = Subscriber(mosquitto.port, "homeassistant/sensor/load_controller_evha/#")
    runtime.start()
    try:
        assert runtime.mqtt.wait_connected(5)
        sub.publish(T.config(site, "outputs"), {"v": 1, "outputs": [CAR]}, retain=True)
        topic = "homeassistant/sensor/load_controller_evha/ev_car_current/config"
        cfg = wait_for(lambda: sub.on(topic))[-1]
        assert cfg.json()["state_topic"] == "p1/evha/control"
        wait_for(lambda: len({m.topic for m in sub.messages}) == 7)
        late = Subscriber(mosquitto.port, topic)  # retained: Home Assistant gets it when it starts
        assert wait_for(lambda: late.on(topic))[0].retain
        late.close()
        # a reading at 22:00 (night tariff): the plan is made and saved at once
        sub.publish(T.reading(site), {"v": 1, "site": site, "source": "sim",
                                      "ts": "2026-01-14T22:00:00+01:00", "net_w": 400.0,
                                      "tariff": 2, "tariff_low": True}, qos=0)
        wait_for(lambda: service.readings_handled == 1)
        saved = json.loads((tmp_path / "evha.json").read_text())
        assert saved["ev"]["outputs"]["car"]["plan"]["need_wh"] == 10000.0
        # the site's price comes from peak/month: what a raise costs
        sub.publish(T.peak_month(site), {"v": 1, "site": site, "month": "2026-01",
                                         "peak_w": 4000.0, "peak_start": None, "history": [],
                                         "billed_w": 4000.0, "cost_eur_year": 240.0,
                                         "price_eur_per_kw_year": 60.0}, retain=True)
        wait_for(lambda: service.ctl.evmode.price_eur_per_kw_year == 60.0)
        assert service.ctl.evmode.raise_cost(1200) == 6.0  # 1.2 kW x 60 EUR / 12
        # the charger leaves the configuration: its entities are removed
        sub.clear()
        sub.publish(T.config(site, "outputs"), {"v": 1, "outputs": []}, retain=True)
        wait_for(lambda: len([m for m in sub.messages if m.payload == b""]) == 7)
    finally:
        sub.publish(T.config(site, "outputs"), b"", retain=True)
        sub.publish(T.peak_month(site), b"", retain=True)
        sub.close()
        runtime.close()
