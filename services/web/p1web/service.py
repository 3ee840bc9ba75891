"""Wiring: MQTT in (live values, device status), configuration out (retained), HTTP.

On every (re)connection to the broker every stored document is published again,
retained, QoS 1: a broker that lost its retained messages (restart without
persistence) gets them back, and services that start later find them. The web also
watches ``p1/config/+/#``: a stored document that something else overwrote (another
document, garbage, an empty retained message) is published again at once, with one
WARNING line; its own publications coming back are recognised and left alone.

``P1_WEB_SEED_OUTPUTS`` (``--seed-outputs``): an outputs document stored for the
default site when it has none yet (``make run`` seeds the simulated house's boiler
and relay this way), so the page and the load-controller share one document.
"""

from __future__ import annotations

import json
import logging
import signal
import time
from collections import deque
from datetime import datetime
from pathlib import Path
from typing import Any

import uvicorn
from pydantic import ValidationError

from p1common.mqtt import BadPayload, decode_json_object
from p1common.payloads import OutputsConfig, field_name
from p1common.persist import StateFileError, atomic_write_json, load_json
from p1common.plausibility import ReadingGuard
from p1common.service import ServiceRuntime
from p1common.settings import CommonSettings, SettingsError
from p1common.topics import SITE_RULE, is_site

from .app import create_app
from .auth import resolve_token
from .deps import WebContext
from .hub import EventHub
from .live import LiveState
from .models import SCOPES, check_document
from .settings import WebSettings
from .store import ConfigStore, Key

