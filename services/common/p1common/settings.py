"""Settings from environment variables, validated once at start.

Every service reads the shared names (``MQTT_URL``, ``P1_TOPIC_PREFIX``, ``P1_SITE``,
``LOG_LEVEL``) the same way; a bad value stops the service with a message that
names the variable and says why, instead of failing later somewhere obscure.
"""

from __future__ import annotations

import builtins
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import unquote, urlsplit

from .topics import is_site

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_Number = TypeVar("_Number", int, float)  # Env.int and Env.float bound their values alike


class SettingsError(ValueError):
    """A setting is missing or invalid; the message names the variable."""


@dataclass(frozen=True)
class MqttUrl:
    scheme: str
    host: str
    port: int
    username: str | None = None
    password: str | None = None

    @property
    def tls(self) -> builtins.bool:
        return self.scheme in ("mqtts", "ssl")

    def redacted(self) -> builtins.str:
        auth = f"{self.username}:***@" if self.username else ""
        return f"{self.scheme}://{auth}{self.host}:{self.port}"


def parse_mqtt_url(value: str, name: str = "MQTT_URL") -> MqttUrl:
    """Parse ``mqtt://user:password@host:1883`` (``mqtts://`` for TLS)."""
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise SettingsError(f"{name}: {value!r} is not a valid URL ({exc})") from None
    if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
        raise SettingsError(f"{name}: scheme must be mqtt:// or mqtts://, got {value!r}")
    if not parts.hostname:
        raise SettingsError(f"{name}: no host in {value!r}")
    scheme = "mqtts" if parts.scheme in ("mqtts", "ssl") else "mqtt"
    if port is None:
        port = 8883 if scheme == "mqtts" else 1883
    return MqttUrl(
        scheme=scheme,
        host=parts.hostname,
        port=port,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def check_slug(value: str, name: str) -> builtins.str:
    """A site name (``P1_SITE``, ``--site``): :func:`p1common.topics.is_site` or SettingsError."""
    if not is_site(value):
        raise SettingsError(
            f"{name}: {value!r} must be a short slug: lower-case letters, digits, '-' or '_'"
            " (1-63, starting with a letter or digit)"
        )
    return value


class Env:
    """Typed reads of an environment mapping, with errors naming the variable."""

    def __init__(self, environ: Mapping[builtins.str, builtins.str] | None = None) -> None:
        self.environ = os.environ if environ is None else environ

    def str(self, name: builtins.str, default: builtins.str | None = None) -> builtins.str:
        value = self.environ.get(name)
        if value is None or value == "":
            if default is None:
                raise SettingsError(f"{name}: required but not set")
            return default
        return value

    def opt(self, name: builtins.str) -> builtins.str | None:
        value = self.environ.get(name)
        return value if value else None

    def int(self, name: builtins.str, default: builtins.int, lo: builtins.int | None = None, hi: builtins.int | None = None) -> builtins.int:
        raw = self.environ.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"{name}: {raw!r} is not an integer") from None
        return self._bounded(name, value, lo, hi)

    def float(
        self, name: builtins.str, default: builtins.float, lo: builtins.float | None = None, hi: builtins.float | None = None
    ) -> builtins.float:
        raw = self.environ.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = float(raw)
        except ValueError:
            raise SettingsError(f"{name}: {raw!r} is not a number") from None
        return self._bounded(name, value, lo, hi)

    def bool(self, name: builtins.str, default: builtins.bool) -> builtins.bool:
        raw = self.environ.get(name)
        if raw is None or raw == "":
            return default
        low = raw.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{name}: {raw!r} is not a boolean (use true/false)")

    def choice(self, name: builtins.str, default: builtins.str, choices: tuple[builtins.str, ...]) -> builtins.str:
        value = self.str(name, default)
        if value not in choices:
            raise SettingsError(f"{name}: {value!r} is not one of {', '.join(choices)}")
        return value

    @staticmethod
    def _bounded(name: builtins.str, value: _Number, lo: _Number | None, hi: _Number | None) -> _Number:
        if lo is not None and value < lo:
            raise SettingsError(f"{name}: {value} is below the minimum {lo}")
        if hi is not None and value > hi:
            raise SettingsError(f"{name}: {value} is above the maximum {hi}")
        return value


@dataclass(frozen=True)
class CommonSettings:
    """The settings every service shares, with the same names everywhere."""

    mqtt: MqttUrl
    prefix: str
    site: str
    log_level: str
    metrics_port: int  # 0 = no metrics HTTP server
    mqtt_ca_file: str | None = None
    # readings whose meter clock is further than this from the host's are refused
    # (p1common.plausibility); None = not checked (a simulation at another speed, old captures)
    max_clock_drift_s: float | None = 3600.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> CommonSettings:
        env = Env(environ)
        level = env.str("LOG_LEVEL", "INFO").upper()
        if level not in LOG_LEVELS:
            raise SettingsError(f"LOG_LEVEL: {level!r} is not one of {', '.join(LOG_LEVELS)}")
        prefix = env.str("P1_TOPIC_PREFIX", "p1")
        if not re.match(r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$", prefix):
            raise SettingsError(
                f"P1_TOPIC_PREFIX: {prefix!r} may hold letters, digits, '-', '_' and '/' only"
            )
        return cls(
            mqtt=parse_mqtt_url(env.str("MQTT_URL", "mqtt://127.0.0.1:1883")),
            prefix=prefix,
            site=check_slug(env.str("P1_SITE", "home"), "P1_SITE"),
            log_level=level,
            metrics_port=env.int("METRICS_PORT", 0, lo=0, hi=65535),
            mqtt_ca_file=env.opt("MQTT_CA_FILE"),
            max_clock_drift_s=env.float("P1_MAX_CLOCK_DRIFT_S", 3600.0, lo=0, hi=10 * 365 * 86400) or None,
        )
