"""Mini switch and switcher firmware under CPython against the real Mosquitto."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import firing
import machine
import pytest
import ssd1306
import switch_app
import switcher_app
from device import Runtime
from devsupport import CLOCK, drive, jump, spin, write_settings

from p1common.payloads import OutputState
from p1common.topics import Topics

T = Topics("p1")
RELAY, LED, BUTTON = 12, 13, 0      # Sonoff Basic


def make(tmp_path: Path, port: int, app: Any, device: str, **extra: Any) -> Runtime:
    extra.setdefault("keepalive_s", 5)
    path = write_settings(tmp_path / "settings.json", mqtt_port=port, output_id="boiler",
                          **extra)
    return Runtime(device, app, path=str(path), log=lambda *a: None)


def set_cmd(seq: int, ttl_s: float = 30, **value: Any) -> dict[str, Any]:
    return {"v": 1, "ts": "2026-01-15T12:00:00+01:00", "seq": seq, "ttl_s": ttl_s, **value}


def spy_sets(rt: Runtime) -> list[tuple[Any, bool]]:
    """(seq, accepted) of every ``set`` the device's output handles from now on."""
    handled: list[tuple[Any, bool]] = []
    real = rt.app.out.on_set

    def on_set(msg: Any, now_ms: int) -> bool:
        ok = bool(real(msg, now_ms))
        handled.append((msg.get("seq") if isinstance(msg, dict) else None, ok))
        return ok

    rt.app.out.on_set = on_set
    return handled


def states(sub: Any) -> list[dict[str, Any]]:
    return [m.json() for m in sub.on(T.output_state("home", "boiler")) if m.payload]


def test_relay_follows_set_reports_state_and_watchdog_fires(
        tmp_path: Path, mosquitto: Any, subscriber_factory: Any) -> None:
    sub = subscriber_factory(T.output_state("home", "boiler"), T.status("dev1"))
    rt = make(tmp_path, mosquitto.port, switch_app.SwitchApp, "mini-switch", board="sonoff")
    drive(rt, lambda: rt.link.up)
    drive(rt, lambda: states(sub))
    first = states(sub)[0]
    assert first["on"] is False and first["override"] is False and first["seq"] is None
    assert machine.PINS[RELAY].value() == 0
    sub.publish(T.output_set("home", "boiler"), set_cmd(1, on=True))
    drive(rt, lambda: machine.PINS[RELAY].value() == 1)
    drive(rt, lambda: states(sub)[-1]["on"] is True)
    st = states(sub)[-1]
    OutputState.model_validate(st)
    # the device learned the time from the set's ts (12:00+01:00 = 11:00 UTC)
    assert st["ts"].startswith("2026-01-15T11:00:0") and st["ts"].endswith("+00:00")
    assert st["seq"] == 1 and st["override"] is False
    late = subscriber_factory(T.output_state("home", "boiler"))    # retained, QoS 1
    got = late.wait(T.output_state("home", "boiler"))[0]
    assert got.retain and got.qos == 1 and got.json()["on"] is True
    assert machine.PINS[LED].value() == 0             # Sonoff LED active low: on
    # a replay of an old seq is refused. The positive control: a valid command right after
    # it on the same topic (no change: on stays on); once that one is handled, the replay
    # was handled before it (one connection, in order)
    handled = spy_sets(rt)
    sub.publish(T.output_set("home", "boiler"), set_cmd(1, on=False))
    sub.publish(T.output_set("home", "boiler"), set_cmd(2, on=True))
    drive(rt, lambda: len(handled) == 2)
    assert handled == [(1, False), (2, True)]
    assert machine.PINS[RELAY].value() == 1
    # a newer one switches off
    sub.publish(T.output_set("home", "boiler"), set_cmd(3, on=False))
    drive(rt, lambda: machine.PINS[RELAY].value() == 0)
    sub.publish(T.output_set("home", "boiler"), set_cmd(4, on=True))
    drive(rt, lambda: machine.PINS[RELAY].value() == 1)
    # a bad command changes nothing (the same positive control after it)
    sub.publish(T.output_set("home", "boiler"), {"v": 1, "seq": 5, "on": "yes"})
    sub.publish(T.output_set("home", "boiler"), set_cmd(6, on=True))
    drive(rt, lambda: len(handled) == 6)
    assert handled[-2:] == [(5, False), (6, True)]
    assert rt.app.out.seq == 6 and machine.PINS[RELAY].value() == 1
    # no set for 10 s: off, and said so
    n = len(states(sub))
    jump(rt, 10_001)
    rt.step()
    assert machine.PINS[RELAY].value() == 0
    drive(rt, lambda: len(states(sub)) > n and states(sub)[-1]["on"] is False)
    # control resumes by itself with the next command (any seq after expiry)
    sub.publish(T.output_set("home", "boiler"), set_cmd(1, on=True))
    drive(rt, lambda: machine.PINS[RELAY].value() == 1)


