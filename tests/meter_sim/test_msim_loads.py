"""Controllable loads: delay, watchdog, boiler thermostat, state payloads, bad commands."""

from __future__ import annotations

import pytest

from meter_sim.loads import CommandError, ControllableLoad, LoadConfig
from p1common.payloads import OutputState


def iso(t: int) -> str:
    return f"t{t}"


def run(load: ControllableLoad, t0: int, t1: int, **kw: float) -> list[float]:
    return [load.step(t, 1.0, **kw) for t in range(t0, t1)]


def test_relay_applies_after_the_delay_and_reports_state() -> None:
    load = ControllableLoad(LoadConfig(id="r", kind="relay", rated_w=1500, delay_s=2), iso)
    load.command(100, {"on": True, "seq": 7, "ttl_s": 10})
    assert run(load, 100, 104) == [0, 0, 1500, 1500]
    states = load.drain()
    assert states == [{"v": 1, "ts": "t102", "on": True, "override": False, "seq": 7}]
    OutputState.model_validate({**states[0], "ts": "2026-01-15T12:00:00+01:00"})


def test_a_sub_second_delay_counts_for_part_of_the_second() -> None:
    """--command-delay-s 0.5: half of the second the command applies in, not rounded up."""
    load = ControllableLoad(LoadConfig(id="r", kind="relay", rated_w=1500, delay_s=0.5), iso)
    load.command(100, {"on": True, "seq": 1})
    assert run(load, 100, 103) == [750.0, 1500.0, 1500.0]
    dimmer = ControllableLoad(LoadConfig(id="d", kind="dimmer", rated_w=2000, delay_s=0.25),
                              iso)
    dimmer.command(10, {"pct": 50, "seq": 1})
    dimmer.command(10.5, {"pct": 20, "seq": 2})  # both due inside the second 10..11
    assert run(dimmer, 10, 12) == [0.25 * 0 + 0.5 * 1000 + 0.25 * 400, 400.0]
    assert dimmer.drain() == [{"v": 1, "ts": "t10", "pct": 20.0, "override": False, "seq": 2}]


def test_watchdog_turns_off_ten_seconds_after_the_last_set() -> None:
    load = ControllableLoad(LoadConfig(id="r", rated_w=1000, delay_s=0), iso)
    for t in range(0, 30, 5):  # a heartbeat every 5 s keeps it on
        load.command(t, {"on": True, "seq": t})
        run(load, t, t + 5)
    assert load.power_w == 1000
    powers = run(load, 30, 45)
    assert powers[:5] == [1000] * 5  # last set at 25: on until 34
    assert powers[5:] == [0] * 10
    assert load.drain()[-1] == {"v": 1, "ts": "t35", "on": False, "override": False, "seq": 25}


def test_watchdog_zero_never_turns_off() -> None:
    load = ControllableLoad(LoadConfig(id="r", rated_w=1000, delay_s=0, watchdog_s=0), iso)
    load.command(0, {"on": True})
    assert run(load, 0, 100)[-1] == 1000


def test_boiler_draws_pct_until_hot_then_thermostat_cuts_and_taps_restart_it() -> None:
    cfg = LoadConfig(id="b", kind="dimmer", rated_w=2400, tank_l=100, temp_c=59.0,
                     setpoint_c=60.0, hysteresis_c=5.0, delay_s=0, watchdog_s=0)
    load = ControllableLoad(cfg, iso)
    load.command(0, {"pct": 50, "seq": 1})
    assert load.step(0) == 1200
    # 1 K of 100 l = 418.6 kJ; with 1200 W minus losses: about 6 minutes
    powers = run(load, 1, 600)
    on_s = sum(1 for p in powers if p) + 1
    assert 340 < on_s < 380
    assert powers[-1] == 0 and 59.0 < load.temp_c < 60.1 and not load.heating
    assert load.drain()[0]["pct"] == 50.0
    # a shower cools it; heating resumes only below 55 C (the hysteresis)
    t = 600
    while load.temp_c > 55.0:
        assert load.step(t, 1.0, tap_lps=0.2, tap_mix_c=40.0) == 0
        t += 1
    assert 75 < t - 600 < 95  # about 10 l of 60 C water (0.12 l/s) replaced by 10 C water
    assert load.step(t) == 1200


@pytest.mark.parametrize("payload", [{}, {"on": "yes"}, {"pct": 120}, {"pct": True},
                                     {"on": True, "seq": -1}])
def test_bad_commands_are_refused(payload: dict) -> None:
    load = ControllableLoad(LoadConfig(id="b", kind="dimmer"), iso)
    with pytest.raises(CommandError):
        load.command(0, payload)
    assert load.pending == [] and load.last_set_s is None


def test_simulator_command_at_its_arrival_inside_the_second() -> None:
    """meter-sim stamps a set with its arrival in simulated time (the wiring converts the
    wall clock at --speed): arrived 0.25 s into a second, 0.5 s delay -> applies at 0.75."""
    from meter_sim.scenario import build
    from meter_sim.sim import Simulator

    sim = Simulator(build({"start": "2026-06-17T12:00", "house": "off", "pv": "off",
                           "meter": {"synthetic": False}, "command_delay_s": 0.5,
                           "loads": [{"id": "heater", "kind": "dimmer", "rated_w": 2000}]}))
    sim.step()
    assert sim.command("heater", {"pct": 100, "seq": 1}, at=sim.now + 0.25)
    sim.step()
    assert sim.load_w["heater"] == 500.0  # the last quarter of the second
    sim.step()
    assert sim.load_w["heater"] == 2000.0
    assert sim.command("nothing", {"on": True}) is False
