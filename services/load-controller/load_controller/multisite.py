"""Every site (or one shard of the sites) from one process: ``load-controller --all-sites``.

Wildcard subscriptions in; each message is routed by the site in its topic to that
site's :class:`~load_controller.service.LoadControllerService` (the same per-site code
path as single-site mode, created without its own subscriptions). A site's controller
is created at its first live reading or its first outputs config; the 1 s tick runs
every site's watchdog.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from p1common.payloads import OutputConfig
from p1common.service import ServiceRuntime
from p1common.topics import shard_of

from .control import Params
from .service import LoadControllerService

log = logging.getLogger("load-controller")


# QoS 1 messages in flight at once: 0 = no limit. One process sends a QoS 1 set per
# output per reading for every site (~2000/s for 2000 sites). With paho's default of 20
# the rate is capped at 20 per broker round trip, and paho (2.x) scans its whole queue of
# outgoing messages on every PUBACK while a limit is set: once a backlog forms, each ack
# costs O(backlog) and the process falls further behind (measured: 250-1300 sets/s of
# 2000 with a limit, 2000 without)
MAX_INFLIGHT = 0


class MultiSiteService:
    def __init__(self, runtime: ServiceRuntime, params: Params,
                 outputs: list[OutputConfig] | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 shards: int = 1, shard: int = 0) -> None:
        if shards < 1 or not 0 <= shard < shards:
            raise ValueError(f"shard {shard} must be in 0..{shards - 1}")
        self.rt = runtime
        self.params = params
        self.default_outputs = list(outputs or [])
        self.clock = clock
        self.shards = shards
        self.shard = shard
        self.topics = runtime.topics
        self.sites: dict[str, LoadControllerService] = {}
        self._lock = threading.Lock()  # guards self.sites (handlers vs the tick thread)
        t = self.topics
        m = runtime.mqtt
        m.set_max_inflight(MAX_INFLIGHT)
        m.subscribe(t.configs(), self._on_config, qos=1)
        # as in single-site mode: a retained reading is no sign of a live meter
        m.subscribe(t.all_sites("reading"), self._on_reading, skip_retained=True)
        m.subscribe(t.all_sites("peak"), self._on_peak)
        m.subscribe(t.output_states(), self._on_state, qos=1)

    @property
    def readings_handled(self) -> int:
        with self._lock:
            return sum(s.readings_handled for s in self.sites.values())

    def mine(self, site: str) -> bool:
        return self.shards <= 1 or shard_of(site, self.shards) == self.shard

    def _site(self, topic: str, kind: str, create: bool) -> LoadControllerService | None:
        parsed = self.topics.parse(topic)
        if parsed is None or parsed.kind != kind or parsed.site is None:
            return None
        if kind == "config/outputs" and parsed.ident is not None:
            return None
        site = parsed.site
        with self._lock:
            svc = self.sites.get(site)
            if svc is not None or not create or not self.mine(site):
                return svc
            svc = LoadControllerService(self.rt, site, self.params, self.default_outputs,
                                        clock=self.clock, subscribe=False)
            self.sites[site] = svc
            n = len(self.sites)
        log.info("site %s: new (%d site(s) served)", site, n)
        return svc

    # -- inbound: routed to the site's own handlers -------------------------------------
    def _on_config(self, topic: str, payload: bytes) -> None:
        svc = self._site(topic, "config/outputs", create=True)
        if svc is not None:
            svc._on_config(topic, payload)

    def _on_reading(self, topic: str, payload: bytes) -> None:
        if not payload:
            return  # a retained reading being cleared: no site to create
        svc = self._site(topic, "reading", create=True)
        if svc is not None:
            svc._on_reading(topic, payload)

    def _on_peak(self, topic: str, payload: bytes) -> None:
        svc = self._site(topic, "peak", create=False)
        if svc is not None:
            svc._on_peak(topic, payload)

    def _on_state(self, topic: str, payload: bytes) -> None:
        svc = self._site(topic, "output/state", create=False)
        if svc is not None:
            svc._on_state(topic, payload)

    # -- timer -------------------------------------------------------------------------
    def tick(self) -> None:
        """Every site's watchdog."""
        with self._lock:
            sites = list(self.sites.values())
        for svc in sites:
            svc.tick()