def test_ttl_shorter_than_watchdog(tmp_path: Path, mosquitto: Any, subscriber_factory: Any) -> None:
    sub = subscriber_factory(T.status("dev1"))
    rt = make(tmp_path, mosquitto.port, switch_app.SwitchApp, "mini-switch", board="esp01")
    drive(rt, lambda: rt.link.up)
    sub.publish(T.output_set("home", "boiler"), set_cmd(7, ttl_s=3, on=True))
    drive(rt, lambda: rt.app.out.seq == 7)
    assert machine.PINS[0].value() == 0       # ESP-01 relay board: GPIO0 low = on
    jump(rt, 3_000)
    rt.step()
    assert machine.PINS[0].value() == 1


def test_button_override_is_reported(tmp_path: Path, mosquitto: Any,
                                     subscriber_factory: Any) -> None:
    sub = subscriber_factory(T.output_state("home", "boiler"))
    rt = make(tmp_path, mosquitto.port, switch_app.SwitchApp, "mini-switch", board="sonoff")
    drive(rt, lambda: rt.link.up)
    sub.publish(T.output_set("home", "boiler"), set_cmd(1, on=True))
    drive(rt, lambda: machine.PINS[RELAY].value() == 1)

    def press() -> None:
        machine.PINS[BUTTON].value(0)
        for _ in range(3):
            rt.step()
            CLOCK.advance(30)
        machine.PINS[BUTTON].value(1)
        for _ in range(3):
            rt.step()
            CLOCK.advance(30)

    press()
    assert machine.PINS[RELAY].value() == 0
    drive(rt, lambda: states(sub) and states(sub)[-1]["override"] is True)
    assert states(sub)[-1]["on"] is False
    # commands do not undo a local override, nor does the watchdog
    sub.publish(T.output_set("home", "boiler"), set_cmd(2, on=True))
    drive(rt, lambda: rt.app.out.seq == 2)
    jump(rt, 20_000)
    for _ in range(3):  # the board's clock is past the watchdog: each step would fire it
        rt.step()
    assert machine.PINS[RELAY].value() == 0
    press()                                     # hand control back: watchdog -> off
    drive(rt, lambda: states(sub)[-1]["override"] is False)
    assert machine.PINS[RELAY].value() == 0


