"""Wires the gateway: MQTT (config, set, evcc's values) on paho's thread, the OCPP central
system on an asyncio loop in the main thread, and a 0.5 s tick for the watchdog."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from websockets.asyncio.server import serve

from p1common.mqtt import BadPayload, decode_json_object
from p1common.payloads import (
    OutputConfig,
    OutputsConfig,
    OutputState,
    built,
    field_name,
    outputs_problems,
)
from p1common.service import ServiceRuntime
from p1common.settings import MqttUrl

from .core import BadSet, Limit, Link, Meter, links_for, state_payload
from .evcc import EvccBridge, WillLink
from .ocpp_cs import SUBPROTOCOL, CentralSystem

log = logging.getLogger("ev-gateway")


@dataclass(frozen=True)
class GatewaySettings:
    ocpp_host: str = "0.0.0.0"
    ocpp_port: int = 9000  # 0: no OCPP central system
    heartbeat_s: int = 60
    watchdog_s: float = 10.0
    evcc_root: str = "evcc"
    evcc_refresh_s: float = 60.0
    # the connection that carries the last will "mode off" (a user of its own where the
    # broker takes the user name as client id); None: MQTT_URL
    evcc_will_url: MqttUrl | None = None


def iso_now() -> str:
    return dt.datetime.now().astimezone().isoformat(timespec="milliseconds")


def parse_outputs(doc: Any) -> list[OutputConfig]:
    """An outputs document, checked as the web and the load-controller check it."""
    try:
        cfg = OutputsConfig.model_validate(doc, strict=True)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise BadPayload(f"outputs configuration refused, keeping the last good one: "
                         f"{field_name(err.get('loc', ()), 'document')}: {err.get('msg')}") from None
    problems = outputs_problems(cfg)
    if problems:
        loc, msg, _ = problems[0]
        raise BadPayload(f"outputs configuration refused, keeping the last good one: "
                         f"{field_name(loc, 'document')}: {msg}")
    return list(cfg.outputs)


class Gateway:
    def __init__(self, runtime: ServiceRuntime, site: str, settings: GatewaySettings,
                 state_dir: Path) -> None:
        self.rt = runtime
        self.site = site
        self.settings = settings
        self.lock = threading.RLock()
        self.ocpp_links: dict[str, Link] = {}
        self.evcc_links: dict[str, Link] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.cs = CentralSystem(lambda: self.ocpp_links, self.lock, self.publish_state,
                                state_dir / "ocpp.json", heartbeat_s=settings.heartbeat_s)
        url, ca = settings.evcc_will_url or runtime.settings.mqtt, runtime.settings.mqtt_ca_file
        self.evcc = EvccBridge(
            lambda topic, payload: runtime.mqtt.publish(topic, payload, qos=1),
            self.publish_state, root=settings.evcc_root, refresh_s=settings.evcc_refresh_s,
            will_factory=lambda lp, topic: WillLink(url, f"{runtime.client_id}-evcc-{lp}"[:64],
                                                    topic, ca))
        t = runtime.topics
        m = runtime.mqtt
        m.subscribe(t.config(site, "outputs"), self._on_config, qos=1)
        m.subscribe(t.output_sets(site), self._on_set, qos=1)
        m.subscribe(self.evcc.state_topics(), self._on_evcc)

    # -- MQTT side (paho's thread) -----------------------------------------------------
    def _on_config(self, topic: str, payload: bytes) -> None:
        outputs = parse_outputs(decode_json_object(payload)) if payload else []
        with self.lock:
            self.ocpp_links = links_for(outputs, "ocpp", self.settings.watchdog_s, self.ocpp_links)
            self.evcc_links = links_for(outputs, "evcc", self.settings.watchdog_s, self.evcc_links)
            ocpp = ", ".join(f"{k} <- {v.cfg.charger_ref}" for k, v in self.ocpp_links.items())
            evcc = ", ".join(f"{k} -> loadpoint {v.cfg.charger_ref}"
                             for k, v in self.evcc_links.items())
        log.info("outputs configuration applied: OCPP %s; evcc %s", ocpp or "none", evcc or "none")
        self._wake()

    def _on_set(self, topic: str, payload: bytes) -> None:
        parsed = self.rt.topics.parse(topic)
        if parsed is None or parsed.ident is None or not payload:
            return
        with self.lock:
            link = self.ocpp_links.get(parsed.ident) or self.evcc_links.get(parsed.ident)
            if link is None:
                return  # not ours: the load-controller's other outputs, or a plain mqtt charger
            try:
                link.on_set(time.monotonic(), decode_json_object(payload))
            except BadSet as exc:
                raise BadPayload(f"set for {parsed.ident}: {exc}") from None
            if parsed.ident in self.evcc_links:
                self.evcc.apply(link, time.monotonic())
        self._wake()

    def _on_evcc(self, topic: str, payload: bytes) -> None:
        parts = topic.split("/")
        if len(parts) < 4:
            return
        lp, name = parts[-2], parts[-1]
        with self.lock:
            if not self.evcc.on_value(lp, name, payload):
                return
            link = next((x for x in self.evcc_links.values() if x.cfg.charger_ref == lp), None)
            if link is not None:
                self.publish_state(link.cfg.id, link.limit(time.monotonic()),
                                   self.evcc.meters[lp])

    def publish_state(self, output_id: str, limit: Limit, meter: Meter) -> None:
        doc = built(OutputState, state_payload(iso_now(), limit, meter))
        # retained, QoS 1, as a device's state (docs/topics.md)
        self.rt.mqtt.publish_json(self.rt.topics.output_state(self.site, output_id), doc, qos=1,
                                  retain=True)

    def _wake(self) -> None:
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self.cs.wake_all)

    # -- the loop (main thread) --------------------------------------------------------
    def tick(self) -> None:
        with self.lock:
            now = time.monotonic()
            for link in self.evcc_links.values():
                self.evcc.apply(link, now)

    async def run(self) -> None:
        self.loop = asyncio.get_running_loop()
        s = self.settings
        server = None
        if s.ocpp_port:
            server = await serve(self.cs.handle, s.ocpp_host, s.ocpp_port,
                                 subprotocols=[SUBPROTOCOL])  # type: ignore[list-item]
            log.info("OCPP 1.6J central system on ws://%s:%d/<charge point id>", s.ocpp_host,
                     s.ocpp_port)
        try:
            while not self.rt.stop_event.is_set():
                await asyncio.sleep(0.5)
                try:
                    self.tick()
                except Exception:
                    log.exception("periodic task failed")
        finally:
            if server is not None:
                await self.cs.pause_all()
                server.close()
                await server.wait_closed()
            self.evcc.close()
