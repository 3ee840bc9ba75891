"""MQTT client wrapper on paho-mqtt 2.x shared by every service.

What it adds to paho: the status contract (last will ``offline`` and birth
``online``, retained, on ``p1/status/<client-id>``), reconnect forever with
back-off (also when the broker is down at start), subscriptions restored after
every reconnect, JSON helpers that refuse bad payloads with a count instead of an
exception, and a clean stop. Handlers run on paho's network thread.

A message whose topic matches none of the client's subscriptions is dropped and
counted (``p1_mqtt_unmatched_messages_total``): a broker may not send it (amqtt 0.12.1
sent retained messages of other clients' subscriptions), and no handler should see it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import signal
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from .metrics import (
    MQTT_BAD_PAYLOADS,
    MQTT_CONNECTED,
    MQTT_HANDLED,
    MQTT_HANDLER_ERRORS,
    MQTT_PUBLISHED,
    MQTT_RECEIVED,
    MQTT_UNMATCHED,
)
from .settings import MqttUrl
from .topics import Topics

log = logging.getLogger(__name__)

Handler = Callable[[str, bytes], None]
UNREACHABLE_WARN_S = 10.0  # a broker unreachable this long is worth a WARNING
MAX_JSON_BYTES = 256 * 1024
MAX_JSON_DEPTH = 8  # the contract's deepest payload (reading.mbus[].x) is 3 levels


class BadPayload(ValueError):
    """A payload is not what the contract says (bad JSON, wrong type, too big)."""


def decode_json(payload: bytes, max_bytes: int = MAX_JSON_BYTES) -> Any:
    if len(payload) > max_bytes:
        raise BadPayload(f"payload of {len(payload)} bytes is over the {max_bytes} byte limit")
    try:
        obj = json.loads(payload, parse_constant=_no_constant, parse_float=_finite_float)
    except BadPayload:
        raise
    except RecursionError:
        raise BadPayload(f"nested deeper than {MAX_JSON_DEPTH} levels") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadPayload(f"not JSON: {exc}") from None
    if _depth(obj) > MAX_JSON_DEPTH:
        raise BadPayload(f"nested deeper than {MAX_JSON_DEPTH} levels")
    return obj


def _depth(obj: Any) -> int:
    """How deeply lists and objects nest (iterative: the payload is at most MAX_JSON_BYTES)."""
    deepest, stack = 0, [(obj, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, level)
            if level <= MAX_JSON_DEPTH:
                stack.extend((child, level + 1) for child in item if isinstance(child, (dict, list)))
    return deepest


def _no_constant(name: str) -> float:
    raise BadPayload(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    """JSON numbers only: Python would read 1e999 as infinity, which no meter sends."""
    value = float(text)
    if math.isinf(value):
        raise BadPayload(f"number {text[:20]} is out of range")
    return value


def decode_json_object(payload: bytes, max_bytes: int = MAX_JSON_BYTES) -> dict[str, Any]:
    obj = decode_json(payload, max_bytes)
    if not isinstance(obj, dict):
        raise BadPayload(f"expected a JSON object, got {type(obj).__name__}")
    return obj


def match_pattern(pattern: str) -> str:
    """The filter a message's topic is matched with: ``$share/<group>/f`` matches like ``f``."""
    if pattern.startswith("$share/"):
        parts = pattern.split("/", 2)
        return parts[2] if len(parts) == 3 else pattern
    return pattern


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


