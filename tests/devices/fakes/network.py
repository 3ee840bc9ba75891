"""Fake of MicroPython's `network` (WLAN) for the PC tests.

WORLD holds the networks in range (SSID -> password); a station joins one when
the password matches and `DOWN` is not set. Addresses are loopback.
"""

from __future__ import annotations

from typing import Any

STA_IF = 0
AP_IF = 1
STAT_IDLE = 0
STAT_CONNECTING = 1
STAT_WRONG_PASSWORD = 2
STAT_NO_AP_FOUND = 3
STAT_GOT_IP = 5

WORLD: dict[str, str] = {}
DOWN = [False]
_IFACES: dict[int, WLAN] = {}


def reset_all(world: dict[str, str] | None = None) -> None:
    _IFACES.clear()
    WORLD.clear()
    WORLD.update(world or {})
    DOWN[0] = False


class WLAN:
    def __new__(cls, iface: int = STA_IF) -> WLAN:
        obj = _IFACES.get(iface)
        if obj is None:
            obj = super().__new__(cls)
            obj.iface = iface
            obj._active = False
            obj.target = None
            obj.cfg = {}
            obj.connects = 0
            _IFACES[iface] = obj
        return obj

    iface: int
    _active: bool
    target: tuple[str, str] | None
    cfg: dict[str, Any]
    connects: int

    def active(self, on: bool | None = None) -> bool | None:
        if on is None:
            return self._active
        self._active = bool(on)
        return None

    def connect(self, ssid: str, password: str = "") -> None:
        if not self._active:
            raise OSError("STA not active")
        self.target = (ssid, password)
        self.connects += 1

    def disconnect(self) -> None:
        self.target = None

    def status(self) -> int:
        if self.isconnected():
            return STAT_GOT_IP
        if self.target is None:
            return STAT_IDLE
        if self.target[0] not in WORLD:
            return STAT_NO_AP_FOUND
        return STAT_WRONG_PASSWORD

    def isconnected(self) -> bool:
        if self.iface != STA_IF or not self._active or self.target is None or DOWN[0]:
            return False
        ssid, pw = self.target
        return WORLD.get(ssid) == pw

    def scan(self) -> list[tuple[bytes, bytes, int, int, int, int]]:
        return [(name.encode(), b"\x00" * 6, 6, -40 - 7 * i, 3, 0)
                for i, name in enumerate(WORLD)]

    def ifconfig(self) -> tuple[str, str, str, str]:
        return ("127.0.0.1", "255.0.0.0", "127.0.0.1", "127.0.0.1")

    def config(self, *args: str, **kw: Any) -> Any:
        if args:
            return self.cfg.get(args[0])
        self.cfg.update(kw)
        return None
