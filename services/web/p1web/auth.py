"""The write token: from the environment, a secret file, or generated once.

Order: ``P1_WEB_TOKEN``; else the first line of ``P1_WEB_TOKEN_FILE`` (a mounted
Kubernetes secret); else ``<state dir>/token`` written by an earlier start; else a
new random token is generated, stored there with mode 0600, and logged once so the
owner can copy it into the pages' login field.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
from pathlib import Path

from p1common.persist import atomic_write_bytes
from p1common.settings import SettingsError

log = logging.getLogger("web.auth")
TOKEN_FILE_NAME = "token"


def resolve_token(token: str | None, token_file: str | None, state: Path) -> tuple[str, str]:
    """Return ``(token, where it came from)``; generates and stores one when none is set."""
    if token:
        return token, "P1_WEB_TOKEN"
    if token_file:
        try:
            text = Path(token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SettingsError(f"P1_WEB_TOKEN_FILE: cannot read {token_file!r} ({exc})") from None
        first = text.splitlines()[0].strip() if text else ""
        if len(first) < 8:
            raise SettingsError(f"P1_WEB_TOKEN_FILE: {token_file!r} holds no token of 8+ characters")
        return first, f"P1_WEB_TOKEN_FILE ({token_file})"
    stored = state / TOKEN_FILE_NAME
    try:
        text = stored.read_text(encoding="utf-8").strip() if stored.exists() else ""
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"cannot read the stored token {stored}: {_reason(exc)}") from None
    if len(text) >= 8:
        return text, f"stored token {stored}"
    new = secrets.token_urlsafe(24)
    try:
        atomic_write_bytes(stored, new.encode() + b"\n", keep_backup=False)
        os.chmod(stored, 0o600)
    except OSError as exc:
        raise SettingsError(
            f"no P1_WEB_TOKEN or P1_WEB_TOKEN_FILE, and a new token cannot be stored in "
            f"{stored}: {_reason(exc)} (set one of them, or make {state} writable)") from None
    log.warning(
        "no P1_WEB_TOKEN set: generated a write token, stored in %s (mode 0600); "
        "it is shown this once: %s",
        stored,
        new,
    )
    return new, f"generated token {stored}"


def _reason(exc: Exception) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


def bearer_ok(header: str | None, token: str) -> bool:
    """True when ``Authorization: Bearer <token>`` matches (constant-time compare)."""
    if not header:
        return False
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(value.strip().encode(), token.encode())


def token_ok(value: str | None, token: str) -> bool:
    return bool(value) and hmac.compare_digest(str(value).encode(), token.encode())
