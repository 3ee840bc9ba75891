"""p1-reader's edge: the serial port (any pyserial URL) or a capture file in, MQTT out.

The logic lives elsewhere (framer, parser, reading, discovery); this module opens
and reopens the port, feeds bytes to :class:`TelegramHandler`, and publishes.
"""

from __future__ import annotations

import logging
import socket
import termios
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import serial
from prometheus_client import Counter, Gauge

from p1common.discovery import TelegramInterval, expire_after_s, reading_discovery
from p1common.dsmr.framer import FramerStats, TelegramFramer
from p1common.dsmr.parser import parse_telegram
from p1common.dsmr.tariff import SETTINGS as TARIFF_SETTINGS
from p1common.dsmr.values import TelegramError
from p1common.logs import RateLimitedLog
from p1common.mqtt import dumps
from p1common.plausibility import Implausible, ReadingGuard
from p1common.service import ServiceRuntime
from p1common.settings import CommonSettings, Env
from p1common.topics import HA_STATUS_TOPIC, Topics

from .dsmrreader import DsmrReaderForwarder
from .homewizard import HomeWizardSource, target_of
from .rawserver import RawTelegramServer, parse_listen
from .reading import build_live, build_reading, changed
from .sources import (
    SOURCE_CHOICES,
    SOURCE_ERRORS,
    MqttRawSource,
    check_no_loop,
    is_stream,
    read_stream,
)

log = logging.getLogger("p1-reader")

TELEGRAMS_OK = Counter("p1_reader_telegrams_total", "telegrams accepted (CRC and parse ok)")
TELEGRAMS_BAD = Counter(
    "p1_reader_bad_telegrams_total",
    "telegrams refused, never published (crc, truncated, unparsable, overflow, no_start)",
    ["reason"],
)
READINGS_PUBLISHED = Counter("p1_reader_readings_published_total", "reading payloads published")
GARBAGE_BYTES = Counter("p1_reader_garbage_bytes_total", "bytes outside any telegram")
PORT_OPEN = Gauge("p1_reader_port_open", "1 while the serial port is open")
PORT_OPENS = Counter("p1_reader_port_opens_total", "successful port (re)opens")

PROFILES: dict[str, dict[str, Any]] = {
    # DSMR 4/5 and Fluvius eMUCS: 115200 8N1; DSMR 2.2/3: 9600 7E1
    "dsmr4": {"baudrate": 115200, "bytesize": serial.EIGHTBITS, "parity": serial.PARITY_NONE,
              "stopbits": serial.STOPBITS_ONE},
    "dsmr2": {"baudrate": 9600, "bytesize": serial.SEVENBITS, "parity": serial.PARITY_EVEN,
              "stopbits": serial.STOPBITS_ONE},
}
PROFILE_CHOICES = ("auto", "dsmr4", "dsmr2")