log = logging.getLogger("web")
RESTORES_PER_WINDOW = 5  # restores of one document within RESTORE_WINDOW_S, then it gives up
RESTORE_WINDOW_S = 60.0
_NOT_JSON = object()  # a config payload that is no JSON object (never equal to a document)


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
                 "protected too (the event stream also takes ?token=)" if web.protect_reads
                 else "open (P1_WEB_PROTECT_READS / --protect-reads to protect them)")
        self.store = ConfigStore(self.state)
        if web.seed_outputs:
            self.seed_outputs(common.site, web.seed_outputs)
        self.live = LiveState(web.quarters_kept)
        self.guard = ReadingGuard(max_drift_s=common.max_clock_drift_s)
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
        # its own documents, to put them back when something else overwrites one
        self._echoes: dict[Key, deque[Any]] = {}  # published, not seen coming back yet
        self._restores: dict[Key, deque[float]] = {}
        self.mqtt.subscribe(t.configs(), self.on_config, 1)
        self.mqtt.on_connected(self.republish)
        self.server: WebServer | None = None

    def seed_outputs(self, site: str, path: str,
                     name: str = "--seed-outputs / P1_WEB_SEED_OUTPUTS") -> None:
        """Store the outputs document of ``path`` for ``site`` unless it has one. The file
        is checked in any case: a bad one stops the service (SettingsError naming it)."""
        doc = load_outputs_document(path, name)
        result = self.store.seed(site, "outputs", doc)
        ids = ", ".join(o["id"] for o in doc["outputs"]) or "none"
        if result == "seeded":
            log.info("outputs of site %s seeded from %s: %s", site, path, ids)
        elif result == "stored":
            stored = self.store.get(site, "outputs") or {"outputs": []}
            log.info("outputs of site %s: the stored document (%s); %s is only for a site "
                     "without one", site, ", ".join(o["id"] for o in stored["outputs"]) or "none",
                     path)
        else:
            log.warning("outputs of site %s: the stored file is not valid (see above); not "
                        "seeded from %s, to leave it for you to repair or delete", site, path)

    # -- configuration out ------------------------------------------------------------
    def publish_config(self, site: str, scope: str, ident: str | None, doc: dict[str, Any] | None) -> None:
        """Called with the store's lock held (the API writes the file, then publishes)."""
        topic = self.topics.config(site, scope, ident)
        self._expect_echo((site, scope, ident), doc)
        if doc is None:
            self.mqtt.clear_retained(topic)
            log.info("cleared %s", topic)
        else:
            self.mqtt.publish_json(topic, doc, qos=1, retain=True)
            log.info("published %s", topic)

    def republish(self) -> None:
        with self.store.lock:
            items = list(self.store.items())
            for key, doc in items:
                self._publish_stored(key, doc)
        log.info("published %d stored configuration documents (retained)", len(items))

    def _publish_stored(self, key: Key, doc: dict[str, Any]) -> None:
        self._expect_echo(key, doc)
        self.mqtt.publish_json(self.topics.config(*key), doc, qos=1, retain=True)

    def _expect_echo(self, key: Key, doc: dict[str, Any] | None) -> None:
        # the broker sends a subscriber its own publications back, in order: they are not
        # "something else" overwriting a document (bounded: one lost on a dropped
        # connection must not pile up)
        self._echoes.setdefault(key, deque(maxlen=16)).append(doc)

    # -- its own documents, watched ---------------------------------------------------------
    def on_config(self, topic: str, payload: bytes) -> None:
        """A retained configuration message: if it is not the stored document (nor one of
        the web's own publications coming back), publish the stored one again."""
        parsed = self.topics.parse(topic)
        if parsed is None or parsed.site is None:
            return  # not a site name: never one of its documents
        spec = SCOPES.get(parsed.kind.removeprefix("config/"))
        if spec is None or spec.per_device != (parsed.ident is not None):
            return
        key: Key = (parsed.site, spec.name, parsed.ident)
        got: Any = None
        if payload:
            try:
                got = decode_json_object(payload)
            except BadPayload:
                got = _NOT_JSON
        with self.store.lock:
            echoes = self._echoes.get(key)
            if echoes and got in echoes:  # its own publication (or an older one) coming back
                while echoes and echoes.popleft() != got:
                    pass
                return
            stored = self.store.get(*key)
            if stored is None or got == stored:
                return  # not a document it stores (it leaves those alone), or the same one
            what = ("an empty retained message (cleared)" if not payload
                    else "a payload that is not a JSON object" if got is _NOT_JSON
                    else "a different document")
            if not self._may_restore(key, topic):
                return
            self._publish_stored(key, stored)
        log.warning("%s was overwritten by another client with %s (%d bytes); restored the "
                    "stored document", topic, what, len(payload))

    def _may_restore(self, key: Key, topic: str) -> bool:
        """At most RESTORES_PER_WINDOW restores of one document per window: two writers
        that each put back their own document would otherwise do it forever."""
        now = time.monotonic()
        times = self._restores.setdefault(key, deque())
        while times and now - times[0] > RESTORE_WINDOW_S:
            times.popleft()
        if len(times) >= RESTORES_PER_WINDOW:
            if len(times) == RESTORES_PER_WINDOW:
                times.append(now)  # once per window: the ERROR line below
                log.error("%s keeps being overwritten (%d times in %.0f s): not restoring it "
                          "for now; is another p1-web (or a client without an ACL) publishing "
                          "it?", topic, RESTORES_PER_WINDOW, RESTORE_WINDOW_S)
            return False
        times.append(now)
        return True

    # -- live values in -------------------------------------------------------------------
    def on_message(self, topic: str, payload: bytes) -> None:
        parsed = self.topics.parse(topic)
        if parsed is None:  # the wildcard's site is not a site name (upper case, dot, control)
            raise BadPayload(f"the topic's site is not a site name ({SITE_RULE})")
        if not payload:  # empty = a retained message being cleared
            return
        obj: Any = payload.decode("utf-8", "replace") if parsed.kind == "status" else decode_json_object(payload)
        if parsed.kind == "reading":
            self.guard.check(obj, time.time())  # Implausible: counted and logged by the MQTT wrapper
        event = self.live.apply(parsed, obj, datetime.now().astimezone().isoformat(timespec="seconds"))
        if event is None:
            return
        self.hub.publish(event)
        if event.kind == "quarter" and event.site:
            self._save_quarters(event.site)

    def _quarters_path(self, site: str) -> Path:
        return self.state / "live" / f"{site}.quarters.json"

    def _save_quarters(self, site: str) -> None:
        if is_site(site):
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
            if is_site(site) and isinstance(data, list):
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


def load_outputs_document(path: str, name: str) -> dict[str, Any]:
    """An outputs document from a JSON file, checked like a PUT; SettingsError naming
    ``name``, the file and the field otherwise."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError(f"{name}: cannot read {path!r}: {exc.strerror}") from None
    except ValueError as exc:
        raise SettingsError(f"{name}: {path!r} is not JSON: {exc}") from None
    try:
        doc = OutputsConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{field_name(e['loc'], 'document')}: {e['msg']}" for e in exc.errors()[:5])
        raise SettingsError(f"{name}: {path!r}: {problems}") from None
    found = check_document("outputs", doc)
    if found:
        problems = "; ".join(f"{field_name(loc, 'document')}: {msg}" for loc, msg, _ in found)
        raise SettingsError(f"{name}: {path!r}: {problems}")
    return doc.model_dump(mode="json")


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
