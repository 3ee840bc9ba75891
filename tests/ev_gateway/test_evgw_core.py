"""The gateway's rules as plain values: which limit a charger gets from a set, the watchdog,
refused sets, OCPP meter values (units, phases, the default measurand), evcc's values."""

from __future__ import annotations

from typing import Any

import pytest

from ev_gateway.core import BadSet, Limit, Link, Meter, floor_step, state_payload
from ev_gateway.evcc import commands, number_text, parse_value
from ev_gateway.ocpp_cs import charging_profile, parse_meter_values
from p1common.payloads import OutputConfig, OutputState, check

CFG = OutputConfig(id="car", kind="ev", mode="ev", rated_w=11040, phases=3, min_current_a=6,
                   max_current_a=16, charger="ocpp", charger_ref="CP_1")


def a_set(seq: int, current: Any, phases: int | None = 3, ttl: float = 10.0) -> dict[str, Any]:
    doc: dict[str, Any] = {"v": 1, "ts": "2026-01-15T22:00:00+01:00", "seq": seq, "ttl_s": ttl,
                           "current_a": current}
    if phases is not None:
        doc["phases"] = phases
    return doc


@pytest.mark.parametrize(("current", "phases", "want"), [
    (6, 3, (6.0, 3)), (16, 1, (16.0, 1)), (16.5, 3, (16.0, 3)), (5.9, 3, (0.0, 3)),
    (0, 3, (0.0, 3)), (7.19, 3, (7.1, 3)), (6.3, None, (6.3, 3)), (79, 3, (16.0, 3)),
])
def test_the_limit_from_a_set(current: float, phases: int | None, want: tuple[float, int]) -> None:
    link = Link(CFG, watchdog_s=10)
    link.on_set(100.0, a_set(1, current, phases))
    lim = link.limit(100.5)
    assert (lim.current_a, lim.phases, lim.seq) == (*want, 1)


def test_the_watchdog_is_the_shorter_of_ttl_and_its_own_time() -> None:
    link = Link(CFG, watchdog_s=10)
    assert link.limit(0.0) == Limit(0.0, 3, None, "no set received yet")
    link.on_set(100.0, a_set(1, 16, ttl=3.0))
    assert link.limit(102.99).current_a == 16.0
    assert link.limit(103.0) == Limit(0.0, 3, None, "no fresh set (watchdog 10 s)")
    link.on_set(200.0, a_set(2, 16, ttl=3600))
    assert link.limit(209.99).current_a == 16.0
    assert link.limit(210.0).current_a == 0.0


@pytest.mark.parametrize(("payload", "why"), [
    ({"v": 1, "ts": "2026-01-15T22:00:00+01:00", "seq": 3, "ttl_s": 10, "on": True},
     "current_a: missing (an ev output is driven by current_a, not on/pct)"),
    (a_set(3, "16"), "current_a: Input should be a valid number"),
    (a_set(3, 81), "current_a: Input should be less than or equal to 80"),
    (a_set(3, 16, phases=2), "phases: Input should be 1 or 3"),
    (a_set(1, 16), "seq: 1 is older than the last applied 2"),
])
def test_a_bad_set_is_refused_and_the_last_good_one_stays(payload: dict[str, Any], why: str) -> None:
    link = Link(CFG, watchdog_s=10)
    link.on_set(0.0, a_set(2, 10))
    with pytest.raises(BadSet) as exc:
        link.on_set(1.0, payload)
    assert str(exc.value) == why
    assert link.limit(1.0).current_a == 10.0


def test_meter_values_units_phases_and_the_default_measurand() -> None:
    assert parse_meter_values([{"timestamp": "t", "sampled_value": [
        {"value": "7.36", "measurand": "Power.Active.Import", "unit": "kW"},
        {"value": "12.5", "unit": "kWh"}]}]) == (7360.0, 12500.0)
    assert parse_meter_values([{"timestamp": "t", "sampled_value": [
        {"value": "3680", "measurand": "Power.Active.Import", "unit": "W", "phase": "L1"},
        {"value": "3680", "measurand": "Power.Active.Import", "unit": "W", "phase": "L2"},
        {"value": "3000", "measurand": "Power.Active.Import", "unit": "W", "phase": "L3"},
        {"value": "16", "measurand": "Current.Import", "unit": "A", "phase": "L1"},
        {"value": "not a number", "measurand": "Energy.Active.Import.Register"}]}]) == (10360.0, None)


def test_profiles_and_evcc_writes() -> None:
    lim = Limit(7.5, 1, 4, "x")
    assert charging_profile(lim, None) == {
        "chargingProfileId": 1, "stackLevel": 1, "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Relative", "chargingSchedule": {
            "chargingRateUnit": "A",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 7.5, "numberPhases": 1}]}}
    assert charging_profile(lim, 9)["transactionId"] == 9
    assert commands("evcc", "2", lim) == [("evcc/loadpoints/2/phasesConfigured/set", "1"),
                                          ("evcc/loadpoints/2/maxCurrent/set", "7.5"),
                                          ("evcc/loadpoints/2/mode/set", "now")]
    assert commands("home/evcc", "1", Limit(0.0, 3, None, "x")) == [
        ("home/evcc/loadpoints/1/mode/set", "off")]
    assert [number_text(x) for x in (16.0, 6.1, 10.0, 0.5)] == ["16", "6.1", "10", "0.5"]
    assert [parse_value("charging", b) for b in (b"true", b"false", b"TRUE", b"yes")] == [
        True, False, True, None]
    assert [parse_value("chargePower", b) for b in (b"11040", b"7.5", b"", b"null")] == [
        11040.0, 7.5, None, None]
    assert floor_step(9.999999) == 9.9 and floor_step(10.0) == 10.0


def test_the_state_payload_is_the_contracts() -> None:
    doc = state_payload("2026-01-15T22:00:00+01:00", Limit(16.0, 3, 8, "x"),
                        Meter(connected=True, charging=True, power_w=11040.04, session_wh=5000.06))
    assert doc == {"v": 1, "ts": "2026-01-15T22:00:00+01:00", "current_a": 16.0, "phases": 3,
                   "on": True, "seq": 8, "connected": True, "charging": True, "power_w": 11040.0,
                   "session_wh": 5000.1}
    check(OutputState, doc)
