"""HomeWizard Wi-Fi P1 Meter (HWE-P1) as a source: poll the telegram of its local API.

From HomeWizard's API documentation (https://api-documentation.homewizard.com):
- v1 (docs/v1/telegram): ``GET http://<ip>/api/v1/telegram``, no authentication (the
  "Local API" switch in the HomeWizard Energy app must be on); the answer is the most
  recent valid telegram, ``Content-Type: text/plain``.
- v2 (docs/v2/telegram, docs/v2/authorization; P1 Meter firmware 6.00 and later):
  ``GET https://<ip>/api/telegram`` with ``Authorization: Bearer <token>`` and
  ``X-Api-Version: 2``; the token comes from ``POST /api/user`` after pressing the
  device's button. The device's certificate is not one a public CA signed (the docs'
  own examples use ``curl --insecure``); ``401`` with ``user:unauthorized`` for a bad
  token, ``503`` while the meter has given no telegram yet.
- Rate: HomeWizard advises not to ask more often than every 500 ms (support article
  "HomeWizard P1 meter local API"); DSMR 5 meters send a telegram every second, older
  ones every 10 s. A poll that returns the telegram of the previous poll is skipped.

Every telegram goes through :meth:`TelegramHandler.handle` (CRC, parse, plausibility,
publish, discovery, metrics); what is not one is a source error
(``p1_reader_source_errors_total{source="homewizard"}``).
"""

from __future__ import annotations

import http.client
import logging
import ssl
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from p1common.logs import RateLimitedLog
from p1common.settings import SettingsError

from .sources import SOURCE_ERRORS, NotATelegram, telegram_from_payload

if TYPE_CHECKING:
    from .service import TelegramHandler

log = logging.getLogger("p1-reader")

V1_PATH = "/api/v1/telegram"
V2_PATH = "/api/telegram"


@dataclass(frozen=True)
class HomeWizardTarget:
    scheme: str  # http (v1) | https (v2)
    host: str
    port: int
    path: str
    token: str | None

    @property
    def label(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}{self.path}"


def target_of(host: str, token: str | None) -> HomeWizardTarget:
    """``P1_HOMEWIZARD_HOST`` (an address, ``host:port`` or a URL) and the optional v2 token
    -> where and how to poll. With a token: v2 (HTTPS, /api/telegram), else v1."""
    text = host.strip()
    if not text:
        raise SettingsError("P1_HOMEWIZARD_HOST: required with P1_SOURCE=homewizard")
    parts = urlsplit(text if "://" in text else f"//{text}")
    if parts.scheme not in ("", "http", "https") or not parts.hostname or parts.path not in ("", "/"):
        raise SettingsError(f"P1_HOMEWIZARD_HOST: {host!r}: use the device's address "
                            "(192.168.1.30, host:port, http://... or https://...)")
    scheme = parts.scheme or ("https" if token else "http")
    if token and scheme != "https":
        raise SettingsError("P1_HOMEWIZARD_TOKEN: the v2 API (token) is HTTPS only; "
                            f"{host!r} says http")
    if scheme == "https" and not token:
        raise SettingsError("P1_HOMEWIZARD_TOKEN: required for the v2 API (https); "
                            "see docs/p1-reader.md for how to get one")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise SettingsError(f"P1_HOMEWIZARD_HOST: {host!r}: bad port") from None
    return HomeWizardTarget(scheme, parts.hostname, port, V2_PATH if token else V1_PATH, token)


class HomeWizardSource:
    name = "homewizard"

    def __init__(self, handler: TelegramHandler, target: HomeWizardTarget, interval_s: float = 1.0,
                 ca_file: str | None = None, timeout_s: float = 5.0,
                 max_backoff_s: float = 10.0) -> None:
        self.handler = handler
        self.target = target
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.max_backoff_s = max_backoff_s
        self.context: ssl.SSLContext | None = None
        if target.scheme == "https":
            self.context = ssl.create_default_context(cafile=ca_file)
            # the device's certificate names the device, not the address it is reached at
            self.context.check_hostname = False
            if not ca_file:  # as HomeWizard's own examples (curl --insecure)
                self.context.verify_mode = ssl.CERT_NONE
        self.conn: http.client.HTTPConnection | None = None
        self.last: bytes | None = None
        self.error_log = RateLimitedLog(log, period_s=60.0, burst=5)
        self.ca_file = ca_file

    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop``; on failure wait with a back-off (interval doubling to 10 s)."""
        log.info("polling the HomeWizard P1 Meter at %s every %.1f s%s", self.target.label,
                 self.interval_s, "" if self.target.scheme == "http" else (
                     f" (certificate checked against {self.ca_file})" if self.ca_file else
                     " (certificate not checked: set P1_HOMEWIZARD_CA_FILE to check it)"))
        wait = self.interval_s
        while not stop.wait(wait):
            ok = self.poll()
            wait = self.interval_s if ok else min(max(wait * 2, 0.5), self.max_backoff_s)
        self._close()

    def poll(self) -> bool:
        """One request; True when the device answered with a telegram (new or not)."""
        try:
            status, body = self._get()
        except (OSError, http.client.HTTPException) as exc:
            self._close()
            return self._error("connect", f"{self.target.label}: {exc or type(exc).__name__}")
        if status in (401, 403):
            return self._error("auth", f"{self.target.label} answered {status}: the token "
                                       "(P1_HOMEWIZARD_TOKEN) is not accepted")
        if status == 503:
            return self._error("no_telegram", f"{self.target.label} answered 503: the P1 Meter "
                                              "has no telegram from the meter (yet)")
        if status != 200:
            return self._error("status", f"{self.target.label} answered HTTP {status}")
        try:
            telegram = telegram_from_payload(body, self.handler.framer.max_bytes)
        except NotATelegram as exc:
            return self._error(exc.reason, f"{self.target.label}: {exc}")
        if telegram != self.last:  # the same telegram as at the previous poll: nothing new
            self.last = telegram  # (a refused one too: counted once, not at every poll)
            self.handler.handle(telegram)
        return True

    def _get(self) -> tuple[int, bytes]:
        if self.conn is None:
            t = self.target
            self.conn = (http.client.HTTPSConnection(t.host, t.port, timeout=self.timeout_s,
                                                     context=self.context)
                         if t.scheme == "https" else
                         http.client.HTTPConnection(t.host, t.port, timeout=self.timeout_s))
        headers = {"Accept": "text/plain"}
        if self.target.token:
            headers["Authorization"] = f"Bearer {self.target.token}"
            headers["X-Api-Version"] = "2"
        self.conn.request("GET", self.target.path, headers=headers)
        response = self.conn.getresponse()
        body = response.read(self.handler.framer.max_bytes + 1)
        if response.will_close or not response.isclosed():
            self._close()  # the device closes, or sent more than a telegram: start afresh
        return response.status, body

    def _error(self, reason: str, message: str) -> bool:
        SOURCE_ERRORS.labels(self.name, reason).inc()
        self.error_log.warning("HomeWizard: %s", message)
        return False

    def _close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
