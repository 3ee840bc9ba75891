"""Fake of MicroPython's `machine` for the PC tests: pins record their values."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

PINS: dict[int, Pin] = {}
WDT_FEEDS = [0]
RESETS = [0]


def reset_all() -> None:
    PINS.clear()
    WDT_FEEDS[0] = 0
    RESETS[0] = 0


class Pin:
    IN = 0
    OUT = 1
    PULL_UP = 2
    IRQ_RISING = 1
    IRQ_FALLING = 2

    def __new__(cls, gpio: Any, mode: int | None = None, pull: int | None = None) -> Pin:
        if isinstance(gpio, Pin):
            return gpio
        pin = PINS.get(gpio)
        if pin is None:
            pin = super().__new__(cls)
            pin.gpio = gpio
            pin._value = 0
            pin.mode = None
            pin.pull = None
            pin.handler = None
            pin.writes = 0
            PINS[gpio] = pin
        if mode is not None:
            pin.mode = mode
        if pull is not None:
            pin.pull = pull
            pin._value = 1
        return pin

    gpio: int
    _value: int
    mode: int | None
    pull: int | None
    handler: Callable[[Pin], None] | None
    writes: int

    def value(self, v: Any = None) -> int | None:
        if v is None:
            return self._value
        self._value = 1 if v else 0
        self.writes += 1
        return None

    def on(self) -> None:
        self.value(1)

    def off(self) -> None:
        self.value(0)

    def irq(self, trigger: int = 0, handler: Callable[[Pin], None] | None = None,
            hard: bool = False) -> None:
        self.handler = handler

    def fire(self) -> None:
        """The test's zero crossing (or edge): call the registered IRQ handler."""
        assert self.handler is not None, f"no IRQ handler on GPIO{self.gpio}"
        self.handler(self)


class WDT:
    def __init__(self, timeout: int = 0) -> None:
        pass

    def feed(self) -> None:
        WDT_FEEDS[0] += 1


class SoftI2C:
    def __init__(self, scl: Pin | None = None, sda: Pin | None = None, freq: int = 400000) -> None:
        self.scl = scl
        self.sda = sda


def reset() -> None:
    RESETS[0] += 1


def unique_id() -> bytes:
    return b"\x00\xa1\xb2\xc3"
