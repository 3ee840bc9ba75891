"""Settings of bridge-multicast (``BRIDGE_*`` environment variables; CLI flags override)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from p1common.settings import Env, SettingsError

from . import layouts
from .layouts import Layout

DIRECTIONS = ("both", "to-mqtt", "to-legacy")


def check_group(value: str, name: str = "BRIDGE_GROUP") -> str:
    try:
        addr = ipaddress.IPv4Address(value)
    except ValueError:
        raise SettingsError(f"{name}: {value!r} is not an IPv4 address") from None
    if not addr.is_multicast:
        raise SettingsError(f"{name}: {value} is not a multicast address (224.0.0.0/4)")
    return value


def check_interface(value: str, name: str = "BRIDGE_INTERFACE") -> str:
    try:
        addr = ipaddress.IPv4Address(value)
    except ValueError:
        raise SettingsError(
            f"{name}: {value!r} must be the IPv4 address of a local interface (e.g. 192.168.1.10)"
        ) from None
    if addr.is_multicast:
        raise SettingsError(f"{name}: {value} is a multicast address, not an interface address")
    return value


def check_tz(value: str, name: str = "BRIDGE_TZ") -> ZoneInfo:
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"{name}: {value!r} is not a known time zone (e.g. Europe/Brussels)") from None


# the legacy modules read Belgian meters (2 = night); 1 for a Dutch meter, none when unknown
TARIFF_LOW_CHOICES = ("1", "2", "none")


@dataclass(frozen=True)
class BridgeSettings:
    group: str = "224.0.1.3"
    port: int = 8266
    interface: str = "0.0.0.0"  # 0.0.0.0 = the kernel's choice (the default route's interface)
    ttl: int = 1
    loop: bool = True
    direction: str = "both"
    layout: Layout = layouts.SEED_7
    extra_layouts: dict[str, Layout] = field(default_factory=dict)
    tz_name: str = "Europe/Brussels"
    dedup_s: float = 30.0
    tariff_low: str = "2"  # which tariff code of the legacy frames is low: 1, 2 or none

    @property
    def tariff_low_code(self) -> int | None:
        return None if self.tariff_low == "none" else int(self.tariff_low)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.tz_name)

    @property
    def to_mqtt(self) -> bool:
        return self.direction in ("both", "to-mqtt")

    @property
    def to_legacy(self) -> bool:
        return self.direction in ("both", "to-legacy")

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, overrides: Mapping[str, object] | None = None
    ) -> BridgeSettings:
        """Environment first, then non-None ``overrides`` (CLI flags, named like the fields)."""
        env = Env(environ)
        o = {k: v for k, v in (overrides or {}).items() if v is not None}

        def pick(key: str, var: str, read: Callable[[], Any]) -> tuple[Any, str]:
            """A CLI flag's value (and its name for errors), else the variable's."""
            return (o[key], f"--{key.replace('_', '-')}") if key in o else (read(), var)

        group, var = pick("group", "BRIDGE_GROUP", lambda: env.str("BRIDGE_GROUP", "224.0.1.3"))
        check_group(str(group), var)
        port, var = pick("port", "BRIDGE_PORT", lambda: env.int("BRIDGE_PORT", 8266, lo=1, hi=65535))
        if not 1 <= int(port) <= 65535:
            raise SettingsError(f"{var}: {port} is not a port number 1-65535")
        iface, var = pick("interface", "BRIDGE_INTERFACE", lambda: env.str("BRIDGE_INTERFACE", "0.0.0.0"))
        check_interface(str(iface), var)
        ttl, var = pick("ttl", "BRIDGE_TTL", lambda: env.int("BRIDGE_TTL", 1, lo=0, hi=255))
        if not 0 <= int(ttl) <= 255:
            raise SettingsError(f"{var}: {ttl} is not a TTL 0-255")
        loop, _ = pick("loop", "BRIDGE_MULTICAST_LOOP", lambda: env.bool("BRIDGE_MULTICAST_LOOP", True))
        direction, var = pick(
            "direction", "BRIDGE_DIRECTION",
            lambda: env.choice("BRIDGE_DIRECTION", "both", DIRECTIONS),
        )
        if direction not in DIRECTIONS:
            raise SettingsError(f"{var}: {direction!r} is not one of {', '.join(DIRECTIONS)}")
        tz_name, var = pick("tz", "BRIDGE_TZ", lambda: env.str("BRIDGE_TZ", "Europe/Brussels"))
        check_tz(str(tz_name), var)
        dedup_s, var = pick("dedup_s", "BRIDGE_DEDUP_S", lambda: env.float("BRIDGE_DEDUP_S", 30.0, lo=0.0, hi=3000.0))
        if not 0 <= float(dedup_s) <= 3000:
            raise SettingsError(f"{var}: {dedup_s} is not a window of 0-3000 s")
        extra: dict[str, Layout] = {}
        file_default: str | None = None
        path, var = pick("layouts_file", "BRIDGE_LAYOUTS_FILE", lambda: env.opt("BRIDGE_LAYOUTS_FILE"))
        if path:
            extra, file_default = layouts.load_layouts_file(str(path), var)
        tariff_low, _ = pick("tariff_low", "BRIDGE_TARIFF_LOW",
                             lambda: env.choice("BRIDGE_TARIFF_LOW", "2", TARIFF_LOW_CHOICES))
        name, var = pick("layout", "BRIDGE_LAYOUT", lambda: env.opt("BRIDGE_LAYOUT"))
        layout = layouts.resolve(name, extra, file_default, var if name else "BRIDGE_LAYOUTS_FILE default")
        return cls(
            group=str(group),
            port=int(port),
            interface=str(iface),
            ttl=int(ttl),
            loop=bool(loop),
            direction=str(direction),
            layout=layout,
            extra_layouts=extra,
            tz_name=str(tz_name),
            dedup_s=float(dedup_s),
            tariff_low=str(tariff_low),
        )
