"""meter-sim: how fast simulated time runs, and what month peaks the default house makes.

Reference in the same run: the byte-wise CRC of p1common over the same telegrams,
so the ratios do not depend on this machine's speed.
"""

from __future__ import annotations

import time

from meter_sim.clock import parse_local
from meter_sim.scenario import build
from meter_sim.sim import Simulator
from p1common.dsmr_crc import crc_hex


def _sim(start: str, seed: int = 1) -> Simulator:
    return Simulator(build({"seed": seed}, start=parse_local(start)))


def run(report) -> None:  # type: ignore[no-untyped-def]
    print("sim: one simulated hour with a telegram per second", flush=True)
    sim = _sim("2026-01-15T17:00")
    tgs = []
    t0 = time.perf_counter()
    for _ in range(3600):
        sim.step()
        tgs.append(sim.telegram())
    with_tg = time.perf_counter() - t0
    t0 = time.perf_counter()
    for tg in tgs:
        crc_hex(tg[: tg.rindex(b"!") + 1])
    ref = time.perf_counter() - t0
    sim = _sim("2026-01-15T17:00")
    t0 = time.perf_counter()
    for _ in range(3600):
        sim.step()
    steps = time.perf_counter() - t0
    per_tg_us = with_tg / 3600 * 1e6

    print("sim: month peaks of the default house (model only, 4 months)", flush=True)
    rows = []
    month_s = 0.0
    for month, hp in (("2026-01", 0), ("2026-01", 2000), ("2026-04", 0), ("2026-07", 0)):
        data = {"seed": 1, "meter": {"synthetic": False}}
        if hp:
            data["house"] = {"heat_pump_w": hp}
        sim = Simulator(build(data, start=parse_local(f"{month}-01T00:00")))
        t0 = time.perf_counter()
        quarters = []
        for k in range(1, 28 * 86400 + 1):
            sim.step()
            if k % 900 == 0:
                quarters.append(sim.meter.last_quarter_w or 0.0)
        month_s = max(month_s, time.perf_counter() - t0)
        imp = sum(sim.meter.counters_wh()[:2]) / 1000
        rows.append(f"| {month} | {'heat pump ' + str(hp) + ' W' if hp else 'gas heating'} | "
                    f"{sim.meter.month_max_w / 1000:.2f} | {sorted(quarters)[-10] / 1000:.2f} | "
                    f"{imp / 28:.1f} |")
        print(f"  {rows[-1]}", flush=True)

    report.section("meter-sim: speed and month peaks", "\n".join([
        f"- one simulated second with its Fluvius telegram: {per_tg_us:.0f} us "
        f"(= {3600 / with_tg:.0f}x real time; a day of telegrams in {with_tg * 24:.1f} s)",
        f"- the same hour without telegrams: {steps / with_tg * 100:.0f} % of that time "
        f"(a 28-day month of quarters in {month_s:.1f} s)",
        f"- reference, p1common's byte-wise CRC alone over those telegrams: "
        f"{ref / with_tg * 100:.0f} % of the time with telegrams (the simulator uses a "
        "16-bit table CRC with the same result)",
        "",
        "Month peaks of the default 4-person house, seed 1, 28 days, PV 5 kWp "
        "(import counters; the meter's 1-0:1.6.0):",
        "",
        "| month | heating | month peak kW | 10th highest quarter kW | import kWh/day |",
        "|---|---|---|---|---|",
        *rows,
    ]))
