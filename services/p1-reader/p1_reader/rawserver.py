"""The raw telegram server (``P1_SERVE_RAW``): every accepted telegram, byte for byte, to
every TCP client, in ser2net style, so that Home Assistant's DSMR integration (network)
or dsmr-reader (network source) read the same meter.

- Read-only: what a client sends is read and thrown away.
- Whole telegrams only: a telegram is queued for a client only once it was accepted
  (CRC, parse, plausibility), so a client that connects mid-telegram starts with the
  next whole one.
- The reader is never slowed: :meth:`RawTelegramServer.offer` only appends to bounded
  per-client queues and wakes the server thread, which writes with non-blocking sends.
  A client whose queue is full (it does not read, or not fast enough) is dropped and
  counted; the others do not notice.
- A client limit: the one over it is closed at once and counted.
"""

from __future__ import annotations

import logging
import selectors
import socket
import threading
from collections import deque
from dataclasses import dataclass, field

from prometheus_client import Counter, Gauge

from p1common.logs import RateLimitedLog
from p1common.settings import SettingsError

log = logging.getLogger("p1-reader")

RAW_CLIENTS = Gauge("p1_reader_raw_clients", "clients connected to the raw telegram server")
RAW_SERVED = Counter("p1_reader_raw_telegrams_served_total",
                     "telegrams written whole to raw telegram server clients (one per client)")
RAW_DROPPED = Counter("p1_reader_raw_clients_dropped_total",
                      "raw telegram server clients closed by p1-reader (slow: queue full; "
                      "limit: over P1_SERVE_RAW_CLIENTS)", ["reason"])

SEND_BUFFER = 64 * 1024  # per client socket: a slow client shows in its queue soon


def parse_listen(value: str, name: str = "P1_SERVE_RAW") -> tuple[str, int]:
    """``PORT`` (loopback), ``HOST:PORT`` or ``[IPv6]:PORT`` -> (host, port)."""
    text = value.strip()
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host = "127.0.0.1"
    host = host.strip("[]")
    if not host or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise SettingsError(f"{name}: {value!r}: use PORT (loopback), HOST:PORT or [IPv6]:PORT, "
                            "port 1-65535")
    return host, int(port_text)


@dataclass
class _Client:
    sock: socket.socket
    peer: str
    queue: deque[bytes] = field(default_factory=deque)
    offset: int = 0  # bytes of queue[0] already sent
    slow: bool = False  # queue overflowed: to be dropped by the server thread
    writing: bool = False  # registered for EVENT_WRITE


class RawTelegramServer:
    def __init__(self, host: str, port: int, max_clients: int = 16,
                 queue_telegrams: int = 60) -> None:
        self.max_clients = max_clients
        self.queue_telegrams = queue_telegrams
        self.listener = socket.create_server((host, port), family=_family(host))
        self.listener.setblocking(False)
        self.address = self.listener.getsockname()[:2]
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.listener, selectors.EVENT_READ, "accept")
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._clients: dict[socket.socket, _Client] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="raw-server")
        self._events_log = RateLimitedLog(log, period_s=60.0, burst=10)
        RAW_CLIENTS.set(0)

    def start(self) -> None:
        self._thread.start()
        log.info("serving raw telegrams on %s:%d (at most %d clients)", self.address[0],
                 self.address[1], self.max_clients)

    def offer(self, telegram: bytes) -> None:
        """Queue an accepted telegram for every client; never blocks on a client."""
        with self._lock:
            if not self._clients:
                return
            for client in self._clients.values():
                if client.slow:
                    continue
                if len(client.queue) >= self.queue_telegrams:
                    client.slow = True
                else:
                    client.queue.append(telegram)
        self._wake()

    def close(self) -> None:
        self._stop.set()
        self._wake()
        self._thread.join(5)
        with self._lock:
            clients = list(self._clients.values())
            self._clients.clear()
        for client in clients:
            client.sock.close()
        RAW_CLIENTS.set(0)
        self._selector.close()
        self.listener.close()
        self._wake_r.close()
        self._wake_w.close()

    # -- the server thread ------------------------------------------------------------------
    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except (BlockingIOError, OSError):
            pass  # already woken (its buffer is full), or closing

    def _loop(self) -> None:
        while not self._stop.is_set():
            for key, events in self._selector.select(timeout=1.0):
                if key.data == "accept":
                    self._accept()
                elif key.data == "wake":
                    self._drain_wake()
                elif isinstance(key.fileobj, socket.socket):
                    self._client_event(key.fileobj, events)
            self._flush_all()

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def _accept(self) -> None:
        try:
            sock, addr = self.listener.accept()
        except (BlockingIOError, OSError):
            return
        peer = f"{addr[0]}:{addr[1]}"
        with self._lock:
            full = len(self._clients) >= self.max_clients
        if full:
            RAW_DROPPED.labels("limit").inc()
            self._events_log.warning("raw client %s refused: %d clients already (P1_SERVE_RAW_CLIENTS)",
                                     peer, self.max_clients)
            sock.close()
            return
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        client = _Client(sock, peer)
        with self._lock:
            self._clients[sock] = client
            count = len(self._clients)
        self._selector.register(sock, selectors.EVENT_READ, "client")
        RAW_CLIENTS.set(count)
        self._events_log.log(logging.INFO, "raw client %s connected (%d of %d)", peer, count,
                             self.max_clients)

    def _client_event(self, sock: socket.socket, events: int) -> None:
        client = self._clients.get(sock)
        if client is None:
            return
        if events & selectors.EVENT_READ:
            try:
                data = sock.recv(4096)  # read-only: thrown away
            except BlockingIOError:
                data = b"-"
            except OSError:
                data = b""
            if not data:
                self._remove(client, "disconnected")
                return

    def _flush_all(self) -> None:
        with self._lock:
            clients = list(self._clients.values())
        for client in clients:
            if client.slow:
                RAW_DROPPED.labels("slow").inc()
                self._remove(client, f"dropped: more than {self.queue_telegrams} telegrams "
                                     "behind (not reading)", warn=True)
            elif client.queue:
                self._send(client)

    def _send(self, client: _Client) -> None:
        while True:
            with self._lock:
                if not client.queue:
                    break
                head = client.queue[0]
            try:
                sent = client.sock.send(memoryview(head)[client.offset:])
            except BlockingIOError:
                break
            except OSError:
                self._remove(client, "disconnected")
                return
            client.offset += sent
            if client.offset < len(head):
                break
            client.offset = 0
            RAW_SERVED.inc()
            with self._lock:
                client.queue.popleft()
        with self._lock:
            pending = bool(client.queue)
        if pending != client.writing:
            client.writing = pending
            mask = selectors.EVENT_READ | (selectors.EVENT_WRITE if pending else 0)
            self._selector.modify(client.sock, mask, "client")

    def _remove(self, client: _Client, why: str, warn: bool = False) -> None:
        with self._lock:
            if self._clients.pop(client.sock, None) is None:
                return
            count = len(self._clients)
        try:
            self._selector.unregister(client.sock)
        except (KeyError, ValueError):
            pass
        client.sock.close()
        RAW_CLIENTS.set(count)
        self._events_log.log(logging.WARNING if warn else logging.INFO, "raw client %s %s",
                             client.peer, why)


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET
