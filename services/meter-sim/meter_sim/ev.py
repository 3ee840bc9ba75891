"""An EV charger (wallbox) with a car behind it, as the load-controller's kind ``ev`` sees it.

The charger follows ``output/<id>/set`` with ``current_a`` (per phase; 0 or anything
below ``min_current_a`` pauses) and ``phases`` (1 or 3, within what it is wired for).
Like a real wallbox and car:

- a ``set`` applies ``delay_s`` after it arrives (the charger's control pilot and the
  car's on-board charger: a few seconds), then the current ramps towards the new
  limit at ``ramp_a_per_s``;
- the car takes what the limit allows until it has what it needs; over the last
  ``taper_kwh`` it takes less and less (the battery's constant-voltage phase), down to
  ``min_current_a`` on one phase, then stops (full);
- every evening a car arrives (``arrival`` +- ``arrival_sd_min``), needing between
  ``energy_min_kwh`` and ``energy_max_kwh``, and leaves the next morning at
  ``departure``: drawn from (seed, date), so a month of evenings differs by seed and a
  day is the same whatever was simulated before it;
- the watchdog pauses it when no ``set`` came for ``watchdog_s`` (0: never).

Each applied ``set``, plug-in, unplug, start and stop queue a ``state`` payload (contract
``OutputState``: ``current_a``, ``phases``, ``power_w``, ``connected``, ``charging``,
``session_wh``). Time is UTC seconds passed in by the caller; the power is spread over the
phases the car charges on (one phase: the configured ``phase``).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from p1common import CONTRACT_VERSION

from .clock import TZ
from .loads import CommandError, StateOutbox


def _hhmm(text: str, where: str) -> time:
    try:
        hh, mm = text.split(":")
        return time(int(hh), int(mm))
    except (ValueError, AttributeError):
        raise ValueError(f"{where}: {text!r} is not a time HH:MM") from None


@dataclass(frozen=True)
class EvConfig:
    id: str = "ev"
    phases: int = 3  # the phases the charger is wired for (1 or 3)
    phase: int = 1  # one-phase charging: on this phase (1..3)
    min_current_a: float = 6.0
    max_current_a: float = 16.0  # 16 or 32
    voltage_v: float = 230.0
    delay_s: float = 3.0
    ramp_a_per_s: float = 2.0
    watchdog_s: float = 10.0
    taper_kwh: float = 2.0
    arrival: str = "18:00"
    arrival_sd_min: float = 60.0
    departure: str = "07:30"
    energy_min_kwh: float = 10.0
    energy_max_kwh: float = 40.0
    plug_probability: float = 1.0  # the share of evenings the car is plugged in

    def __post_init__(self) -> None:
        if self.phases not in (1, 3):
            raise ValueError(f"ev {self.id}: phases must be 1 or 3, not {self.phases!r}")
        if self.phase not in (1, 2, 3):
            raise ValueError(f"ev {self.id}: phase must be 1, 2 or 3")
        if not 6 <= self.min_current_a <= self.max_current_a <= 80:
            raise ValueError(f"ev {self.id}: need 6 <= min_current_a <= max_current_a <= 80")
        if not 0 < self.energy_min_kwh <= self.energy_max_kwh <= 200:
            raise ValueError(f"ev {self.id}: need 0 < energy_min_kwh <= energy_max_kwh <= 200")
        if self.delay_s < 0 or self.ramp_a_per_s <= 0 or self.taper_kwh < 0:
            raise ValueError(f"ev {self.id}: delay_s >= 0, ramp_a_per_s > 0, taper_kwh >= 0")
        if not 0 <= self.plug_probability <= 1:
            raise ValueError(f"ev {self.id}: plug_probability is a share 0..1")
        _hhmm(self.arrival, f"ev {self.id}.arrival")
        _hhmm(self.departure, f"ev {self.id}.departure")


@dataclass(frozen=True)
class Session:
    """One evening: the car plugged in from ``arrive`` to ``depart`` (UTC s), needing ``need_wh``."""

    day: date
    arrive: int
    depart: int
    need_wh: float


def session_of(cfg: EvConfig, seed: int, day: date) -> Session | None:
    """The session that starts on the evening of ``day`` (None: the car stays away)."""
    rng = random.Random(f"{seed}:{day.isoformat()}:ev:{cfg.id}")
    plugged = rng.random() < cfg.plug_probability
    mean = _hhmm(cfg.arrival, "arrival")
    offset_s = rng.gauss(0.0, cfg.arrival_sd_min * 60)
    need_kwh = rng.uniform(cfg.energy_min_kwh, cfg.energy_max_kwh)
    if not plugged:
        return None
    arrive = datetime.combine(day, mean, TZ) + timedelta(seconds=offset_s)
    earliest = datetime.combine(day, time(12, 0), TZ)
    latest = datetime.combine(day, time(23, 45), TZ)
    arrive = min(max(arrive, earliest), latest)
    depart = datetime.combine(day + timedelta(days=1), _hhmm(cfg.departure, "departure"), TZ)
    return Session(day, int(arrive.timestamp()) // 60 * 60, int(depart.timestamp()),
                   round(need_kwh * 1000.0, 1))


class EvCharger(StateOutbox):
    """The charger and the car: ``check``/``command``/``step``/``drain`` like a controllable load."""

    def __init__(self, cfg: EvConfig, seed: int, iso: Callable[[int], str]) -> None:
        super().__init__()
        self.cfg = cfg
        self.seed = seed
        self.iso = iso
        self.limit_a = 0.0  # the limit applied (after the delay)
        self.use_phases = cfg.phases
        self.current_a = 0.0  # what the car draws per phase (ramps to the limit)
        self.last_set_s: float | None = None
        self.pending: list[tuple[float, float, int, int | None]] = []  # (at, A, phases, seq)
        self.session: Session | None = None
        self.session_wh = 0.0
        self.power_w = 0.0
        self._sessions: dict[date, Session | None] = {}
        self._idle_until = -1  # no car: nothing to look up before this time (UTC s)
        self._charging = False

    @property
    def connected(self) -> bool:
        return self.session is not None

    # -- commands ---------------------------------------------------------------------------
    def check(self, payload: dict[str, Any]) -> tuple[float, int, int | None]:
        """-> (current A, phases, seq) of a ``set``; :class:`CommandError` naming the field."""
        cur = payload.get("current_a")
        if cur is None:
            if isinstance(payload.get("on"), bool):  # a plain on/off: max or pause
                cur = self.cfg.max_current_a if payload["on"] else 0.0
            else:
                raise CommandError("a set for a charger needs current_a (A, 0 = pause)")
        if isinstance(cur, bool) or not isinstance(cur, (int, float)) or not 0 <= cur <= 80:
            raise CommandError("current_a must be a number from 0 to 80")
        phases = payload.get("phases", self.cfg.phases)
        if phases not in (1, 3) or isinstance(phases, bool):
            raise CommandError("phases must be 1 or 3")
        if phases > self.cfg.phases:
            raise CommandError(f"phases {phases}: this charger is wired for {self.cfg.phases}")
        seq = payload.get("seq")
        if seq is not None and (not isinstance(seq, int) or isinstance(seq, bool) or seq < 0):
            raise CommandError("seq must be a non-negative integer")
        return float(cur), int(phases), seq

    def command(self, now: float, payload: dict[str, Any]) -> None:
        cur, phases, seq = self.check(payload)
        self.last_set_s = now
        self.pending.append((now + self.cfg.delay_s, cur, phases, seq))

    # -- time -------------------------------------------------------------------------------
    def step(self, now: int, dt: float = 1.0, tap_lps: float = 0.0, tap_mix_c: float = 40.0) -> float:
        """Advance ``dt`` seconds from ``now``; the power drawn over them (W)."""
        self._plug(now)
        applied = False
        while self.pending and self.pending[0][0] < now + dt:
            _, cur, phases, seq = self.pending.pop(0)
            self.limit_a = min(cur, self.cfg.max_current_a)
            self.use_phases = phases
            if seq is not None:
                self.seq = seq
            applied = True
        wd = self.cfg.watchdog_s
        if wd > 0 and self.limit_a > 0 and not self.pending and (
                self.last_set_s is None or now - self.last_set_s >= wd):
            self.limit_a = 0.0
            applied = True
        self._draw(dt)
        charging = self.power_w > 0
        if applied or charging != self._charging:
            self._charging = charging
            self._report(now)
        return self.power_w

    def _draw(self, dt: float) -> None:
        """Ramp the car's current towards what the limit and the battery allow; count energy."""
        want = self._accepts_a() if self.limit_a >= self.cfg.min_current_a else 0.0
        want = min(want, self.limit_a)
        step = self.cfg.ramp_a_per_s * dt
        if want < self.cfg.min_current_a:
            want = 0.0
        if want > self.current_a:
            self.current_a = min(want, max(self.current_a + step, self.cfg.min_current_a))
        else:
            self.current_a = max(want, self.current_a - step)
            if self.current_a < self.cfg.min_current_a:
                self.current_a = want
        self.power_w = round(self.current_a * self.cfg.voltage_v * self.use_phases, 1)
        self.session_wh += self.power_w * dt / 3600.0

    def _accepts_a(self) -> float:
        """What the car takes per phase now: everything up to the taper, then less, then 0."""
        if self.session is None:
            return 0.0
        left_wh = self.session.need_wh - self.session_wh
        if left_wh <= 0:
            return 0.0
        full = self.cfg.max_current_a
        taper_wh = self.cfg.taper_kwh * 1000.0
        if taper_wh <= 0 or left_wh >= taper_wh:
            return full
        # constant voltage: the power falls with what is left, down to the minimum current
        return max(full * left_wh / taper_wh, self.cfg.min_current_a)

    def _plug(self, now: int) -> None:
        s = self.session
        if s is not None and now >= s.depart:
            self.session = None
            self._report(now)
        if self.session is None and now >= self._idle_until:
            found = self._session_at(now)
            if found is not None:
                self.session, self.session_wh = found, 0.0
                self._report(now)

    def _session_at(self, now: int) -> Session | None:
        """The session ``now`` is in; else None, and the next arrival in ``_idle_until``."""
        today = datetime.fromtimestamp(now, TZ).date()
        self._idle_until = now + 3600  # look again in an hour at the latest
        for day in (today - timedelta(days=1), today, today + timedelta(days=1)):
            if day not in self._sessions:
                self._sessions[day] = session_of(self.cfg, self.seed, day)
                if len(self._sessions) > 8:
                    self._sessions.pop(next(iter(self._sessions)))
            s = self._sessions[day]
            if s is not None and s.arrive <= now < s.depart:
                return s
            if s is not None and now < s.arrive:
                self._idle_until = min(self._idle_until, s.arrive)
        return None

    # -- reports ----------------------------------------------------------------------------
    def _report(self, now: int) -> None:
        state: dict[str, Any] = {
            "v": CONTRACT_VERSION, "ts": self.iso(now), "override": False,
            "on": self.limit_a >= self.cfg.min_current_a,
            "current_a": round(self.limit_a, 1), "phases": self.use_phases,
            "power_w": self.power_w, "connected": self.connected,
            "charging": self.power_w > 0, "session_wh": round(self.session_wh, 1),
        }
        self._queue(state)

    @property
    def phase(self) -> int:
        """Where the power goes: 0 = spread over three phases, else the one phase."""
        return 0 if self.use_phases == 3 else self.cfg.phase
