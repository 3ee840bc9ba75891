"""meter-sim's EV charger: delay and ramp, pause below 6 A, taper, watchdog, sessions, telegram."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from msim_support import fields

from meter_sim.clock import parse_local
from meter_sim.ev import EvCharger, EvConfig, Session, session_of
from meter_sim.loads import CommandError
from meter_sim.scenario import ScenarioError, build
from meter_sim.sim import Simulator
from p1common.payloads import OutputState

BRUSSELS = ZoneInfo("Europe/Brussels")


def iso(t: int) -> str:
    return f"t{t}"


def plugged(cfg: EvConfig, need_wh: float = 20000.0) -> EvCharger:
    """A charger with a car plugged in from t=0 for ~11 days."""
    ev = EvCharger(cfg, 1, iso)
    ev.session = Session(date(2026, 1, 1), 0, 10**6, need_wh)
    return ev


def run(ev: EvCharger, t0: int, t1: int) -> list[float]:
    return [ev.step(t) for t in range(t0, t1)]


def test_a_set_applies_after_the_delay_then_ramps_two_amps_a_second() -> None:
    ev = plugged(EvConfig(phases=3, delay_s=3, ramp_a_per_s=2, max_current_a=16))
    ev.command(100, {"v": 1, "current_a": 10, "phases": 3, "seq": 5, "ttl_s": 10})
    # applies in the second 103..104; starts at the 6 A minimum, +2 A/s up to 10 A
    assert run(ev, 100, 107) == [0, 0, 0, 6 * 690.0, 8 * 690.0, 10 * 690.0, 10 * 690.0]
    assert ev.session_wh == pytest.approx((6 + 8 + 10 + 10) * 690 / 3600)
    states = ev.drain()
    assert states[0] == {"v": 1, "ts": "t103", "override": False, "on": True, "current_a": 10.0,
                         "phases": 3, "power_w": 4140.0, "connected": True, "charging": True,
                         "session_wh": 1.1, "seq": 5}
    OutputState.model_validate({**states[0], "ts": "2026-01-15T12:00:00+01:00"}, strict=True)


def test_below_six_amps_it_pauses_and_one_phase_goes_on_its_phase() -> None:
    ev = plugged(EvConfig(phases=3, phase=2, delay_s=0, ramp_a_per_s=2))
    ev.command(0, {"current_a": 10, "phases": 3})
    run(ev, 0, 5)
    assert ev.current_a == 10
    ev.command(5, {"current_a": 5.9})
    # down 2 A/s: 8, 6, then below the minimum: 0 (paused)
    assert run(ev, 5, 9) == [8 * 690.0, 6 * 690.0, 0.0, 0.0]
    assert ev.drain()[-1]["charging"] is False
    ev.command(9, {"current_a": 16, "phases": 1})
    assert run(ev, 9, 16) == [6 * 230.0, 8 * 230.0, 10 * 230.0, 12 * 230.0, 14 * 230.0,
                              16 * 230.0, 16 * 230.0]
    assert ev.phase == 2


def test_the_car_tapers_over_the_last_two_kwh_and_stops_when_full() -> None:
    ev = plugged(EvConfig(phases=3, delay_s=0, ramp_a_per_s=100, taper_kwh=2), need_wh=20000)
    ev.session_wh = 19000.0  # 1 kWh left: half of the 16 A
    ev.command(0, {"current_a": 16})
    assert ev.step(0) == 8 * 690.0
    ev.session_wh = 19900.0  # 100 Wh left: 0.8 A, held at the 6 A minimum
    assert ev.step(1) == 6 * 690.0
    ev.session_wh = 20000.0  # full
    assert ev.step(2) == 0.0
    assert ev.drain()[-1]["charging"] is False


def test_the_watchdog_pauses_ten_seconds_after_the_last_set() -> None:
    ev = plugged(EvConfig(delay_s=0, watchdog_s=10, ramp_a_per_s=100))
    ev.command(0, {"current_a": 16})
    powers = run(ev, 0, 12)
    assert powers[:10] == [16 * 690.0] * 10
    assert powers[10:] == [0.0, 0.0]
    assert ev.limit_a == 0
    assert ev.drain()[-1]["on"] is False


def test_bad_sets_are_refused_naming_the_field() -> None:
    ev = plugged(EvConfig(phases=1))
    with pytest.raises(CommandError, match="current_a"):
        ev.check({"current_a": "16"})
    with pytest.raises(CommandError, match="current_a"):
        ev.check({"current_a": 81})
    with pytest.raises(CommandError, match="phases 3: this charger is wired for 1"):
        ev.check({"current_a": 16, "phases": 3})
    with pytest.raises(CommandError, match="needs current_a"):
        ev.check({"pct": 50})


def test_sessions_arrive_in_the_evening_and_leave_at_0730_varying_by_seed() -> None:
    cfg = EvConfig()
    days = [date(2026, 1, d) for d in range(1, 32)]
    by_seed = {seed: [session_of(cfg, seed, d) for d in days] for seed in (1, 2, 3)}
    for sessions in by_seed.values():
        for s in sessions:
            assert s is not None
            arrive = datetime.fromtimestamp(s.arrive, BRUSSELS)
            depart = datetime.fromtimestamp(s.depart, BRUSSELS)
            assert arrive.date() == s.day and 12 <= arrive.hour <= 23
            assert (depart.date() - s.day).days == 1 and (depart.hour, depart.minute) == (7, 30)
            assert 10000 <= s.need_wh <= 40000
        needs = [s.need_wh for s in sessions if s]
        assert max(needs) - min(needs) > 15000  # a month of nights from 10 to 40 kWh
    assert by_seed[1] != by_seed[2] != by_seed[3]
    # a day is the same whatever was simulated before it
    assert session_of(cfg, 2, days[10]) == by_seed[2][10]


def test_the_simulator_plugs_the_car_in_and_the_telegram_shows_16_a_on_each_phase() -> None:
    cfg = build({"seed": 4, "start": "2026-01-15T12:00", "house": "off", "pv": "off",
                 "loads": [], "meter": {"synthetic": False},
                 "ev": {"id": "car", "phases": 3, "delay_s": 1, "ramp_a_per_s": 100}})
    sim = Simulator(cfg)
    car = sim.evs["car"]
    session = session_of(car.cfg, 4, date(2026, 1, 15))
    assert session is not None
    assert sim.drain_states()[0][1]["connected"] is False
    while sim.now < session.arrive:
        sim.step()
    sim.step()
    assert car.connected
    sim.command("car", {"current_a": 16, "phases": 3, "seq": 1})
    for _ in range(3):
        sim.step()
    amps = [float(fields(sim.telegram())[f"1-0:{c}.7.0"][0].split("*")[0]) for c in (31, 51, 71)]
    assert [round(a) for a in amps] == [16, 16, 16]
    assert sim.meter.import_w == 3 * 16 * 230


def test_scenario_ev_keys_are_checked() -> None:
    with pytest.raises(ScenarioError, match="ev: unknown key"):
        build({"ev": {"batery_kwh": 60}}, start=parse_local("2026-01-15T00:00"))
    with pytest.raises(ScenarioError, match="phases must be 1 or 3"):
        build({"ev": {"phases": 2}}, start=parse_local("2026-01-15T00:00"))
    with pytest.raises(ScenarioError, match="ids must be unique"):
        build({"ev": [{"id": "boiler"}]}, start=parse_local("2026-01-15T00:00"))
