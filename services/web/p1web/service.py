"""Wiring: MQTT in (live values, device status), configuration out (retained), HTTP.

On every (re)connection to the broker every stored document is published again,
retained, QoS 1: a broker that lost its retained messages (restart without
persistence) gets them back, and services that start later find them.
"""

from __future__ import annotations

import logging
import re
import signal
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import uvicorn

from p1common.mqtt import decode_json_object
from p1common.persist import StateFileError, atomic_write_json, load_json
from p1common.service import ServiceRuntime
from p1common.settings import CommonSettings

from .app import WebContext, create_app
from .auth import resolve_token
from .hub import EventHub
from .live import LiveState
from .models import SITE_PATTERN
from .settings import WebSettings
from .store import ConfigStore

log = logging.getLogger("web")


class WebService:
    def __init__(
        self,
        common: CommonSettings,
        web: WebSettings,
        state: Path,
        client_id: str | None = None,
    ) -> None:
        self.web = web
        self.state = Path(state)
        self.runtime = ServiceRuntime("web", common, client_id=client_id, install_signals=False)
        self.topics = self.runtime.topics
        self.mqtt = self.runtime.mqtt
        self.token, source = resolve_token(web.token, web.token_file, self.state)
        log.info("writes need the token from %s; reads are %s", source,
                 "protected" if web.protect_reads else "open")
        self.store = ConfigStore(self.state)
        self.live = LiveState(web.quarters_kept)
        self._restore_quarters()
        self.hub = EventHub()
        self.ctx = WebContext(
            site=common.site,
            token=self.token,
            protect_reads=web.protect_reads,
            store=self.store,
            live=self.live,
            hub=self.hub,
            publish=self.publish_config,
            mqtt_connected=self.mqtt.connected.is_set,
        )
        self.app = create_app(self.ctx)
        t = self.topics
        for pattern, qos in (
            (t.all_sites("reading"), 0),
            (t.all_sites("peak"), 0),
            (t.all_sites("peak/quarter"), 1),
            (t.all_sites("peak/month"), 1),
            (t.all_sites("control"), 0),
            (t.output_states(), 1),
            (t.statuses(), 1),
        ):
            self.mqtt.subscribe(pattern, self.on_message, qos)
        self.mqtt.on_connected(self.republish)
        self.server: WebServer | None = None

    # -- configuration out ------------------------------------------------------------
    def publish_config(self, site: str, scope: str, ident: str | None, doc: dict[str, Any] | None) -> None:
        topic = self.topics.config(site, scope, ident)
        if doc is None:
            self.mqtt.clear_retained(topic)
            log.info("cleared %s", topic)
        else:
            self.mqtt.publish_json(topic, doc, qos=1, retain=True)
            log.info("published %s", topic)

    def republish(self) -> None:
        with self.store.lock:
            items = list(self.store.items())
            for (site, scope, ident), doc in items:
                self.mqtt.publish_json(self.topics.config(site, scope, ident), doc, qos=1, retain=True)
        log.info("published %d stored configuration documents (retained)", len(items))

    # -- live values in -------------------------------------------------------------------
    def on_message(self, topic: str, payload: bytes) -> None:
        parsed = self.topics.parse(topic)
        if parsed is None or not payload:  # empty = a retained message being cleared
            return
        obj: Any = payload.decode("utf-8", "replace") if parsed.kind == "status" else decode_json_object(payload)
        event = self.live.apply(parsed, obj, datetime.now().astimezone().isoformat(timespec="seconds"))
        if event is None:
            return
        self.hub.publish(event)
        if event.kind == "quarter" and event.site:
            self._save_quarters(event.site)

    def _quarters_path(self, site: str) -> Path:
        return self.state / "live" / f"{site}.quarters.json"

    def _save_quarters(self, site: str) -> None:
        if re.match(SITE_PATTERN, site):
            atomic_write_json(self._quarters_path(site), self.live.quarters(site), keep_backup=False)

    def _restore_quarters(self) -> None:
        folder = self.state / "live"
        for path in sorted(folder.glob("*.quarters.json")) if folder.is_dir() else []:
            site = path.name.removesuffix(".quarters.json")
            try:
                data = load_json(path, [])
            except StateFileError as exc:
                log.error("%s", exc)
                continue
            if re.match(SITE_PATTERN, site) and isinstance(data, list):
                self.live.restore_quarters(site, data[-self.web.quarters_kept :])

    # -- process ------------------------------------------------------------------------
    def serve(self, host: str, port: int) -> None:
        """Run until SIGTERM/SIGINT (or :meth:`stop`)."""
        config = uvicorn.Config(
            self.app, host=host, port=port, log_config=None, access_log=False,
            timeout_graceful_shutdown=3, lifespan="on",
        )
        self.server = WebServer(config, self.hub)
        self.runtime.start()
        log.info("pages and API on http://%s:%d/ (API description /docs, /openapi.json)", host, port)
        try:
            self.server.run()
        finally:
            self.runtime.close()

    def stop(self) -> None:
        if self.server:
            self.hub.close()
            self.server.should_exit = True


class WebServer(uvicorn.Server):
    """uvicorn, ending the event streams first so a stop does not wait on open pages."""

    def __init__(self, config: uvicorn.Config, hub: EventHub) -> None:
        super().__init__(config)
        self.hub = hub

    def handle_exit(self, sig: int, frame: Any) -> None:
        # not super(): uvicorn would re-raise the signal after shutting down, and the
        # process would end "killed by SIGTERM" instead of exiting 0
        log.info("got %s, stopping", signal.Signals(sig).name)
        self.hub.close()
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        self.should_exit = True


def run_in_thread(service: WebService, host: str, port: int) -> threading.Thread:
    thread = threading.Thread(target=service.serve, args=(host, port), daemon=True, name="web")
    thread.start()
    return thread

