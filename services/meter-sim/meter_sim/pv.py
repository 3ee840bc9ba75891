"""PV production: clear-sky sun on a tilted array, times a passing-cloud process.

Own solar geometry (NOAA-style declination, equation of time, hour angle) and a
simple clear-sky model (Meinel direct beam with the Kasten-Young air mass, 10 %
diffuse), so no pvlib dependency: at 51 N a clear June noon gives about 0.86 kW
per kWp on a south roof at 35 degrees, a clear January noon about 0.45 kW/kWp,
which is what Belgian installations report. Clouds: each day draws a type
(clear, mixed, overcast; by season) and a sequence of cloud passages with
ramped edges and a short over-irradiance just after a cloud, deterministic per
(seed, date). A day is indexed by UTC seconds since UTC midnight.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime

DAY_S = 86400


@dataclass(frozen=True)
class PvConfig:
    kwp: float = 5.0
    lat: float = 51.0
    lon: float = 4.4
    tilt_deg: float = 35.0
    azimuth_deg: float = 180.0  # south
    losses: float = 0.14  # wiring, inverter, temperature, soiling
    inverter_w: float | None = None  # AC limit; default kWp x 1000
    phases: int = 3  # 3 = balanced three-phase inverter, 1 = on L1


def sun_position(t: float, lat: float, lon: float) -> tuple[float, float]:
    """(zenith, azimuth) in radians for UTC seconds ``t``; azimuth from north, clockwise."""
    dt = datetime.fromtimestamp(t, UTC)
    doy = dt.timetuple().tm_yday
    hours = dt.hour + dt.minute / 60 + dt.second / 3600
    g = 2 * math.pi / 365 * (doy - 1 + (hours - 12) / 24)
    eot = 229.18 * (0.000075 + 0.001868 * math.cos(g) - 0.032077 * math.sin(g)
                    - 0.014615 * math.cos(2 * g) - 0.040849 * math.sin(2 * g))
    decl = (0.006918 - 0.399912 * math.cos(g) + 0.070257 * math.sin(g)
            - 0.006758 * math.cos(2 * g) + 0.000907 * math.sin(2 * g)
            - 0.002697 * math.cos(3 * g) + 0.00148 * math.sin(3 * g))
    solar_min = hours * 60 + eot + 4 * lon
    ha = math.radians(solar_min / 4 - 180)
    phi = math.radians(lat)
    cos_z = math.sin(phi) * math.sin(decl) + math.cos(phi) * math.cos(decl) * math.cos(ha)
    cos_z = max(-1.0, min(1.0, cos_z))
    zen = math.acos(cos_z)
    sin_z = math.sin(zen)
    if sin_z < 1e-9:
        return zen, math.pi
    cos_az = (math.sin(decl) - math.sin(phi) * cos_z) / (math.cos(phi) * sin_z)
    az = math.acos(max(-1.0, min(1.0, cos_az)))
    if ha > 0:
        az = 2 * math.pi - az
    return zen, az


def clear_sky_w(cfg: PvConfig, t: float) -> float:
    """AC power of the array under a clear sky at UTC seconds ``t``."""
    zen, az = sun_position(t, cfg.lat, cfg.lon)
    zen_deg = math.degrees(zen)
    if zen_deg >= 90:
        return 0.0
    # float ** float is typed Any (a negative base gives a complex): both bases are positive
    air_mass: float = 1 / (math.cos(zen) + 0.50572 * (96.07995 - zen_deg) ** -1.6364)
    dni: float = 1353 * 0.7 ** (air_mass**0.678)
    dhi = 0.1 * dni
    ghi = dni * math.cos(zen) + dhi
    tilt = math.radians(cfg.tilt_deg)
    cos_inc = math.cos(zen) * math.cos(tilt) + math.sin(zen) * math.sin(tilt) * math.cos(
        az - math.radians(cfg.azimuth_deg)
    )
    poa = dni * max(0.0, cos_inc) + dhi * (1 + math.cos(tilt)) / 2 + ghi * 0.2 * (1 - math.cos(tilt)) / 2
    power = cfg.kwp * poa * (1 - cfg.losses)
    limit = cfg.inverter_w if cfg.inverter_w is not None else cfg.kwp * 1000
    return min(power, limit)


def clear_sky_day(cfg: PvConfig, day: date) -> list[float]:
    """Clear-sky power per UTC second of ``day`` (computed per minute, interpolated)."""
    t0 = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
    per_min = [clear_sky_w(cfg, t0 + m * 60) for m in range(1441)]
    out = [0.0] * DAY_S
    for m in range(1440):
        a, b = per_min[m], per_min[m + 1]
        if a == 0.0 and b == 0.0:
            continue
        step = (b - a) / 60
        base = m * 60
        for s in range(60):
            out[base + s] = a + step * s
    return out


def cloud_day(seed: int, day: date) -> tuple[str, list[float]]:
    """(day type, transmission factor per UTC second)."""
    r = random.Random(f"{seed}:{day.isoformat()}:clouds")
    doy = day.timetuple().tm_yday
    summer = 0.5 - 0.5 * math.cos(2 * math.pi * (doy - 20) / 365.25)  # 0 Jan .. 1 Jul
    u = r.random()
    p_clear = 0.12 + 0.18 * summer
    p_overcast = 0.45 - 0.25 * summer
    if u < p_clear:
        kind, cover, dark = "clear", 0.05, (0.6, 0.85)
    elif u < p_clear + p_overcast:
        kind, cover, dark = "overcast", 0.0, (0.15, 0.35)
    else:
        kind, cover, dark = "mixed", r.uniform(0.3, 0.7), (0.2, 0.5)
    out = [1.0] * DAY_S
    if kind == "overcast":
        level = r.uniform(*dark)
        for m in range(1440):
            level = min(dark[1], max(dark[0] * 0.7, level + r.gauss(0, 0.02)))
            for s in range(m * 60, m * 60 + 60):
                out[s] = level
        return kind, out
    t = r.uniform(0, 600)
    mean_cloud_s = 180.0
    mean_gap_s = mean_cloud_s * (1 - cover) / max(cover, 0.02)
    while t < DAY_S:
        dur = r.expovariate(1 / mean_cloud_s) + 20
        depth = r.uniform(*dark)
        ramp = r.uniform(10, 40)
        a, b = int(t), min(DAY_S, int(t + dur))
        for s in range(a, b):
            x = min(s - a, b - s) / ramp
            out[s] = 1.0 - (1.0 - depth) * min(1.0, x)
        for s in range(b, min(DAY_S, b + 30)):  # edge-of-cloud enhancement
            out[s] = max(out[s], 1.08)
        t = b + r.expovariate(1 / mean_gap_s) + 10
    return kind, out

