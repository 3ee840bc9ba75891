"""The bridge's decisions, without sockets or clocks: what to publish, send or drop.

Loops are what a two-way bridge risks: a frame it sends comes back on its own
multicast socket (IP_MULTICAST_LOOP, or a second path), and a reading it publishes
comes back on its own MQTT subscription. Three guards:

* a reading whose ``source`` is ``legacy`` is never turned into a frame;
* a datagram whose source address/port is the bridge's sending socket is dropped
  (``own``);
* a datagram whose values equal a frame the bridge sent within the dedup window is
  dropped (``echo``): this catches its frames coming back by another path
  (a second interface, a reflector, another bridge re-sending them).

Duplicates (the same frame values twice within the window, the same frame for
a reading re-delivered) are dropped too. Time is passed in (monotonic seconds).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from p1common.plausibility import Implausible, ReadingGuard

from . import frames
from .layouts import Layout

OWN = "own"
ECHO = "echo"
DUPLICATE = "duplicate"
IMPLAUSIBLE = "implausible"  # decodes, but is no possible reading (p1common.plausibility)
LEGACY = "legacy"
DROP_REASONS = (OWN, ECHO, DUPLICATE)
# a frame without minute/second may legitimately repeat every second: only drop
# what arrives again within this (a datagram duplicated on the way)
SHORT_DEDUP_S = 0.5


class RecentSet:
    """Keys seen within the last ``window_s`` seconds (bounded in size)."""

    def __init__(self, window_s: float, max_items: int = 4096) -> None:
        self.window_s = window_s
        self.max_items = max_items
        self._seen: OrderedDict[Hashable, float] = OrderedDict()

    def _prune(self, now: float) -> None:
        while self._seen:
            key, t = next(iter(self._seen.items()))
            if now - t <= self.window_s and len(self._seen) <= self.max_items:
                break
            del self._seen[key]

    def __contains__(self, key: Hashable) -> bool:
        return key in self._seen

    def seen(self, key: Hashable, now: float) -> bool:
        self._prune(now)
        return key in self._seen

    def add(self, key: Hashable, now: float) -> None:
        self._seen.pop(key, None)
        self._seen[key] = now
        self._prune(now)

    def check_and_add(self, key: Hashable, now: float) -> bool:
        """True when ``key`` was already seen within the window (then it is not renewed)."""
        if self.seen(key, now):
            return True
        self.add(key, now)
        return False


@dataclass
class Verdict:
    """What to do with one datagram or one reading."""

    action: str  # "publish" | "send" | "drop" | "bad"
    reason: str = ""
    message: str = ""
    reading: dict[str, Any] | None = None
    live: dict[str, Any] | None = None
    frame: bytes | None = None
    values: list[frames.Number] = field(default_factory=list)


class BridgeCore:
    def __init__(
        self,
        layout: Layout,
        site: str,
        dedup_s: float = 30.0,
        own_address: tuple[str, int] | None = None,
        max_frame_bytes: int = frames.MAX_FRAME_BYTES,
        tariff_low_code: int | None = 2,
        guard: ReadingGuard | None = None,
    ) -> None:
        self.guard = guard or ReadingGuard(tolerate_extra=False)
        self.layout = layout
        self.tariff_low_code = tariff_low_code
        self.site = site
        self.own_address = own_address
        self.max_frame_bytes = max_frame_bytes
        self.dedup_s = dedup_s
        self.received = RecentSet(dedup_s if layout.has_time else min(dedup_s, SHORT_DEDUP_S))
        self.sent_values = RecentSet(dedup_s)
        self.sent_frames = RecentSet(dedup_s)

    # -- legacy -> MQTT -----------------------------------------------------------
    def on_datagram(
        self, data: bytes, source: tuple[str, int], now: float, host_now: datetime
    ) -> Verdict:
        if self._is_own(source, data, now):
            return Verdict("drop", OWN, f"our own frame from {source[0]}:{source[1]}")
        try:
            values = frames.parse_frame(data, self.layout.key, self.max_frame_bytes)
            reading = frames.reading_from_values(values, self.layout, self.site, host_now,
                                                 self.tariff_low_code)
        except frames.FrameError as exc:
            return Verdict("bad", exc.reason, str(exc))
        key = tuple(values)
        if self.sent_values.seen(key, now):
            return Verdict("drop", ECHO, "a frame we sent ourselves", values=values)
        if self.received.check_and_add(key, now):
            return Verdict("drop", DUPLICATE, "same frame again", values=values)
        try:  # a frame that decodes to an impossible reading (1.7e308 W, a counter backwards)
            self.guard.check(reading, host_now.timestamp())
        except Implausible as exc:
            return Verdict("bad", IMPLAUSIBLE, str(exc), values=values)
        return Verdict(
            "publish", reading=reading, live=frames.live_from_reading(reading), values=values
        )

    def _is_own(self, source: tuple[str, int], data: bytes, now: float) -> bool:
        """Our sending socket's address and port. When the kernel gave that socket no
        address (0.0.0.0, no route with a source), the port must match and the content
        must be a frame we sent, so another host's frame is never taken for ours."""
        if self.own_address is None or int(source[1]) != int(self.own_address[1]):
            return False
        if source[0] == self.own_address[0]:
            return True
        if self.own_address[0] != "0.0.0.0":
            return False
        try:
            values = frames.parse_frame(data, self.layout.key, self.max_frame_bytes)
        except frames.FrameError:
            return False
        return self.sent_values.seen(tuple(values), now)

    # -- MQTT -> legacy -------------------------------------------------------------
    def on_reading(self, reading: Mapping[str, Any], now: float) -> Verdict:
        if reading.get("source") == LEGACY:
            return Verdict("drop", LEGACY, "reading came from a legacy frame")
        try:
            values = frames.values_from_reading(reading, self.layout)
            frame = frames.encode_frame(values, self.layout.key)
        except frames.FrameError as exc:
            return Verdict("bad", exc.reason, str(exc))
        if self.sent_frames.check_and_add(frame, now):
            return Verdict("drop", DUPLICATE, "frame already sent", frame=frame, values=values)
        # remember the values as the receiving side will parse them
        self.sent_values.add(tuple(frames.parse_frame(frame, self.layout.key)), now)
        return Verdict("send", frame=frame, values=values)
