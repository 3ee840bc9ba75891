"""Wires the controller to MQTT: readings, peak, device states and config in; ``set``
heartbeats and ``control`` out; a 1 s tick for the watchdog."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client import Gauge

from p1common.discovery import discovery_messages, ev_entities
from p1common.mqtt import BadPayload, decode_json_object
from p1common.payloads import Control, OutputConfig, OutputSet, Refused, built, check_kind
from p1common.persist import StateFileError, atomic_write_json, load_json, quarantine
from p1common.plausibility import ReadingGuard
from p1common.service import ServiceRuntime

from .config import ConfigError, parse_outputs
from .control import Controller, Params, Step

log = logging.getLogger("load-controller")

LEVEL_W = Gauge("p1_loadctl_output_level_w", "power commanded to each output", ["site", "output"])
FOLLOWING = Gauge("p1_loadctl_output_following",
                  "1 when the device follows its command, 0 when not, -1 when unknown",
                  ["site", "output"])
WATCHDOG = Gauge("p1_loadctl_watchdog", "1 while the watchdog holds every output off", ["site"])


def scaled_clock(speed: float) -> Callable[[], float]:
    """A monotonic clock running ``speed`` times faster than the wall (``speed`` 1: the
    wall), so every timer of the controller (on-delay, minimum on-time, watchdog, device
    delay) counts simulated seconds against a meter simulator run with ``--speed``."""
    if speed == 1:
        return time.monotonic
    t0 = time.monotonic()
    return lambda: t0 + (time.monotonic() - t0) * speed


def iso_now() -> str:
    return dt.datetime.now().astimezone().isoformat(timespec="milliseconds")


class LoadControllerService:
    def __init__(self, runtime: ServiceRuntime, site: str, params: Params,
                 outputs: list[OutputConfig] | None = None,
                 clock: Callable[[], float] = time.monotonic, *, subscribe: bool = True,
                 state_path: Path | None = None, ha_discovery: bool = False) -> None:
        """One site's controller. ``subscribe``: its own subscriptions (single-site mode);
        ``False`` when a :class:`~load_controller.multisite.MultiSiteService` routes the
        messages of every site to the handlers below."""
        self.rt = runtime
        self.site = site
        self.clock = clock
        self.topics = runtime.topics
        self.lock = threading.Lock()
        # seq grows across restarts too: it starts at the wall clock in ms
        self.ctl = Controller(site, outputs or [], params, seq_base=int(time.time() * 1000))
        self._last_reading_ts: Any = None
        self.guard = ReadingGuard(max_drift_s=runtime.settings.max_clock_drift_s)
        self.readings_handled = 0  # readings decided on and published (tests sync on it)
        self.config_error: str | None = None
        # log lines name the site when one process serves many
        self._who = "" if subscribe else f"site {site}: "
        self.state_path = state_path
        self.ha_discovery = ha_discovery
        self._discovered: dict[str, list[str]] = {}  # ev output id -> its config topics
        self._saved_at: float | None = None
        self._load_state()
        if not subscribe:
            return
        m = runtime.mqtt
        m.subscribe(self.topics.config(site, "outputs"), self._on_config, qos=1)
        # a retained reading replayed on (re)subscribing may be from long ago: no sign of a
        # live meter, so it must neither drive the outputs nor feed the watchdog
        m.subscribe(self.topics.reading(site), self._on_reading, skip_retained=True)
        m.subscribe(self.topics.peak(site), self._on_peak)
        m.subscribe(self.topics.peak_month(site), self._on_month, qos=1)
        m.subscribe(self.topics.output_states(site), self._on_state, qos=1)

    # -- inbound -----------------------------------------------------------------------
    def _on_config(self, topic: str, payload: bytes) -> None:
        if not payload:
            outputs: list[OutputConfig] = []
            log.info("%soutputs configuration removed: no outputs", self._who)
        else:
            try:
                outputs = parse_outputs(decode_json_object(payload))
            except (ConfigError, BadPayload) as exc:
                with self.lock:
                    self.config_error = str(exc)[:1000]  # published in control: bounded
                    kept = len(self.ctl.outputs)
                raise BadPayload(
                    f"invalid outputs configuration, keeping the last good one "
                    f"({kept} output(s)): {exc}") from None
        with self.lock:
            self.config_error = None
            step = self.ctl.set_outputs(outputs, ts=iso_now())
            ids = ", ".join(f"{o.id} ({o.mode})" for o in outputs) or "none"
        log.info("%soutputs configuration applied: %s", self._who, ids)
        self._publish(step)
        self.discover(outputs)

    def _on_reading(self, topic: str, payload: bytes) -> None:
        if not payload:
            return
        reading = decode_json_object(payload)
        self.guard.check(reading, time.time())  # Implausible: counted and logged by the MQTT wrapper
        ts = reading.get("ts")
        if ts is not None and ts == self._last_reading_ts:
            return  # the same telegram twice (a QoS duplicate, two readers): not new data
        self._last_reading_ts = ts
        with self.lock:
            step = self.ctl.on_reading(self.clock(), reading, ts=iso_now())
            self._save_state()
        self._publish(step)
        self.readings_handled += 1

    def _on_peak(self, topic: str, payload: bytes) -> None:
        if not payload:
            return
        peak = decode_json_object(payload)
        try:  # strict: a bool, a string or a 400-digit number is no headroom
            check_kind("peak", peak)
        except Refused as exc:
            raise BadPayload(str(exc)) from None
        with self.lock:
            self.ctl.on_peak(self.clock(), peak)

    def _on_month(self, topic: str, payload: bytes) -> None:
        """The site's capacity-tariff price (what a raise of the threshold costs)."""
        if not payload:
            return
        month = decode_json_object(payload)
        try:
            check_kind("peak/month", month)
        except Refused as exc:
            raise BadPayload(str(exc)) from None
        price = month.get("price_eur_per_kw_year")
        if isinstance(price, (int, float)):
            with self.lock:
                self.ctl.evmode.price_eur_per_kw_year = float(price)

    def _on_state(self, topic: str, payload: bytes) -> None:
        parsed = self.topics.parse(topic)
        if not payload or parsed is None or parsed.ident is None:
            return
        state = decode_json_object(payload)
        try:
            check_kind("output/state", state)
        except Refused as exc:
            raise BadPayload(f"state: {exc}") from None
        with self.lock:
            self.ctl.on_state(self.clock(), parsed.ident, state)

    # -- Home Assistant discovery (EV chargers) --------------------------------------------
    def discover(self, outputs: list[OutputConfig] | None = None) -> None:
        """Entities for every ev output (from the retained ``control``); a charger that left
        the configuration has its entities removed (empty retained configs)."""
        if not self.ha_discovery:
            return
        if outputs is None:
            with self.lock:
                outputs = [rt.cfg for rt in self.ctl.outputs.values()]
        m = self.rt.mqtt
        now = {o.id for o in outputs if o.kind == "ev"}
        for oid in list(self._discovered):
            if oid not in now:
                for topic in self._discovered.pop(oid):
                    m.publish(topic, b"", qos=1, retain=True)
        for oid in sorted(now):
            msgs = discovery_messages(ev_entities(oid), site=self.site,
                                      node=f"load_controller_{self.site}",
                                      state_topics=self.topics.control(self.site),
                                      status_topic=m.status_topic)
            for topic, cfg in msgs:
                m.publish_json(topic, cfg, qos=1, retain=True)
            self._discovered[oid] = [t for t, _ in msgs]

    # -- state (EV mode: the learnt base load, each charger's plan) ---------------------------
    def _load_state(self) -> None:
        if self.state_path is None:
            return
        try:
            doc = load_json(self.state_path, default=None)
        except StateFileError as exc:
            log.error("%s%s; starting with no EV plan and no learnt base load", self._who, exc)
            quarantine(self.state_path)
            return
        if isinstance(doc, dict) and isinstance(doc.get("ev"), dict):
            try:
                self.ctl.evmode.load(doc["ev"])
            except (KeyError, TypeError, ValueError) as exc:
                log.error("%sstate file %s: %s; starting afresh", self._who, self.state_path, exc)
                quarantine(self.state_path)
                return
            log.info("%sstate from %s: %d charger plan(s), base load of %d quarter(s)", self._who,
                     self.state_path, len(self.ctl.evmode.states), len(self.ctl.evmode.base.history))

    def _save_state(self) -> None:
        """Atomically, at once when a plan changed, else at most every 30 s."""
        ev = self.ctl.evmode
        if self.state_path is None or not ev.dirty:
            return
        now = self.clock()
        if not ev.plan_dirty and self._saved_at is not None and now - self._saved_at < 30.0:
            return
        atomic_write_json(self.state_path, {"v": 1, "ev": ev.to_dict()})
        ev.dirty = ev.plan_dirty = False
        self._saved_at = now

    # -- timer -------------------------------------------------------------------------
    def tick(self) -> None:
        with self.lock:
            step = self.ctl.tick(self.clock(), ts=iso_now())
        if step is not None:
            self._publish(step)

    # -- outbound ----------------------------------------------------------------------
    def _publish(self, step: Step) -> None:
        m = self.rt.mqtt
        for cmd in step.commands:
            m.publish_json(self.topics.output_set(self.site, cmd.output_id), built(OutputSet, cmd.payload), qos=1)
        for event in step.events:
            log.info("%s%s", self._who, event)
        if step.control is not None:
            doc = dict(step.control)
            if self.config_error:
                doc["config_error"] = self.config_error
            m.publish_json(self.topics.control(self.site), built(Control, doc), qos=0, retain=True)
            WATCHDOG.labels(self.site).set(1 if doc.get("watchdog") else 0)
            for out in doc["outputs"]:
                LEVEL_W.labels(self.site, out["id"]).set(out["level_w"])
                f = out.get("following")
                FOLLOWING.labels(self.site, out["id"]).set(-1 if f is None else int(f))