def test_switcher_burst_follows_pct_and_shows_it(
        tmp_path: Path, mosquitto: Any, subscriber_factory: Any) -> None:
    sub = subscriber_factory(T.output_state("home", "boiler"))
    rt = make(tmp_path, mosquitto.port, switcher_app.SwitcherApp, "switcher", board="dimmer")
    app = rt.app
    drive(rt, lambda: rt.link.up)
    sub.publish(T.output_set("home", "boiler"), set_cmd(1, pct=30))
    sub.publish(T.live("home"), {"ts": 1768480000, "imp": 0, "exp": 1234}, qos=0)
    drive(rt, lambda: states(sub) and states(sub)[-1].get("pct") == 30)
    OutputState.model_validate(states(sub)[-1])
    zc, gate = machine.PINS[5], machine.PINS[4]
    before = app.fired
    for _ in range(200):                         # 100 mains cycles
        zc.fire()
    assert app.fired - before == 60             # 30 whole cycles, both halves
    assert gate.value() == 0
    jump(rt, 1_100)
    drive(rt, lambda: ssd1306.SCREENS[0].shown
          and ssd1306.SCREENS[0].shown[2] == "out  30.0 %")
    assert ssd1306.SCREENS[0].shown == ["P1 switcher", "mode burst", "out  30.0 %", "imp 0 W",
                                        "exp 1234 W", "wifi up mqtt up"]
    sub.publish(T.output_set("home", "boiler"), set_cmd(2, pct=41.5))
    drive(rt, lambda: app.burst.level == 415)
    before = app.fired
    for _ in range(2000):                        # 1000 cycles: exactly 415 conduct
        zc.fire()
    assert app.fired - before == 830
    # watchdog: no set for 10 s -> 0 %, no more firing
    jump(rt, 10_001)
    rt.step()
    before = app.fired
    for _ in range(200):
        zc.fire()
    assert app.fired == before
    drive(rt, lambda: states(sub)[-1]["pct"] == 0)


def test_switcher_phase_mode_uses_the_linearised_delay(
        tmp_path: Path, mosquitto: Any, subscriber_factory: Any) -> None:
    sub = subscriber_factory(T.output_state("home", "boiler"))
    rt = make(tmp_path, mosquitto.port, switcher_app.SwitcherApp, "switcher", board="dimmer",
              firing="phase")
    drive(rt, lambda: rt.link.up)
    sub.publish(T.output_set("home", "boiler"), set_cmd(1, pct=50))
    drive(rt, lambda: rt.app.delay == 5000)
    for _ in range(10):
        machine.PINS[5].fire()
    assert rt.app.fired == 10
    sub.publish(T.output_set("home", "boiler"), set_cmd(2, pct=0))
    drive(rt, lambda: rt.app.delay == -1)
    assert firing.delay_table()[50] == 5000


@pytest.mark.slow
def test_reconnect_after_broker_restart_and_last_will(
        tmp_path: Path, private_mosquitto: Any) -> None:
    from support import Subscriber

    broker = private_mosquitto
    sub = Subscriber(broker.port, T.status("dev1"), T.output_state("home", "boiler"))
    try:
        rt = make(tmp_path, broker.port, switch_app.SwitchApp, "mini-switch", board="sonoff",
                  keepalive_s=2)
        drive(rt, lambda: rt.link.up)
        broker.restart()
        sub.client.reconnect()
        drive(rt, lambda: rt.link.connects == 2, timeout_s=15)
        drive(rt, lambda: any(m.payload == b"online" for m in sub.on(T.status("dev1"))))
        sub.publish(T.output_set("home", "boiler"), set_cmd(5, on=True))
        drive(rt, lambda: machine.PINS[RELAY].value() == 1)
        # idle with keepalive 2 s: pings keep the session up
        spin(rt, 3.5)
        assert rt.link.connects == 2 and rt.link.up
        # the device hangs (loop stops): the broker fires the will
        sub.clear()
        sub.wait(T.status("dev1"), timeout_s=8)
        assert sub.on(T.status("dev1"))[-1].payload == b"offline"
        # a killed TCP connection: reconnect and say online again
        rt.link.sock.shutdown(socket.SHUT_RDWR)
        sub.clear()
        drive(rt, lambda: rt.link.connects == 3, timeout_s=15)
        drive(rt, lambda: any(m.payload == b"online" for m in sub.on(T.status("dev1"))))
    finally:
        sub.close()
