from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from vmserver import VictoriaMetrics, vm_binary

from support import Mosquitto, Subscriber, mosquitto_bin

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"

# The tests replay captured telegrams (2017-2024) and simulated days: for the services they
# start, the rule "meter clock within an hour of the host's" (p1common.plausibility) is off
# unless a test turns it on itself (tests/common/test_plausibility.py, the clock tests of
# p1-reader and of the consumers, which set P1_MAX_CLOCK_DRIFT_S explicitly).
os.environ.setdefault("P1_MAX_CLOCK_DRIFT_S", "0")


@pytest.fixture(scope="session")
def mosquitto() -> Iterator[Mosquitto]:
    """One real Mosquitto per test run on a free loopback port."""
    if not mosquitto_bin():
        if os.environ.get("CI"):
            pytest.fail("mosquitto is not installed; `make setup` installs it")
        pytest.skip("mosquitto is not installed")
    broker = Mosquitto()
    yield broker
    broker.close()


@pytest.fixture()
def private_mosquitto() -> Iterator[Mosquitto]:
    """A broker of the test's own, for tests that stop or restart it."""
    if not mosquitto_bin():
        pytest.skip("mosquitto is not installed")
    broker = Mosquitto()
    yield broker
    broker.close()


@pytest.fixture()
def subscriber_factory(mosquitto: Mosquitto) -> Iterator:
    made: list[Subscriber] = []

    def make(*topics: str, broker: Mosquitto | None = None) -> Subscriber:
        sub = Subscriber((broker or mosquitto).port, *topics)
        made.append(sub)
        return sub

    yield make
    for s in made:
        s.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture()
def vm() -> Iterator[VictoriaMetrics]:
    """A VictoriaMetrics of the test's own (InfluxDB v2 write API); tests stop and restart it."""
    if not vm_binary():
        if os.environ.get("CI"):
            pytest.fail("victoria-metrics is not installed; `make setup` installs it")
        pytest.skip("victoria-metrics is not installed")
    server = VictoriaMetrics()
    yield server
    server.close()
