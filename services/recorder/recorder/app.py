"""Wires the recorder: MQTT subscriptions -> mapping -> pump -> InfluxDB, one writer thread."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from p1common.mqtt import BadPayload, decode_json_object
from p1common.payloads import Refused, check_kind
from p1common.plausibility import ReadingGuard
from p1common.service import ServiceRuntime, state_dir

from .diskbuffer import DiskBuffer
from .mapping import Mapper, MappingError
from .pump import Pump
from .settings import RecorderSettings
from .sink import InfluxSink

log = logging.getLogger("recorder")

# the contract's topics the recorder writes, as Topics leaves for every site
SITE_LEAVES = ("reading", "peak", "peak/quarter", "peak/month", "control")


class Recorder:
    def __init__(self, settings: RecorderSettings, runtime: ServiceRuntime) -> None:
        self.settings = settings
        self.runtime = runtime
        self.topics = runtime.topics
        self.mapper = Mapper(peak_every_s=settings.peak_every_s)
        self.guard = ReadingGuard(max_drift_s=runtime.settings.max_clock_drift_s)
        buffer_dir = Path(settings.buffer_dir) if settings.buffer_dir else (
            state_dir("recorder") / "buffer")
        self.buffer = DiskBuffer(buffer_dir, int(settings.buffer_max_mb * 1024 * 1024))
        self.sink = InfluxSink(settings.influx_url, settings.influx_token, settings.influx_org,
                               settings.influx_bucket, settings.timeout_s, settings.long_bucket)
        self.pump = Pump(self.sink, self.buffer, settings.batch_size, settings.flush_s,
                         settings.retry_max_s)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="recorder-writer", daemon=True)
        self.ignored_sites: set[str] = set()

    def subscriptions(self) -> list[str]:
        t = self.topics
        if not self.settings.sites:
            return [t.all_sites(leaf) for leaf in SITE_LEAVES] + [t.output_states()]
        subs: list[str] = []
        for site in self.settings.sites:
            subs += [t.reading(site), t.peak(site), t.peak_quarter(site), t.peak_month(site),
                     t.control(site), t.output_states(site)]
        return subs

    def start(self) -> None:
        for pattern in self.subscriptions():
            self.runtime.mqtt.subscribe(pattern, self.on_message, qos=1)
        log.info("recording %s into %s (org %s, bucket %s, quarters and months in %s, "
                 "a peak point every %d s)",
                 ", ".join(self.settings.sites) or "every site", self.settings.influx_url,
                 self.settings.influx_org, self.settings.influx_bucket, self.settings.long_bucket,
                 self.settings.peak_every_s)
        self._thread.start()

    def on_message(self, topic: str, payload: bytes) -> None:
        parsed = self.topics.parse(topic)
        if parsed is None or parsed.site is None:
            return
        if not self.settings.records_site(parsed.site):
            if parsed.site not in self.ignored_sites:
                self.ignored_sites.add(parsed.site)
                log.info("site %s belongs to another shard; not recorded here", parsed.site)
            return
        if not payload:  # a retained message being cleared
            return
        obj = decode_json_object(payload)
        if parsed.kind == "reading":
            self.guard.check(obj, time.time())  # Implausible: counted and logged, never written
        else:
            try:
                check_kind(parsed.kind, obj)
            except Refused as exc:
                raise BadPayload(str(exc)) from None
        try:
            points = self.mapper.points(parsed, obj)
        except MappingError as exc:
            raise BadPayload(str(exc)) from None
        self.pump.add([p.line() for p in points], time.monotonic())

    def _run(self) -> None:
        step = min(0.25, self.settings.flush_s)
        while not self._stop.wait(step):
            try:
                self.pump.tick(time.monotonic())
            except Exception:
                log.exception("writer step failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(self.settings.timeout_s * 3 + 5)
        self.pump.close(time.monotonic())
        self.sink.close()
        log.info("stopped: %d points written, %d on disk for later", self.pump.written,
                 len(self.buffer))
