"""``make run``: the whole stack on one machine, no hardware, no root, no configuration.

Starts a broker (Mosquitto when installed, else the embedded amqtt broker; none
when ``MQTT_URL`` is set), the meter simulator on a pty (or a real meter with
``--serial``), p1-reader on it, and every other service, under honcho (one
coloured log stream, Ctrl-C stops everything). ``--procfile`` prints the Procfile
instead of running it, for people who prefer ``honcho start`` or foreman.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shlex
import socket
import sys
from pathlib import Path

# service -> (python module that must exist, command); {vars} filled in below
SERVICES: list[tuple[str, str, str]] = [
    ("meter-sim", "meter_sim.cli",
     "meter-sim --pty-link {pty} --speed {speed} --seed {seed} --mqtt {mqtt_url}"),
    ("p1-reader", "p1_reader.cli", "p1-reader --serial {serial}"),
    ("peak-forecaster", "peak_forecaster.cli", "peak-forecaster"),
    ("load-controller", "load_controller.cli", "load-controller --config {demo_outputs} --speed {speed}"),
    ("web", "p1web.cli", "p1-web --host 127.0.0.1 --port {web_port}"),
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


def pick_port(preferred: int) -> int:
    if port_free(preferred):
        return preferred
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def plan(args: argparse.Namespace, environ: dict[str, str]) -> tuple[list[tuple[str, str]], dict[str, str], list[str]]:
    """The processes to run, the environment they share, and what to tell the user."""
    bindir = Path(sys.executable).parent
    run_dir = Path(args.state_dir).resolve() / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    env = dict(environ)
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("P1_STATE_DIR", str(Path(args.state_dir).resolve()))
    env.setdefault("PYTHONUNBUFFERED", "1")
    procs: list[tuple[str, str]] = []
    notes: list[str] = []
    if environ.get("MQTT_URL"):
        mqtt_url = environ["MQTT_URL"]
        notes.append(f"broker: external, {mqtt_url.split('@')[-1]}")
    else:
        port = pick_port(args.mqtt_port)
        mqtt_url = f"mqtt://127.0.0.1:{port}"
        procs.append(("broker", f"p1-broker --host 127.0.0.1 --port {port}"))
        env["MQTT_URL"] = mqtt_url
        notes.append(f"broker: {mqtt_url} (watch it: mosquitto_sub -h 127.0.0.1 -p {port} -t 'p1/#' -v)")
    web_port = pick_port(args.web_port)
    values = {
        "pty": shlex.quote(str(run_dir / "meter.pty")),
        "speed": str(args.speed),
        "seed": str(args.seed),
        "mqtt_url": shlex.quote(mqtt_url),
        "serial": shlex.quote(args.serial or str(run_dir / "meter.pty")),
        "web_port": str(web_port),
        # the simulated house's loads, until the web page stores a configuration of its own
        "demo_outputs": shlex.quote(str(Path(__file__).resolve().parents[3] / "deploy" / "demo" / "outputs.json")),
    }
    for name, module, cmd in SERVICES:
        if name == "meter-sim" and args.serial:
            continue
        if name == "recorder" and not environ.get("INFLUX_URL"):
            notes.append("recorder: off (set INFLUX_URL to record into InfluxDB)")
            continue
        if name == "bridge-multicast" and not args.bridge:
            notes.append("bridge-multicast: off (make run BRIDGE=1 bridges the legacy ESP modules)")
            continue
        if not has_module(module):
            notes.append(f"{name}: not built yet")
            continue
        if name == "load-controller" and args.serial:
            cmd = "load-controller"  # a real house: outputs only from the web page, no demo loads
        procs.append((name, cmd.format(**values)))
        if name == "web":
            notes.append(f"web page: http://127.0.0.1:{web_port}/")
    if args.serial:
        notes.append(f"meter: {args.serial}")
    return procs, env, notes


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
    ap.add_argument("--procfile", action="store_true", help="print the Procfile and exit")
    args = ap.parse_args(argv)
    procs, env, notes = plan(args, dict(os.environ))
    if args.procfile:
        for name, cmd in procs:
            print(f"{name}: {cmd}")
        return 0
    from honcho.manager import Manager
    from honcho.printer import Printer

    print("P1 energy stack, local run", flush=True)
    for note in notes:
        print(f"  {note}", flush=True)
    print("  Ctrl-C stops everything.", flush=True)
    manager = Manager(Printer(sys.stdout))
    for name, cmd in procs:
        manager.add_process(name, cmd, env=env)
    manager.loop()
    return int(manager.returncode or 0)


if __name__ == "__main__":
    sys.exit(main())
