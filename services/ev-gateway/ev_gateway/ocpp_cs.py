"""OCPP 1.6J central system: wallboxes connect to ``ws://<host>:<port>/<charge point id>``
(subprotocol ``ocpp1.6``) and get their current limit by SetChargingProfile.

Profiles (OCPP 1.6 §5.16 Set Charging Profile; the JSON schema of
SetChargingProfile.req as shipped by the ``ocpp`` library):

- no transaction running: ``TxDefaultProfile``, ``chargingProfileId`` 1, ``stackLevel`` 1,
  kind ``Relative``, one period ``{startPeriod 0, limit <A>, numberPhases <1|3>}``, unit ``A``;
- a transaction running: ``TxProfile``, ``chargingProfileId`` 2, ``stackLevel`` 1, the
  ``transactionId``, the same schedule. A profile with the same id replaces the one before.

0 A pauses the car. A (re)connected charger gets its limit again at once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ocpp.routing import after, on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action, RegistrationStatus
from prometheus_client import Counter

from p1common.persist import atomic_write_json, load_json

from .core import Limit, Link, Meter

log = logging.getLogger("ev-gateway")

SUBPROTOCOL = "ocpp1.6"
DEFAULT_PROFILE_ID = 1
TX_PROFILE_ID = 2
STACK_LEVEL = 1
# a wallbox status (StatusNotification) -> a car plugged in / drawing current
CONNECTED_STATUSES = {"Preparing", "Charging", "SuspendedEV", "SuspendedEVSE", "Finishing"}

PROFILES = Counter("p1_evgw_ocpp_profiles_total", "SetChargingProfile requests, by answer",
                   ["charge_point", "status"])


def now_utc() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def charging_profile(limit: Limit, transaction_id: int | None) -> dict[str, Any]:
    """``csChargingProfiles`` of SetChargingProfile.req (wire names) for a limit."""
    profile: dict[str, Any] = {
        "chargingProfileId": TX_PROFILE_ID if transaction_id is not None else DEFAULT_PROFILE_ID,
        "stackLevel": STACK_LEVEL,
        "chargingProfilePurpose": "TxProfile" if transaction_id is not None else "TxDefaultProfile",
        "chargingProfileKind": "Relative",
        "chargingSchedule": {
            "chargingRateUnit": "A",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit.current_a,
                                        "numberPhases": limit.phases}],
        },
    }
    if transaction_id is not None:
        profile["transactionId"] = transaction_id
    return profile


def parse_meter_values(meter_value: list[dict[str, Any]]) -> tuple[float | None, float | None]:
    """(power W, energy register Wh) from MeterValues' sampledValue lists (snake_case keys).

    A sampledValue without measurand is ``Energy.Active.Import.Register`` (OCPP 1.6: "default value of measurand is always
    Energy.Active.Import.Register");
    units W/kW and Wh/kWh; per-phase power without a total is summed."""
    power: float | None = None
    phase_power: dict[str, float] = {}
    energy: float | None = None
    for mv in meter_value:
        for sv in mv.get("sampled_value", []):
            measurand = sv.get("measurand") or "Energy.Active.Import.Register"
            unit = sv.get("unit")
            try:
                value = float(sv["value"])
            except (KeyError, TypeError, ValueError):
                continue
            if measurand == "Energy.Active.Import.Register":
                energy = value * 1000 if unit == "kWh" else value
            elif measurand == "Power.Active.Import":
                value = value * 1000 if unit == "kW" else value
                if sv.get("phase"):
                    phase_power[sv["phase"]] = value
                else:
                    power = value
    if power is None and phase_power:
        power = sum(phase_power.values())
    return power, energy


@dataclass
class Station:
    """What the central system knows of one charge point (the transaction part persisted)."""

    cp_id: str
    connector_id: int = 1
    transaction_id: int | None = None
    meter_start_wh: float | None = None
    status: str | None = None
    meter: Meter = field(default_factory=Meter)

    def saved(self) -> dict[str, Any]:
        return {"connector_id": self.connector_id, "transaction_id": self.transaction_id,
                "meter_start_wh": self.meter_start_wh}


class CentralSystem:
    """Every charge point: its session, its transaction, its limit (asyncio side).

    ``links`` (output id -> :class:`~ev_gateway.core.Link`) is owned by the MQTT side and
    read under ``lock``; ``publish_state(output_id, limit, meter)`` sends ``state``."""

    def __init__(self, links: Callable[[], dict[str, Link]], lock: Any,
                 publish_state: Callable[[str, Limit, Meter], None], state_file: Path,
                 heartbeat_s: int = 60, clock: Callable[[], float] = time.monotonic) -> None:
        self.links = links
        self.lock = lock
        self.publish_state = publish_state
        self.state_file = state_file
        self.heartbeat_s = heartbeat_s
        self.clock = clock
        self.sessions: dict[str, Session] = {}
        self.stations: dict[str, Station] = {}
        saved = load_json(state_file, default={}) or {}
        self.next_tx = int(saved.get("next_transaction_id", 1))
        for cp_id, st in (saved.get("stations") or {}).items():
            self.stations[cp_id] = Station(cp_id, int(st.get("connector_id") or 1),
                                           st.get("transaction_id"), st.get("meter_start_wh"))
        self._unmapped_logged: set[str] = set()
        self.stopping = False  # set by pause_all: no limit but 0 A goes out any more

    # -- state on disk -----------------------------------------------------------------
    def save(self) -> None:
        atomic_write_json(self.state_file, {
            "next_transaction_id": self.next_tx,
            "stations": {k: s.saved() for k, s in self.stations.items()}})

    def station(self, cp_id: str) -> Station:
        return self.stations.setdefault(cp_id, Station(cp_id))

    def link_of(self, cp_id: str) -> Link | None:
        with self.lock:
            for link in self.links().values():
                if link.cfg.charger_ref == cp_id:
                    return link
        return None

    # -- sessions ----------------------------------------------------------------------
    def wake_all(self) -> None:
        for sess in list(self.sessions.values()):
            sess.wake.set()

    async def handle(self, ws: Any) -> None:
        """One websocket connection: a charge point, until it goes."""
        path = ws.request.path if ws.request is not None else ""
        cp_id = path.rstrip("/").rsplit("/", 1)[-1]
        if ws.subprotocol != SUBPROTOCOL:
            log.warning("refused a connection to %s: it did not ask for subprotocol %s",
                        path, SUBPROTOCOL)
            await ws.close(1002, f"subprotocol {SUBPROTOCOL} required")
            return
        if not cp_id or len(cp_id) > 64:
            await ws.close(1008, "charge point id missing in the path")
            return
        sess = Session(cp_id, ws, self)
        old = self.sessions.get(cp_id)
        self.sessions[cp_id] = sess
        if old is not None:
            log.info("%s connected again; the older connection is closed", cp_id)
            await old.close()
        log.info("charge point %s connected from %s", cp_id, ws.remote_address[0]
                 if ws.remote_address else "?")
        task = asyncio.create_task(self.reconcile(sess))
        try:
            await sess.start()
        except Exception as exc:  # the connection closed (or broke): the session ends
            log.info("charge point %s disconnected (%s)", cp_id, type(exc).__name__)
        finally:
            task.cancel()
            if self.sessions.get(cp_id) is sess:
                del self.sessions[cp_id]

    async def reconcile(self, sess: Session) -> None:
        """Keep the charger's limit equal to the one that applies now (on every wake-up,
        at least once a second: a set that goes stale becomes 0 A)."""
        while True:
            try:
                await asyncio.wait_for(sess.wake.wait(), timeout=1.0)
            except TimeoutError:
                pass
            sess.wake.clear()
            try:
                await self.apply(sess)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("%s: could not set the charging profile: %s", sess.id, exc)
                sess.applied = None

    async def apply(self, sess: Session) -> None:
        if self.stopping:
            return
        link = self.link_of(sess.id)
        if link is None:
            if sess.id not in self._unmapped_logged:
                self._unmapped_logged.add(sess.id)
                log.warning("charge point %s is connected but no ev output names it "
                            "(charger 'ocpp', charger_ref %r): not controlled", sess.id, sess.id)
            return
        self._unmapped_logged.discard(sess.id)
        st = self.station(sess.id)
        with self.lock:
            limit = link.limit(self.clock())
        want = (limit.current_a, limit.phases, st.transaction_id)
        if want != sess.applied:
            await self._send_profile(sess, st, limit, link.cfg.id)
        if sess.applied == want and (limit.seq != sess.reported_seq or want != sess.reported):
            sess.reported_seq, sess.reported = limit.seq, want
            self.publish_state(link.cfg.id, limit, st.meter)

    async def _send_profile(self, sess: Session, st: Station, limit: Limit, output_id: str) -> None:
        # what is sent is what counts as applied: a transaction that starts while the
        # charger answers gets its own profile on the next turn
        tx, connector = st.transaction_id, st.connector_id
        profile = charging_profile(limit, tx)
        result = await sess.call(call.SetChargingProfile(connector_id=connector,
                                                         cs_charging_profiles=profile))
        status = str(getattr(result, "status", "no answer"))
        PROFILES.labels(sess.id, status).inc()
        if status != "Accepted":
            sess.applied = None
            log.warning("%s refused the charging profile (%s): %s; retrying", sess.id, status,
                        profile["chargingProfilePurpose"])
            return
        before, sess.applied = sess.applied, (limit.current_a, limit.phases, tx)
        if before != sess.applied:
            log.info("%s (%s): %s %g A on %d phase(s) (%s)", sess.id, output_id,
                     profile["chargingProfilePurpose"], limit.current_a, limit.phases, limit.why)

    async def pause_all(self, timeout_s: float = 5.0) -> None:
        """A clean stop: every connected charger that this gateway drives goes to 0 A (it
        would otherwise keep its last limit while nobody watches; a restarted gateway sends
        the limit again as the charger reconnects)."""
        async def pause(sess: Session) -> None:
            link = self.link_of(sess.id)
            if link is None:
                return
            with self.lock:
                phases = link.limit(self.clock()).phases
            await self._send_profile(sess, self.station(sess.id),
                                     Limit(0.0, phases, None, "ev-gateway stopping"), link.cfg.id)

        self.stopping = True
        jobs = [pause(s) for s in list(self.sessions.values())]
        if jobs:
            try:
                await asyncio.wait_for(asyncio.gather(*jobs, return_exceptions=True), timeout_s)
            except TimeoutError:
                log.warning("stopping: not every charger confirmed 0 A within %g s", timeout_s)

    # -- what the charger tells ----------------------------------------------------------
    def meter_changed(self, cp_id: str) -> None:
        link = self.link_of(cp_id)
        if link is None:
            return
        with self.lock:
            limit = link.limit(self.clock())
        self.publish_state(link.cfg.id, limit, self.station(cp_id).meter)

    def start_transaction(self, cp_id: str, connector_id: int, meter_start: float) -> int:
        st = self.station(cp_id)
        tx = self.next_tx
        self.next_tx += 1
        st.connector_id, st.transaction_id, st.meter_start_wh = connector_id, tx, meter_start
        st.meter.connected, st.meter.session_wh = True, 0.0
        self.save()
        log.info("%s: transaction %d started on connector %d (meter %g Wh)", cp_id, tx,
                 connector_id, meter_start)
        return tx

    def stop_transaction(self, cp_id: str, transaction_id: int, meter_stop: float) -> None:
        st = self.station(cp_id)
        if st.meter_start_wh is not None and st.transaction_id == transaction_id:
            st.meter.session_wh = max(0.0, meter_stop - st.meter_start_wh)
        st.transaction_id, st.meter_start_wh = None, None
        st.meter.charging, st.meter.power_w = False, 0.0
        self.save()
        log.info("%s: transaction %d stopped (meter %g Wh, session %s Wh)", cp_id, transaction_id,
                 meter_stop, st.meter.session_wh)

    def status(self, cp_id: str, connector_id: int, status: str) -> None:
        st = self.station(cp_id)
        if connector_id > 0:
            st.connector_id = connector_id
        if status != st.status:
            log.info("%s: connector %d %s", cp_id, connector_id, status)
        st.status = status
        st.meter.connected = status in CONNECTED_STATUSES
        st.meter.charging = status == "Charging"
        if status == "Available":
            st.meter.power_w, st.meter.session_wh = 0.0, 0.0
        elif status != "Charging" and st.meter.power_w:
            st.meter.power_w = 0.0

    def meter_values(self, cp_id: str, transaction_id: int | None,
                     meter_value: list[dict[str, Any]]) -> None:
        st = self.station(cp_id)
        if transaction_id is not None and st.transaction_id != transaction_id:
            # a transaction we did not see start (state lost): drive it, energy unknown
            log.info("%s: taking over transaction %d", cp_id, transaction_id)
            st.transaction_id, st.meter_start_wh = transaction_id, None
            self.save()
        power, energy = parse_meter_values(meter_value)
        if power is not None:
            st.meter.power_w = power
        if energy is not None and st.meter_start_wh is not None and st.transaction_id is not None:
            st.meter.session_wh = max(0.0, energy - st.meter_start_wh)


class Session(ChargePoint):  # type: ignore[misc]  # the ocpp library has no type information
    """One connected charge point: the OCPP 1.6 messages it sends, answered."""

    def __init__(self, cp_id: str, ws: Any, cs: CentralSystem) -> None:
        super().__init__(cp_id, ws, response_timeout=15, logger=logging.getLogger("ocpp"))
        self.cs = cs
        self.wake = asyncio.Event()
        self.wake.set()  # a new connection gets its limit at once
        self.applied: tuple[float, int, int | None] | None = None
        self.reported: tuple[float, int, int | None] | None = None
        self.reported_seq: int | None = None

    async def close(self) -> None:
        await self._connection.close()

    @on(Action.boot_notification)
    def on_boot(self, charge_point_vendor: str, charge_point_model: str,
                **kwargs: Any) -> call_result.BootNotification:
        log.info("%s: boot (%s %s)", self.id, charge_point_vendor, charge_point_model)
        return call_result.BootNotification(current_time=now_utc(), interval=self.cs.heartbeat_s,
                                            status=RegistrationStatus.accepted)

    @after(Action.boot_notification)
    def after_boot(self, **kwargs: Any) -> None:
        self.applied = None  # a rebooted charger forgot its profiles
        self.wake.set()

    @on(Action.heartbeat)
    def on_heartbeat(self) -> call_result.Heartbeat:
        return call_result.Heartbeat(current_time=now_utc())

    @on(Action.authorize)
    def on_authorize(self, id_tag: str) -> call_result.Authorize:
        return call_result.Authorize(id_tag_info={"status": "Accepted"})

    @on(Action.status_notification)
    def on_status(self, connector_id: int, error_code: str, status: str,
                  **kwargs: Any) -> call_result.StatusNotification:
        self.cs.status(self.id, connector_id, status)
        self.cs.meter_changed(self.id)
        return call_result.StatusNotification()

    @on(Action.start_transaction)
    def on_start(self, connector_id: int, id_tag: str, meter_start: int, timestamp: str,
                 **kwargs: Any) -> call_result.StartTransaction:
        tx = self.cs.start_transaction(self.id, connector_id, float(meter_start))
        return call_result.StartTransaction(transaction_id=tx, id_tag_info={"status": "Accepted"})

    @after(Action.start_transaction)
    def after_start(self, **kwargs: Any) -> None:
        self.wake.set()  # the TxProfile for the new transaction

    @on(Action.stop_transaction)
    def on_stop(self, meter_stop: int, timestamp: str, transaction_id: int,
                **kwargs: Any) -> call_result.StopTransaction:
        self.cs.stop_transaction(self.id, transaction_id, float(meter_stop))
        self.cs.meter_changed(self.id)
        return call_result.StopTransaction(id_tag_info={"status": "Accepted"})

    @after(Action.stop_transaction)
    def after_stop(self, **kwargs: Any) -> None:
        self.wake.set()  # back to the TxDefaultProfile

    @on(Action.meter_values)
    def on_meter_values(self, connector_id: int, meter_value: list[dict[str, Any]],
                        transaction_id: int | None = None) -> call_result.MeterValues:
        self.cs.meter_values(self.id, transaction_id, meter_value)
        self.cs.meter_changed(self.id)
        if transaction_id is not None and self.applied is not None and \
                self.applied[2] != transaction_id:
            self.wake.set()
        return call_result.MeterValues()
