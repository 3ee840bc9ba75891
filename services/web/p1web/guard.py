"""The door of the web service: what every request meets before the app sees it.

An ASGI middleware in front of the routes, in this order:

1. **Token of a write.** ``PUT``/``POST``/``PATCH``/``DELETE`` on ``/api/`` without the
   right ``Authorization: Bearer <token>`` is answered 401 from the headers alone: not one
   byte of its body is read. First, so a client without the token learns nothing else
   (not even the size limit) and costs the service nothing but the headers.
2. **Body size.** The same cap as the consumers of the documents
   (:data:`p1common.mqtt.MAX_JSON_BYTES`, 256 KiB): a ``Content-Length`` over it is
   answered 413 before reading; a body without one (chunked) is counted as it is read and
   refused at the first chunk that goes over, so at most the cap is ever held in memory.
   The rest of such a body is drained and dropped by the HTTP server, never kept.
3. **Security headers** on every response: ``X-Frame-Options: DENY``, a
   ``Content-Security-Policy`` that allows only the service's own scripts, styles and
   requests (the pages have no inline script or style), ``X-Content-Type-Options:
   nosniff``, ``Referrer-Policy: no-referrer``.

Its refusals are JSON (``{"detail": ...}``) like the app's.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.exceptions import HTTPException

from p1common.mqtt import MAX_JSON_BYTES

from .auth import bearer_ok

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_BODY_BYTES = MAX_JSON_BYTES
WRITE_METHODS = frozenset({"PUT", "POST", "PATCH", "DELETE"})
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
SECURITY_HEADERS: dict[str, str] = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
_RAW_HEADERS = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
NO_TOKEN = "writing needs the token: send 'Authorization: Bearer <token>'"
WRONG_TOKEN = "wrong token"


def too_large_detail(limit: int = MAX_BODY_BYTES) -> str:
    return f"request body over the {limit} byte limit (the size a document may have)"


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a body without Content-Length goes over the cap."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, too_large_detail(limit))


class Guard:
    def __init__(self, app: App, token: str, max_body: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.token = token
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                have = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []),
                                      *((k, v) for k, v in _RAW_HEADERS if k not in have)]
            await send(message)

        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        # 1. the token of a write, from the headers alone
        if scope["method"] in WRITE_METHODS and scope["path"].startswith("/api/"):
            given = headers.get(b"authorization", b"").decode("latin-1")
            scheme, _, value = given.partition(" ")
            if not bearer_ok(given, self.token):
                sent = scheme.lower() == "bearer" and value.strip()
                await _json(send_with_headers, 401, WRONG_TOKEN if sent else NO_TOKEN,
                            [(b"www-authenticate", b"Bearer")])
                return
        # 2. the size of the body: declared...
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                length = -1  # the HTTP server refuses a bad Content-Length before us
            if length > self.max_body:
                await _json(send_with_headers, 413, too_large_detail(self.max_body))
                return
        # ...or counted while it is read
        received = 0

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise BodyTooLarge(self.max_body)
            return message

        try:
            await self.app(scope, counted_receive, send_with_headers)
        except BodyTooLarge:
            if started:
                raise
            await _json(send_with_headers, 413, too_large_detail(self.max_body))


async def _json(send: Send, status: int, detail: str,
                extra: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()), *(extra or [])],
    })
    await send({"type": "http.response.body", "body": body})
