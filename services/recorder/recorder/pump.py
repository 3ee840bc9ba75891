"""Batching, retry and the outage buffer: when points go to InfluxDB, and what waits.

Time is a value passed in (``now``, monotonic seconds), so the policy is tested
without sleeping. Rules:

- Points collect in memory; a batch goes out when ``batch_size`` points are
  waiting or the oldest has waited ``flush_s``.
- While the disk buffer holds anything, new batches are appended behind it (order
  is kept) and the buffer drains oldest first.
- A failed write (``RETRY``) moves the batch to disk and backs off: 1 s, 2 s, 4 s
  ... up to ``retry_max_s``.
- A batch InfluxDB refuses as bad data (``REJECTED``) is dropped and counted:
  retrying it forever would block everything behind it.

:meth:`add` may be called from any thread; :meth:`tick` and :meth:`close` from
one writer thread only.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

from prometheus_client import Counter, Gauge

from .diskbuffer import DiskBuffer
from .sink import Outcome

log = logging.getLogger(__name__)

POINTS_WRITTEN = Counter("p1_recorder_points_written_total", "points InfluxDB accepted")
POINTS_REJECTED = Counter("p1_recorder_points_rejected_total", "points InfluxDB refused (400/422)")
POINTS_DROPPED = Counter("p1_recorder_points_dropped_total", "oldest points dropped, buffer full")
BUFFERED = Gauge("p1_recorder_buffered_points", "points waiting in the disk buffer")
INFLUX_UP = Gauge("p1_recorder_influx_up", "1 when the last write to InfluxDB succeeded")

MAX_DRAIN_BATCHES_PER_TICK = 50
RETRY_MIN_S = 1.0


class Sink(Protocol):
    last_error: str | None

    def write(self, lines: list[str]) -> Outcome: ...


class Pump:
    def __init__(self, sink: Sink, buffer: DiskBuffer, batch_size: int, flush_s: float,
                 retry_max_s: float = 30.0) -> None:
        self.sink = sink
        self.buffer = buffer
        self.batch_size = batch_size
        self.flush_s = flush_s
        self.retry_max_s = retry_max_s
        self._lock = threading.Lock()
        self._pending: list[str] = []
        self._first_at: float | None = None
        self._failures = 0
        self._next_try = 0.0
        self._dropped_seen = buffer.dropped_lines
        self.written = 0
        self.rejected = 0
        BUFFERED.set(len(buffer))
        if len(buffer):
            log.info("buffer: %d points from before the restart will be written first",
                     len(buffer))

    # -- producer side -------------------------------------------------------------------
    def add(self, lines: list[str], now: float) -> None:
        if not lines:
            return
        with self._lock:
            if not self._pending:
                self._first_at = now
            self._pending.extend(lines)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    # -- writer side -----------------------------------------------------------------------
    def batch_due(self, now: float) -> bool:
        with self._lock:
            if not self._pending:
                return False
            return (len(self._pending) >= self.batch_size
                    or (self._first_at is not None and now - self._first_at >= self.flush_s))

    def _take(self) -> list[str]:
        with self._lock:
            batch, self._pending, self._first_at = self._pending, [], None
        return batch

    def tick(self, now: float) -> None:
        if self.batch_due(now):
            self._route(self._take(), now)
        self._drain(now)
        self._sync_metrics()

    def close(self, now: float) -> None:
        """At shutdown: one try for what is in memory, the disk for the rest."""
        self._drain(now)
        batch = self._take()
        if batch:
            self._route(batch, now)
        self._sync_metrics()

    def _route(self, batch: list[str], now: float) -> None:
        if len(self.buffer) or now < self._next_try:
            self.buffer.append(batch)
            return
        for start in range(0, len(batch), self.batch_size):
            chunk = batch[start:start + self.batch_size]
            if self._send(chunk, now) is Outcome.RETRY:
                self.buffer.append(batch[start:])
                log.warning("InfluxDB unavailable (%s): buffering %d points on disk",
                            self.sink.last_error, len(batch) - start)
                return

    def _drain(self, now: float) -> None:
        for _ in range(MAX_DRAIN_BATCHES_PER_TICK):
            if not len(self.buffer) or now < self._next_try:
                return
            lines, upto = self.buffer.peek(self.batch_size)
            if not lines:
                return
            if self._send(lines, now) is Outcome.RETRY:
                return
            self.buffer.commit(upto, len(lines))
            if not len(self.buffer):
                log.info("buffer drained: InfluxDB has every point again")

    def _send(self, lines: list[str], now: float) -> Outcome:
        outcome = self.sink.write(lines)
        if outcome is Outcome.RETRY:
            delay = min(self.retry_max_s, RETRY_MIN_S * (2 ** min(self._failures, 16)))
            self._failures += 1
            self._next_try = now + delay
            INFLUX_UP.set(0)
            if self._failures == 1:
                log.warning("write to InfluxDB failed (%s); retrying with back-off",
                            self.sink.last_error)
            return outcome
        if self._failures:
            log.info("InfluxDB is back after %d failed tries", self._failures)
        self._failures, self._next_try = 0, 0.0
        INFLUX_UP.set(1)
        if outcome is Outcome.REJECTED:
            self.rejected += len(lines)
            POINTS_REJECTED.inc(len(lines))
            log.error("InfluxDB refused %d points as bad data, dropped: %s", len(lines),
                      self.sink.last_error)
        else:
            self.written += len(lines)
            POINTS_WRITTEN.inc(len(lines))
        return outcome

    def _sync_metrics(self) -> None:
        BUFFERED.set(len(self.buffer))
        if self.buffer.dropped_lines > self._dropped_seen:
            POINTS_DROPPED.inc(self.buffer.dropped_lines - self._dropped_seen)
            self._dropped_seen = self.buffer.dropped_lines
