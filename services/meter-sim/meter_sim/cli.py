"""``meter-sim``: a simulated house and meter writing P1 telegrams; loads controlled over MQTT.

The wiring: settings and flags, the wall-clock pacing, the outputs, and the MQTT
side of the controllable loads. The simulation itself is in sim.py (pure).
"""

from __future__ import annotations

import argparse
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from p1common.logs import setup_logging
from p1common.mqtt import BadPayload, decode_json_object, stop_event_on_signals
from p1common.service import ServiceRuntime
from p1common.settings import (
    CommonSettings,
    Env,
    SettingsError,
    check_slug,
    parse_mqtt_url,
)

from .clock import parse_duration, parse_local
from .ev import EvCharger
from .loads import CommandError, ControllableLoad
from .outputs import Output, PtyOutput, StreamOutput, TcpOutput
from .scenario import ScenarioError, build, load_file
from .sim import Simulator
from .telegram import FORMATS

SERVICE = "meter-sim"
log = logging.getLogger(SERVICE)

ENV_HELP = """\
environment (flags win):
  METER_SIM_SCENARIO   scenario YAML file            METER_SIM_SEED        seed (default 1)
  METER_SIM_START      start date/time (local)       METER_SIM_SPEED       speed (default 1)
  METER_SIM_FORMAT     fluvius | dsmr5               METER_SIM_INTERVAL_S  seconds per telegram
  METER_SIM_PV_KWP     PV peak power                 METER_SIM_WATCHDOG_S  device watchdog (10)
  METER_SIM_COMMAND_DELAY_S  delay before a set applies (1)
  MQTT_URL, P1_TOPIC_PREFIX, P1_SITE, LOG_LEVEL, METRICS_PORT  (shared, see docs/configuration.md)

examples:
  meter-sim --pty --pty-link /tmp/p1 --speed 1           a live meter on a pty
  meter-sim --out day.txt --start 2026-01-15T00:00 --duration 1d --speed 0
  meter-sim --tcp 2001 --mqtt mqtt://127.0.0.1:1883 --scenario house.yaml
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=SERVICE,
        description="Simulated house (household load, PV with clouds, a boiler and a relay "
        "load that follow MQTT 'set', and with the scenario's 'ev' key an EV charger with a "
        "car arriving every evening) behind a simulated Fluvius eMUCS 1.7.1 or DSMR 5 meter, "
        "writing P1 telegrams with valid CRC to a pty, a TCP port, stdout or a file, in real "
        "time or faster. Deterministic with --seed.",
        epilog=ENV_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    g = p.add_argument_group("simulation")
    g.add_argument("--scenario", help="YAML scenario file (house, pv, meter, loads, events)")
    g.add_argument("--seed", type=int, help="random seed; same seed, same telegrams (default 1)")
    g.add_argument("--start", help="start, ISO local time, e.g. 2026-01-15T00:00 (default now)")
    g.add_argument("--duration", help="stop after this simulated time: 3600, 15m, 2h, 1d, 1w "
                   "(default: run until stopped)")
    g.add_argument("--speed", type=float, help="simulated seconds per wall second; 60 = a minute "
                   "per second, 0 = as fast as possible (default 1)")
    g.add_argument("--interval", type=int, help="simulated seconds between telegrams (default 1; "
                   "the model still steps every second)")
    g.add_argument("--format", choices=FORMATS, help="telegram format (default fluvius)")
    g.add_argument("--pv-kwp", type=float, help="PV peak power in kWp (default 5)")
    g.add_argument("--no-pv", action="store_true", help="no PV")
    g.add_argument("--no-house", action="store_true", help="no household load (only scripted "
                   "events and the controllable loads)")
    g.add_argument("--heat-pump-w", type=float, help="add a heat pump of this electric power")
    g.add_argument("--watchdog-s", type=float, help="device watchdog: no set for this long -> "
                   "off (default 10; 0 = never)")
    g.add_argument("--command-delay-s", type=float, help="delay before a set applies (default 1)")
    o = p.add_argument_group("outputs (any number; default --stdout)")
    o.add_argument("--pty", action="store_true", help="create a pty and print 'PTY /dev/pts/N'")
    o.add_argument("--pty-link", metavar="PATH", help="also make a symlink PATH -> the pty "
                   "(implies --pty)")
    o.add_argument("--tcp", type=int, metavar="PORT", help="serve telegrams on a TCP port "
                   "(ser2net style; 0 = a free port, printed as 'TCP host:port')")
    o.add_argument("--tcp-host", default="127.0.0.1", help="address for --tcp (default 127.0.0.1)")
    o.add_argument("--stdout", action="store_true", help="write telegrams to stdout")
    o.add_argument("--out", metavar="FILE", help="write telegrams to a file")
    m = p.add_argument_group("MQTT (controllable loads)")
    m.add_argument("--mqtt", metavar="URL", help="broker URL (default: MQTT_URL when set, "
                   "else no MQTT)")
    m.add_argument("--no-mqtt", action="store_true", help="no MQTT even when MQTT_URL is set")
    m.add_argument("--site", help="site slug of the topics (default P1_SITE or 'home')")
    return p


def _options(args: argparse.Namespace, env: Env) -> argparse.Namespace:
    """Fill unset flags from METER_SIM_* variables (errors name the variable)."""
    if args.scenario is None:
        args.scenario = env.opt("METER_SIM_SCENARIO")
    if args.seed is None and env.opt("METER_SIM_SEED"):
        args.seed = env.int("METER_SIM_SEED", 1)
    if args.start is None:
        args.start = env.opt("METER_SIM_START")
    if args.speed is None:
        args.speed = env.float("METER_SIM_SPEED", 1.0, lo=0.0)
    if args.interval is None:
        args.interval = env.int("METER_SIM_INTERVAL_S", 1, lo=1, hi=86400)
    if args.format is None and env.opt("METER_SIM_FORMAT"):
        args.format = env.choice("METER_SIM_FORMAT", "fluvius", FORMATS)
    if args.pv_kwp is None and env.opt("METER_SIM_PV_KWP"):
        args.pv_kwp = env.float("METER_SIM_PV_KWP", 5.0, lo=0.0, hi=1000.0)
    if args.watchdog_s is None and env.opt("METER_SIM_WATCHDOG_S"):
        args.watchdog_s = env.float("METER_SIM_WATCHDOG_S", 10.0, lo=0.0)
    if args.command_delay_s is None and env.opt("METER_SIM_COMMAND_DELAY_S"):
        args.command_delay_s = env.float("METER_SIM_COMMAND_DELAY_S", 1.0, lo=0.0)
    if args.speed < 0:
        raise SettingsError("--speed: must be 0 (as fast as possible) or positive")
    if args.interval < 1:
        raise SettingsError("--interval: at least 1 second")
    return args


def _settings(args: argparse.Namespace, env: Env) -> CommonSettings | None:
    """The shared settings when MQTT is wanted, else None."""
    if args.no_mqtt or not (args.mqtt or env.opt("MQTT_URL")):
        return None
    settings = CommonSettings.from_env(env.environ)
    if args.mqtt:
        settings = replace(settings, mqtt=parse_mqtt_url(args.mqtt, "--mqtt"))
    if args.site:
        settings = replace(settings, site=check_slug(args.site, "--site"))
    return settings


def _outputs(args: argparse.Namespace) -> list[Output]:
    outs: list[Output] = []
    announce = sys.stderr if args.stdout else sys.stdout
    if args.pty or args.pty_link:
        pty_out = PtyOutput(args.pty_link)
        outs.append(pty_out)
        print(f"PTY {pty_out.path}", file=announce, flush=True)
    if args.tcp is not None:
        tcp = TcpOutput(args.tcp, args.tcp_host)
        outs.append(tcp)
        print(f"TCP {tcp.host}:{tcp.port}", file=announce, flush=True)
    if args.out:
        outs.append(StreamOutput.file(args.out))
    if args.stdout or not outs:
        out = StreamOutput.stdout()
        out.flush_each = args.speed > 0
        outs.append(out)
    return outs


class _Mqtt:
    """Subscribes the loads' ``set`` topics and publishes their ``state``."""

    def __init__(self, runtime: ServiceRuntime, sim: Simulator) -> None:
        self.runtime = runtime
        self.site = runtime.settings.site
        # (load, set, wall-clock arrival): the loop turns the arrival into simulated time
        self.commands: queue.Queue[tuple[str, dict[str, Any], float]] = queue.Queue()
        for ident, load in sim.loads.items():
            runtime.mqtt.subscribe(runtime.topics.output_set(self.site, ident),
                                   self._handler(ident, load), qos=1)

    def _handler(self, ident: str, load: ControllableLoad | EvCharger) -> Callable[[str, bytes], None]:
        def handle(topic: str, payload: bytes) -> None:
            obj = decode_json_object(payload)  # BadPayload is counted by the wrapper
            try:
                load.check(obj)  # wrong types / values: refused and counted here too
            except CommandError as exc:
                raise BadPayload(f"set for {ident} refused: {exc}") from None
            self.commands.put((ident, obj, time.monotonic()))
        return handle

    def publish_states(self, states: list[tuple[str, dict[str, Any]]]) -> None:
        for ident, state in states:
            self.runtime.mqtt.publish_json(self.runtime.topics.output_state(self.site, ident),
                                           state, qos=1, retain=True)


