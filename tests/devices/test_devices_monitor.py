"""Monitor firmware under CPython: fake pins, the firmware's MQTT link, real Mosquitto."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import machine
import monitor_app
from device import Runtime
from devsupport import CLOCK, drive, write_settings

from p1common.topics import Topics

EXP_PINS = (2, 0, 4, 5, 16)    # level 1..5 = D4 D3 D2 D1 D0
IMP_PINS = (14, 12, 13, 15)    # level 1..4 = D5 D6 D7 D8
RED, BLUE = 1, 3               # TX, RX


def leds() -> tuple[str, str, int, int]:
    def bar(pins: tuple[int, ...]) -> str:
        return "".join(str(machine.PINS[p].value()) for p in pins)
    return bar(EXP_PINS), bar(IMP_PINS), machine.PINS[RED].value(), machine.PINS[BLUE].value()


def make(tmp_path: Path, port: int, **extra: Any) -> tuple[Runtime, list[tuple]]:
    log: list[tuple] = []
    path = write_settings(tmp_path / "settings.json", mqtt_port=port, max_import_w=4000,
                          max_export_w=5000, keepalive_s=5, **extra)
    rt = Runtime("monitor", monitor_app.MonitorApp, path=str(path), wdt=True,
                 log=lambda *a: log.append(a))
    return rt, log


def test_led_test_order_and_joining_shows_red(tmp_path: Path, mosquitto: Any) -> None:
    rt, _ = make(tmp_path, mosquitto.port, ssid="not-here")
    order = []
    for p in (*EXP_PINS, *IMP_PINS, RED, BLUE):
        pin = machine.PINS[p]
        orig = pin.value

        def rec(v: Any = None, _p: int = p, _orig: Any = orig) -> Any:
            if v:
                order.append(_p)
            return _orig(v)
        pin.value = rec  # type: ignore[method-assign]
    rt.app.led_test(step_ms=1)
    assert order == [2, 0, 4, 5, 16, 14, 12, 13, 15, 1, 3]
    rt.step()
    assert leds() == ("00000", "0000", 1, 0)      # joining Wi-Fi: red steady


def test_bars_follow_live_and_blue_blinks_without_data(
        tmp_path: Path, mosquitto: Any, subscriber_factory: Any) -> None:
    t = Topics("p1")
    sub = subscriber_factory(t.status("dev1"))
    rt, _ = make(tmp_path, mosquitto.port)
    drive(rt, lambda: rt.link.up)
    assert sub.wait(t.status("dev1"))[-1].payload == b"online"
    sub.publish(t.live("home"), {"ts": 1768480000, "imp": 2600, "exp": 0, "tar": 1}, qos=0)
    drive(rt, lambda: leds()[1] == "1110")        # 2600 W of 4000 over 4 LEDs -> 3
    assert leds() == ("00000", "1110", 0, 1)
    sub.publish(t.live("home"), {"ts": 1768480001, "imp": 0, "exp": 4600, "tar": 1}, qos=0)
    drive(rt, lambda: leds()[0] == "11111")       # 4600 W of 5000 over 5 -> 5 (4.6 rounds up)
    sub.publish(t.live("home"), {"ts": 1768480002, "imp": 0, "exp": 1600, "tar": 1}, qos=0)
    drive(rt, lambda: leds()[0] == "11000")
    assert leds() == ("11000", "0000", 0, 1)
    # 10 s without data: bars off, blue blinks 0.5 s on / 0.5 s off
    drive(rt, lambda: rt.link.ping_at is None)      # see devsupport.jump
    CLOCK.freeze()
    CLOCK.frozen = (CLOCK.frozen // 1000 + 11) * 1000 + 100
    rt.step()
    assert leds() == ("00000", "0000", 0, 1)
    CLOCK.advance(500)
    rt.step()
    assert leds() == ("00000", "0000", 0, 0)
    CLOCK.advance(500)
    rt.step()
    assert leds()[3] == 1


def test_peak_warning_blinks_red_and_config_rescales(
        tmp_path: Path, mosquitto: Any, subscriber_factory: Any) -> None:
    t = Topics("p1")
    sub = subscriber_factory(t.status("dev1"))
    rt, log = make(tmp_path, mosquitto.port)
    drive(rt, lambda: rt.link.up)
    sub.publish(t.live("home"), {"ts": 1768480000, "imp": 1000, "exp": 0}, qos=0)
    drive(rt, lambda: leds()[1] == "1000")
    sub.publish(t.peak("home"), {"level": "warn", "threshold_w": 2500, "month_peak_w": 2500,
                                 "forecast_w": 3100}, qos=0)
    drive(rt, lambda: rt.app.m.level == "warn")
    CLOCK.freeze((CLOCK.ticks_ms() // 1000) * 1000 + 100)
    rt.step()
    assert leds()[2] == 1
    CLOCK.advance(500)
    rt.step()
    assert leds()[2] == 0
    CLOCK.thaw()
    # alarm blinks faster (250 ms period)
    sub.publish(t.peak("home"), {"level": "alarm"}, qos=0)
    drive(rt, lambda: rt.app.m.level == "alarm")
    CLOCK.freeze((CLOCK.ticks_ms() // 1000) * 1000)
    seen = []
    for _ in range(8):
        rt.step()
        seen.append(leds()[2])
        CLOCK.advance(125)
    assert seen == [1, 0, 1, 0, 1, 0, 1, 0]
    CLOCK.thaw()
    sub.publish(t.peak("home"), {"level": "ok"}, qos=0)
    drive(rt, lambda: rt.app.m.level == "ok")
    rt.step()
    assert leds()[2] == 0
    # the retained config document rescales the bars and is kept in flash
    sub.publish(t.config("home", "monitor", "dev1"),
                {"v": 1, "max_import_w": 2000, "max_export_w": 1000}, retain=True)
    drive(rt, lambda: rt.app.m.max_import_w == 2000)
    sub.publish(t.live("home"), {"ts": 1768480003, "imp": 1000, "exp": 0}, qos=0)
    drive(rt, lambda: leds()[1] == "1100")
    assert json.loads((tmp_path / "settings.json").read_text())["max_import_w"] == 2000
    # an invalid document is refused, the last good one stays
    sub.publish(t.config("home", "monitor", "dev1"), {"v": 1, "max_import_w": -5}, retain=True)
    drive(rt, lambda: any(a[0].startswith("monitor config refused") for a in log))
    assert rt.app.m.max_import_w == 2000
    sub.publish(t.config("home", "monitor", "dev1"), b"", retain=True)   # clean up retained
    sub.publish(t.live("home"), b"not json", qos=0)
    drive(rt, lambda: rt.bad == 1)
    fed = machine.WDT_FEEDS[0]
    for _ in range(3):  # and the loop goes on feeding the hardware watchdog, once a step
        rt.step()
    assert fed > 10 and machine.WDT_FEEDS[0] == fed + 3