@dataclass(frozen=True)
class ReaderSettings:
    serial_url: str = "/dev/ttyUSB0"
    profile: str = "auto"
    publish_raw: bool = False
    publish_every: int = 1
    publish_on_change: bool = False
    ha_discovery: bool = True
    check_crc: bool = True
    detect_s: float = 5.0  # auto profile: switch after this long without a good telegram
    tariff_low: str = "auto"  # which tariff code is low: auto (meter family), 1, 2, none
    source: str = "serial"  # serial (any pyserial URL) | mqtt (raw telegrams on a topic)
    raw_topic: str | None = None  # mqtt source: None = p1/<site>/raw
    homewizard_host: str = ""  # homewizard source: the P1 Meter's address or URL
    homewizard_token: str | None = None  # v2 API token (HTTPS); None = v1 API (HTTP)
    homewizard_ca_file: str | None = None  # v2: check the device's certificate against it
    homewizard_interval_s: float = 1.0
    dsmrreader_url: str | None = None  # forward telegrams to dsmr-reader's datalogger API
    dsmrreader_api_key: str = ""
    dsmrreader_every: int = 1
    serve_raw: str | None = None  # raw telegram server: PORT (loopback) or HOST:PORT; None = off
    serve_raw_clients: int = 16
    serve_raw_queue: int = 60  # telegrams queued per client before it is dropped as slow

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ReaderSettings:
        env = Env(environ)
        return cls(
            serial_url=env.str("P1_SERIAL_URL", "/dev/ttyUSB0"),
            profile=env.choice("P1_SERIAL_PROFILE", "auto", PROFILE_CHOICES),
            publish_raw=env.bool("P1_PUBLISH_RAW", False),
            publish_every=env.int("P1_PUBLISH_EVERY", 1, lo=1, hi=3600),
            publish_on_change=env.bool("P1_PUBLISH_ON_CHANGE", False),
            ha_discovery=env.bool("P1_HA_DISCOVERY", True),
            check_crc=env.bool("P1_CHECK_CRC", True),
            detect_s=env.float("P1_DETECT_S", 5.0, lo=0.5, hi=600),
            tariff_low=env.choice("P1_TARIFF_LOW", "auto", TARIFF_SETTINGS),
            source=env.choice("P1_SOURCE", "serial", SOURCE_CHOICES),
            raw_topic=env.opt("P1_RAW_TOPIC"),
            homewizard_host=env.str("P1_HOMEWIZARD_HOST", ""),
            homewizard_token=env.opt("P1_HOMEWIZARD_TOKEN"),
            homewizard_ca_file=env.opt("P1_HOMEWIZARD_CA_FILE"),
            homewizard_interval_s=env.float("P1_HOMEWIZARD_INTERVAL_S", 1.0, lo=0.5, hi=3600),
            dsmrreader_url=env.opt("P1_DSMRREADER_URL"),
            dsmrreader_api_key=env.str("P1_DSMRREADER_API_KEY", ""),
            dsmrreader_every=env.int("P1_DSMRREADER_EVERY", 1, lo=1, hi=3600),
            serve_raw=env.opt("P1_SERVE_RAW"),
            serve_raw_clients=env.int("P1_SERVE_RAW_CLIENTS", 16, lo=1, hi=1000),
            serve_raw_queue=env.int("P1_SERVE_RAW_QUEUE", 60, lo=1, hi=10000),
        )

    def with_overrides(self, **kw: Any) -> ReaderSettings:
        return replace(self, **{k: v for k, v in kw.items() if v is not None})


Publish = Callable[[str, bytes, int, bool], None]


