"""Recorder settings: environment variables (12-factor), validated once at start.

The token is read from ``INFLUX_TOKEN`` or from the file named by
``INFLUX_TOKEN_FILE`` (a Docker/Kubernetes secret); it is never a CLI flag, so it
does not show in ``ps``.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from p1common.settings import Env, SettingsError, check_slug

from .mapping import PEAK_EVERY_S

_SHARD = re.compile(r"^(\d+)/(\d+)$")


@dataclass(frozen=True)
class RecorderSettings:
    influx_url: str = "http://127.0.0.1:8086"
    influx_token: str = ""
    influx_org: str = "p1"
    influx_bucket: str = "p1"
    influx_long_bucket: str = ""  # default: <influx_bucket>_long
    peak_every_s: int = PEAK_EVERY_S
    batch_size: int = 500
    flush_s: float = 5.0
    buffer_max_mb: float = 100.0
    buffer_dir: str | None = None  # default: <P1_STATE_DIR>/recorder/buffer
    retry_max_s: float = 30.0
    timeout_s: float = 10.0
    sites: tuple[str, ...] = ()  # empty: every site on the broker
    shard: tuple[int, int] = (0, 1)  # (index, count): record the sites whose hash % count == index

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RecorderSettings:
        env = Env(environ)
        token = env.opt("INFLUX_TOKEN") or ""
        token_file = env.opt("INFLUX_TOKEN_FILE")
        if token_file:
            if token:
                raise SettingsError("INFLUX_TOKEN_FILE: set either INFLUX_TOKEN or INFLUX_TOKEN_FILE")
            try:
                token = Path(token_file).read_text().strip()
            except OSError as exc:
                raise SettingsError(f"INFLUX_TOKEN_FILE: cannot read {token_file!r} ({exc})") from None
            if not token:
                raise SettingsError(f"INFLUX_TOKEN_FILE: {token_file!r} is empty")
        return cls(
            influx_url=check_url(env.str("INFLUX_URL", cls.influx_url), "INFLUX_URL"),
            influx_token=token,
            influx_org=env.str("INFLUX_ORG", cls.influx_org),
            influx_bucket=env.str("INFLUX_BUCKET", cls.influx_bucket),
            influx_long_bucket=env.str("INFLUX_LONG_BUCKET", ""),
            peak_every_s=env.int("RECORDER_PEAK_EVERY_S", cls.peak_every_s, lo=0, hi=3600),
            batch_size=env.int("RECORDER_BATCH_SIZE", cls.batch_size, lo=1, hi=100_000),
            flush_s=env.float("RECORDER_FLUSH_S", cls.flush_s, lo=0.05, hi=3600),
            buffer_max_mb=env.float("RECORDER_BUFFER_MAX_MB", cls.buffer_max_mb, lo=0.01, hi=1e6),
            buffer_dir=env.opt("RECORDER_BUFFER_DIR"),
            retry_max_s=env.float("RECORDER_RETRY_MAX_S", cls.retry_max_s, lo=0.1, hi=3600),
            timeout_s=env.float("RECORDER_TIMEOUT_S", cls.timeout_s, lo=0.1, hi=600),
            sites=parse_sites(env.str("RECORDER_SITES", ""), "RECORDER_SITES"),
            shard=parse_shard(env.str("RECORDER_SHARD", "0/1"), "RECORDER_SHARD"),
        )

    def with_overrides(self, **values: Any) -> RecorderSettings:
        return replace(self, **{k: v for k, v in values.items() if v is not None})

    @property
    def long_bucket(self) -> str:
        """The long-term bucket: quarter and month records (and the downsampled data)."""
        return self.influx_long_bucket or f"{self.influx_bucket}_long"

    def records_site(self, site: str) -> bool:
        if self.sites and site not in self.sites:
            return False
        return site_shard(site, self.shard[1]) == self.shard[0]


def check_url(value: str, name: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(f"{name}: {value!r} must be an http:// or https:// URL with a host")
    return value.rstrip("/")


def parse_sites(value: str, name: str) -> tuple[str, ...]:
    return tuple(check_slug(s.strip(), name) for s in value.split(",") if s.strip())


def parse_shard(value: str, name: str) -> tuple[int, int]:
    match = _SHARD.match(value.strip())
    if not match:
        raise SettingsError(f"{name}: {value!r} must be INDEX/COUNT, e.g. 0/1 or 2/4")
    index, count = int(match[1]), int(match[2])
    if count < 1 or index >= count:
        raise SettingsError(f"{name}: {value!r}: need COUNT >= 1 and 0 <= INDEX < COUNT")
    return index, count


def site_shard(site: str, count: int) -> int:
    """The shard a site belongs to: stable across hosts and Python runs (CRC-32, not hash())."""
    return zlib.crc32(site.encode()) % count
