"""Settings of the web service (``P1_WEB_*``), read once at start.

A bad value stops the service with a message naming the variable, like the
shared settings of :mod:`p1common.settings`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from p1common.settings import Env, SettingsError


@dataclass(frozen=True)
class WebSettings:
    host: str = "0.0.0.0"
    port: int = 8080
    token: str | None = None  # P1_WEB_TOKEN (wins over the file)
    token_file: str | None = None  # P1_WEB_TOKEN_FILE, e.g. a mounted k8s secret
    protect_reads: bool = False  # P1_WEB_PROTECT_READS
    quarters_kept: int = 96  # closed quarters kept for the chart (a day)
    seed_outputs: str | None = None  # P1_WEB_SEED_OUTPUTS: outputs document stored when none is

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WebSettings:
        env = Env(environ)
        token = env.opt("P1_WEB_TOKEN")
        if token is not None and len(token.strip()) < 8:
            raise SettingsError("P1_WEB_TOKEN: use at least 8 characters")
        return cls(
            host=env.str("P1_WEB_HOST", "0.0.0.0"),
            port=env.int("P1_WEB_PORT", 8080, lo=0, hi=65535),
            token=token.strip() if token else None,
            token_file=env.opt("P1_WEB_TOKEN_FILE"),
            protect_reads=env.bool("P1_WEB_PROTECT_READS", False),
            quarters_kept=env.int("P1_WEB_QUARTERS_KEPT", 96, lo=1, hi=3000),
            seed_outputs=env.opt("P1_WEB_SEED_OUTPUTS"),
        )
