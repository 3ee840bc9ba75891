"""``make run``: the whole stack on one machine, no hardware, no root, no configuration.

Starts a broker (Mosquitto when installed, else the embedded amqtt broker; none
when ``MQTT_URL`` is set), the meter simulator on a pty (or a real meter with
``--serial``), p1-reader on it, and every other service, under honcho (one
coloured log stream). The simulated house's boiler and relay
(deploy/demo/outputs.json) are stored by the web on the first run and published
retained on p1/config/<site>/outputs, where the load-controller reads them: change
them on the Outputs page. It starts the broker first, then the simulated meter,
then the rest; Ctrl-C stops the services first, then the simulated meter, then the
broker, and exits 0 when every process stopped cleanly. ``--procfile`` prints the
Procfile instead of running it, for people who prefer ``honcho start`` or foreman
(those start and stop every process at once: the services may then log that the
broker is not there yet or went away).
"""

from __future__ import annotations

import argparse
import importlib.util
import multiprocessing
import os
import shlex
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from honcho.manager import Manager

from .broker import find_mosquitto

READY_TIMEOUT_S = 20.0  # how long the start waits for the broker to listen, the pty to appear

# service -> (python module that must exist, command); {vars} filled in below
SERVICES: list[tuple[str, str, str]] = [
    ("meter-sim", "meter_sim.cli",
     "meter-sim --pty-link {pty} --speed {speed} --seed {seed} --mqtt {mqtt_url}"),
    ("p1-reader", "p1_reader.cli", "p1-reader --serial {serial}"),
    ("peak-forecaster", "peak_forecaster.cli", "peak-forecaster"),
    ("load-controller", "load_controller.cli", "load-controller --speed {speed}"),
    ("ev-gateway", "ev_gateway.cli", "ev-gateway --ocpp-port {ocpp_port}"),
    ("web", "p1web.cli", "p1-web --host 127.0.0.1 --port {web_port} --seed-outputs {demo_outputs}"),
    ("recorder", "recorder.cli", "p1-recorder"),
    ("bridge-multicast", "bridge_multicast.cli", "bridge-multicast"),
]


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


_HANDED_OUT: set[int] = set()  # ports picked for this stack: a closed probe socket's port
# may come back from the next bind to port 0, and two services would then race for it


