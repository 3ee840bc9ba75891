"""ev-gateway tests: the gateway as a real process, a wallbox on the ``ocpp`` library's
ChargePoint (real websockets on loopback), async waits that keep the wallbox answering."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action
from websockets.asyncio.client import connect

from support import Mosquitto, Subscriber, free_port, wait_for

BIN = Path(sys.executable).parent


class Gateway:
    """``ev-gateway`` as a process on the test's broker, ready when it said ``online``
    and its OCPP port listens."""

    def __init__(self, broker: Mosquitto, state: Path, site: str, **env: str) -> None:
        self.port = free_port()
        self.client_id = f"evgw-test-{os.getpid()}-{self.port}"
        self.log = state / f"{self.client_id}.log"
        self.env = {**os.environ, "MQTT_URL": broker.url, "P1_SITE": site,
                    "P1_STATE_DIR": str(state), "MQTT_CLIENT_ID": self.client_id,
                    "EVGW_OCPP_HOST": "127.0.0.1", "EVGW_OCPP_PORT": str(self.port),
                    "LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1", **env}
        self.broker = broker
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Gateway:
        watch = Subscriber(self.broker.port, f"p1/status/{self.client_id}")
        with self.log.open("ab") as fh:
            self.proc = subprocess.Popen([str(BIN / "ev-gateway")], env=self.env, stdout=fh,
                                         stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: self._alive() and any(
                m.payload == b"online" and not m.retain for m in watch.messages), 20)
            if self.env["EVGW_OCPP_PORT"] != "0":
                wait_for(lambda: self._alive() and self._listening(), 20)
        finally:
            watch.close()
        return self

    def _alive(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"ev-gateway exited ({self.proc.returncode}):\n{self.output()}")
        return True

    def _listening(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            return True
        except OSError:
            return False

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                return self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait(5)


async def until(pred: Callable[[], Any], timeout_s: float = 10.0, what: str = "") -> Any:
    """Poll ``pred`` without blocking the event loop (the wallbox keeps answering)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        await asyncio.sleep(0.02)


class Wallbox(ChargePoint):  # type: ignore[misc]
    """A charge point as the ``ocpp`` library builds one; every SetChargingProfile it gets is
    kept as sent on the wire (JSON) and accepted."""

    def __init__(self, cp_id: str, ws: Any) -> None:
        super().__init__(cp_id, ws, response_timeout=10)
        self.profiles: list[dict[str, Any]] = []

    async def route_message(self, raw_msg: str) -> None:
        msg = json.loads(raw_msg)
        if msg[0] == 2 and msg[2] == "SetChargingProfile":
            self.profiles.append(msg[3])
        await super().route_message(raw_msg)

    @on(Action.set_charging_profile)
    def on_profile(self, connector_id: int, cs_charging_profiles: dict[str, Any]) -> Any:
        return call_result.SetChargingProfile(status="Accepted")

    def distinct(self) -> list[dict[str, Any]]:
        """The profiles received, a repetition of the one before left out (a charger that
        connects gets its limit on connecting and again after BootNotification)."""
        out: list[dict[str, Any]] = []
        for p in self.profiles:
            if not out or out[-1] != p:
                out.append(p)
        return out

    async def boot(self) -> None:
        await self.call(call.BootNotification(charge_point_model="Test 11kW",
                                              charge_point_vendor="p1-tests"))

    async def status(self, status: str, connector: int = 1) -> None:
        await self.call(call.StatusNotification(connector_id=connector, error_code="NoError",
                                                status=status))

    async def meter(self, tx: int | None, power_w: float, register_wh: float,
                    ts: str) -> None:
        await self.call(call.MeterValues(connector_id=1, transaction_id=tx, meter_value=[{
            "timestamp": ts, "sampledValue": [
                {"value": f"{power_w:.1f}", "measurand": "Power.Active.Import", "unit": "W"},
                {"value": f"{register_wh:.1f}", "measurand": "Energy.Active.Import.Register",
                 "unit": "Wh"}]}]))


class Plugged:
    """A wallbox connected to the gateway: ``async with Plugged(port, 'CP_1') as box``."""

    def __init__(self, port: int, cp_id: str) -> None:
        self.url = f"ws://127.0.0.1:{port}/{cp_id}"
        self.cp_id = cp_id
        self.box: Wallbox | None = None

    async def __aenter__(self) -> Wallbox:
        self._cm = connect(self.url, subprotocols=["ocpp1.6"])  # type: ignore[list-item]
        ws = await self._cm.__aenter__()
        self.box = Wallbox(self.cp_id, ws)
        self._task = asyncio.create_task(self.box.start())
        return self.box

    async def __aexit__(self, *exc: Any) -> None:
        self._task.cancel()
        await self._cm.__aexit__(None, None, None)


def profile(purpose: str, limit: float, phases: int, tx: int | None = None) -> dict[str, Any]:
    """A SetChargingProfile.req payload as the docs (docs/ev-chargers.md) say it is sent."""
    cs: dict[str, Any] = {
        "chargingProfileId": 2 if purpose == "TxProfile" else 1,
        "stackLevel": 1,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": "Relative",
        "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": [
            {"startPeriod": 0, "limit": limit, "numberPhases": phases}]},
    }
    if tx is not None:
        cs["transactionId"] = tx
    return {"connectorId": 1, "csChargingProfiles": cs}
