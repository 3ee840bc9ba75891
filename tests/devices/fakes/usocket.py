"""MicroPython-style sockets over CPython ones, for umqtt.simple in the PC tests.

MicroPython stream sockets have read(n)/write(buf, n); a non-blocking read with
nothing waiting returns None. Blocking reads get a 10 s timeout here so a broken
test fails instead of hanging.
"""

from __future__ import annotations

import socket as _socket
from typing import Any

BLOCKING_TIMEOUT_S = 10.0
OPEN: list[socket] = []


def getaddrinfo(host: str, port: int, *args: Any) -> list[Any]:
    return _socket.getaddrinfo(host, port, _socket.AF_INET, _socket.SOCK_STREAM)


class socket:  # MicroPython's name
    def __init__(self, *args: Any) -> None:
        self._s = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
        self._s.settimeout(BLOCKING_TIMEOUT_S)
        OPEN.append(self)

    def connect(self, addr: Any) -> None:
        self._s.connect(addr)

    def setblocking(self, flag: bool) -> None:
        self._s.settimeout(BLOCKING_TIMEOUT_S if flag else 0.0)

    def read(self, n: int) -> bytes | None:
        buf = b""
        while len(buf) < n:
            try:
                chunk = self._s.recv(n - len(buf))
            except BlockingIOError:
                if not buf:
                    return None
                self._s.settimeout(BLOCKING_TIMEOUT_S)
                continue
            except TimeoutError:
                raise OSError(110, "ETIMEDOUT") from None
            if not chunk:
                break
            buf += chunk
        return buf

    def write(self, buf: bytes | str, n: int | None = None) -> int:
        if isinstance(buf, str):       # MicroPython writes a str as its UTF-8 bytes
            buf = buf.encode()
        data = bytes(buf[:n] if n is not None else buf)
        self._s.sendall(data)
        return len(data)

    def close(self) -> None:
        self._s.close()

    def kill(self) -> None:
        """Test hook: drop the TCP connection without an MQTT DISCONNECT."""
        try:
            self._s.shutdown(_socket.SHUT_RDWR)
        except OSError:
            pass
        self._s.close()
