"""A household load step while exporting, corrected by the boiler.

In lock-step on one simulated clock (meter-sim's engine, p1-reader's parser, the
peak-forecaster's engine, the load-controller's controller: loop_support.lockstep), with
the control targets as they are; and through the whole stack as processes (meter-sim pty
-> p1-reader -> load-controller -> meter-sim's boiler, 10x real time), for the wiring and
the steady states, which no message latency changes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loop_support import (
    closed_loop,
    collect,
    local_s,
    lockstep,
    sign_changes,
    wait_until_meter_time,
)

SPEED = 10
START = "2026-06-17T12:00:00+02:00"
STEP_UP_S, STEP_DOWN_S, END_S = 90, 150, 210
# The targets, from BENCHMARKS.md, block "control: closed loop with meter-sim, step
# response" (the same loop, PV 2300 W, steps of 1000 W): "Target: settle <= 5 s, overshoot
# <= 20 %, no oscillation"; measured there: settle 4.0 s, overshoot 0 %. Settle counts from
# the start of the second of the step; the telegram of index i after it (i = 0 the first
# to show the step) ends i + 1 s after that start.
SETTLE_S = 5
OVERSHOOT_W = 200  # 20 % of the 1000 W step

SCENARIO: dict[str, Any] = {
    "seed": 3,
    "start": START,
    "house": "off",
    "meter": {"synthetic": False},
    "loads": [
        {"id": "boiler", "kind": "dimmer", "rated_w": 2400, "phase": 2, "tank_l": 200,
         "temp_c": 30},
        {"id": "relay1", "kind": "relay", "rated_w": 1500, "phase": 3},
    ],
    "events": [  # PV 2000 W, household 300 W: 1700 W of surplus for the boiler
        {"after": 0, "pv_w": 2000},
        {"after": 0, "load": {"id": "base", "w": 300, "phase": 1}},
        {"after": STEP_UP_S, "load": {"id": "oven", "w": 1000, "phase": 1}},
        {"after": STEP_DOWN_S, "load": {"id": "oven", "w": 0}},
    ],
}


def _window(net: dict[int, float], t0: int, a: int, b: int) -> list[float]:
    """net of the telegrams at t0+a .. t0+b-1 (a telegram at t shows second t-1)."""
    return [net[t0 + s] for s in range(a, b) if t0 + s in net]


def test_load_step_while_exporting_is_corrected_in_lockstep() -> None:
    t0 = local_s(START)
    trace = lockstep(SCENARIO, END_S + 5)
    net, boiler = trace.net_w, trace.drawn_w["boiler"]
    # settled on the 1700 W surplus before the step: boiler at ~71 %, net ~0
    before = _window(net, t0, STEP_UP_S - 30, STEP_UP_S + 1)
    assert len(before) == 31 and max(abs(v) for v in before) <= 50
    assert abs(boiler[t0 + STEP_UP_S] - 1700) <= 60
    for step_s, sign in ((STEP_UP_S, 1), (STEP_DOWN_S, -1)):
        seg = _window(net, t0, step_s + 1, step_s + 60)
        assert len(seg) == 59
        assert sign * seg[0] >= 800  # the step shows in full in the next telegram
        first_ok = next(i for i, v in enumerate(seg) if abs(v) <= 50)
        assert first_ok + 1 <= SETTLE_S, seg[:15]
        assert all(abs(v) <= 50 for v in seg[first_ok:]), seg  # and stays there
        assert min(sign * v for v in seg) >= -OVERSHOOT_W, seg
        assert sign_changes(seg) == 0, seg  # no oscillation: never across to the other side
    # after the step down, the boiler takes the 1700 W again; the relay never started
    assert abs(boiler[t0 + END_S] - 1700) <= 60
    assert trace.relay_on and all(on is False for _, on in trace.relay_on)


def test_load_step_through_the_whole_stack(mosquitto: Any, tmp_path: Path) -> None:
    t0 = local_s(START)
    with closed_loop(mosquitto, tmp_path, SCENARIO, speed=SPEED, duration_s=END_S + 5) as (
            site, sub):
        wait_until_meter_time(sub, site, t0 + END_S, timeout_s=60)
    trace = collect(sub, site)
    net = trace.net_w
    # the steady state before the step: the boiler on the 1700 W surplus, net ~0
    before = _window(net, t0, STEP_UP_S - 30, STEP_UP_S + 1)
    assert len(before) >= 29 and max(abs(v) for v in before) <= 50
    assert abs(trace.boiler_w(t0 + STEP_UP_S) - 1700) <= 60
    for step_s, sign in ((STEP_UP_S, 1), (STEP_DOWN_S, -1)):
        seg = _window(net, t0, step_s + 1, step_s + 60)
        assert len(seg) >= 55, "readings missing"
        assert sign * seg[0] >= 800  # the step shows in full in the next telegram
        # corrected through the stack: 10 telegrams in a row within 50 W of 0 within the
        # minute (how fast is the lock-step test's: here, on a loaded machine, a reading
        # late by 0.3 s is 3 simulated seconds late)
        runs = [all(abs(v) <= 50 for v in seg[i:i + 10]) for i in range(len(seg) - 9)]
        assert any(runs), seg
    assert abs(trace.boiler_w(t0 + END_S) - 1700) <= 60
    assert all(on is False for _, on in trace.relay_on)
