"""Wiring: the multicast sockets and MQTT around :class:`core.BridgeCore`.

One thread receives datagrams (legacy -> MQTT); the MQTT network thread turns
readings into frames (MQTT -> legacy). Both share the core under a lock.
"""

from __future__ import annotations

import json
import logging
import socket
import struct
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from prometheus_client import Counter

from p1common.logs import RateLimitedLog
from p1common.mqtt import decode_json_object
from p1common.plausibility import ReadingGuard
from p1common.service import ServiceRuntime

from . import core
from .config import BridgeSettings

log = logging.getLogger("bridge-multicast")

DATAGRAMS = Counter(
    "p1_bridge_datagrams_received_total", "UDP datagrams received on the multicast group", ["site"]
)
BAD_FRAMES = Counter(
    "p1_bridge_bad_frames_total", "legacy frames refused (not JSON, wrong length, ...)", ["site", "reason"]
)
DROPPED = Counter(
    "p1_bridge_frames_dropped_total", "datagrams dropped: own, echo or duplicate", ["site", "reason"]
)
PUBLISHED = Counter(
    "p1_bridge_readings_published_total", "readings published from legacy frames", ["site"]
)
SENT = Counter("p1_bridge_frames_sent_total", "legacy frames sent from readings", ["site"])
SKIPPED = Counter(
    "p1_bridge_readings_skipped_total",
    "readings not sent as frames (legacy source, duplicate, incomplete, bad)", ["site", "reason"],
)

RECV_BUFFER = 65535  # read whole datagrams so an oversize one is seen (and refused) as such


def open_receiver(group: str, port: int, interface: str) -> socket.socket:
    """A socket bound to group:port (only that group's traffic), joined on ``interface``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((group, port))
    except OSError:
        sock.bind(("0.0.0.0", port))  # systems that cannot bind a group address
    mreq = struct.pack("4s4s", socket.inet_aton(group), socket.inet_aton(interface))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
    sock.settimeout(0.25)
    return sock


def open_sender(group: str, port: int, interface: str, ttl: int, loop: bool) -> socket.socket:
    """A socket connected to group:port; its getsockname() is the source others see."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    if interface != "0.0.0.0":
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(interface))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1 if loop else 0)
    sock.bind((interface, 0))
    sock.connect((group, port))
    return sock


class Bridge:
    def __init__(
        self,
        settings: BridgeSettings,
        runtime: ServiceRuntime,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        """``clock`` gives the host's aware local time (tests pass a fixed one)."""
        self.settings = settings
        tz = settings.tz
        self.clock = clock or (lambda: datetime.now(tz))
        self.runtime = runtime
        self.site = runtime.settings.site
        self.topics = runtime.topics
        self.core = core.BridgeCore(settings.layout, self.site, settings.dedup_s,
                                    tariff_low_code=settings.tariff_low_code,
                                    guard=ReadingGuard(max_drift_s=runtime.settings.max_clock_drift_s,
                                                       tolerate_extra=False))
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._bad_log = RateLimitedLog(log, period_s=60.0, burst=5)
        self._skip_log = RateLimitedLog(log, period_s=60.0, burst=5)
        self.receiver: socket.socket | None = None
        self.sender: socket.socket | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------
    def start(self) -> None:
        s = self.settings
        self.sender = open_sender(s.group, s.port, s.interface, s.ttl, s.loop)
        own = self.sender.getsockname()
        self.core.own_address = (own[0], own[1])
        if s.to_mqtt:
            self.receiver = open_receiver(s.group, s.port, s.interface)
            self._thread = threading.Thread(target=self._receive_loop, name="multicast-rx", daemon=True)
            self._thread.start()
        if s.to_legacy:
            self.runtime.mqtt.subscribe(self.topics.reading(self.site), self._on_reading, skip_retained=True)
        log.info(
            "bridging %s:%d on %s (direction %s, layout %s, ttl %d, site %s, sending from %s:%d)",
            s.group, s.port, s.interface, s.direction, s.layout.name, s.ttl, self.site, own[0], own[1],
        )

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(2)
        for sock in (self.receiver, self.sender):
            if sock:
                sock.close()

    # -- legacy -> MQTT -------------------------------------------------------------
    def _receive_loop(self) -> None:
        assert self.receiver is not None
        while not self._stop.is_set():
            try:
                data, source = self.receiver.recvfrom(RECV_BUFFER)
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                log.exception("multicast receive failed")
                time.sleep(1)
                continue
            try:
                self.handle_datagram(data, source)
            except Exception:
                log.exception("datagram from %s:%d failed", *source[:2])

    def handle_datagram(self, data: bytes, source: tuple[str, int]) -> core.Verdict:
        DATAGRAMS.labels(self.site).inc()
        host_now = self.clock()
        with self._lock:
            verdict = self.core.on_datagram(data, source, time.monotonic(), host_now)
        if verdict.action == "bad":
            BAD_FRAMES.labels(self.site, verdict.reason).inc()
            self._bad_log.warning("dropped a bad frame from %s:%d (%s): %s", source[0], source[1],
                                  verdict.reason, verdict.message)
        elif verdict.action == "drop":
            DROPPED.labels(self.site, verdict.reason).inc()
            log.debug("dropped a frame from %s:%d: %s", source[0], source[1], verdict.message)
        elif verdict.reading is not None:
            self.runtime.mqtt.publish_json(self.topics.reading(self.site), verdict.reading, retain=True)
            if verdict.live is not None:
                self.runtime.mqtt.publish_json(self.topics.live(self.site), verdict.live)
            PUBLISHED.labels(self.site).inc()
        return verdict

    # -- MQTT -> legacy -----------------------------------------------------------------
    def _on_reading(self, topic: str, payload: bytes) -> None:
        if not payload:
            return  # a cleared retained reading
        reading: dict[str, Any] = decode_json_object(payload)
        with self._lock:
            verdict = self.core.on_reading(reading, time.monotonic())
        if verdict.action == "send" and verdict.frame is not None:
            assert self.sender is not None
            try:
                self.sender.send(verdict.frame)
            except OSError as exc:
                SKIPPED.labels(self.site, "send_error").inc()
                self._skip_log.warning("could not send a frame: %s", exc)
                return
            SENT.labels(self.site).inc()
            return
        SKIPPED.labels(self.site, verdict.reason).inc()
        if verdict.action == "bad":
            self._skip_log.warning(
                "reading at %s not sent as a frame (%s): %s",
                json.dumps(reading.get("ts")), verdict.reason, verdict.message,
            )
