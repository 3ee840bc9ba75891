"""MQTT wiring: readings of every site in, ``peak`` / ``peak/quarter`` / ``peak/month`` out.

The only module with sockets, threads and clocks. One :class:`SiteEngine` per
site, created at the site's first reading from its state file; states are written
by a background thread (at each quarter close and every ``persist_s``), so a burst
of quarter closes over thousands of sites does not stall the message thread.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import Counter, Histogram
from pydantic import ValidationError

from p1common.discovery import EntityDescription, discovery_messages
from p1common.mqtt import BadPayload, decode_json_object
from p1common.payloads import (
    Control,
    MonthRecord,
    Peak,
    PeakConfig,
    QuarterRecord,
    Refused,
    built,
    check,
)
from p1common.persist import StateFileError, atomic_write_json, load_json, quarantine
from p1common.plausibility import Implausible, ReadingGuard
from p1common.service import ServiceRuntime
from p1common.topics import HA_STATUS_TOPIC, shard_of

from .engine import BadReading, PeakSettings, SiteEngine
from .forecast import ForecastParams
from .quarters import parse_ts

log = logging.getLogger("peak-forecaster")

READINGS = Counter("peak_forecaster_readings_total", "readings processed", ["result"])
QUARTERS = Counter("peak_forecaster_quarters_total", "quarters closed", ["complete"])
PROCESS_S = Histogram(
    "peak_forecaster_process_seconds", "time from a reading's arrival to its peak published",
    buckets=(0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0),
)


RESEND_QUARTERS = 8


@dataclass(frozen=True)
class Options:
    shards: int = 1
    shard: int = 0
    state_dir: Path = Path("var/peak-forecaster")
    persist_s: float = 60.0
    ha_discovery: bool = True
    defaults: PeakSettings = field(default_factory=PeakSettings)


# Home Assistant discovery: the entities of p1/<site>/peak and p1/<site>/peak/month; they
# attach to the site's one device (p1common.discovery). Keys and unique ids as before.
def _pw(key: str, name: str, field: str, **kw: Any) -> EntityDescription:
    return EntityDescription(key, name, device_class="power", state_class="measurement",
                             unit="W", field=field, **kw)


HA_PEAK: tuple[EntityDescription, ...] = (
    _pw("quarter_avg", "Quarter average so far", "avg_w"),
    _pw("quarter_forecast", "Quarter forecast", "forecast_w"),
    _pw("quarter_headroom", "Quarter headroom", "headroom_w"),
    _pw("peak_threshold", "Quarter threshold", "threshold_w"),
    EntityDescription("peak_level", "Quarter warning level", field="level", device_class="enum",
                      options=("ok", "warn", "alarm")),
    EntityDescription("quarter_avg_source", "Quarter average source", field="avg_source",
                      device_class="enum", options=("meter", "counters", "partial"),
                      entity_category="diagnostic"),
    # the site's learner: P(the quarter ends above the threshold) in %, why, and how long it learned
    EntityDescription("peak_probability", "Quarter peak probability", field="probability", unit="%",
                      state_class="measurement", icon="mdi:chart-bell-curve",
                      value_template="{{ (value_json.probability * 100) | round(1) "
                                     "if value_json.probability is defined else None }}",
                      attributes=("reason", "days_learned")),
    EntityDescription("peak_days_learned", "Peak learner days learned", field="days_learned",
                      icon="mdi:school", entity_category="diagnostic"),
)
HA_MONTH: tuple[EntityDescription, ...] = (
    _pw("month_peak", "Month peak", "peak_w"),
    _pw("billed_peak", "Billed peak (12-month average)", "billed_w", attributes=("history",)),
    EntityDescription("capacity_cost", "Capacity tariff per year", field="cost_eur_year",
                      device_class="monetary", unit="EUR"),
    EntityDescription("month_peak_is_floor", "Month peak at the floor", "binary_sensor",
                      field="peak_is_floor", icon="mdi:arrow-collapse-down",
                      entity_category="diagnostic"),
)


class PeakService:
    def __init__(self, runtime: ServiceRuntime, options: Options,
                 params: ForecastParams | None = None) -> None:
        self.rt = runtime
        self.opts = options
        self.params = params or ForecastParams()
        self.topics = runtime.topics
        self.engines: dict[str, SiteEngine] = {}
        self.configs: dict[str, PeakSettings] = {}
        self.last_persist: dict[str, float] = {}
        # the last closed quarters and month record of each site, kept in its state file:
        # re-sent after a restart, since a SIGKILL can land after the state was written
        # and before paho sent them (consumers keep one copy of a quarter per start)
        self.recent: dict[str, dict[str, Any]] = {}
        self.guard = ReadingGuard(max_drift_s=runtime.settings.max_clock_drift_s)
        self.lock = threading.Lock()
        self._pending: dict[str, dict[str, Any]] = {}
        self._pending_cv = threading.Condition()
        self._writer_stop = False
        self._writer = threading.Thread(target=self._write_loop, name="state-writer", daemon=True)
        self.opts.state_dir.mkdir(parents=True, exist_ok=True)

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        self._writer.start()
        m = self.rt.mqtt
        m.subscribe(self.topics.all_sites("reading"), self.on_reading)
        m.subscribe(self.topics.configs("+"), self.on_config, qos=1)
        m.subscribe(self.topics.all_sites("control"), self.on_control)
        if self.opts.ha_discovery:
            m.subscribe(HA_STATUS_TOPIC, self.on_ha_status)
            m.on_connected(self._rediscover)
        self.rt.start()
        log.info(
            "serving every site%s; state in %s",
            f" of shard {self.opts.shard}/{self.opts.shards}" if self.opts.shards > 1 else "",
            self.opts.state_dir,
        )

    def tick(self) -> None:
        """Every second: queue the states that are due."""
        now = time.monotonic()
        with self.lock:
            for site, eng in self.engines.items():
                if now - self.last_persist.get(site, 0.0) >= self.opts.persist_s:
                    self._queue_state(site, eng, now)

    def close(self) -> None:
        """Write every state synchronously (SIGTERM) and stop the writer."""
        with self.lock:
            for site, eng in self.engines.items():
                self._queue_state(site, eng, time.monotonic())
        with self._pending_cv:
            self._writer_stop = True
            self._pending_cv.notify()
        if self._writer.is_alive():
            self._writer.join(30)
        self._flush()

    # -- persistence -------------------------------------------------------------------
    def _state_path(self, site: str) -> Path:
        return self.opts.state_dir / f"{site}.json"

    def _queue_state(self, site: str, eng: SiteEngine, now: float) -> None:
        self.last_persist[site] = now
        state = eng.to_state()
        if site in self.recent:
            state["published"] = self.recent[site]
        with self._pending_cv:
            self._pending[site] = state
            self._pending_cv.notify()

    def _write_loop(self) -> None:
        while True:
            with self._pending_cv:
                while not self._pending and not self._writer_stop:
                    self._pending_cv.wait()
                if self._writer_stop and not self._pending:
                    return
            self._flush()

    def _flush(self) -> None:
        while True:
            with self._pending_cv:
                if not self._pending:
                    return
                site = next(iter(self._pending))
                state = self._pending.pop(site)
            try:
                atomic_write_json(self._state_path(site), state)
            except OSError:
                log.exception("could not write the state of %s", site)

    def _engine(self, site: str) -> SiteEngine:
        eng = self.engines.get(site)
        if eng is not None:
            return eng
        settings = self.configs.get(site)
        try:
            state = load_json(self._state_path(site))
        except StateFileError as exc:
            log.error("%s; starting %s afresh", exc, site)
            quarantine(self._state_path(site))
            state = None
        if state:
            try:
                eng = SiteEngine.from_state(state, settings, self.params)
                log.info("site %s: state restored (quarter %s)", site,
                         eng.tracker.q_start and time.strftime(
                             "%Y-%m-%d %H:%M", time.gmtime(eng.tracker.q_start)) + "Z")
            except (KeyError, TypeError, ValueError) as exc:
                log.error("site %s: state file unusable (%s); starting afresh", site, exc)
                quarantine(self._state_path(site))
                eng = None
        if eng is None:
            eng = SiteEngine(site, settings or self.opts.defaults, self.params)
            log.info("site %s: new", site)
        self.engines[site] = eng
        self.last_persist[site] = time.monotonic()
        published = state.get("published") if state and eng.tracker.started else None
        if isinstance(published, dict):
            self._resend(site, published)
        if self.opts.ha_discovery:
            self._discover(site)
        return eng

    # -- handlers (paho's network thread) ---------------------------------------------------------
    def mine(self, site: str) -> bool:
        return self.opts.shards <= 1 or shard_of(site, self.opts.shards) == self.opts.shard

    def on_reading(self, topic: str, payload: bytes) -> None:
        t0 = time.perf_counter()
        parsed = self.topics.parse(topic)
        if parsed is None or parsed.site is None or not self.mine(parsed.site):
            return
        if not payload:
            return  # a retained reading being cleared
        site = parsed.site
        reading = decode_json_object(payload)
        with self.lock:
            try:  # types, ranges, counters, meter clock: refused before it reaches any state
                self.guard.check(reading, time.time())
            except Implausible:
                READINGS.labels("bad").inc()
                raise
            eng = self._engine(site)
            try:
                res = eng.process(reading)
            except BadReading as exc:
                READINGS.labels("bad").inc()
                raise BadPayload(str(exc)) from None
            for ev in res.events:
                log.warning("site %s: %s", site, ev)
            if res.peak is None:
                READINGS.labels("ignored").inc()
                return
            READINGS.labels("ok").inc()
            m = self.rt.mqtt
            if res.quarters or res.months:
                recent = self.recent.setdefault(site, {"quarters": [], "month": None})
                recent["quarters"] = (recent["quarters"] + res.quarters)[-RESEND_QUARTERS:]
                if res.months:
                    recent["month"] = res.months[-1]
            if res.quarters:
                self._queue_state(site, eng, time.monotonic())
            for q in res.quarters:
                QUARTERS.labels(str(q["complete"]).lower()).inc()
                m.publish_json(self.topics.peak_quarter(site), built(QuarterRecord, q), qos=1)
            for rec in res.months:
                m.publish_json(self.topics.peak_month(site), built(MonthRecord, rec), qos=1, retain=True)
            m.publish_json(self.topics.peak(site), built(Peak, res.peak), retain=True)
        PROCESS_S.observe(time.perf_counter() - t0)

    def _resend(self, site: str, published: dict[str, Any]) -> None:
        quarters = [q for q in published.get("quarters") or [] if isinstance(q, dict)]
        month = published.get("month")
        self.recent[site] = {"quarters": quarters, "month": month}
        m = self.rt.mqtt
        for q in quarters:
            m.publish_json(self.topics.peak_quarter(site), q, qos=1)
        if isinstance(month, dict):
            m.publish_json(self.topics.peak_month(site), month, qos=1, retain=True)
        log.info("site %s: re-sent the last %d closed quarter(s)%s from before the restart",
                 site, len(quarters), " and the month record" if month else "")

    def on_control(self, topic: str, payload: bytes) -> None:
        """The load-controller's ``control``: the power of the outputs its peak guard can shed
        (guarded, on) is not forecast as staying on by the site's learner."""
        parsed = self.topics.parse(topic)
        if parsed is None or parsed.kind != "control" or parsed.site is None or not payload:
            return
        site = parsed.site
        if not self.mine(site):
            return
        doc = decode_json_object(payload)
        try:
            check(Control, doc, tolerate_extra=True)
        except Refused as exc:
            raise BadPayload(f"control of {site} refused: {exc}") from None
        sheddable = sum(float(o["level_w"]) for o in doc["outputs"]
                        if o.get("on") and o.get("peak_guard") is not None)
        with self.lock:
            eng = self.engines.get(site)
            if eng is not None:
                eng.set_controlled(parse_ts(doc["ts"])[0], sheddable)

    def on_config(self, topic: str, payload: bytes) -> None:
        parsed = self.topics.parse(topic)
        if parsed is None or parsed.kind != "config/peak" or parsed.ident or parsed.site is None:
            return
        site = parsed.site
        if not self.mine(site) or not payload:
            return
        doc = decode_json_object(payload)
        try:
            cfg = PeakConfig.model_validate(doc, strict=True)  # JSON: "4000" is no number
        except ValidationError as exc:
            errs = "; ".join(
                f"{'.'.join(str(x) for x in e['loc']) or '(document)'}: {e['msg']}" for e in exc.errors()
            )
            raise BadPayload(f"peak config for {site} refused, keeping the last good one: {errs}") from None
        settings = PeakSettings(cfg.manual_threshold_w, cfg.price_eur_per_kw_year, cfg.algorithm)
        with self.lock:
            self.configs[site] = settings
            eng = self.engines.get(site)
            if eng is not None:
                eng.set_settings(settings)
        log.info("site %s: peak config %s", site, settings)

    def on_ha_status(self, topic: str, payload: bytes) -> None:
        if payload.strip() == b"online":
            self._rediscover()

    # -- Home Assistant discovery -------------------------------------------------------------
    def _rediscover(self) -> None:
        with self.lock:
            sites = list(self.engines)
        for site in sites:
            self._discover(site)

    def _discover(self, site: str) -> None:
        topics = {d.key: self.topics.peak(site) for d in HA_PEAK}
        topics.update({d.key: self.topics.peak_month(site) for d in HA_MONTH})
        for topic, cfg in discovery_messages(
            (*HA_PEAK, *HA_MONTH), site=site, node=f"p1_{site}", state_topics=topics,
            status_topic=self.rt.mqtt.status_topic,
        ):
            self.rt.mqtt.publish_json(topic, cfg, qos=1, retain=True)
