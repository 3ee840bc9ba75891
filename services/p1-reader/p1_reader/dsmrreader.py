"""Forward telegrams to a dsmr-reader instance's remote datalogger API (``P1_DSMRREADER_URL``).

dsmr-reader's documentation (docs/api.rst, "[API v1] Remote datalogger",
https://dsmr-reader.readthedocs.io/en/latest/api.html):
- ``POST /api/v1/datalogger/dsmrreading``, form-encoded, one parameter ``telegram``: "the
  raw telegram string containing all linefeeds \\n, and carriage returns \\r, as well";
- header ``Authorization: Token <API key>`` (since dsmr-reader v2.1.0; ``X-AUTHKEY`` before);
  the API has to be enabled in dsmr-reader's settings, which show the key;
- ``HTTP 201`` with an empty body on success (since v1.6), any other status is a failure.

Every Nth accepted telegram (``P1_DSMRREADER_EVERY``) is queued; a thread posts them in
order over one kept-alive connection. The reader is never slowed: :meth:`offer` only
appends to a bounded queue. While dsmr-reader is down or answers 5xx the telegram stays
queued and is retried with a back-off (1 s doubling to 30 s); when the queue is full the
oldest telegram is dropped and counted. A 4xx answer (a wrong key, a telegram dsmr-reader
refuses) is not retried: counted, logged, dropped.
"""

from __future__ import annotations

import http.client
import logging
import ssl
import threading
from collections import deque
from urllib.parse import urlencode, urlsplit

from prometheus_client import Counter

from p1common.logs import RateLimitedLog
from p1common.settings import SettingsError

log = logging.getLogger("p1-reader")

DATALOGGER_PATH = "/api/v1/datalogger/dsmrreading"

DSMRREADER_POSTS = Counter("p1_reader_dsmrreader_posts_total",
                           "telegrams posted to dsmr-reader's datalogger API, by result "
                           "(ok: 201; retry: connection or 5xx, posted again; refused: 4xx, dropped)",
                           ["result"])
DSMRREADER_DROPPED = Counter("p1_reader_dsmrreader_dropped_total",
                             "telegrams for dsmr-reader dropped: the queue was full (it was down too long)")


def datalogger_url(url: str) -> tuple[str, str, int, str]:
    """``P1_DSMRREADER_URL`` (dsmr-reader's base URL, or the full datalogger URL) ->
    (scheme, host, port, path)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(f"P1_DSMRREADER_URL: {url!r}: use http(s)://host[:port][/prefix]")
    path = parts.path.rstrip("/")
    if not path.endswith(DATALOGGER_PATH):
        path += DATALOGGER_PATH
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise SettingsError(f"P1_DSMRREADER_URL: {url!r}: bad port") from None
    return parts.scheme, parts.hostname, port, path


class DsmrReaderForwarder:
    def __init__(self, url: str, api_key: str, every: int = 1, queue_max: int = 600,
                 timeout_s: float = 10.0, max_backoff_s: float = 30.0) -> None:
        if not api_key:
            raise SettingsError("P1_DSMRREADER_API_KEY: required with P1_DSMRREADER_URL "
                                "(dsmr-reader's API settings show the key)")
        self.scheme, self.host, self.port, self.path = datalogger_url(url)
        self.label = f"{self.scheme}://{self.host}:{self.port}{self.path}"
        self.api_key = api_key
        self.every = every
        self.timeout_s = timeout_s
        self.max_backoff_s = max_backoff_s
        self.queue: deque[bytes] = deque()
        self.queue_max = queue_max
        self.accepted = 0
        self._cond = threading.Condition()
        self._stopping = False
        self._conn: http.client.HTTPConnection | None = None
        self._log = RateLimitedLog(log, period_s=60.0, burst=5)
        self._thread = threading.Thread(target=self._loop, daemon=True, name="dsmr-reader")

    def start(self) -> None:
        self._thread.start()
        log.info("forwarding every %s accepted telegram to dsmr-reader at %s",
                 "" if self.every == 1 else f"{self.every}th", self.label)

    def offer(self, telegram: bytes) -> None:
        """Queue every Nth accepted telegram; never blocks on dsmr-reader."""
        self.accepted += 1
        if (self.accepted - 1) % self.every:
            return
        with self._cond:
            if len(self.queue) >= self.queue_max:
                self.queue.popleft()
                DSMRREADER_DROPPED.inc()
                self._log.warning("dsmr-reader: queue full (%d telegrams): dropped the oldest",
                                  self.queue_max)
            self.queue.append(telegram)
            self._cond.notify()

    def close(self, drain_s: float = 5.0) -> None:
        """Post what is queued (at most ``drain_s`` seconds), then stop."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join(drain_s)
        if self.queue:
            log.warning("dsmr-reader: %d telegrams not posted at stop", len(self.queue))

    # -- the posting thread -------------------------------------------------------------------
    def _loop(self) -> None:
        backoff = 1.0
        while True:
            with self._cond:
                while not self.queue and not self._stopping:
                    self._cond.wait()
                if not self.queue:
                    break
                telegram = self.queue[0]
            result = self._post(telegram)
            DSMRREADER_POSTS.labels(result).inc()
            if result == "retry":
                with self._cond:
                    if self._stopping:
                        break
                    self._cond.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff_s)
                continue
            backoff = 1.0
            with self._cond:
                if self.queue and self.queue[0] is telegram:
                    self.queue.popleft()
        self._close()

    def _post(self, telegram: bytes) -> str:
        body = urlencode({"telegram": telegram.decode("ascii", errors="replace")}).encode()
        headers = {"Authorization": f"Token {self.api_key}",
                   "Content-Type": "application/x-www-form-urlencoded"}
        reused = self._conn is not None
        try:
            try:
                response, answer = self._request(body, headers)
            except (OSError, http.client.HTTPException):
                if not reused:
                    raise
                self._close()  # the kept-alive connection had been closed: once more, afresh
                response, answer = self._request(body, headers)
        except (OSError, http.client.HTTPException) as exc:
            self._close()
            self._log.warning("dsmr-reader at %s: %s; retrying", self.label,
                              exc or type(exc).__name__)
            return "retry"
        if response.status == 201:
            return "ok"
        if response.status >= 500:
            self._log.warning("dsmr-reader at %s answered %d; retrying", self.label, response.status)
            return "retry"
        self._log.warning("dsmr-reader at %s refused a telegram: HTTP %d %s%s", self.label,
                          response.status, answer[:200].decode(errors="replace"),
                          " (check P1_DSMRREADER_API_KEY)" if response.status in (401, 403) else "")
        return "refused"

    def _request(self, body: bytes, headers: dict[str, str]) -> tuple[http.client.HTTPResponse, bytes]:
        conn = self._connection()
        conn.request("POST", self.path, body=body, headers=headers)
        response = conn.getresponse()
        answer = response.read(2048)
        if response.will_close or not response.isclosed():
            self._close()
        return response, answer

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            self._conn = (http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout_s,
                                                      context=ssl.create_default_context())
                          if self.scheme == "https" else
                          http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s))
        return self._conn

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