class TelegramHandler:
    """Bytes in, publications out: framing, checks, counters, every-Nth / on-change, discovery."""

    def __init__(
        self,
        settings: ReaderSettings,
        topics: Topics,
        site: str,
        source: str,
        publish: Publish,
        status_topic: str,
        clock: Callable[[], float] = time.time,
        guard: ReadingGuard | None = None,
    ) -> None:
        self.guard = guard or ReadingGuard(tolerate_extra=False)
        self.settings = settings
        self.topics = topics
        self.site = site
        self.source = source
        self.publish = publish
        self.status_topic = status_topic
        self.clock = clock
        self.framer = TelegramFramer()
        self.crc_seen = False  # set once a telegram with a good CRC came: CRCs then required
        self._seen = FramerStats()
        self.bad_log = RateLimitedLog(log, period_s=60.0, burst=5)
        self.accepted = 0
        self.last_published: dict[str, Any] | None = None
        self.announced: set[str] = set()
        self.interval = TelegramInterval()  # measured, for Home Assistant's expire_after
        self.announced_expire: int | None = None
        self.last_reading: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self.reading_topic = topics.reading(site)
        self.live_topic = topics.live(site)
        self.raw_topic = topics.raw(site)
        # called with every accepted telegram (raw server, forwarders); must not block
        self.listeners: list[Callable[[bytes], None]] = []

    def feed(self, data: bytes) -> int:
        """Returns how many telegrams were accepted."""
        ok = 0
        for telegram in self.framer.feed(data):
            if self.handle(telegram) is not None:
                ok += 1
        self._sync_framer_stats()
        return ok

    def _sync_framer_stats(self) -> None:
        stats, seen = self.framer.stats, self._seen
        if stats.truncated != seen.truncated:
            self._bad("truncated", "telegram cut short: a new '/' came before its '!' line",
                      stats.truncated - seen.truncated)
        if stats.overflows != seen.overflows:
            self._bad("overflow", f"no '!' line within {self.framer.max_bytes} bytes: dropped",
                      stats.overflows - seen.overflows)
        if stats.garbage_bytes != seen.garbage_bytes:
            GARBAGE_BYTES.inc(stats.garbage_bytes - seen.garbage_bytes)
        self._seen = replace(stats)

    def _bad(self, reason: str, message: str, n: int = 1) -> None:
        TELEGRAMS_BAD.labels(reason).inc(n)
        self.bad_log.warning("bad telegram (%s): %s", reason, message)

    def handle(self, telegram: bytes) -> dict[str, Any] | None:
        try:
            parsed = parse_telegram(telegram, check_crc=self.settings.check_crc,
                                    require_crc=self.crc_seen, tariff_low=self.settings.tariff_low)
        except TelegramError as exc:
            self._bad(exc.reason, str(exc))
            return None
        if not self.crc_seen and self.settings.check_crc and _has_crc(telegram):
            self.crc_seen = True  # this meter sends CRCs: from now on a bare '!' is corrupt
        reading = build_reading(parsed, site=self.site, source=self.source, now=self.clock())
        try:
            self.guard.check(reading, self.clock())
        except Implausible as exc:  # a telegram with a good CRC, but not a possible reading
            self._bad("implausible", str(exc))
            return None
        TELEGRAMS_OK.inc()
        self.accepted += 1
        self.last_reading = reading
        for listener in self.listeners:
            try:
                listener(telegram)
            except Exception:  # a bug in one output never stops the reading
                log.exception("telegram listener %r failed", listener)
        if self.settings.ha_discovery and self._discovery_due(reading):
            self.announce(reading)
        if self._due(reading):
            self.publish(self.reading_topic, dumps(reading), 0, True)
            self.publish(self.live_topic, dumps(build_live(reading)), 0, False)
            if self.settings.publish_raw:
                self.publish(self.raw_topic, telegram, 0, False)
            READINGS_PUBLISHED.inc()
            self.last_published = reading
        return reading

    def _due(self, reading: dict[str, Any]) -> bool:
        if self.settings.publish_on_change:
            return changed(self.last_published, reading)
        return (self.accepted - 1) % self.settings.publish_every == 0

    def _discovery_due(self, reading: dict[str, Any]) -> bool:
        """New fields, or the measured telegram interval asks for another expire_after
        than the one announced (guessed from the version at the first telegram)."""
        interval = self.interval.observe(reading.get("ts"))
        if not reading.keys() <= self.announced:
            return True
        if interval is None or self.announced_expire is None or self.settings.publish_on_change:
            return False
        return expire_after_s(interval, self.settings.publish_every) != self.announced_expire

    def announce(self, reading: dict[str, Any] | None = None) -> None:
        """Publish discovery for every field seen so far (also on Home Assistant's birth)."""
        with self._lock:
            reading = reading or self.last_reading
            if reading is None:
                return
            self.announced |= reading.keys()
            messages = reading_discovery(
                self.announced, site=self.site, state_topic=self.reading_topic,
                status_topic=self.status_topic, reading=reading,
                publish_every=self.settings.publish_every,
                on_change=self.settings.publish_on_change, interval_s=self.interval.interval_s,
            )
            self.announced_expire = next(
                (p["expire_after"] for _, p in messages if "expire_after" in p), None)
        for topic, payload in messages:
            self.publish(topic, dumps(payload), 1, True)
        log.info("Home Assistant discovery: %d entities announced", len(messages))


