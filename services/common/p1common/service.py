"""What every service process shares: settings, logging, MQTT, metrics, clean stop.

A service builds a :class:`ServiceRuntime`, registers its subscriptions on
``runtime.mqtt``, calls :meth:`ServiceRuntime.start`, does its work, and calls
:meth:`ServiceRuntime.run_until_stopped` (SIGTERM/SIGINT end it cleanly).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path

from .logs import setup_logging
from .metrics import MetricsServer
from .mqtt import MqttClient, stop_event_on_signals
from .settings import CommonSettings
from .topics import Topics


def default_client_id(service: str, site: str | None = None) -> str:
    """``<service>-<site>`` plus the host name, unique per instance, stable across restarts."""
    host = socket.gethostname().split(".")[0].lower()
    host = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in host)[:24]
    parts = [service] + ([site] if site else []) + [host]
    return "-".join(parts)


def state_dir(service: str) -> Path:
    """Where a service keeps its state: ``$P1_STATE_DIR/<service>`` (default ``./var``)."""
    base = Path(os.environ.get("P1_STATE_DIR") or "var")
    path = base / service
    path.mkdir(parents=True, exist_ok=True)
    return path


class ServiceRuntime:
    def __init__(
        self,
        service: str,
        settings: CommonSettings | None = None,
        client_id: str | None = None,
        health: Callable[[], bool] | None = None,
        install_signals: bool = True,
    ) -> None:
        self.settings = settings or CommonSettings.from_env()
        setup_logging(self.settings.log_level, service)
        self.log = logging.getLogger(service)
        self.topics = Topics(self.settings.prefix)
        self.client_id = client_id or os.environ.get("MQTT_CLIENT_ID") or default_client_id(
            service, self.settings.site
        )
        self.mqtt = MqttClient(
            self.client_id, self.settings.mqtt, self.topics, ca_file=self.settings.mqtt_ca_file
        )
        self.stop_event = stop_event_on_signals() if install_signals else threading.Event()
        self._health = health or (lambda: self.mqtt.connected.is_set())
        self.metrics: MetricsServer | None = None

    def start(self) -> None:
        if self.settings.metrics_port:
            self.metrics = MetricsServer(self.settings.metrics_port, self._health)
            self.log.info("metrics and health on :%d (/metrics, /healthz)", self.metrics.port)
        self.mqtt.start()

    def run_until_stopped(self, tick: Callable[[], None] | None = None, tick_s: float = 1.0) -> None:
        """Block until SIGTERM/SIGINT, calling ``tick`` every ``tick_s`` (timers, watchdogs)."""
        while not self.stop_event.wait(tick_s if tick else 3600):
            if tick:
                try:
                    tick()
                except Exception:
                    self.log.exception("periodic task failed")
        self.close()

    def close(self) -> None:
        self.mqtt.stop()
        if self.metrics:
            self.metrics.close()
        self.log.info("stopped")
