"""Run the MicroPython device code under CPython: paths, fake clock, runtime driver."""

from __future__ import annotations

import binascii
import json
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DEVICES = REPO / "devices"
FAKES = Path(__file__).resolve().parent / "fakes"
PATHS = [FAKES, DEVICES / "lib", DEVICES / "monitor", DEVICES / "p1-dongle",
         DEVICES / "mini-switch", DEVICES / "switcher"]
MASK = (1 << 30) - 1


class FakeClock:
    """time.ticks_ms() of the board: real time plus a jump offset, or frozen."""

    def __init__(self) -> None:
        self.offset_ms = 0
        self.frozen: int | None = None

    def ticks_ms(self) -> int:
        if self.frozen is not None:
            return self.frozen & MASK
        return (int(time.monotonic() * 1000) + self.offset_ms) & MASK

    def advance(self, ms: int) -> None:
        if self.frozen is not None:
            self.frozen += ms
        else:
            self.offset_ms += ms

    def freeze(self, at_ms: int | None = None) -> None:
        self.frozen = self.ticks_ms() if at_ms is None else at_ms

    def thaw(self) -> None:
        if self.frozen is not None:
            self.offset_ms = self.frozen - int(time.monotonic() * 1000)
        self.frozen = None


CLOCK = FakeClock()


def _ticks_diff(a: int, b: int) -> int:
    d = (a - b) & MASK
    return d - (1 << 30) if d >= (1 << 29) else d


def install() -> None:
    """Make `import machine, network, hw, mq, ...` work under CPython."""
    for p in reversed(PATHS):
        if str(p) not in sys.path:
            sys.path.insert(0, str(p))
    sys.modules.setdefault("ustruct", struct)
    sys.modules.setdefault("ubinascii", binascii)
    # MicroPython's extra `time` functions, added to the real module (nothing
    # of CPython's is replaced)
    time.ticks_ms = CLOCK.ticks_ms  # type: ignore[attr-defined]
    time.ticks_diff = _ticks_diff  # type: ignore[attr-defined]
    time.ticks_add = lambda a, b: (a + b) & MASK  # type: ignore[attr-defined]
    time.sleep_ms = lambda ms: time.sleep(ms / 1000)  # type: ignore[attr-defined]
    time.sleep_us = lambda us: None  # type: ignore[attr-defined]


def write_settings(path: Path, **values: Any) -> Path:
    base = {"ssid": "home-net", "password": "secret-pw", "mqtt_host": "127.0.0.1",
            "site": "home", "device_id": "dev1"}
    base.update(values)
    path.write_text(json.dumps(base))
    return path


def drive(rt: Any, until: Callable[[], Any], timeout_s: float = 8.0, step_s: float = 0.005) -> Any:
    """Step the device's main loop until `until()` is true (or fail)."""
    deadline = time.monotonic() + timeout_s
    while True:
        rt.step()
        got = until()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"device condition not met within {timeout_s} s")
        time.sleep(step_s)


def spin(rt: Any, seconds: float, step_s: float = 0.005) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        rt.step()
        time.sleep(step_s)


def jump(rt: Any, ms: int) -> None:
    """Move the board's clock forward by `ms` with no MQTT ping outstanding.

    A real clock never jumps: a ping sent just before the jump would look
    unanswered for `ms` and the link would reconnect, losing messages
    published meanwhile (clean session), which is not what a test means.
    """
    if rt.link.up:
        drive(rt, lambda: rt.link.ping_at is None)
    CLOCK.advance(ms)