class MqttClient:
    """One connection to the broker for one service (or device emulation)."""

    def __init__(
        self,
        client_id: str,
        url: MqttUrl,
        topics: Topics | None = None,
        *,
        keepalive_s: int = 30,
        min_backoff_s: float = 0.5,
        max_backoff_s: float = 4.0,
        ca_file: str | None = None,
        status: bool = True,
    ) -> None:
        self.client_id = client_id
        self.url = url
        self.topics = topics or Topics()
        self.status_topic = self.topics.status(client_id) if status else None
        self.connected = threading.Event()
        self._subs: list[tuple[str, int, Handler, bool]] = []
        self._lock = threading.Lock()
        self._connect_listeners: list[Callable[[], None]] = []
        self.connect_count = 0
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv311,
            clean_session=True,
        )
        self._client.logger = _PahoLog(self)  # type: ignore[assignment]
        if url.username:
            self._client.username_pw_set(url.username, url.password)
        if url.tls:
            ctx = ssl.create_default_context(cafile=ca_file)
            self._client.tls_set_context(ctx)
        if self.status_topic:
            self._client.will_set(self.status_topic, b"offline", qos=1, retain=True)
        self._client.reconnect_delay_set(
            min_delay=max(1, int(min_backoff_s)), max_delay=int(max_backoff_s)
        )
        self._client.max_queued_messages_set(10000)
        self._client.on_connect = self._on_connect
        self._client.on_connect_fail = self._on_connect_fail
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._keepalive = keepalive_s
        self._stopping = False
        self._unmatched_topics: set[str] = set()
        self._unreachable_since: float | None = None  # first failed attempt of this outage
        self._unreachable_warned = False

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> None:
        """Connect in the background; retries forever until :meth:`stop`."""
        log.info("connecting to %s as %s", self.url.redacted(), self.client_id)
        self._client.connect_async(self.url.host, self.url.port, keepalive=self._keepalive)
        self._client.loop_start()

    def wait_connected(self, timeout_s: float = 10.0) -> bool:
        return self.connected.wait(timeout_s)

    def stop(self) -> None:
        """Say ``offline`` (the will is only for crashes), then disconnect."""
        self._stopping = True
        if self.status_topic and self.connected.is_set():
            info = self._client.publish(self.status_topic, b"offline", qos=1, retain=True)
            try:
                info.wait_for_publish(timeout=2.0)
            except (RuntimeError, ValueError):
                pass
        self._client.disconnect()
        self._client.loop_stop()
        MQTT_CONNECTED.labels(self.client_id).set(0)

    def set_max_inflight(self, count: int) -> None:
        """QoS 1/2 messages in flight at once (0 = no limit; paho's default is 20).

        A process publishing a QoS 1 message per site per second for thousands of sites
        needs no limit: with one, paho scans its outgoing queue on every PUBACK.
        """
        self._client.max_inflight_messages_set(count)

    def on_connected(self, fn: Callable[[], None]) -> None:
        """Call ``fn`` (on the network thread) after each (re)connection."""
        self._connect_listeners.append(fn)

    # -- subscribe / publish -----------------------------------------------------
    def subscribe(
        self, pattern: str, handler: Handler, qos: int = 0, *, skip_retained: bool = False
    ) -> None:
        """Call ``handler(topic, payload)`` for each message matching ``pattern``.

        ``skip_retained``: leave out retained messages the broker replays on
        subscribing (an old reading is no sign of a live meter).
        """
        with self._lock:
            self._subs.append((pattern, qos, handler, skip_retained))
        if self.connected.is_set():
            self._client.subscribe(pattern, qos)

    def publish(self, topic: str, payload: bytes | str, qos: int = 0, retain: bool = False) -> None:
        data = payload.encode() if isinstance(payload, str) else payload
        self._client.publish(topic, bytes(data), qos=qos, retain=retain)
        MQTT_PUBLISHED.labels(self.client_id).inc()

    def publish_json(self, topic: str, obj: Any, qos: int = 0, retain: bool = False) -> None:
        self.publish(topic, dumps(obj), qos=qos, retain=retain)

    def clear_retained(self, topic: str) -> None:
        self._client.publish(topic, b"", qos=1, retain=True)

    # -- paho callbacks ------------------------------------------------------------
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: mqtt.ConnectFlags,
                    reason_code: ReasonCode, properties: Properties | None) -> None:
        if reason_code.is_failure:
            log.warning("broker refused the connection: %s", reason_code)
            return
        self.connect_count += 1
        self._unreachable_since, self._unreachable_warned = None, False
        _no_delay(client)
        log.info("connected to %s (connection #%d)", self.url.redacted(), self.connect_count)
        with self._lock:
            subs = list(self._subs)
        seen: set[tuple[str, int]] = set()
        for pattern, qos, _, _ in subs:
            if (pattern, qos) not in seen:
                seen.add((pattern, qos))
                client.subscribe(pattern, qos)
        # after the subscriptions: the broker handles a client's packets in order, so
        # whoever sees "online" knows this service already receives its topics
        if self.status_topic:
            client.publish(self.status_topic, b"online", qos=1, retain=True)
        self.connected.set()
        MQTT_CONNECTED.labels(self.client_id).set(1)
        for fn in self._connect_listeners:
            try:
                fn()
            except Exception:
                log.exception("connect listener failed")

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        """A connection attempt failed (paho retries with back-off). The first of an outage
        is INFO (at start the broker may simply not listen yet: ``make run`` starts it with
        the services); still failing after UNREACHABLE_WARN_S, one WARNING."""
        if self._stopping:
            return
        now = time.monotonic()
        if self._unreachable_since is None:
            self._unreachable_since = now
            log.info("broker %s not reachable%s; retrying with back-off", self.url.redacted(),
                     " yet" if self.connect_count == 0 else "")
        elif not self._unreachable_warned and now - self._unreachable_since >= UNREACHABLE_WARN_S:
            self._unreachable_warned = True
            log.warning("cannot reach the broker %s for %.0f s; still retrying",
                        self.url.redacted(), now - self._unreachable_since)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: mqtt.DisconnectFlags,
                       reason_code: ReasonCode, properties: Properties | None) -> None:
        was = self.connected.is_set()
        self.connected.clear()
        MQTT_CONNECTED.labels(self.client_id).set(0)
        if was and not self._stopping:
            log.warning("lost the broker (%s); reconnecting with back-off", reason_code)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        MQTT_RECEIVED.labels(self.client_id).inc()
        try:
            self._dispatch(msg)
        finally:
            MQTT_HANDLED.labels(self.client_id).inc()

    def _dispatch(self, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            subs = list(self._subs)
        matching = [(pattern, handler, skip_retained) for pattern, _, handler, skip_retained in subs
                    if mqtt.topic_matches_sub(match_pattern(pattern), msg.topic)]
        if not matching:
            self._unmatched(msg)
            return
        for pattern, handler, skip_retained in matching:
            if skip_retained and msg.retain:
                continue
            try:
                handler(msg.topic, bytes(msg.payload))
            except BadPayload as exc:
                kind = self.topics.parse(msg.topic)
                MQTT_BAD_PAYLOADS.labels(self.client_id, kind.kind if kind else "other").inc()
                log.warning("ignored a bad payload on %s: %s", msg.topic, exc)
            except Exception:
                MQTT_HANDLER_ERRORS.labels(self.client_id).inc()
                log.exception("handler for %s failed on %s", pattern, msg.topic)

    def _unmatched(self, msg: mqtt.MQTTMessage) -> None:
        """A message no subscription asked for: dropped, counted, logged once per topic."""
        MQTT_UNMATCHED.labels(self.client_id).inc()
        first = msg.topic not in self._unmatched_topics
        if first and len(self._unmatched_topics) < 1000:
            self._unmatched_topics.add(msg.topic)
        log.log(logging.WARNING if first else logging.DEBUG,
                "dropped a%s message on %s: it matches none of this client's subscriptions "
                "(the broker should not have sent it)", " retained" if msg.retain else "", msg.topic)


class _PahoLog:
    """paho's own log lines (logger ``paho``), with two corrections. "Client is not
    connected", which paho logs as ERROR on every retry while the broker is unreachable,
    is DEBUG: the wrapper says itself what happens (connecting, not reachable yet, lost,
    connected). And once :meth:`MqttClient.stop` has begun, complaints about the
    connection (a broken pipe when the broker stops at the same time) are INFO."""

    def __init__(self, owner: MqttClient) -> None:
        self.owner = owner
        self.logger = logging.getLogger("paho")

    def log(self, level: int, msg: str, *args: Any) -> None:
        if msg.startswith("Client is not connected"):
            level = logging.DEBUG
        elif self.owner._stopping and level > logging.INFO:
            level = logging.INFO
        self.logger.log(level, msg, *args)


def _no_delay(client: mqtt.Client) -> None:
    """Send each message at once: with Nagle's algorithm a small message (``live``) waits
    for the ACK of the one before it, and the next ``reading`` queues behind it (tens of ms)."""
    sock = client.socket()
    if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def stop_event_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT, so a service's main loop ends cleanly."""
    event = threading.Event()

    def _handler(signum: int, frame: object) -> None:
        logging.getLogger("p1").info("got %s, stopping", signal.Signals(signum).name)
        event.set()

    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)
    return event