# -- serial port ---------------------------------------------------------------------------
def open_port(url: str, profile: str) -> serial.SerialBase:
    port = serial.serial_for_url(url, do_not_open=True, timeout=0.2, **PROFILES[profile])
    port.open()
    return port


def read_port(
    handler: TelegramHandler,
    settings: ReaderSettings,
    stop: threading.Event,
    *,
    min_backoff_s: float = 0.5,
    max_backoff_s: float = 10.0,
) -> None:
    """Read until ``stop``; reopen forever with back-off when the port fails or vanishes."""
    backoff = min_backoff_s
    profile = "dsmr4" if settings.profile == "auto" else settings.profile
    locked = settings.profile != "auto"  # auto: alternate until a telegram is accepted
    while not stop.is_set():
        try:
            port = open_port(settings.serial_url, profile)
        except (serial.SerialException, OSError, ValueError) as exc:
            SOURCE_ERRORS.labels("serial", "open").inc()
            log.warning("cannot open %s: %s; retrying in %.1f s", settings.serial_url, exc, backoff)
            stop.wait(backoff)
            backoff = min(backoff * 2, max_backoff_s)
            continue
        PORT_OPEN.set(1)
        PORT_OPENS.inc()
        log.info("opened %s (%s)", settings.serial_url, _describe(profile))
        since_good = time.monotonic()
        try:
            while not stop.is_set():
                data = read_available(port)
                if data and handler.feed(data):
                    backoff = min_backoff_s
                    since_good = time.monotonic()
                    locked = True
                if not locked and time.monotonic() - since_good > settings.detect_s:
                    profile = "dsmr2" if profile == "dsmr4" else "dsmr4"
                    port.apply_settings(PROFILES[profile])
                    log.info("no valid telegram for %.0f s: trying %s", settings.detect_s,
                             _describe(profile))
                    since_good = time.monotonic()
        except (serial.SerialException, OSError, termios.error) as exc:
            # termios.error (switching a tty to 7E1, say) is no OSError: a port fault all the same
            SOURCE_ERRORS.labels("serial", "lost").inc()
            log.warning("lost %s: %s; reopening in %.1f s", settings.serial_url, exc, backoff)
            stop.wait(backoff)
            backoff = min(backoff * 2, max_backoff_s)
        finally:
            PORT_OPEN.set(0)
            try:
                port.close()
            except Exception:
                pass


