"""Helpers for the meter-sim tests: scripted simulators and a small telegram reader."""

from __future__ import annotations

import re
from typing import Any

from meter_sim.scenario import build
from meter_sim.sim import Simulator

LINE = re.compile(r"^(\d+-\d+:\d+\.\d+\.\d+)((?:\([^)]*\))+)$")


def scripted(events: list[dict[str, Any]], start: str, **meter: Any) -> Simulator:
    """No household, no PV, no controllable loads, meter from zero: only the scripted steps."""
    meter_cfg = {"synthetic": False, **meter}
    return Simulator(build({"start": start, "house": "off", "pv": "off", "loads": [],
                            "meter": meter_cfg, "events": events}))


def fields(telegram: bytes) -> dict[str, list[str]]:
    """OBIS -> the values between parentheses (no unit stripping)."""
    out = {}
    for line in telegram.decode("ascii").split("\r\n"):
        m = LINE.match(line)
        if m:
            out[m.group(1)] = re.findall(r"\(([^)]*)\)", m.group(2))
    return out


def run_to(sim: Simulator, local: str) -> bytes:
    """Step until the meter clock shows ``local`` (YYMMDDhhmmssX); the telegram there."""
    for _ in range(400000):
        tg = sim.telegram()
        if fields(tg)["0-0:1.0.0"][0] == local:
            return tg
        sim.step()
    raise AssertionError(f"never reached {local}")
