"""Fan-out of live events from the MQTT thread to the pages' event streams.

MQTT handlers run on paho's network thread; every Server-Sent-Events stream is an
asyncio task with its own bounded queue. :meth:`EventHub.publish` is thread-safe:
it hands the event to the event loop, which puts it in the queues of the streams
of that site. A page that cannot keep up loses its oldest events, never blocks
the broker connection.
"""

from __future__ import annotations

import asyncio
import contextlib

from .live import Event

QUEUE_LEN = 256


class EventHub:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queues: list[tuple[str, asyncio.Queue[Event | None]]] = []
        self.closed = False

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.closed = False

    def subscribe(self, site: str) -> asyncio.Queue[Event | None]:
        queue: asyncio.Queue[Event | None] = asyncio.Queue(QUEUE_LEN)
        self._queues.append((site, queue))
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Event | None]) -> None:
        self._queues = [(s, q) for s, q in self._queues if q is not queue]

    @property
    def listeners(self) -> int:
        return len(self._queues)

    def publish(self, event: Event) -> None:
        """From any thread."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # loop closing
            loop.call_soon_threadsafe(self._deliver, event)

    def _deliver(self, event: Event | None) -> None:
        for site, queue in list(self._queues):
            if event is not None and event.site is not None and event.site != site:
                continue
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(event)

    def close(self) -> None:
        """End every stream (the server is stopping); from any thread."""
        self.closed = True
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._deliver, None)
