"""Broker killed (SIGKILL) and restarted during a run of the whole chain.

meter-sim (pty, controllable loads over MQTT) -> p1-reader -> peak-forecaster +
load-controller (relay1 in mode "on") -> set -> meter-sim's relay1. Each outage: every
service says ``online`` again within 5 s of the broker's return, readings / peaks / sets
flow again, relay1 went off through the device watchdog during the outage and is on
again after, and every process is still alive.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from rel_support import Proc

from support import Mosquitto, Subscriber, wait_for

SITE = "relbroker"


def _chain(broker: Mosquitto, tmp: Path, device_watchdog_s: float) -> list[Proc]:
    link = tmp / "ttyP1"
    cfg = tmp / "outputs.json"
    cfg.write_text(json.dumps({"v": 1, "outputs": [
        {"id": "relay1", "kind": "relay", "rated_w": 1500, "mode": "on"}]}))
    sim = Proc("meter-sim", ["--pty-link", str(link), "--speed", "1", "--site", SITE,
                             "--mqtt", broker.url, "--watchdog-s", str(device_watchdog_s),
                             "--command-delay-s", "0", "--no-pv"], broker, tmp).start()
    wait_for(lambda: link.exists(), 10)
    return [
        sim,
        Proc("p1-reader", ["--serial", str(link), "--site", SITE, "--profile", "dsmr4"],
             broker, tmp, P1_HA_DISCOVERY="false").start(),
        Proc("peak-forecaster", ["run", "--no-ha-discovery"], broker, tmp).start(),
        Proc("load-controller", ["--site", SITE, "--config", str(cfg)], broker, tmp).start(),
    ]


def _watch(broker: Mosquitto) -> Subscriber:
    sub = Subscriber(broker.port, "p1/#")
    sub.client.reconnect_delay_set(min_delay=1, max_delay=1)  # the test's own eyes: prompt
    return sub


def _relay_states(sub: Subscriber, since: float) -> list[bool]:
    return [m.json()["on"] for m in sub.on(f"p1/{SITE}/output/relay1/state") if m.t > since]


def _run(broker: Mosquitto, tmp: Path, restarts: int, outage_s: float,
         device_watchdog_s: float) -> None:
    procs = _chain(broker, tmp, device_watchdog_s)
    sub = _watch(broker)
    try:
        wait_for(lambda: True in _relay_states(sub, 0), 20)  # the chain works
        for k in range(restarts):
            broker.stop(kill=True)
            down = time.monotonic()
            time.sleep(outage_s)
            broker.start()
            back = time.monotonic()
            # every service is online again within 5 s of the broker's return
            for p in procs:
                wait_for(lambda p=p, back=back: any(m.payload == b"online" and m.t > back
                                         for m in sub.on(p.status_topic)), 5.0)
                assert p.alive(), f"{p.name} died at restart {k}:\n{p.output()[-2000:]}"
            assert time.monotonic() - back < 6.5, f"restart {k}: reconnects took too long"
            # data flows again
            for topic in (f"p1/{SITE}/reading", f"p1/{SITE}/peak",
                          f"p1/{SITE}/output/relay1/set"):
                wait_for(lambda t=topic, back=back: any(m.t > back for m in sub.on(t)), 10)
            # the device watchdog switched relay1 off in the outage, and it is on again
            wait_for(lambda down=down: _relay_states(sub, down)[-1:] == [True], 10)
            states = _relay_states(sub, down)
            assert False in states, f"restart {k}: relay1 never went off ({states})"
        for p in procs:
            assert p.alive(), p.output()[-2000:]
            assert "Traceback" not in p.output(), p.output()[-4000:]
    finally:
        sub.close()
        for p in reversed(procs):
            p.stop()


@pytest.mark.slow
def test_broker_killed_three_times(private_mosquitto: Mosquitto, tmp_path: Path) -> None:
    _run(private_mosquitto, tmp_path, restarts=3, outage_s=4.0, device_watchdog_s=2.0)


@pytest.mark.soak
@pytest.mark.timeout(3600)
def test_soak_broker_killed_twenty_times(private_mosquitto: Mosquitto, tmp_path: Path) -> None:
    # at speed 1 the outage is longer than the real device watchdog (10 s)
    _run(private_mosquitto, tmp_path, restarts=20, outage_s=12.0, device_watchdog_s=10.0)

