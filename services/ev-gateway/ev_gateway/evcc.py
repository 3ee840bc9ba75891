"""evcc as the charger driver: its MQTT API, per loadpoint.

What evcc documents (https://docs.evcc.io/en/integrations/mqtt-api, the evcc-io/docs file
``src/content/docs/en/integrations/mqtt-api.md``; a copy with its provenance is in
``tests/data/evcc/``): writable topics take the new value on the topic with ``/set``
appended; ``mode`` is ``off``, ``smart`` or ``now``; ``maxCurrent``, ``phasesConfigured``;
evcc publishes ``connected``, ``charging``, ``chargePower`` (W), ``chargedEnergy`` (Wh) and
``phasesActive`` of each loadpoint as plain values.

The limit becomes: pause -> ``mode/set off``; a current -> ``phasesConfigured/set``,
``maxCurrent/set``, then ``mode/set now`` (evcc charges at maxCurrent in mode now).
Written when the limit changes and again every ``refresh_s``. A separate MQTT connection per
loadpoint carries a last will ``mode/set off``: if this gateway dies, the broker itself
pauses the loadpoint (evcc would otherwise keep charging at the last current).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from p1common.settings import MqttUrl

from .core import Limit, Link, Meter

log = logging.getLogger("ev-gateway")

# read-only loadpoint topics this gateway reads, and the writable ones it writes
READ_TOPICS = ("connected", "charging", "chargePower", "chargedEnergy", "phasesActive")
WRITE_TOPICS = ("mode", "maxCurrent", "phasesConfigured")


def number_text(value: float) -> str:
    """16 -> "16", 7.5 -> "7.5" (evcc reads the value as text)."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


def commands(root: str, loadpoint: str, limit: Limit) -> list[tuple[str, str]]:
    """The (topic, payload) writes that put a loadpoint at ``limit``, in order."""
    base = f"{root}/loadpoints/{loadpoint}"
    if limit.current_a <= 0:
        return [(f"{base}/mode/set", "off")]
    return [(f"{base}/phasesConfigured/set", str(limit.phases)),
            (f"{base}/maxCurrent/set", number_text(limit.current_a)),
            (f"{base}/mode/set", "now")]


def parse_value(name: str, payload: bytes) -> bool | float | None:
    """An evcc value as published (plain text): booleans, numbers; None if unreadable."""
    text = payload.decode("utf-8", "replace").strip()
    if name in ("connected", "charging"):
        return {"true": True, "false": False}.get(text.lower())
    try:
        return float(text)
    except ValueError:
        return None


@dataclass
class Written:
    current_a: float
    phases: int
    at: float


class WillLink:
    """One MQTT connection whose last will pauses a loadpoint (``mode/set off``)."""

    def __init__(self, url: MqttUrl, client_id: str, will_topic: str,
                 ca_file: str | None = None) -> None:
        self.topic = will_topic
        self.connected = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv311, clean_session=True)
        if url.username:
            self.client.username_pw_set(url.username, url.password)
        if url.tls:
            import ssl
            self.client.tls_set_context(ssl.create_default_context(cafile=ca_file))
        self.client.will_set(will_topic, b"off", qos=1, retain=False)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda c, u, f, rc, p: self.connected.clear()
        self.client.reconnect_delay_set(1, 4)
        self.client.connect_async(url.host, url.port, keepalive=10)
        self.client.loop_start()

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object, rc: Any,
                    props: object) -> None:
        if not rc.is_failure:
            log.info("pause-on-failure connection up (last will: %s off)", self.topic)
            self.connected.set()

    def close(self) -> None:
        """A clean stop: the will is not sent, so pause the loadpoint ourselves."""
        if self.connected.is_set():
            self.client.publish(self.topic, b"off", qos=1).wait_for_publish(2)
        self.client.disconnect()
        self.client.loop_stop()


class EvccBridge:
    """Drives the evcc loadpoints of the ev outputs whose charger is ``evcc``."""

    def __init__(self, publish: Callable[[str, str], None],
                 publish_state: Callable[[str, Limit, Meter], None],
                 root: str = "evcc", refresh_s: float = 60.0,
                 will_factory: Callable[[str, str], WillLink] | None = None) -> None:
        self.publish = publish
        self.publish_state = publish_state
        self.root = root
        self.refresh_s = refresh_s
        self.will_factory = will_factory
        self.written: dict[str, Written] = {}
        self.meters: dict[str, Meter] = {}
        self.wills: dict[str, WillLink] = {}
        self.reported: dict[str, tuple[float, int, int | None]] = {}

    def state_topics(self) -> str:
        return f"{self.root}/loadpoints/+/+"

    def apply(self, link: Link, now: float) -> None:
        """Write the loadpoint's limit if it changed (or is due again); report the state."""
        lp = str(link.cfg.charger_ref)
        limit = link.limit(now)
        if self.will_factory is not None and lp not in self.wills:
            self.wills[lp] = self.will_factory(lp, f"{self.root}/loadpoints/{lp}/mode/set")
        will = self.wills.get(lp)
        if limit.current_a > 0 and will is not None and not will.connected.is_set():
            limit = Limit(0.0, limit.phases, limit.seq, "the pause-on-failure connection "
                          "is not up yet")
        prev = self.written.get(link.cfg.id)
        changed = prev is None or (prev.current_a, prev.phases) != (limit.current_a, limit.phases)
        if changed or now - prev.at >= self.refresh_s:  # type: ignore[union-attr]
            for topic, payload in commands(self.root, lp, limit):
                self.publish(topic, payload)
            self.written[link.cfg.id] = Written(limit.current_a, limit.phases, now)
            if changed:
                log.info("evcc loadpoint %s (%s): %s (%s)", lp, link.cfg.id,
                         f"{limit.current_a:g} A on {limit.phases} phase(s), mode now"
                         if limit.current_a > 0 else "mode off", limit.why)
        key = (limit.current_a, limit.phases, limit.seq)
        if self.reported.get(link.cfg.id) != key:
            self.reported[link.cfg.id] = key
            self.publish_state(link.cfg.id, limit, self.meters.setdefault(lp, Meter()))

    def on_value(self, loadpoint: str, name: str, payload: bytes) -> bool:
        """A value evcc published; True when it changed the loadpoint's meter."""
        if name not in READ_TOPICS:
            return False
        value = parse_value(name, payload)
        if value is None:
            return False
        meter = self.meters.setdefault(loadpoint, Meter())
        attr = {"chargePower": "power_w", "chargedEnergy": "session_wh",
                "phasesActive": "phases"}.get(name, name)
        if attr == "phases":
            value = int(value) if value in (1.0, 3.0) else None
        old = getattr(meter, attr)
        setattr(meter, attr, value)
        return bool(old != value)

    def close(self) -> None:
        for will in self.wills.values():
            will.close()
        self.wills.clear()
