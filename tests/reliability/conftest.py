"""Reliability suite: faults, bad input, restarts.

Short versions run in ``make test``. The long versions are marked ``soak`` and only
run with ``P1_SOAK=1`` (``make soak``: ``P1_SOAK=1 .venv/bin/pytest -q -m soak tests/reliability``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

SOAK = os.environ.get("P1_SOAK", "").strip().lower() in ("1", "true", "yes")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "soak: long reliability runs, only with P1_SOAK=1 (make soak)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if SOAK:
        return
    skip = pytest.mark.skip(reason="soak run: set P1_SOAK=1 (make soak)")
    for item in items:
        if item.get_closest_marker("soak") is not None:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _stop_processes() -> Iterator[None]:
    """Whatever a test started is stopped after it, even when it failed half-way."""
    from rel_support import STARTED

    yield
    while STARTED:
        STARTED.pop().stop()
