"""The Quarter peak page when the service joined a quarter mid-way and while the month is on
the 2.5 kW floor: real peak-forecaster and p1-web processes, the real broker, Debian's
Chromium. Screenshots go to test-artifacts/web-peak-join-*.png.

Readings every 10 s at a constant 1800 W (5 Wh per reading), so the default forecast is
exactly the energy so far + 1800 W x the time left (smoothed power = prior = 1800 W).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import web_support as ws
from test_web_browser import DESKTOP, PHONE, browser, check_clean, open_page, shoot  # noqa: F401

from support import Mosquitto, Subscriber, wait_for

pytestmark = pytest.mark.browser


class Forecaster:
    """``peak-forecaster run`` as a process of its own."""

    def __init__(self, broker: Mosquitto, state: Path) -> None:
        self.client_id = f"pf-web-{os.getpid()}"
        self.log = state / "pf.log"
        env = {**os.environ, "MQTT_URL": broker.url, "P1_STATE_DIR": str(state),
               "MQTT_CLIENT_ID": self.client_id, "PEAK_PERSIST_S": "1"}
        watch = Subscriber(broker.port, f"p1/status/{self.client_id}")
        with self.log.open("ab") as fh:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "peak_forecaster.cli", "run", "--no-ha-discovery"],
                env=env, stdout=fh, stderr=subprocess.STDOUT)
        try:  # online is said after its subscriptions
            wait_for(lambda: any(m.payload == b"online" and not m.retain for m in watch.messages), 20)
        finally:
            watch.close()

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(15)


class House:
    """A meter for one site: integer Wh counter, local time with the Brussels offset (winter)."""

    def __init__(self, pub: Subscriber, site: str, start: str) -> None:
        self.pub, self.site = pub, site
        self.t = dt.datetime.fromisoformat(start)
        self.wh = 2_000_000

    def send(self, power_w: float, **extra: Any) -> str:
        ts = self.t.isoformat()
        r = {"v": 1, "site": self.site, "source": "sim", "ts": ts, "import_kwh": self.wh / 1000,
             "import_w": power_w, **extra}
        self.pub.client.publish(f"p1/{self.site}/reading", json.dumps(r), qos=1)
        return ts

    def run_until(self, end: str, wh_per_10s: int, power_w: float) -> str:
        last = ""
        while self.t < dt.datetime.fromisoformat(end):
            self.t += dt.timedelta(seconds=10)
            self.wh += wh_per_10s
            last = self.send(power_w)
        return last


@pytest.fixture(scope="module")
def stack(mosquitto, tmp_path_factory) -> Iterator[tuple[ws.WebProc, Subscriber]]:  # type: ignore[no-untyped-def]
    state = tmp_path_factory.mktemp("peakjoin")
    pf = Forecaster(mosquitto, state)
    web = ws.WebProc(mosquitto.url, state, site="home").start()
    pub = Subscriber(mosquitto.port, "nothing/#")
    yield web, pub
    pub.close()
    web.close()
    pf.close()


def text(pg, sel: str) -> str:  # type: ignore[no-untyped-def]
    return pg.inner_text(sel)


def visible(pg, sel: str) -> bool:  # type: ignore[no-untyped-def]
    return bool(pg.is_visible(sel))


def wait_text(pg, sel: str, want: str) -> None:  # type: ignore[no-untyped-def]
    ws.wait_js(pg, "([s, w]) => document.querySelector(s).textContent === w", arg=[sel, want], timeout_s=20)


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_partial_quarter_and_the_month_floor(browser, stack, artifacts, viewport):  # noqa: F811
    web, pub = stack
    view = "phone" if viewport is PHONE else "desktop"
    site = f"join{os.getpid()}{view}"
    web.site = site
    house = House(pub, site, "2026-01-15T10:07:00+01:00")  # minute 7, no 1-0:1.4.0: partial
    house.send(1800.0)
    last = house.run_until("2026-01-15T10:10:00+01:00", 5, 1800.0)
    assert last == "2026-01-15T10:10:00+01:00"
    ctx, pg = open_page(browser, web, "peak", viewport)
    try:
        wait_text(pg, "#peak_ts", "10:10:00")
        # seen 10:07:00 -> 10:10:00: 18 x 5 = 90 Wh; x 4 = 360 W;
        # forecast 90 + 1800 x 300 / 3600 = 240 Wh -> 960 W; headroom (625 - 240) x 12 = 4620 W
        assert text(pg, "#avg_source") == "partial: since 10:07:00"
        assert pg.get_attribute("#avg_source", "class") == "badge warn"
        assert visible(pg, "#avg_source") and visible(pg, "#avg_note")
        assert text(pg, "#avg_note").startswith(
            "Started in the middle of this quarter (at 10:07:00) and the meter sends no quarter "
            "average (1-0:1.4.0)")
        assert (text(pg, "#energy_wh"), text(pg, "#avg_w"), text(pg, "#forecast_w"),
                text(pg, "#headroom_w")) == ("at least 90 Wh", "at least 360 W", "at least 960 W",
                                            "at most 4,620 W")
        # the month is on the floor and no quarter has closed yet
        wait_text(pg, "#month", "2026-01")
        assert text(pg, "#month_peak_w") == "2,500 W"
        assert text(pg, "#month_note") == (
            "the 2.5 kW minimum (no quarter this month is above it); no quarter above 0 W yet")
        check_clean(pg)
        shoot(pg, artifacts, f"peak-join-partial-{view}")

        # on to 10:20: the 10:00 quarter closes with what was seen, 480 s x 1800 W = 240 Wh -> 960 W
        house.run_until("2026-01-15T10:20:00+01:00", 5, 1800.0)
        wait_text(pg, "#peak_ts", "10:20:00")
        assert not visible(pg, "#avg_source") and not visible(pg, "#avg_note")
        assert (text(pg, "#energy_wh"), text(pg, "#avg_w")) == ("150 Wh", "600 W")
        wait_text(pg, "#month_note", "the 2.5 kW minimum (no quarter this month is above it); "
                  "highest quarter so far: 960 W at 15/01/2026 10:00")
        assert text(pg, "#month_peak_w") == "2,500 W"
        check_clean(pg)
        shoot(pg, artifacts, f"peak-join-floor-{view}")
    finally:
        ctx.close()


def test_quarter_joined_with_the_meters_average(browser, stack, artifacts):  # noqa: F811
    web, pub = stack
    site = f"joinmeter{os.getpid()}"
    web.site = site
    house = House(pub, site, "2026-01-15T10:07:00+01:00")
    house.send(413.0, avg_demand_w=413.0)
    ctx, pg = open_page(browser, web, "peak", DESKTOP)
    try:
        wait_text(pg, "#peak_ts", "10:07:00")
        # 413 W x 420 s = 48.18 Wh before the join; x 4 = 192.7 W; forecast 413 W
        assert (text(pg, "#energy_wh"), text(pg, "#avg_w"), text(pg, "#forecast_w"),
                text(pg, "#meter_avg_demand_w")) == ("48 Wh", "193 W", "413 W", "413 W")
        assert text(pg, "#avg_source") == "meter's average before 10:07:00"
        assert text(pg, "#avg_note") == (
            "Started in the middle of this quarter (at 10:07:00): the energy before 10:07:00 comes "
            "from the meter's own quarter average (1-0:1.4.0), the rest from its counters.")
        # the site's learner has seen nothing yet: no probability, what it needs, 0 days
        assert (text(pg, "#probability"), text(pg, "#reason"), text(pg, "#days_learned")) == (
            "–", "learning this house: 0 of 2 days", "0 days")
        check_clean(pg)
        shoot(pg, artifacts, "peak-join-meter-desktop")
    finally:
        ctx.close()