def read_available(port: serial.SerialBase) -> bytes:
    """Wait for a byte, then take everything already received in one go.

    pyserial's ``socket://`` handler reports ``in_waiting`` as 0 or 1 (readable or not),
    which made a ser2net stream arrive two bytes per call: ~200 telegrams/s of CPU-bound
    work. For it the socket is read directly, without blocking.
    """
    data: bytes = port.read(1)  # pyserial is untyped
    if not data:
        return data
    sock = getattr(port, "_socket", None)
    if isinstance(sock, socket.socket):
        try:
            more = sock.recv(65536, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return data
        return data + more
    waiting: int = port.in_waiting
    rest: bytes = port.read(waiting) if waiting else b""
    return data + rest


def _describe(profile: str) -> str:
    p = PROFILES[profile]
    return f"{p['baudrate']} {p['bytesize']}{p['parity']}{p['stopbits']}"


# -- replay ------------------------------------------------------------------------------
def replay(
    handler: TelegramHandler, path: Path, speed: float, stop: threading.Event
) -> tuple[int, int]:
    """Feed a capture telegram by telegram, paced by the meter clock / speed (0 = no wait).

    Returns (accepted, refused)."""
    data = path.read_bytes()
    framer = TelegramFramer()
    telegrams = framer.feed(data)
    rest = framer.flush()
    refused = framer.stats.truncated + framer.stats.overflows + (1 if rest else 0)
    accepted = 0
    previous_ts: float | None = None
    for telegram in telegrams:
        if stop.is_set():
            break
        reading = handler.handle(telegram)
        if reading is None:
            refused += 1
            continue
        accepted += 1
        if speed > 0:
            ts = _meter_time(reading)
            gap = 1.0 if ts is None or previous_ts is None else min(max(ts - previous_ts, 0.0), 60)
            previous_ts = ts
            stop.wait(gap / speed)
    return accepted, refused


def _has_crc(telegram: bytes) -> bool:
    """The '!' end line carries hex digits (DSMR 4/5), not a bare '!' (DSMR 2.2/3)."""
    bang = telegram.rfind(b"\n!")
    return bang >= 0 and telegram[bang + 2 : bang + 3].isalnum()


def _meter_time(reading: dict[str, Any]) -> float | None:
    if reading.get("ts_source") != "meter":
        return None
    from datetime import datetime

    return datetime.fromisoformat(reading["ts"]).timestamp()


# -- the process -----------------------------------------------------------------------------
def raw_topic_of(settings: ReaderSettings, topics: Topics, site: str) -> str:
    """The topic the MQTT source reads (P1_RAW_TOPIC, else p1/<site>/raw); SettingsError
    for a configuration that would read back its own raw telegrams."""
    own = topics.raw(site)
    topic = settings.raw_topic or own
    check_no_loop(topic, own, settings.publish_raw)
    return topic


def check_settings(settings: ReaderSettings, common: CommonSettings) -> None:
    """What only the whole configuration can tell (SettingsError naming the field)."""
    if settings.source == "mqtt":
        raw_topic_of(settings, Topics(common.prefix), common.site)
    if settings.serve_raw:
        parse_listen(settings.serve_raw)
    if settings.source == "homewizard":
        target_of(settings.homewizard_host, settings.homewizard_token)
    if settings.dsmrreader_url:
        DsmrReaderForwarder(settings.dsmrreader_url, settings.dsmrreader_api_key)


def make_handler(settings: ReaderSettings, runtime: ServiceRuntime, source: str) -> TelegramHandler:
    mqtt = runtime.mqtt
    status_topic = mqtt.status_topic or runtime.topics.status(runtime.client_id)
    handler = TelegramHandler(
        settings, runtime.topics, runtime.settings.site, source,
        lambda topic, payload, qos, retain: mqtt.publish(topic, payload, qos=qos, retain=retain),
        status_topic, guard=ReadingGuard(max_drift_s=runtime.settings.max_clock_drift_s,
                                         tolerate_extra=False),
    )
    if settings.ha_discovery:
        def on_ha_status(topic: str, payload: bytes) -> None:
            if payload.strip() == b"online":
                log.info("Home Assistant is online: sending discovery again")
                handler.announce()

        mqtt.subscribe(HA_STATUS_TOPIC, on_ha_status, qos=1)
        mqtt.on_connected(lambda: handler.announce() if handler.announced else None)
    return handler


def run(
    settings: ReaderSettings,
    common: CommonSettings | None = None,
    *,
    replay_file: Path | None = None,
    speed: float = 1.0,
    install_signals: bool = True,
    stop: threading.Event | None = None,
) -> int:
    runtime = ServiceRuntime("p1-reader", common, install_signals=install_signals)
    if stop is not None:
        runtime.stop_event = stop
    handler = make_handler(settings, runtime, "replay" if replay_file else "p1")
    try:
        outputs = start_outputs(settings, handler)
    except OSError as exc:
        log.critical("P1_SERVE_RAW: cannot listen on %s: %s", settings.serve_raw, exc)
        return 1
    try:
        return _run_source(settings, runtime, handler, replay_file, speed)
    finally:
        for close in outputs:
            close()


def start_outputs(settings: ReaderSettings, handler: TelegramHandler) -> list[Callable[[], None]]:
    """The raw telegram server (P1_SERVE_RAW) and the dsmr-reader forwarder
    (P1_DSMRREADER_URL), fed by the handler; returns their closers."""
    closers: list[Callable[[], None]] = []
    if settings.serve_raw:
        host, port = parse_listen(settings.serve_raw)
        server = RawTelegramServer(host, port, settings.serve_raw_clients, settings.serve_raw_queue)
        server.start()
        handler.listeners.append(server.offer)
        closers.append(server.close)
    if settings.dsmrreader_url:
        forwarder = DsmrReaderForwarder(settings.dsmrreader_url, settings.dsmrreader_api_key,
                                        settings.dsmrreader_every)
        forwarder.start()
        handler.listeners.append(forwarder.offer)
        closers.append(forwarder.close)
    return closers


def _run_source(settings: ReaderSettings, runtime: ServiceRuntime, handler: TelegramHandler,
                replay_file: Path | None, speed: float) -> int:
    if replay_file is not None:
        return _run_replay(runtime, handler, replay_file, speed)
    if settings.source == "mqtt":
        topic = raw_topic_of(settings, runtime.topics, runtime.settings.site)
        MqttRawSource(handler, runtime.mqtt, topic).start()  # subscribed on every connection
        runtime.start()
        runtime.run_until_stopped()
        return 0
    if settings.source == "homewizard":
        poller = HomeWizardSource(
            handler, target_of(settings.homewizard_host, settings.homewizard_token),
            settings.homewizard_interval_s, settings.homewizard_ca_file)
        runtime.start()
        thread = threading.Thread(target=poller.run, args=(runtime.stop_event,), daemon=True,
                                  name="homewizard")
        thread.start()
        runtime.run_until_stopped()
        thread.join(10)
        return 0
    runtime.start()
    failed: list[BaseException] = []
    stream = is_stream(settings.serial_url)
    reader = threading.Thread(
        target=_stream_then_stop if stream else _read_or_stop,
        args=(handler, settings, runtime if stream else runtime.stop_event, failed), daemon=True,
        name="stream" if stream else "serial",
    )
    reader.start()
    runtime.run_until_stopped()
    reader.join(5)
    return 1 if failed else 0


def _run_replay(runtime: ServiceRuntime, handler: TelegramHandler, replay_file: Path,
                speed: float) -> int:
    runtime.start()
    if not runtime.mqtt.wait_connected(30):
        log.error("no broker at %s after 30 s", runtime.settings.mqtt.redacted())
        runtime.close()
        return 1
    accepted, refused = replay(handler, replay_file, speed, runtime.stop_event)
    log.info("replay of %s done: %d published, %d refused", replay_file, accepted, refused)
    time.sleep(0.5)  # let paho write out the last QoS 0 messages
    runtime.close()
    return 0


def _read_or_stop(handler: TelegramHandler, settings: ReaderSettings, stop: threading.Event,
                  failed: list[BaseException]) -> None:
    """The serial thread never dies silently: what read_port does not handle as a port
    fault (a bug) is logged and stops the process with status 1, so that its supervisor
    (systemd, Docker, k3s) restarts it, instead of a process that says "online" and reads
    nothing."""
    try:
        read_port(handler, settings, stop)
    except Exception as exc:
        failed.append(exc)
        log.critical("serial reader failed: %s: %s; stopping (exit status 1) so that the "
                     "supervisor restarts p1-reader", type(exc).__name__, exc, exc_info=True)
        stop.set()


def _stream_then_stop(handler: TelegramHandler, settings: ReaderSettings, runtime: ServiceRuntime,
                      failed: list[BaseException]) -> None:
    """stdin / a file / a pipe: once connected (what is published before would be lost), feed
    it to its end, then stop the process (status 0; 1 if it could not be read). Stopping
    sends ``offline`` with QoS 1 and waits for the broker's PUBACK: the readings published
    before it on the same connection have reached the broker by then."""
    stop = runtime.stop_event
    try:
        if not runtime.mqtt.wait_connected(30):
            raise ConnectionError(f"no broker at {runtime.settings.mqtt.redacted()} after 30 s")
        if not read_stream(handler, settings.serial_url, stop):
            failed.append(OSError(settings.serial_url))
    except Exception as exc:
        failed.append(exc)
        log.error("%s: %s; stopping (exit status 1)", type(exc).__name__, exc)
    stop.set()