class _Pace:
    """Real time at ``speed`` simulated seconds per wall-clock second (0: as fast as it goes)."""

    def __init__(self, speed: float, stop: threading.Event) -> None:
        self.speed = speed
        self.stop = stop
        self.wall0 = time.monotonic()  # wall-clock time of simulated second 0

    def wait_for_end_of(self, second: int) -> bool:
        """Wait until simulated second ``second`` is over; False if stopped meanwhile.

        A meter sends the telegram of a second once that second is over: waiting for its
        end first makes commands sent in reply to a telegram land in the next one.
        """
        if self.speed <= 0:
            return True
        delay = self.wall0 + (second + 1) / self.speed - time.monotonic()
        if delay > 0:
            self.stop.wait(delay)
            return not self.stop.is_set()
        if delay < -5:
            self.wall0 -= delay  # far behind (suspended, overloaded): do not burst to catch up
        return True

    def into_second(self, wall_at: float, second: int) -> float:
        """A wall-clock time, in simulated seconds into ``second`` (0 at --speed 0).

        So a sub-second --command-delay-s keeps its meaning.
        """
        if self.speed <= 0:
            return 0.0
        return min(max((wall_at - self.wall0) * self.speed - second, 0.0), 0.999)


def _apply_commands(sim: Simulator, mqtt: _Mqtt, pace: _Pace, second: int) -> None:
    """Every ``set`` received so far, at the time it arrived within the second computed next."""
    while True:
        try:
            ident, payload, wall_at = mqtt.commands.get_nowait()
        except queue.Empty:
            return
        try:
            sim.command(ident, payload, at=sim.now + pace.into_second(wall_at, second))
        except CommandError as exc:
            log.warning("ignored a set for %s: %s", ident, exc)


