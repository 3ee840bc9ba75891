"""The boiler absorbs a sunny midday's surplus: the real house and PV models of meter-sim
(3 kWp, a clear June day, household appliances switching), the whole stack, 10x real time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from loop_support import closed_loop, collect, local_s, longest_run, wait_until_meter_time

SPEED = 10
START = "2026-06-16T12:00:00+02:00"  # seed 1: a clear day
SETTLE_S, END_S = 40, 600

SCENARIO: dict[str, Any] = {
    "seed": 1,
    "start": START,
    "pv": {"kwp": 3},
    "loads": [
        {"id": "boiler", "kind": "dimmer", "rated_w": 2400, "phase": 2, "tank_l": 200,
         "temp_c": 30},
        {"id": "relay1", "kind": "relay", "rated_w": 1500, "phase": 3},
    ],
}


@pytest.mark.slow
def test_boiler_absorbs_the_surplus_of_a_sunny_midday(mosquitto: Any, tmp_path: Path) -> None:
    t0 = local_s(START)
    with closed_loop(mosquitto, tmp_path, SCENARIO, speed=SPEED, duration_s=END_S + 5) as (
            site, sub):
        wait_until_meter_time(sub, site, t0 + END_S, timeout_s=END_S / SPEED + 30)
    trace = collect(sub, site)
    ts = [t for t in trace.seconds() if t0 + SETTLE_S <= t <= t0 + END_S]
    assert len(ts) >= (END_S - SETTLE_S) * 0.97, "readings missing"
    net = [trace.net_w[t] for t in ts]
    boiler = [trace.boiler_w(t) for t in ts]
    surplus = [b - n for b, n in zip(boiler, net, strict=True)]  # PV - household
    print(f"surplus {min(surplus):.0f}..{max(surplus):.0f} W, "
          f"mean |net| {sum(map(abs, net)) / len(net):.1f} W")
    # mean |net| where the boiler can make net 0 (surplus within its range)
    in_range = [abs(n) for n, s in zip(net, surplus, strict=True) if 100 < s < 2300]
    assert len(in_range) >= 0.8 * len(ts)
    mean_abs = sum(in_range) / len(in_range)
    print(f"mean |net| in range {mean_abs:.1f} W over {len(in_range)} s")
    assert mean_abs <= 60
    # export above 150 W never lasts more than 5 readings (the boiler takes it up)
    exporting = [n < -150 and b < 2390 for n, b in zip(net, boiler, strict=True)]
    assert longest_run(exporting) <= 5
    # the boiler's energy is the surplus it could take (capped at its 2400 W)
    boiler_wh = sum(boiler) / 3600
    available_wh = sum(min(max(s, 0.0), 2400.0) for s in surplus) / 3600
    print(f"boiler {boiler_wh:.0f} Wh of {available_wh:.0f} Wh available")
    assert 0.95 * available_wh <= boiler_wh <= 1.02 * available_wh
    assert all(on is False for _, on in trace.relay_on)  # no export left for the switch
