"""Controllable loads as the devices of the stack behave: they follow ``set``, report ``state``.

A relay load draws its rated power when on. A dimmer load (the boiler) draws rated
power x pct, but only while its own thermostat lets it: the water model heats with
the power put in, loses heat to the room and cools by hot-water draws, and the
thermostat opens at the set point and closes again a hysteresis lower.

Commands apply ``delay_s`` after they arrive (a device's reaction time). The
device watchdog turns the load off when no ``set`` came for ``watchdog_s`` (10 s
on the real modules; 0 disables it). Each applied command, and each change the
device makes by itself, queues a ``state`` payload (contract fields ``v``, ``ts``,
``on`` or ``pct``, ``override``, ``seq``) in :attr:`ControllableLoad.outbox`;
the wiring module publishes them. Time is UTC seconds passed in by the caller.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from p1common import CONTRACT_VERSION

WATER_J_PER_L_K = 4186.0


class CommandError(ValueError):
    """A ``set`` payload that this load cannot apply (says which field and why)."""


@dataclass(frozen=True)
class LoadConfig:
    id: str
    kind: str = "relay"  # relay | dimmer
    rated_w: float = 1500.0
    phase: int = 1  # 1..3, or 0 = spread over three phases
    delay_s: float = 1.0
    watchdog_s: float = 10.0
    # boiler (dimmer with a tank); tank_l = 0 means a plain resistive load
    tank_l: float = 0.0
    temp_c: float = 50.0
    setpoint_c: float = 60.0
    hysteresis_c: float = 5.0
    cold_c: float = 10.0
    room_c: float = 18.0
    loss_w_per_k: float = 2.0
    hot_water: bool = True  # takes the household's hot-water draws

    def __post_init__(self) -> None:
        if self.kind not in ("relay", "dimmer"):
            raise ValueError(f"load {self.id}: kind must be relay or dimmer, not {self.kind!r}")
        if not 0 <= self.phase <= 3:
            raise ValueError(f"load {self.id}: phase must be 1, 2, 3 or 0 (all three)")
        if self.rated_w <= 0:
            raise ValueError(f"load {self.id}: rated_w must be positive")


DEFAULT_LOADS = (
    LoadConfig(id="boiler", kind="dimmer", rated_w=2400.0, phase=2, tank_l=200.0),
    LoadConfig(id="relay1", kind="relay", rated_w=1500.0, phase=3),
)


class StateOutbox:
    """The ``state`` payloads a simulated device queues for the wiring module to publish."""

    def __init__(self) -> None:
        self.seq: int | None = None  # of the last set applied
        self.outbox: list[dict[str, Any]] = []

    def _report(self, now: int) -> None:
        raise NotImplementedError

    def _queue(self, state: dict[str, Any]) -> None:
        if self.seq is not None:
            state["seq"] = self.seq
        self.outbox.append(state)

    def initial_state(self, now: int) -> None:
        """Queue the state at start (off), so consumers know the device exists."""
        self._report(now)

    def drain(self) -> list[dict[str, Any]]:
        out, self.outbox = self.outbox, []
        return out


class ControllableLoad(StateOutbox):
    def __init__(self, cfg: LoadConfig, iso: Callable[[int], str]) -> None:
        super().__init__()
        self.cfg = cfg
        self.iso = iso
        self.level = 0.0  # 0..1 of rated power as commanded (relay: 0 or 1)
        self.last_set_s: float | None = None
        self.pending: list[tuple[float, float, int | None]] = []  # (apply_at, level, seq)
        self.temp_c = cfg.temp_c
        self.heating = cfg.tank_l <= 0 or cfg.temp_c < cfg.setpoint_c
        self.power_w = 0.0

    # -- commands ----------------------------------------------------------------
    def check(self, payload: dict[str, Any]) -> tuple[float, int | None]:
        """-> (level, seq) of a ``set``; :class:`CommandError` when it cannot apply.

        Pure (reads only the configuration): the MQTT thread calls it to refuse a bad
        ``set`` where it arrives, so the refusal is counted like any bad payload.
        """
        level = self._level_of(payload)
        seq = payload.get("seq")
        if seq is not None and (not isinstance(seq, int) or isinstance(seq, bool) or seq < 0):
            raise CommandError("seq must be a non-negative integer")
        return level, seq

    def command(self, now: float, payload: dict[str, Any]) -> None:
        """A ``set`` arrived at ``now``: validate, queue it, feed the watchdog."""
        level, seq = self.check(payload)
        self.last_set_s = now
        self.pending.append((now + self.cfg.delay_s, level, seq))

    def _level_of(self, payload: dict[str, Any]) -> float:
        if "pct" in payload and payload["pct"] is not None:
            pct = payload["pct"]
            if isinstance(pct, bool) or not isinstance(pct, (int, float)) or not 0 <= pct <= 100:
                raise CommandError("pct must be a number from 0 to 100")
            if self.cfg.kind == "relay":
                return 1.0 if pct > 0 else 0.0
            return float(pct) / 100
        if "on" in payload:
            on = payload["on"]
            if not isinstance(on, bool):
                raise CommandError("on must be true or false")
            return 1.0 if on else 0.0
        raise CommandError("a set needs 'on' (relay) or 'pct' (dimmer)")

    # -- time ----------------------------------------------------------------------
    def step(self, now: int, dt: float = 1.0, tap_lps: float = 0.0, tap_mix_c: float = 40.0) -> float:
        """Advance ``dt`` seconds from ``now``; returns the power drawn over it (W).

        A command due inside the step counts for the part of it after it applies (a
        0.5 s delay shows half in this second's power, as a meter averaging over the
        second sees it), so delays below the model's 1 s step are not rounded up."""
        mean_level = self.level
        end = now + dt
        if self.pending and self.pending[0][0] < end:
            level_s = 0.0
            t = float(now)
            while self.pending and self.pending[0][0] < end:
                at, level, seq = self.pending.pop(0)
                at = max(at, t)
                level_s += self.level * (at - t)
                t = at
                self.level = level
                if seq is not None:
                    self.seq = seq
            mean_level = (level_s + self.level * (end - t)) / dt
            self._report(now)
        wd = self.cfg.watchdog_s
        if wd > 0 and self.level > 0 and not self.pending and (
            self.last_set_s is None or now - self.last_set_s >= wd
        ):
            self.level = mean_level = 0.0
            self._report(now)
        power = self.cfg.rated_w * mean_level
        if self.cfg.tank_l > 0:
            power = self._tank(power, dt, tap_lps, tap_mix_c)
        self.power_w = power
        return power

    def _tank(self, power: float, dt: float, tap_lps: float, tap_mix_c: float) -> float:
        c = self.cfg
        if self.temp_c >= c.setpoint_c:
            self.heating = False
        elif self.temp_c <= c.setpoint_c - c.hysteresis_c:
            self.heating = True
        if not self.heating:
            power = 0.0
        capacity = c.tank_l * WATER_J_PER_L_K
        energy = power * dt - c.loss_w_per_k * (self.temp_c - c.room_c) * dt
        self.temp_c += energy / capacity
        if tap_lps > 0 and self.temp_c > tap_mix_c:
            hot_lps = tap_lps * (tap_mix_c - c.cold_c) / (self.temp_c - c.cold_c)
            frac = min(1.0, hot_lps * dt / c.tank_l)
            self.temp_c -= frac * (self.temp_c - c.cold_c)
        return power

    def _report(self, now: int) -> None:
        state: dict[str, Any] = {"v": CONTRACT_VERSION, "ts": self.iso(now)}
        if self.cfg.kind == "relay":
            state["on"] = self.level > 0
        else:
            state["pct"] = round(self.level * 100, 1)
        state["override"] = False
        self._queue(state)
