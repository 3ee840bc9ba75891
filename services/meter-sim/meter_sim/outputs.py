"""Where telegrams go: a pty (like a USB P1 cable), a TCP port (ser2net style), stdout, a file.

A meter does not wait for its reader: every output drops data it cannot deliver
right away (a pty nobody reads, a TCP client that does not keep up) instead of
slowing the simulation down.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
import sys
import termios
import threading
import tty
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger("meter-sim")


class Output:
    name = "output"

    def write(self, data: bytes) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class PtyOutput(Output):
    """A pseudo-terminal pair; readers open :attr:`path` (or the symlink) like a serial port."""

    name = "pty"

    def __init__(self, link: str | None = None) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)  # no CR/LF translation, no echo: bytes as the meter sends them
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)
        self.link = Path(link) if link else None
        if self.link:
            with contextlib.suppress(FileNotFoundError):
                if self.link.is_symlink() or self.link.exists():
                    self.link.unlink()
            self.link.parent.mkdir(parents=True, exist_ok=True)
            self.link.symlink_to(self.path)
        self.dropped = 0

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        flushed = False
        while view:
            try:
                n = os.write(self.master, view)
            except BlockingIOError:
                if flushed:
                    self.dropped += 1
                    return
                # nobody reads: forget what is queued, as a meter's line would
                termios.tcflush(self.slave, termios.TCIFLUSH)
                flushed = True
                continue
            except OSError as exc:
                if exc.errno == errno.EIO:
                    return
                raise
            view = view[n:]

    def close(self) -> None:
        if self.link:
            with contextlib.suppress(OSError):
                if self.link.is_symlink() and os.readlink(self.link) == self.path:
                    self.link.unlink()
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


class TcpOutput(Output):
    """A TCP server that sends every telegram to every connected client (like ser2net)."""

    name = "tcp"

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.server = socket.create_server((host, port), reuse_port=False)
        self.server.settimeout(0.5)
        self.host, self.port = self.server.getsockname()[:2]
        self.clients: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="tcp-accept", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, addr = self.server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.setblocking(False)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            log.info("TCP client %s:%d connected", addr[0], addr[1])
            with self._lock:
                self.clients.append(conn)

    def write(self, data: bytes) -> None:
        with self._lock:
            clients = list(self.clients)
        for conn in clients:
            try:
                conn.send(data)  # a client that cannot take a whole telegram misses it
            except BlockingIOError:
                continue
            except OSError:
                with self._lock:
                    self.clients.remove(conn)
                with contextlib.suppress(OSError):
                    conn.close()
                log.info("TCP client left")

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self.server.close()
        self._thread.join(2)
        with self._lock:
            for conn in self.clients:
                with contextlib.suppress(OSError):
                    conn.close()
            self.clients.clear()


class StreamOutput(Output):
    """stdout or a file."""

    def __init__(self, stream: BinaryIO, name: str, owned: bool) -> None:
        self.stream = stream
        self.name = name
        self.owned = owned
        self.flush_each = False  # set for real-time runs, so a pipe sees each telegram

    @classmethod
    def stdout(cls) -> StreamOutput:
        return cls(sys.stdout.buffer, "stdout", owned=False)

    @classmethod
    def file(cls, path: str) -> StreamOutput:
        return cls(open(path, "wb"), f"file {path}", owned=True)

    def write(self, data: bytes) -> None:
        try:
            self.stream.write(data)
            if self.flush_each:
                self.stream.flush()
        except BrokenPipeError:
            pass

    def close(self) -> None:
        if self.owned:
            self.stream.close()
        else:
            with contextlib.suppress(OSError):
                self.stream.flush()
