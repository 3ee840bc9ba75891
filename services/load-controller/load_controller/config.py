"""Settings (``LOADCTL_*`` environment variables, CLI flags override) and the outputs
configuration document (``p1/config/<site>/outputs``), validated with the contract's model."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from p1common.payloads import OutputConfig, OutputsConfig, field_name, outputs_problems
from p1common.settings import Env, SettingsError

from .control import Params


class ConfigError(ValueError):
    """An outputs document is not valid; the message names the field and says why."""


def parse_outputs(doc: Any) -> list[OutputConfig]:
    """Validate an outputs document; raise :class:`ConfigError` naming the field."""
    try:
        cfg = OutputsConfig.model_validate(doc, strict=True)  # JSON: "2400" is no number
    except ValidationError as exc:
        problems = []
        for err in exc.errors()[:5]:
            where = field_name(err.get("loc", ()), "document")
            got = err.get("input")
            # what was sent, shortened: the message is published in control and logged
            shown = "" if isinstance(got, (dict, list)) else f" (got {_short(got)})"
            problems.append(f"{where}: {err.get('msg')}{shown}")
        raise ConfigError("; ".join(problems)) from None
    together = outputs_problems(cfg)
    if together:
        raise ConfigError("; ".join(f"{field_name(loc, 'document')}: {msg}" for loc, msg, _ in together[:5]))
    return list(cfg.outputs)


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def load_outputs_file(path: str, name: str = "LOADCTL_CONFIG") -> list[OutputConfig]:
    try:
        doc = json.loads(Path(path).read_text())
    except OSError as exc:
        raise SettingsError(f"{name}: cannot read {path!r}: {exc.strerror}") from None
    except ValueError as exc:
        raise SettingsError(f"{name}: {path!r} is not JSON: {exc}") from None
    try:
        return parse_outputs(doc)
    except ConfigError as exc:
        raise SettingsError(f"{name}: {path!r}: {exc}") from None


@dataclass(frozen=True)
class LoadControllerSettings:
    config_file: str | None = None
    params: Params = field(default_factory=Params)
    speed: float = 1.0  # controller seconds per wall second (runs against meter-sim --speed)
    all_sites: bool = False  # serve every site (wildcard subscriptions) instead of P1_SITE
    shards: int = 1  # with all_sites: split the sites over this many processes...
    shard: int = 0  # ...this one serving the sites with crc32(site) % shards == shard

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None,
                 overrides: Mapping[str, Any] | None = None) -> LoadControllerSettings:
        """Environment first, then the non-None ``overrides`` (CLI flags)."""
        env = Env(environ)
        o = {k: v for k, v in (overrides or {}).items() if v is not None}
        d = Params()

        def num(key: str, var: str, default: float, lo: float, hi: float) -> float:
            if key in o:
                value = float(o[key])
                if not lo <= value <= hi:
                    raise SettingsError(f"--{key.replace('_', '-')}: {value} is not within {lo}..{hi}")
                return value
            return env.float(var, default, lo=lo, hi=hi)

        params = Params(
            ttl_s=num("ttl_s", "LOADCTL_TTL_S", d.ttl_s, 1, 3600),
            watchdog_s=num("watchdog_s", "LOADCTL_WATCHDOG_S", d.watchdog_s, 1, 3600),
            gain=num("gain", "LOADCTL_GAIN", d.gain, 0.05, 1.0),
            device_delay_s=num("device_delay_s", "LOADCTL_DEVICE_DELAY_S", d.device_delay_s, 0, 30),
            meter_lag_s=num("meter_lag_s", "LOADCTL_METER_LAG_S", d.meter_lag_s, 0, 30),
            meter_average_s=num("meter_average_s", "LOADCTL_METER_AVERAGE_S", d.meter_average_s,
                                0, 60),
            ramp_lead_s=num("ramp_lead_s", "LOADCTL_RAMP_LEAD_S", d.ramp_lead_s, 0, 10),
            confirm_timeout_s=num("confirm_timeout_s", "LOADCTL_CONFIRM_TIMEOUT_S",
                                  d.confirm_timeout_s, 0, 60),
            follow_timeout_s=num("follow_timeout_s", "LOADCTL_FOLLOW_TIMEOUT_S",
                                 d.follow_timeout_s, 1, 600),
            peak_max_age_s=num("peak_max_age_s", "LOADCTL_PEAK_MAX_AGE_S", d.peak_max_age_s, 1, 3600),
            deadband_w=num("deadband_w", "LOADCTL_DEADBAND_W", d.deadband_w, 0, 1000),
        )
        config_file = o.get("config_file") or env.opt("LOADCTL_CONFIG")
        speed = num("speed", "LOADCTL_SPEED", 1.0, 0.01, 1000)
        all_sites = bool(o["all_sites"]) if o.get("all_sites") else env.bool(
            "LOADCTL_ALL_SITES", False)
        if "shards" in o:
            shards = int(o["shards"])
            if not 1 <= shards <= 1024:
                raise SettingsError(f"--shards: {shards} is not within 1..1024")
        else:
            shards = env.int("LOADCTL_SHARDS", 1, lo=1, hi=1024)
        shard = int(o["shard"]) if "shard" in o else env.int("LOADCTL_SHARD", 0, lo=0)
        if not 0 <= shard < shards:
            raise SettingsError(f"LOADCTL_SHARD/--shard: {shard} must be in 0..{shards - 1}")
        if shards > 1 and not all_sites:
            raise SettingsError("LOADCTL_SHARDS/--shards: sharding needs LOADCTL_ALL_SITES=true "
                                "(--all-sites); a single-site process serves P1_SITE only")
        return cls(config_file=config_file, params=params, speed=speed, all_sites=all_sites,
                   shards=shards, shard=shard)
