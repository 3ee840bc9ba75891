from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from vmserver import VictoriaMetrics, vm_binary


@pytest.fixture()
def vm() -> Iterator[VictoriaMetrics]:
    """A VictoriaMetrics of the test's own (tests stop and restart it)."""
    if not vm_binary():
        if os.environ.get("CI"):
            pytest.fail("victoria-metrics is not installed; `make setup` installs it")
        pytest.skip("victoria-metrics is not installed")
    server = VictoriaMetrics()
    yield server
    server.close()