def pick_port(preferred: int) -> int:
    if preferred not in _HANDED_OUT and port_free(preferred):
        _HANDED_OUT.add(preferred)
        return preferred
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def plan(args: argparse.Namespace, environ: dict[str, str]) -> tuple[list[tuple[str, str]], dict[str, str], list[str]]:
    """The processes to run, the environment they share, and what to tell the user."""
    state_dir = Path(args.state_dir).resolve()
    run_dir = state_dir / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    env = dict(environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("P1_STATE_DIR", str(state_dir))
    env.setdefault("PYTHONUNBUFFERED", "1")
    procs: list[tuple[str, str]] = []
    notes: list[str] = []
    if environ.get("MQTT_URL"):
        mqtt_url = environ["MQTT_URL"]
        notes.append(f"broker: external, {mqtt_url.split('@')[-1]}")
    else:
        broker_cmd, mqtt_url, broker_notes = _local_broker(args)
        procs.append(("broker", broker_cmd))
        env["MQTT_URL"] = mqtt_url
        notes += broker_notes
    web_port = pick_port(args.web_port)
    ocpp_port = pick_port(9000)
    # the OCPP central system on this machine only, as the web; EVGW_OCPP_HOST=0.0.0.0 for a
    # wallbox on the LAN
    env.setdefault("EVGW_OCPP_HOST", "127.0.0.1")
    if args.speed != 1 and not args.serial:
        # a simulated meter at another speed runs its clock away from this host's: the
        # plausibility rule on the meter clock (p1common.plausibility) is off, explicitly
        env.setdefault("P1_MAX_CLOCK_DRIFT_S", "0")
        notes.append(f"simulation at speed {args.speed:g}: meter clock not checked against this host's")
    values = {
        "pty": shlex.quote(str(run_dir / "meter.pty")),
        "speed": str(args.speed),
        "seed": str(args.seed),
        "mqtt_url": shlex.quote(mqtt_url),
        "serial": shlex.quote(args.serial or str(run_dir / "meter.pty")),
        "web_port": str(web_port),
        "ocpp_port": str(ocpp_port),
        # the simulated house's loads, until the web page stores a configuration of its own
        "demo_outputs": shlex.quote(str(Path(__file__).resolve().parents[3] / "deploy" / "demo" / "outputs.json")),
    }
    for name, module, cmd in SERVICES:
        if name == "meter-sim" and args.serial:
            continue  # a real meter instead
        off = _off_note(name, module, args, environ)
        if off:
            notes.append(off)
            continue
        if name == "web" and args.serial:
            cmd = cmd.split(" --seed-outputs")[0]  # a real house: no demo loads, outputs from the page
        procs.append((name, cmd.format(**values)))
        if name == "web":
            notes += _web_notes(args, Path(env["P1_STATE_DIR"]), web_port)
        if name == "ev-gateway":
            notes.append(f"EV chargers: OCPP 1.6J on ws://{env['EVGW_OCPP_HOST']}:{ocpp_port}/"
                         "<charge point id>, evcc on the broker (docs/ev-chargers.md)")
    if args.serial:
        notes.append(f"meter: {args.serial}")
    return procs, env, notes


def _local_broker(args: argparse.Namespace) -> tuple[str, str, list[str]]:
    """The broker ``make run`` starts: its command, its URL, and what to tell the user."""
    port = pick_port(args.mqtt_port)
    mqtt_url = f"mqtt://127.0.0.1:{port}"
    engine = args.broker_engine
    if engine == "auto":
        engine = "mosquitto" if find_mosquitto() else "amqtt"
    if engine == "mosquitto":
        what = "Mosquitto"
    elif args.broker_engine == "amqtt":
        what = "embedded amqtt broker"
    else:
        what = "embedded amqtt broker (Mosquitto is not installed: sudo make system-deps)"
    notes = [f"broker: {what} on {mqtt_url}",
             f"  watch every message: mosquitto_sub -h 127.0.0.1 -p {port} -t 'p1/#' -v"]
    return f"p1-broker --host 127.0.0.1 --port {port} --engine {engine}", mqtt_url, notes


def _off_note(name: str, module: str, args: argparse.Namespace, environ: dict[str, str]) -> str | None:
    """Why a service does not run (what to tell the user), or None when it runs."""
    if name == "recorder" and not environ.get("INFLUX_URL"):
        return "recorder: off (set INFLUX_URL to record into InfluxDB)"
    if name == "bridge-multicast" and not args.bridge:
        return "bridge-multicast: off (make run BRIDGE=1 bridges the legacy ESP modules)"
    if not has_module(module):
        return f"{name}: not built yet"
    return None


def _web_notes(args: argparse.Namespace, state_dir: Path, web_port: int) -> list[str]:
    notes = [f"web page: http://127.0.0.1:{web_port}/ (the write token is in "
             f"{state_dir / 'web' / 'token'})"]
    if not args.serial:
        notes.append("outputs: the simulated boiler and relay1 (deploy/demo/outputs.json, "
                     f"stored by the web when it has none): change them on "
                     f"http://127.0.0.1:{web_port}/outputs")
    return notes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="make run", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--serial", default=os.environ.get("SERIAL") or None,
                    help="a real meter's port (pyserial URL) instead of the simulator")
    ap.add_argument("--speed", type=float, default=float(os.environ.get("SIM_SPEED", "1")),
                    help="simulator speed (1 = real time)")
    ap.add_argument("--seed", type=int, default=1, help="simulator seed")
    ap.add_argument("--mqtt-port", type=int, default=1883, help="local broker port (a free one if taken)")
    ap.add_argument("--web-port", type=int, default=8080, help="web port (a free one if taken)")
    ap.add_argument("--state-dir", default=os.environ.get("P1_STATE_DIR", "var"), help="state folder")
    ap.add_argument("--bridge", action="store_true", default=bool(os.environ.get("BRIDGE")),
                    help="also run bridge-multicast (joins 224.0.1.3 on the LAN)")
    ap.add_argument("--broker-engine", choices=("auto", "mosquitto", "amqtt"),
                    default=os.environ.get("BROKER_ENGINE") or "auto",
                    help="local broker: auto = Mosquitto when installed, else the embedded "
                    "amqtt broker (BROKER_ENGINE)")
    ap.add_argument("--procfile", action="store_true", help="print the Procfile and exit")
    args = ap.parse_args(argv)
    procs, env, notes = plan(args, dict(os.environ))
    if args.procfile:
        for name, cmd in procs:
            print(f"{name}: {cmd}")
        return 0
    from honcho.printer import Printer

    print("P1 energy stack, local run", flush=True)
    for note in notes:
        print(f"  {note}", flush=True)
    print("  Ctrl-C stops everything: the services, then the simulated meter, then the broker.",
          flush=True)
    ready: dict[str, Callable[[], bool]] = {}
    if any(name == "broker" for name, _ in procs):
        port = int(env["MQTT_URL"].rsplit(":", 1)[1])
        ready["broker"] = lambda: not port_free_to_connect(port)
    if any(name == "meter-sim" for name, _ in procs):
        pty = Path(args.state_dir).resolve() / "run" / "meter.pty"
        if pty.is_symlink():
            pty.unlink()  # a previous run's link, to a pty that is gone or someone else's
        ready["meter-sim"] = pty.exists
    manager = ordered_manager(Printer(sys.stdout), later=("meter-sim", "broker"), ready=ready)
    for name, cmd in procs:
        # exec: the process honcho watches is the service itself, not a shell around it,
        # so its exit code is the service's own (0 after a clean stop)
        manager.add_process(name, f"exec {cmd}", env=env)
    manager.loop()
    rcs = {name: p.get("returncode") for name, p in manager._processes.items()}
    if manager.returncode in (130, 143) and all(rc == 0 for rc in rcs.values()):
        return 0  # stopped by Ctrl-C / SIGTERM and every process ended cleanly
    return int(manager.returncode or 0) or (1 if any(rcs.values()) else 0)


