"""Writes line-protocol batches to InfluxDB 2 (``/api/v2/write``) with influxdb-client.

One call, one answer: ``DELIVERED`` (stored), ``REJECTED`` (InfluxDB said the data
itself is bad: HTTP 400/422, e.g. a field type conflict; retrying cannot help, so
the batch is dropped and counted) or ``RETRY`` (anything else: no connection, a
timeout, 5xx, 401/403 while the token is being fixed, 404 while the bucket is
being created, 429: the batch stays queued).
"""

from __future__ import annotations

import enum
import logging

from influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException

log = logging.getLogger(__name__)

REJECT_STATUSES = frozenset({400, 422})


class Outcome(enum.Enum):
    DELIVERED = "delivered"
    REJECTED = "rejected"
    RETRY = "retry"


class InfluxSink:
    def __init__(self, url: str, token: str, org: str, bucket: str, timeout_s: float) -> None:
        self.url, self.org, self.bucket = url, org, bucket
        self._client = InfluxDBClient(url=url, token=token or "", org=org,
                                      timeout=int(timeout_s * 1000), retries=False)
        self._write = self._client.write_api(write_options=SYNCHRONOUS)
        self.last_error: str | None = None

    def write(self, lines: list[str]) -> Outcome:
        try:
            self._write.write(bucket=self.bucket, org=self.org, record=lines)
        except ApiException as exc:
            self.last_error = f"HTTP {exc.status}: {(exc.body or exc.reason or '')!s:.300}"
            if exc.status in REJECT_STATUSES:
                return Outcome.REJECTED
            return Outcome.RETRY
        except Exception as exc:  # connection refused, timeout, DNS: InfluxDB is away
            self.last_error = f"{type(exc).__name__}: {exc!s:.300}"
            return Outcome.RETRY
        self.last_error = None
        return Outcome.DELIVERED

    def close(self) -> None:
        self._write.close()
        self._client.close()