def run(sim: Simulator, outputs: list[Output], *, speed: float, interval: int,
        total_s: int | None, stop: threading.Event, mqtt: _Mqtt | None) -> int:
    """The paced loop; returns the number of telegrams written."""
    written = 0
    k = 0  # simulated seconds done
    pace = _Pace(speed, stop)
    progress_every = max(3600, total_s // 10) if total_s and total_s > 6 * 3600 else 0
    if mqtt:
        mqtt.publish_states(sim.drain_states())
    while not stop.is_set() and (total_s is None or k < total_s):
        if not pace.wait_for_end_of(k):
            break
        if mqtt:
            _apply_commands(sim, mqtt, pace, k)
        sim.step()
        k += 1
        if k % interval == 0:
            data = sim.telegram()
            for out in outputs:
                out.write(data)
            written += 1
        if mqtt and (states := sim.drain_states()):
            mqtt.publish_states(states)
        if progress_every and k % progress_every == 0 and total_s:
            print(f"meter-sim: {k / 86400:.2f} of {total_s / 86400:.2f} simulated days, "
                  f"{written} telegrams, {time.monotonic() - pace.wall0:.1f} s",
                  file=sys.stderr, flush=True)
    return written


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    env = Env()
    try:
        args = _options(args, env)
        settings = _settings(args, env)
        data = load_file(args.scenario) if args.scenario else {}
        cfg = build(
            data,
            start=parse_local(args.start) if args.start else None,
            seed=args.seed, fmt=args.format, pv_kwp=args.pv_kwp,
            heat_pump_w=args.heat_pump_w, delay_s=args.command_delay_s,
            watchdog_s=args.watchdog_s, no_house=args.no_house, no_pv=args.no_pv,
        )
        total_s = parse_duration(args.duration) if args.duration else None
    except (SettingsError, ScenarioError, ValueError) as exc:
        print(f"meter-sim: {exc}", file=sys.stderr)
        return 2

    runtime: ServiceRuntime | None = None
    if settings is not None:
        runtime = ServiceRuntime(SERVICE, settings)
        stop = runtime.stop_event
    else:
        setup_logging(env.str("LOG_LEVEL", "INFO").upper(), SERVICE)
        stop = stop_event_on_signals()
    sim = Simulator(cfg)
    try:
        outputs = _outputs(args)
    except OSError as exc:
        print(f"meter-sim: cannot open an output: {exc}", file=sys.stderr)
        return 2
    mqtt = _Mqtt(runtime, sim) if runtime else None
    if runtime:
        runtime.start()
    log.info("simulating from %s, seed %d, speed %s, %s telegrams, loads %s", sim.clock.iso(cfg.start),
             cfg.seed, args.speed or "max", cfg.fmt, ", ".join(sim.loads) or "none")
    try:
        written = run(sim, outputs, speed=args.speed, interval=args.interval, total_s=total_s,
                      stop=stop, mqtt=mqtt)
    except BadPayload:  # pragma: no cover - handled in the wrapper
        raise
    finally:
        for out in outputs:
            out.close()
        if runtime:
            runtime.close()
    log.info("stopped at %s after %d telegrams", sim.clock.iso(sim.now), written)
    return 0


if __name__ == "__main__":
    sys.exit(main())
