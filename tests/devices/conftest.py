from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import devsupport

devsupport.install()

import machine  # noqa: E402
import network  # noqa: E402
import ssd1306  # noqa: E402


@pytest.fixture(autouse=True)
def fresh_board() -> Iterator[devsupport.FakeClock]:
    """A new board per test: pins, Wi-Fi world, clock."""
    machine.reset_all()
    network.reset_all({"home-net": "secret-pw", "neighbours": "x" * 12})
    ssd1306.SCREENS.clear()
    devsupport.CLOCK.thaw()
    devsupport.CLOCK.offset_ms = 0
    yield devsupport.CLOCK
    devsupport.CLOCK.thaw()