def port_free_to_connect(port: int, host: str = "127.0.0.1") -> bool:
    """True while nothing accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return False
    except OSError:
        return True


class OrderedManager(Manager):  # type: ignore[misc]  # honcho is untyped: its Manager is Any
    """honcho's Manager, in order. Start: ``later`` in reverse (the broker, then the
    simulated meter), each once the one before is ``ready`` (listening, pty there), then
    the rest: no service starts against a broker or a port that is not there yet. Stop:
    SIGTERM to every process not in ``later`` first, then to each of ``later`` in turn
    once everything before it has ended: p1-reader stops before its simulated meter, and
    every service says ``offline`` and disconnects while the broker is still there.
    (honcho alone starts and stops all at once; it still SIGKILLs whatever is left 5 s
    after the first process ended.)"""

    def __init__(self, printer: Any, later: tuple[str, ...],
                 ready: dict[str, Callable[[], bool]] | None = None) -> None:
        super().__init__(printer)
        self.later = later
        self.checks = ready or {}
        self.stopping = False

    def _start(self) -> None:
        order = [n for n in reversed(self.later) if n in self._processes]
        order += [n for n in self._processes if n not in self.later]
        for i, name in enumerate(order):
            if self.stopping:  # Ctrl-C while starting: the rest never starts
                for rest in order[i:]:
                    del self._processes[rest]
                return
            p = self._processes[name]
            p["process"] = multiprocessing.Process(
                name=name, target=p["obj"].run, args=(self.events, True))
            p["process"].start()
            if name in self.checks:
                self._wait_ready(name, p["process"], self.checks[name])

    def _wait_ready(self, name: str, proc: Any, check: Callable[[], bool]) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not check():
            if self.stopping or not proc.is_alive():
                return
            if time.monotonic() > deadline:
                self._system_print(f"{name} not ready after {READY_TIMEOUT_S:.0f} s; "
                                   "starting the others anyway\n")
                return
            time.sleep(0.05)

    def _killall(self, force: bool = False) -> None:
        if force:
            super()._killall(force=True)
            return
        self.stopping = True
        self._stop_next()

    def _stop_next(self) -> None:
        """SIGTERM to the next group still running, once the groups before it ended."""
        if not self.stopping:
            return
        groups = [[n for n in self._processes if n not in self.later]] + [[n] for n in self.later]
        for group in groups:
            running = [n for n in group if n in self._processes
                       and "returncode" not in self._processes[n]]
            if not running:
                continue
            for name in running:
                p = self._processes[name]
                if "pid" in p and not p.get("sent_term"):
                    p["sent_term"] = True
                    self._system_print(f"sending SIGTERM to {name} (pid {p['pid']})\n")
                    self._procmgr.terminate(p["pid"])
            return

    def _all_started(self) -> bool:  # called on every turn of honcho's loop
        self._stop_next()
        return bool(super()._all_started())


def ordered_manager(printer: Any, later: tuple[str, ...],
                    ready: dict[str, Callable[[], bool]] | None = None) -> OrderedManager:
    """An :class:`OrderedManager`: ``later`` start first and stop last (see there)."""
    return OrderedManager(printer, later, ready)


if __name__ == "__main__":
    sys.exit(main())
