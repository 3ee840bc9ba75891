"""Household load at 1 s resolution: base load, cold appliances, appliance events.

Our own bottom-up model (not CREST/richardsonpy): every appliance is a small
generator of power steps at 1 s resolution, drawn from a random generator seeded
with (seed, date, appliance), so a day is the same whatever day was simulated
before it, and a run can start anywhere. It aims at what the capacity tariff is
about: the few minutes in a day when several heavy loads overlap (kettle during
cooking, an oven heating up while a washing machine heats its water). Tuned so a
3-4 person house without a heat pump reaches winter month peaks of about 3-5 kW.

A day is indexed by local wall-clock seconds (0..86399): the repeated DST hour
replays the same hour, the skipped one is skipped, like people do.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import date

DAY_S = 86400


@dataclass(frozen=True)
class HouseConfig:
    persons: int = 4
    base_w: float = 120.0  # standby: router, boiler pumps, chargers, ...
    heat_pump_w: float = 0.0  # electric power of an air/water heat pump; 0 = gas heating
    gas: bool = True  # gas meter on M-Bus channel 1 (heating and hot water when no heat pump)
    water: bool = True  # water meter on M-Bus channel 2


@dataclass
class Tap:
    """A hot-water draw: mixed water at ``mix_c`` at ``flow_lps`` litres per second."""

    start_s: int
    duration_s: int
    flow_lps: float
    mix_c: float = 40.0


@dataclass
class DayProfile:
    """One local day of the household: W per phase per second, gas and water per minute."""

    day: date
    phases: tuple[list[int], list[int], list[int]]
    gas_m3_per_min: list[float]
    water_l_per_min: list[float]
    taps: list[Tap] = field(default_factory=list)
    outdoor_c: float = 10.0


def outdoor_temp_c(day: date, seed: int) -> float:
    """Daily mean outdoor temperature for Brussels: 3.5 C in January, 18.5 C in July, +- weather."""
    doy = day.timetuple().tm_yday
    rng = random.Random(f"{seed}:{day.isoformat()}:temp")
    return 11.0 - 7.5 * math.cos(2 * math.pi * (doy - 20) / 365.25) + rng.gauss(0.0, 2.5)


class _Builder:
    def __init__(self, day: date) -> None:
        self.day = day
        self.p: tuple[list[int], list[int], list[int]] = ([0] * DAY_S, [0] * DAY_S, [0] * DAY_S)
        self.gas = [0.0] * 1440
        self.water = [0.0] * 1440
        self.taps: list[Tap] = []

    def add(self, phase: int, start: float, duration: float, watts: float) -> None:
        a = max(0, int(start))
        b = min(DAY_S, int(start + duration))
        if b <= a or watts == 0:
            return
        arr = self.p[phase]
        w = round(watts)
        for i in range(a, b):
            arr[i] += w

    def add3(self, start: float, duration: float, watts: float) -> None:
        for ph in range(3):
            self.add(ph, start, duration, watts / 3)

    def add_water(self, start: float, litres: float, duration_s: float = 60.0) -> None:
        minutes = max(1, round(duration_s / 60))
        for k in range(minutes):
            m = int(start // 60) + k
            if 0 <= m < 1440:
                self.water[m] += litres / minutes


def _t(rng: random.Random, hour: float, sd_min: float) -> float:
    """A time of day (s) around ``hour`` with a spread of ``sd_min`` minutes."""
    return min(DAY_S - 1.0, max(0.0, hour * 3600 + rng.gauss(0.0, sd_min * 60)))


def day_profile(cfg: HouseConfig, seed: int, day: date) -> DayProfile:
    b = _Builder(day)
    weekend = day.weekday() >= 5
    temp = outdoor_temp_c(day, seed)
    winter = max(0.0, min(1.0, (14.0 - temp) / 12.0))  # 0 summer .. 1 cold winter

    def rng(name: str) -> random.Random:
        return random.Random(f"{seed}:{day.isoformat()}:{name}")

    _base(b, cfg, rng("base"))
    _cold(b, rng("fridge"), phase=0, on_w=95, on_min=(12, 22), off_min=(25, 45))
    _cold(b, rng("freezer"), phase=1, on_w=80, on_min=(15, 25), off_min=(35, 60))
    _lights(b, rng("lights"), winter, weekend)
    _kitchen(b, cfg, rng("kitchen"), weekend, winter)
    _laundry(b, cfg, rng("laundry"), weekend, winter)
    _dishwasher(b, cfg, rng("dishwasher"))
    _small(b, cfg, rng("small"), weekend)
    _people_water(b, cfg, rng("water"), weekend)
    if cfg.heat_pump_w > 0:
        _heat_pump(b, cfg, rng("heatpump"), temp)
    elif cfg.gas:
        _gas_heating(b, rng("gas"), temp)
    return DayProfile(day, b.p, b.gas, b.water, sorted(b.taps, key=lambda t: t.start_s), temp)


def _base(b: _Builder, cfg: HouseConfig, r: random.Random) -> None:
    """Standby load with a slow random walk, split over the phases."""
    level = cfg.base_w
    shares = (0.45, 0.30, 0.25)
    for minute in range(1440):
        level += r.gauss(0.0, 4.0)
        level = min(cfg.base_w * 1.5, max(cfg.base_w * 0.7, level))
        for ph in range(3):
            b.add(ph, minute * 60, 60, level * shares[ph])


def _cold(b: _Builder, r: random.Random, phase: int, on_w: float,
          on_min: tuple[int, int], off_min: tuple[int, int]) -> None:
    """Compressor cycles with a short inrush at each start."""
    t = -r.uniform(0, (on_min[1] + off_min[1]) * 60)
    while t < DAY_S:
        on = r.uniform(*on_min) * 60
        b.add(phase, t, 2, 450)
        b.add(phase, t + 2, on - 2, on_w)
        t += on + r.uniform(*off_min) * 60


def _lights(b: _Builder, r: random.Random, winter: float, weekend: bool) -> None:
    dusk = 17.0 + 4.5 * (1 - winter) + r.gauss(0, 0.3)
    bed = 23.0 + r.gauss(0, 0.4) + (0.5 if weekend else 0.0)
    t = dusk * 3600
    while t < bed * 3600:
        seg = r.uniform(5, 25) * 60
        b.add(r.randrange(3), t, seg, r.uniform(40, 180))
        b.add(0, t, seg, 70)  # TV, computers
        t += seg
    if winter > 0.3 and not weekend:
        b.add(1, _t(r, 6.6, 10), r.uniform(40, 80) * 60, r.uniform(80, 200))


def _kitchen(b: _Builder, cfg: HouseConfig, r: random.Random, weekend: bool, winter: float) -> None:
    # kettle: 2-3 kW, a few minutes, a few times a day
    for hour in (7.0, 10.5, 13.0, 16.0, 19.5, 21.0)[: 2 + min(4, cfg.persons)]:
        if r.random() < 0.75:
            b.add(1, _t(r, hour, 25), r.uniform(100, 240), r.uniform(2000, 2900))
    # breakfast: toaster / microwave
    if r.random() < 0.6:
        b.add(2, _t(r, 7.5 if not weekend else 9.0, 20), r.uniform(120, 200), 900)
    if r.random() < 0.5:
        b.add(0, _t(r, 12.5, 40), r.uniform(60, 240), 1250)
    # dinner on an induction hob: zones switching levels
    start = _t(r, 18.0 if not weekend else 18.5, 30)
    length = r.uniform(20, 50) * 60
    t = start
    while t < start + length:
        seg = r.uniform(30, 180)
        b.add(2, t, seg, r.choice((600, 1200, 1200, 1200, 1800, 1800, 2400)))
        t += seg
    # oven: heat-up, then its thermostat cycling
    if r.random() < (0.55 if weekend else 0.3) + 0.15 * winter:
        t = start - r.uniform(10, 30) * 60
        heat = r.uniform(8, 13) * 60
        b.add(0, t, heat, 2500)
        t += heat
        end = t + r.uniform(25, 55) * 60
        while t < end:
            on = r.uniform(40, 90)
            b.add(0, t, on, 2500)
            t += on + r.uniform(60, 130)


def _laundry(b: _Builder, cfg: HouseConfig, r: random.Random, weekend: bool, winter: float) -> None:
    runs = 1 if r.random() < min(0.95, 0.15 * cfg.persons + (0.25 if weekend else 0)) else 0
    if runs and r.random() < 0.25 * (cfg.persons / 4):
        runs = 2
    t = _t(r, 10.0 if weekend else r.choice((8.5, 13.0, 20.0)), 60)
    for _ in range(runs):
        b.add(0, t, 180, 40)  # fill
        heat = r.uniform(10, 20) * 60
        b.add(0, t + 180, heat, 2050)
        wash = r.uniform(45, 70) * 60
        tt = t + 180 + heat
        while tt < t + 180 + heat + wash:
            seg = r.uniform(20, 60)
            b.add(0, tt, seg, r.uniform(120, 320))
            tt += seg + r.uniform(5, 20)
        b.add(0, tt, r.uniform(6, 12) * 60, 550)  # spin
        b.add_water(t, 50, 600)
        end = tt + 12 * 60
        # tumble dryer after the wash, more in winter
        if r.random() < 0.15 + 0.35 * winter:
            dry = r.uniform(60, 100) * 60
            d = end + r.uniform(2, 30) * 60
            stop = d + dry
            while d < stop:
                on = r.uniform(300, 600)
                b.add(1, d, on, 2100)
                b.add(1, d + on, 60, 250)
                d += on + 60
        t = end + r.uniform(10, 90) * 60


def _dishwasher(b: _Builder, cfg: HouseConfig, r: random.Random) -> None:
    if r.random() > min(0.95, 0.2 * cfg.persons):
        return
    t = _t(r, 20.5, 45)
    b.add(2, t, 300, 60)
    b.add(2, t + 300, r.uniform(12, 18) * 60, 2000)
    t += 300 + 18 * 60
    b.add(2, t, 30 * 60, 90)
    t += 30 * 60
    b.add(2, t, r.uniform(8, 12) * 60, 2000)
    b.add(2, t + 12 * 60, 20 * 60, 15)
    b.add_water(t - 48 * 60, 12, 600)


def _small(b: _Builder, cfg: HouseConfig, r: random.Random, weekend: bool) -> None:
    # hair dryer in the morning, vacuum cleaner some days, laptop chargers
    for _ in range(max(1, cfg.persons // 2)):
        if r.random() < 0.35:
            b.add(1, _t(r, 7.2 if not weekend else 9.5, 20), r.uniform(180, 420), 1800)
    if r.random() < (0.5 if weekend else 0.15):
        b.add(2, _t(r, 11.0 if weekend else 19.0, 60), r.uniform(10, 25) * 60, 1400)
    for _ in range(cfg.persons):
        b.add(r.randrange(3), _t(r, 19.0, 90), r.uniform(60, 180) * 60, 45)


def _people_water(b: _Builder, cfg: HouseConfig, r: random.Random, weekend: bool) -> None:
    """Showers and taps: hot water for the boiler, litres for the water meter."""
    for _ in range(cfg.persons):
        hour = (7.0 if not weekend else 9.0) if r.random() < 0.65 else 21.5
        t = _t(r, hour, 25)
        dur = r.uniform(4, 10) * 60
        b.taps.append(Tap(int(t), int(dur), 8.0 / 60, 40.0))
        b.add_water(t, 8.0 * dur / 60, dur)
        for _ in range(r.randint(4, 6)):  # toilet
            b.add_water(_t(r, r.uniform(7, 22.5), 20), 6.0)
    for _ in range(3 + cfg.persons):  # hand washing, dishes by hand
        t = _t(r, r.uniform(7, 22), 30)
        dur = r.uniform(20, 90)
        b.taps.append(Tap(int(t), int(dur), 6.0 / 60, 45.0))
        b.add_water(t, 6.0 * dur / 60, dur)


def _heating_duty(hour: int, demand: float) -> float:
    if 6 <= hour < 8:
        return min(1.0, demand * 1.6)
    if 8 <= hour < 22:
        return demand
    return demand * 0.55


def _heat_pump(b: _Builder, cfg: HouseConfig, r: random.Random, temp: float) -> None:
    """Air/water heat pump: hourly duty from outdoor temperature, modulated power."""
    demand = max(0.0, min(1.0, (15.5 - temp) / 24.0))
    if demand <= 0:
        return
    power = cfg.heat_pump_w * (0.45 + 0.55 * demand)
    for hour in range(24):
        duty = max(0.0, min(1.0, _heating_duty(hour, demand) + r.gauss(0, 0.08)))
        run = duty * 3600
        if run < 300:
            continue
        start = hour * 3600 + r.uniform(0, 3600 - run)
        b.add3(start, 60, power * 0.4)  # soft start
        b.add3(start + 60, run - 60, power * r.uniform(0.9, 1.1))
        if temp < 5 and r.random() < 0.35:  # defrost: short full-power run
            b.add3(start + run / 2, 240, power * 0.3)


def _gas_heating(b: _Builder, r: random.Random, temp: float) -> None:
    """A condensing gas boiler: about 1.3 m3/h while the burner runs."""
    demand = max(0.0, min(1.0, (15.5 - temp) / 18.0))
    for hour in range(24):
        duty = max(0.0, min(1.0, _heating_duty(hour, demand) + r.gauss(0, 0.08)))
        for m in range(int(duty * 60)):
            b.gas[hour * 60 + m] += 1.3 / 60
        if duty > 0.05:
            b.add(0, hour * 3600, duty * 3600, 45)  # circulation pump
    for hour in (7, 19):  # cooking/hot water on gas, a little
        b.gas[hour * 60 + r.randrange(60)] += 0.02
