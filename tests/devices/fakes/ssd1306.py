"""Fake SSD1306 driver: keeps the text lines last shown."""

from __future__ import annotations

from typing import Any

SCREENS: list[Any] = []


class SSD1306_I2C:  # the real driver's name
    def __init__(self, width: int, height: int, i2c: Any) -> None:
        self.width = width
        self.height = height
        self.buf: list[tuple[int, str]] = []
        self.shown: list[str] = []
        SCREENS.append(self)

    def fill(self, c: int) -> None:
        self.buf = []

    def text(self, s: str, x: int, y: int, c: int = 1) -> None:
        assert len(s) <= self.width // 8, f"{s!r} does not fit on the screen"
        self.buf.append((y, s))

    def show(self) -> None:
        self.shown = [s for _, s in sorted(self.buf)]
