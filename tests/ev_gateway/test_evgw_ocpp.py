"""The OCPP 1.6J central system with a wallbox on the ``ocpp`` library (real websockets on
loopback) and the gateway as a real process on a real Mosquitto: a whole night of set
commands and meter values (time compressed: each step waits for its profile and state),
then the car leaves, the wallbox reconnects, and the controller goes silent."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from pathlib import Path
from typing import Any

import pytest
from evgw_support import Gateway, Plugged, profile, until
from ocpp.v16 import call

from support import Mosquitto, Subscriber

SITE = "evocpp"
OUTPUTS = {"v": 1, "outputs": [{
    "id": "car", "kind": "ev", "mode": "ev", "rated_w": 11040, "phases": 3,
    "min_current_a": 6, "max_current_a": 16, "departure": "07:30", "energy_kwh": 30,
    "charger": "ocpp", "charger_ref": "CP_1"}]}
SET = f"p1/{SITE}/output/car/set"
STATE = f"p1/{SITE}/output/car/state"
METER_START_WH = 120_000.0

# the night, quarter by quarter: (set current_a, set phases) -> the limit the charger must get
# (written out here: min 6 A, max 16 A, 0.1 A steps rounded down) and the phases
NIGHT = [
    ("22:00", 6, 3, 6.0, 3),
    ("22:15", 16, 3, 16.0, 3),
    ("22:30", 16, 3, 16.0, 3),   # unchanged: no new profile
    ("22:45", 7.5, 3, 7.5, 3),
    ("23:00", 5, 3, 0.0, 3),     # below the charger's 6 A minimum: pause
    ("23:15", 9.87, 3, 9.8, 3),  # never above what was commanded
    ("23:30", 20, 3, 16.0, 3),   # above max_current_a: the charger's maximum
    ("23:45", 11, 1, 11.0, 1),   # one phase
    ("00:00", 0, 1, 0.0, 1),     # pause
    ("05:00", 16, 3, 16.0, 3),
    ("06:45", 0, 3, 0.0, 3),
]


def iso(hhmm: str, day: int = 1) -> str:
    h, m = map(int, hhmm.split(":"))
    d = dt.datetime(2026, 1, 14 + (day if h < 12 else 0), h, m, tzinfo=dt.UTC)
    return d.isoformat().replace("+00:00", "Z")


def without_ts(msg: Any) -> dict[str, Any]:
    doc = dict(msg.json())
    doc.pop("ts")
    return doc


@pytest.mark.timeout(120)
def test_a_night_of_charging_over_ocpp(mosquitto: Mosquitto, tmp_path: Path) -> None:
    ctl = Subscriber(mosquitto.port, STATE)
    ctl.publish(f"p1/config/{SITE}/outputs", OUTPUTS, retain=True)
    gw = Gateway(mosquitto, tmp_path, SITE, EVGW_WATCHDOG_S="3600").start()
    seq = itertools.count(1)

    def send_set(current: float, phases: int, ttl_s: float = 3600) -> int:
        n = next(seq)
        ctl.publish(SET, {"v": 1, "ts": "2026-01-14T22:00:00+01:00", "seq": n, "ttl_s": ttl_s,
                          "current_a": current, "phases": phases})
        return n

    async def state_is(expected: dict[str, Any], what: str) -> None:
        await until(lambda: ctl.on(STATE) and without_ts(ctl.on(STATE)[-1]) == expected, 10,
                    f"{what}: state {expected}, last {ctl.on(STATE)[-1:] and ctl.on(STATE)[-1].json()}")

    async def night() -> None:
        expected_profiles: list[dict[str, Any]] = []

        async def profiles_are(box: Any, what: str) -> None:
            await until(lambda: box.distinct() == expected_profiles, 10,
                        f"{what}: profiles {expected_profiles}, got {box.distinct()}")

        async with Plugged(gw.port, "CP_1") as box:
            await box.boot()
            # no set yet: the charger is held at 0 A (TxDefaultProfile), with the config's phases
            expected_profiles.append(profile("TxDefaultProfile", 0.0, 3))
            await profiles_are(box, "connected, no set")
            await box.status("Available")
            await state_is({"v": 1, "current_a": 0.0, "phases": 3, "on": False,
                            "connected": False, "charging": False, "power_w": 0.0,
                            "session_wh": 0.0}, "available")
            n = send_set(0, 3)
            await state_is({"v": 1, "current_a": 0.0, "phases": 3, "on": False, "seq": n,
                            "connected": False, "charging": False, "power_w": 0.0,
                            "session_wh": 0.0}, "first set")
            # 18:30 the car arrives: a transaction, paused by its TxProfile
            await box.status("Preparing")
            started = await box.call(call.StartTransaction(
                connector_id=1, id_tag="CAR1", meter_start=int(METER_START_WH),
                timestamp=iso("18:30")))
            tx = started.transaction_id
            assert tx == 1
            expected_profiles.append(profile("TxProfile", 0.0, 3, tx))
            await profiles_are(box, "transaction started")
            register = METER_START_WH
            charging = False
            for hhmm, current, phases, limit, want_phases in NIGHT:
                n = send_set(current, phases)
                if not expected_profiles or expected_profiles[-1] != profile(
                        "TxProfile", limit, want_phases, tx):
                    expected_profiles.append(profile("TxProfile", limit, want_phases, tx))
                await profiles_are(box, f"{hhmm} set {current} A")
                # the car draws what it is allowed (230 V per phase) for the quarter
                power = round(230.0 * want_phases * limit, 1)
                if (power > 0) != charging:
                    charging = power > 0
                    await box.status("Charging" if charging else "SuspendedEVSE")
                register += power / 4
                await box.meter(tx, power, register, iso(hhmm))
                await state_is({"v": 1, "current_a": limit, "phases": want_phases,
                                "on": limit > 0, "seq": n, "connected": True,
                                "charging": charging, "power_w": power,
                                "session_wh": round(register - METER_START_WH, 1)}, hhmm)
            # 6 A x 3 for a quarter = 1035 Wh, 16 A x 3 x 2 quarters = 5520 Wh, 7.5 A = 1293.75,
            # 9.8 A = 1690.5, 16 A = 2760, 11 A x 1 = 632.5, 16 A x 3 = 2760: 15691.75 Wh
            assert register - METER_START_WH == pytest.approx(15691.75)
            # 07:05 the car leaves: the transaction ends, the default profile is back
            await box.call(call.StopTransaction(meter_stop=int(register), timestamp=iso("07:05"),
                                                transaction_id=tx))
            expected_profiles.append(profile("TxDefaultProfile", 0.0, 3))
            await profiles_are(box, "transaction stopped")
            await state_is({"v": 1, "current_a": 0.0, "phases": 3, "on": False, "seq": n,
                            "connected": True, "charging": False, "power_w": 0.0,
                            "session_wh": float(int(register) - METER_START_WH)}, "stopped")
            await box.status("Available")
            n = send_set(8, 3)
            expected_profiles.append(profile("TxDefaultProfile", 8.0, 3))
            await profiles_are(box, "idle at 8 A")
        # the wallbox's connection drops; it comes back without a reboot: the limit again
        async with Plugged(gw.port, "CP_1") as box:
            await until(lambda: box.distinct() == [profile("TxDefaultProfile", 8.0, 3)], 10,
                        f"reconnected: got {box.distinct()}")
            # the controller goes silent: its last set (ttl 1 s) expires -> 0 A
            n = send_set(8, 3, ttl_s=1.0)
            await until(lambda: box.distinct() == [profile("TxDefaultProfile", 8.0, 3),
                                                   profile("TxDefaultProfile", 0.0, 3)], 10,
                        f"watchdog: got {box.distinct()}")
            await state_is({"v": 1, "current_a": 0.0, "phases": 3, "on": False,
                            "connected": False, "charging": False, "power_w": 0.0,
                            "session_wh": 0.0}, "watchdog")

    try:
        asyncio.run(night())
    finally:
        ctl.publish(f"p1/config/{SITE}/outputs", b"", retain=True)
        ctl.close()
        assert gw.stop() == 0, gw.output()
    log = gw.output()
    assert "transaction 1 started on connector 1" in log
    assert "TxDefaultProfile 0 A on 3 phase(s) (no fresh set (watchdog 1 s))" not in log
    assert "TxDefaultProfile 0 A on 3 phase(s) (no fresh set" in log


@pytest.mark.timeout(120)
def test_a_gateway_killed_in_the_middle_of_a_charge_goes_on(mosquitto: Mosquitto,
                                                            tmp_path: Path) -> None:
    """SIGKILL during a transaction: the restarted gateway knows the transaction (its state
    on disk), sends the TxProfile for it to the reconnecting wallbox, and counts the session
    energy from the same meterStart; the next transaction gets the next id."""
    site = "evkill"
    ctl = Subscriber(mosquitto.port, f"p1/{site}/output/car/state")
    ctl.publish(f"p1/config/{site}/outputs", OUTPUTS, retain=True)
    seq = itertools.count(1)

    def send_set(current: float) -> int:
        n = next(seq)
        ctl.publish(f"p1/{site}/output/car/set", {"v": 1, "ts": "2026-01-14T23:00:00+01:00",
                                                  "seq": n, "ttl_s": 3600, "current_a": current,
                                                  "phases": 3})
        return n

    def last_state() -> dict[str, Any]:
        msgs = ctl.on(f"p1/{site}/output/car/state")
        return without_ts(msgs[-1]) if msgs else {}

    async def before(gw: Gateway) -> None:
        async with Plugged(gw.port, "CP_1") as box:
            await box.boot()
            await box.status("Preparing")
            send_set(16)
            started = await box.call(call.StartTransaction(connector_id=1, id_tag="CAR1",
                                                           meter_start=5000, timestamp=iso("23:00")))
            assert started.transaction_id == 1
            await until(lambda: box.distinct()[-1:] == [profile("TxProfile", 16.0, 3, 1)], 10,
                        f"TxProfile: {box.distinct()}")
            await box.status("Charging")
            await box.meter(1, 11040.0, 7000.0, iso("23:15"))
            await until(lambda: last_state().get("session_wh") == 2000.0, 10, "2000 Wh")
            gw.kill()  # in the middle of the charge

    async def after(gw: Gateway) -> None:
        n = send_set(16)
        async with Plugged(gw.port, "CP_1") as box:  # the wallbox reconnects, no reboot
            await until(lambda: box.distinct() == [profile("TxProfile", 16.0, 3, 1)], 10,
                        f"after the restart: {box.distinct()}")
            await box.status("Charging")
            await box.meter(1, 11040.0, 9760.0, iso("23:30"))
            await until(lambda: last_state() == {
                "v": 1, "current_a": 16.0, "phases": 3, "on": True, "seq": n, "connected": True,
                "charging": True, "power_w": 11040.0, "session_wh": 4760.0}, 10,
                f"session goes on: {last_state()}")
            await box.call(call.StopTransaction(meter_stop=9760, timestamp=iso("23:31"),
                                                transaction_id=1))
            started = await box.call(call.StartTransaction(connector_id=1, id_tag="CAR1",
                                                           meter_start=9760, timestamp=iso("23:40")))
            assert started.transaction_id == 2
            await until(lambda: box.distinct()[-1] == profile("TxProfile", 16.0, 3, 2), 10,
                        f"transaction 2: {box.distinct()}")
            # a clean stop pauses the car (nobody would watch its limit any more)
            code = await asyncio.to_thread(gw.stop)
            assert code == 0, gw.output()
            assert box.distinct()[-1] == profile("TxProfile", 0.0, 3, 2)

    first = Gateway(mosquitto, tmp_path, site).start()
    second = None
    try:
        asyncio.run(before(first))
        second = Gateway(mosquitto, tmp_path, site).start()
        asyncio.run(after(second))
    finally:
        ctl.publish(f"p1/config/{site}/outputs", b"", retain=True)
        ctl.close()
        first.stop()
        if second is not None:
            assert second.stop() == 0, second.output()
