"""Where telegrams come from, besides the serial port: MQTT raw telegrams (ESP dongles).

Every source ends in the same :class:`~p1_reader.service.TelegramHandler`: a byte stream
goes to ``handler.feed`` (framer, CRC, parse, plausibility, publish, discovery, metrics),
a whole telegram to ``handler.handle``. What a source cannot turn into a telegram (an
MQTT payload that is not one whole telegram, a file that cannot be opened) is a
*source error*: counted in ``p1_reader_source_errors_total{source,reason}``, logged
(rate-limited), never published.
"""

from __future__ import annotations

import logging
import os
import select
import stat
import sys
import threading
from typing import TYPE_CHECKING

import paho.mqtt.client as paho
from prometheus_client import Counter

from p1common.dsmr.framer import TelegramFramer
from p1common.logs import RateLimitedLog
from p1common.settings import SettingsError

if TYPE_CHECKING:
    from p1common.mqtt import MqttClient

    from .service import TelegramHandler

log = logging.getLogger("p1-reader")

SOURCE_CHOICES = ("serial", "mqtt", "homewizard")

SOURCE_ERRORS = Counter(
    "p1_reader_source_errors_total",
    "input a source could not turn into a telegram (skipped, never published)",
    ["source", "reason"],
)


class NotATelegram(ValueError):
    """A payload that is not one whole telegram; ``reason`` labels the counter."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def telegram_from_payload(payload: bytes, max_bytes: int = 8192) -> bytes:
    """One telegram's bytes, '/' to the CRC line with CRLF line ends, from an MQTT payload.

    Accepted as ESP dongle firmwares send it: CRLF or LF-only line ends (LF-only is made
    CRLF again: the meter's CRC16 covers the CR bytes), with or without the final line
    end, surrounded by whitespace. Anything else (empty, no '/' start, no '!' end line,
    two telegrams, bytes after the CRC line, over ``max_bytes``) is :class:`NotATelegram`.
    """
    if len(payload) > max_bytes:
        raise NotATelegram("too_long", f"payload of {len(payload)} bytes (a telegram has at "
                                       f"most {max_bytes})")
    text = payload.strip()
    if not text:
        raise NotATelegram("empty", "empty payload")
    if not text.startswith(b"/"):
        raise NotATelegram("no_start", f"payload does not start with '/': {text[:20]!r}")
    # one line-end convention for the whole telegram: CRLF (as the meter sent it)
    text = text.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") + b"\r\n"
    framer = TelegramFramer(max_bytes=max_bytes + 2)
    found = framer.feed(text)
    rest = framer.flush()
    if framer.stats.truncated:
        raise NotATelegram("several", "payload holds a '/' line inside the telegram "
                                      "(two telegrams, or one cut short)")
    if rest is not None or not found:
        raise NotATelegram("no_end", "payload has no '!' end line (not a whole telegram)")
    if len(found) > 1 or framer.stats.garbage_bytes:
        raise NotATelegram("several", "payload holds more than one telegram, or bytes after "
                                      "the CRC line")
    return found[0]


def check_no_loop(raw_topic: str, own_raw_topic: str, publish_raw: bool) -> None:
    """Refuse reading the topic p1-reader itself publishes raw telegrams on."""
    if publish_raw and paho.topic_matches_sub(raw_topic, own_raw_topic):
        raise SettingsError(
            f"P1_PUBLISH_RAW: p1-reader would publish every telegram on {own_raw_topic}, which "
            f"the MQTT source reads (P1_RAW_TOPIC {raw_topic}): a loop. Turn P1_PUBLISH_RAW "
            "off (the dongle already publishes the raw telegrams) or read another topic")
    if "#" in raw_topic or "+" in raw_topic:
        raise SettingsError(f"P1_RAW_TOPIC: {raw_topic!r}: one topic, not a filter (a "
                            "wildcard would mix the telegrams of several meters)")


class MqttRawSource:
    """Whole telegrams from MQTT: one message = one telegram (``P1_SOURCE=mqtt``).

    Subscribes on the connection p1-reader publishes on, so it is subscribed again on
    every reconnection (p1common.mqtt). Retained messages replayed at subscription time
    are skipped: an old telegram is no sign of a live meter."""

    name = "mqtt"

    def __init__(self, handler: TelegramHandler, mqtt: MqttClient, topic: str) -> None:
        self.handler = handler
        self.mqtt = mqtt
        self.topic = topic
        self.error_log = RateLimitedLog(log, period_s=60.0, burst=5)

    def start(self) -> None:
        self.mqtt.subscribe(self.topic, self.on_message, qos=0, skip_retained=True)
        log.info("reading raw telegrams from MQTT topic %s", self.topic)

    def on_message(self, topic: str, payload: bytes) -> None:
        try:
            telegram = telegram_from_payload(payload, self.handler.framer.max_bytes)
        except NotATelegram as exc:
            SOURCE_ERRORS.labels(self.name, exc.reason).inc()
            self.error_log.warning("skipped a message on %s: %s", topic, exc)
            return
        self.handler.handle(telegram)


# -- stdin, files, pipes -------------------------------------------------------------------
def is_stream(url: str) -> bool:
    """``-`` (stdin), a regular file or a named pipe: read to its end, not as a serial port."""
    if url == "-":
        return True
    try:
        mode = os.stat(url).st_mode
    except OSError:
        return False  # not there (yet): a serial device that may come back
    return stat.S_ISREG(mode) or stat.S_ISFIFO(mode)


def read_stream(handler: TelegramHandler, url: str, stop: threading.Event) -> bool:
    """Feed stdin / a file / a pipe to the handler (framer, CRC, parse, publish) until its
    end; an unfinished last telegram is judged too (refused as truncated). Returns False
    when the input could not be opened or read (a source error)."""
    name = "stdin" if url == "-" else url
    label = "stdin" if url == "-" else "file"
    try:
        fd = sys.stdin.fileno() if url == "-" else os.open(url, os.O_RDONLY)
    except (OSError, ValueError) as exc:
        SOURCE_ERRORS.labels(label, "open").inc()
        log.error("cannot open %s: %s", name, exc)
        return False
    accepted = 0
    try:
        while not stop.is_set():
            ready, _, _ = select.select([fd], [], [], 0.2)
            if not ready:
                continue
            data = os.read(fd, 65536)
            if not data:
                break
            accepted += handler.feed(data)
    except OSError as exc:
        SOURCE_ERRORS.labels(label, "read").inc()
        log.error("cannot read %s: %s", name, exc)
        return False
    finally:
        if url != "-":
            os.close(fd)
    rest = handler.framer.flush()
    if rest is not None and not stop.is_set():
        accepted += handler.handle(rest) is not None
    log.info("end of %s: %d telegrams accepted", name, accepted)
    return True
