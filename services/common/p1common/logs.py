"""Logging: one readable line per event, and a rate limiter for floods (bad telegrams)."""

from __future__ import annotations

import logging
import sys
import time


def setup_logging(level: str = "INFO", name: str | None = None) -> None:
    fmt = "%(asctime)s %(levelname)-7s " + (f"{name} " if name else "%(name)s ") + "%(message)s"
    logging.basicConfig(level=level, format=fmt, stream=sys.stderr, force=True)
    logging.getLogger("paho").setLevel(logging.WARNING)


class RateLimitedLog:
    """Logs at most ``burst`` messages per ``period_s``; says how many it held back."""

    def __init__(self, logger: logging.Logger, period_s: float = 60.0, burst: int = 5) -> None:
        self.logger = logger
        self.period_s = period_s
        self.burst = burst
        self._window_start = -1e18
        self._count = 0
        self._suppressed = 0

    def log(self, level: int, msg: str, *args: object, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        if now - self._window_start >= self.period_s:
            if self._suppressed:
                self.logger.log(
                    level, "(%d similar messages suppressed in the last %.0f s)",
                    self._suppressed, self.period_s,
                )
            self._window_start = now
            self._count = 0
            self._suppressed = 0
        if self._count < self.burst:
            self._count += 1
            self.logger.log(level, msg, *args)
            return True
        self._suppressed += 1
        return False

    def warning(self, msg: str, *args: object) -> bool:
        return self.log(logging.WARNING, msg, *args)
