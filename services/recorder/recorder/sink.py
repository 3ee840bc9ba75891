"""Writes line-protocol batches to InfluxDB 2 (``/api/v2/write``) with influxdb-client.

Every request is gzip-compressed (``Content-Encoding: gzip``: line protocol shrinks
about five times, which matters on a Pi's SD card and Wi-Fi) and uses precision
``s`` (the lines carry whole seconds: shorter lines, and InfluxDB stores seconds
more compactly than nanoseconds).

A batch is split by bucket: ``quarter`` and ``month`` lines go to the long-term
bucket (:data:`recorder.mapping.LONG_TERM`), everything else to the raw one.

One call, one answer: ``DELIVERED`` (stored), ``REJECTED`` (InfluxDB said the data
itself is bad: HTTP 400/422, e.g. a field type conflict; retrying cannot help, so
the batch is dropped and counted) or ``RETRY`` (anything else: no connection, a
timeout, 5xx, 401/403 while the token is being fixed, 404 while the bucket is
being created, 429: the batch stays queued). A batch that went to two buckets
answers with the worse of the two; writing the delivered half again on a retry
stores nothing twice (same measurement, tags and time).
"""

from __future__ import annotations

import enum
import logging
import re

from influxdb_client import InfluxDBClient, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException

from .mapping import LONG_TERM

log = logging.getLogger(__name__)

REJECT_STATUSES = frozenset({400, 422})

_MEASUREMENT = re.compile(r"^((?:[^\\, ]|\\.)*)")
_NS_DIGITS = 16  # seconds have 10 digits until the year 2286; nanoseconds since 1970-04-27, 16+


class Outcome(enum.Enum):
    DELIVERED = "delivered"
    REJECTED = "rejected"
    RETRY = "retry"


_WORST = {Outcome.DELIVERED: 0, Outcome.REJECTED: 1, Outcome.RETRY: 2}


def measurement_of(line: str) -> str:
    """The measurement of a line-protocol line (escapes kept)."""
    match = _MEASUREMENT.match(line)
    return match.group(1) if match else ""


def in_seconds(line: str) -> str:
    """A line with a nanosecond timestamp (the disk buffer of a recorder before 0.2 wrote
    those) rewritten to seconds; a line already in seconds is returned as it is."""
    head, sep, stamp = line.rpartition(" ")
    if sep and stamp.isdigit() and len(stamp) >= _NS_DIGITS:
        return f"{head} {int(stamp) // 1_000_000_000}"
    return line


class InfluxSink:
    def __init__(self, url: str, token: str, org: str, bucket: str, timeout_s: float,
                 long_bucket: str | None = None) -> None:
        self.url, self.org, self.bucket = url, org, bucket
        self.long_bucket = long_bucket or f"{bucket}_long"
        self._client = InfluxDBClient(url=url, token=token or "", org=org,
                                      timeout=int(timeout_s * 1000), retries=False,
                                      enable_gzip=True)
        self._write = self._client.write_api(write_options=SYNCHRONOUS)
        self.last_error: str | None = None

    def route(self, lines: list[str]) -> dict[str, list[str]]:
        """bucket -> its lines (in seconds), in the batch's order."""
        out: dict[str, list[str]] = {}
        for line in lines:
            bucket = self.long_bucket if measurement_of(line) in LONG_TERM else self.bucket
            out.setdefault(bucket, []).append(in_seconds(line))
        return out

    def write(self, lines: list[str]) -> Outcome:
        worst, errors = Outcome.DELIVERED, []
        for bucket, part in self.route(lines).items():
            outcome, error = self._write_one(bucket, part)
            if error:
                errors.append(f"{bucket}: {error}")
            if _WORST[outcome] > _WORST[worst]:
                worst = outcome
            if outcome is Outcome.RETRY:
                break  # InfluxDB is away: the whole batch waits
        self.last_error = "; ".join(errors) or None
        return worst

    def _write_one(self, bucket: str, lines: list[str]) -> tuple[Outcome, str | None]:
        try:
            self._write.write(bucket=bucket, org=self.org, record=lines,
                              write_precision=WritePrecision.S)  # type: ignore[arg-type]
        except ApiException as exc:
            error = f"HTTP {exc.status}: {(exc.body or exc.reason or '')!s:.300}"
            if exc.status in REJECT_STATUSES:
                return Outcome.REJECTED, error
            return Outcome.RETRY, error
        except Exception as exc:  # connection refused, timeout, DNS: InfluxDB is away
            return Outcome.RETRY, f"{type(exc).__name__}: {exc!s:.300}"
        return Outcome.DELIVERED, None

    def close(self) -> None:
        self._write.close()
        self._client.close()
