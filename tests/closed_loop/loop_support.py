"""The closed loop, two ways.

:func:`lockstep`: meter-sim's engine, p1-reader's parser, the peak-forecaster's engine and
the load-controller's controller in this process, in lock-step on one simulated clock (as
bench/control.py runs them): every second the meter integrates, its telegram is parsed,
the controller answers ``LATENCY_S`` later and the device applies the set its command
delay after that. Nothing depends on how fast or loaded the machine is, so the control
thresholds are the tight ones.

:func:`closed_loop`: the same loop as `make run` wires it, as processes on the test broker:

    meter-sim --pty (house, PV, boiler + relay1 following `set`, faster than real time)
      -> p1-reader on that pty -> p1/<site>/reading
      -> peak-forecaster -> p1/<site>/peak
      -> load-controller --speed (outputs config retained on p1/config/<site>/outputs)
      -> p1/<site>/output/<id>/set -> meter-sim's loads -> the next telegram.

Every timer counts simulated seconds: meter-sim's command delay and device watchdog
by construction, the load-controller's through ``--speed`` (the same factor as the
simulator), the peak-forecaster's quarters by the meter clock in the readings. The
messages between them take wall time, scaled up by the speed: on a loaded machine a
reading may come late, so what the process tests assert is what no latency changes (the
wiring, the steady states); the dynamics are the lock-step tests'.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from p1common.topics import Topics
from support import REPO, Subscriber, wait_for

T = Topics("p1")
DEMO_OUTPUTS = REPO / "deploy" / "demo" / "outputs.json"
_sites = itertools.count()


def new_site() -> str:
    return f"loop{os.getpid() % 10000}x{next(_sites)}"


@dataclass
class Trace:
    """What the broker carried, per simulated second (meter clock)."""

    net_w: dict[int, float] = field(default_factory=dict)  # telegram time -> net power
    drawn_w: dict[str, dict[int, float]] = field(default_factory=dict)  # lock-step: output ->
    # telegram time -> what it drew in the second that telegram reports
    boiler_pct: list[tuple[int, float]] = field(default_factory=list)  # (applied at, pct)
    relay_on: list[tuple[int, bool]] = field(default_factory=list)
    controls: list[dict[str, Any]] = field(default_factory=list)

    def boiler_w(self, t: int, rated_w: float = 2400.0) -> float:
        """What the boiler drew in the second the telegram at ``t`` reports ([t-1, t)):
        the level of the last ``state`` applied before it (states carry the meter time
        of the second they apply in)."""
        pct = 0.0
        for at, p in self.boiler_pct:
            if at <= t - 1:
                pct = p
            else:
                break
        return rated_w * pct / 100.0

    def seconds(self) -> list[int]:
        return sorted(self.net_w)


LATENCY_S = 0.05  # telegram -> reading -> controller -> set at the device (as bench/control.py)


def lockstep(scenario: dict[str, Any], seconds: int, outputs: dict[str, Any] | None = None,
             command_delay_s: float = 0.5, latency_s: float = LATENCY_S) -> Trace:
    """Run the loop ``seconds`` simulated seconds; the trace of every telegram."""
    from load_controller.config import LoadControllerSettings, parse_outputs
    from load_controller.control import Controller
    from meter_sim.scenario import build
    from meter_sim.sim import Simulator
    from p1_reader.reading import build_reading
    from p1common.dsmr.parser import parse_telegram
    from peak_forecaster.engine import SiteEngine

    site = "lockstep"
    sim = Simulator(build({**scenario, "command_delay_s": command_delay_s}))
    doc = outputs if outputs is not None else json.loads(DEMO_OUTPUTS.read_text())
    ctl = Controller(site, parse_outputs(doc), LoadControllerSettings.from_env({}).params)
    forecaster = SiteEngine(site)
    trace = Trace(drawn_w={ident: {} for ident in sim.loads})

    def send(commands: Any, at: float) -> None:
        for cmd in commands:
            sim.command(cmd.output_id, cmd.payload, at=at)

    for _ in range(seconds):
        sim.step()
        t = float(sim.now)  # the telegram's time: the end of the second it reports
        for ident, state in sim.drain_states():  # published with the telegram
            ctl.on_state(t + latency_s, ident, state)
            if ident == "boiler":
                trace.boiler_pct.append((meter_s(state["ts"]), float(state["pct"])))
            elif ident == "relay1":
                trace.relay_on.append((meter_s(state["ts"]), bool(state["on"])))
        reading = build_reading(parse_telegram(sim.telegram()), site=site, source="p1", now=t)
        tm = meter_s(reading["ts"])
        trace.net_w[tm] = float(reading["net_w"])
        for ident, w in sim.load_w.items():
            trace.drawn_w[ident][tm] = w
        peak = forecaster.process(reading).peak
        if peak is not None:
            ctl.on_peak(t + latency_s, peak)
        step = ctl.on_reading(t + latency_s, reading)
        send(step.commands, t + latency_s)
        if step.control is not None:
            trace.controls.append(step.control)
        ticked = ctl.tick(t + 0.5)  # the service's 1 s tick, between two telegrams
        if ticked is not None:
            send(ticked.commands, t + 0.5)
    return trace


def meter_s(ts: str) -> int:
    return int(dt.datetime.fromisoformat(ts).timestamp())


def collect(sub: Subscriber, site: str) -> Trace:
    def docs(topic: str) -> list[dict[str, Any]]:
        return [m.json() for m in sub.on(topic) if m.payload]  # (not the clean-up's empties)

    trace = Trace()
    for r in docs(T.reading(site)):
        trace.net_w[meter_s(r["ts"])] = float(r["net_w"])
    for s in docs(T.output_state(site, "boiler")):
        trace.boiler_pct.append((meter_s(s["ts"]), float(s["pct"])))
    for s in docs(T.output_state(site, "relay1")):
        trace.relay_on.append((meter_s(s["ts"]), bool(s["on"])))
    trace.boiler_pct.sort(key=lambda e: e[0])
    trace.controls = docs(T.control(site))
    return trace


def write_scenario(path: Path, scenario: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(scenario, sort_keys=False))
    return path


def _env(mosquitto: Any, site: str, state_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LOADCTL_", "METER_SIM_", "PEAK_", "P1_", "MQTT_"))}
    # the meter clock is the simulation's (a scenario day, faster than real time): not
    # checked against this host's (p1common.plausibility), explicitly
    env.update({"MQTT_URL": mosquitto.url, "P1_SITE": site, "P1_STATE_DIR": str(state_dir),
                "LOG_LEVEL": "INFO", "P1_MAX_CLOCK_DRIFT_S": "0"})
    return env


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", *args], env=env, cwd=REPO,
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)


@contextmanager
def closed_loop(mosquitto: Any, tmp: Path, scenario: dict[str, Any], *, speed: float,
                duration_s: int, outputs: dict[str, Any] | None = None,
                command_delay_s: float = 0.5) -> Iterator[tuple[str, Subscriber]]:
    """Start the loop; yield (site, subscriber) once readings flow; stop it all after."""
    site = new_site()
    env = _env(mosquitto, site, tmp)
    sub = Subscriber(mosquitto.port, T.reading(site), T.control(site), T.output_states(site),
                     T.peak(site))
    doc = outputs if outputs is not None else json.loads(DEMO_OUTPUTS.read_text())
    sub.publish(T.config(site, "outputs"), doc, retain=True)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    logs = {name: tmp / f"{name}.log" for name in
            ("load-controller", "peak-forecaster", "p1-reader", "meter-sim")}
    try:
        ids = {name: f"{name}-{site}" for name in logs}
        status = Subscriber(mosquitto.port, *(T.status(i) for i in ids.values()))
        procs["load-controller"] = _start(
            ["load_controller.cli", "--speed", str(speed)],
            {**env, "MQTT_CLIENT_ID": ids["load-controller"]}, logs["load-controller"])
        procs["peak-forecaster"] = _start(
            ["peak_forecaster.cli", "--no-ha-discovery"],
            {**env, "MQTT_CLIENT_ID": ids["peak-forecaster"]}, logs["peak-forecaster"])
        # connected and subscribing once they say online
        for name in ("load-controller", "peak-forecaster"):
            status.wait(T.status(ids[name]), timeout_s=30)
        status.close()
        link = tmp / "p1.pty"
        scen = write_scenario(tmp / "scenario.yaml", scenario)
        procs["meter-sim"] = _start(
            ["meter_sim.cli", "--scenario", str(scen), "--pty-link", str(link),
             "--speed", str(speed), "--duration", str(duration_s),
             "--command-delay-s", str(command_delay_s), "--site", site,
             "--mqtt", mosquitto.url], {**env, "MQTT_CLIENT_ID": ids["meter-sim"]},
            logs["meter-sim"])
        wait_for(link.exists, timeout_s=30, interval_s=0.05)
        procs["p1-reader"] = _start(
            ["p1_reader.cli", "--serial", str(link), "--profile", "dsmr4",
             "--ha-discovery", "false"], {**env, "MQTT_CLIENT_ID": ids["p1-reader"]},
            logs["p1-reader"])
        sub.wait(T.reading(site), timeout_s=30)
        yield site, sub
        for name, proc in procs.items():
            if proc.poll() is not None and name != "meter-sim":
                raise AssertionError(f"{name} exited early:\n{logs[name].read_text()[-3000:]}")
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        for topic in (T.config(site, "outputs"), T.reading(site), T.peak(site), T.control(site),
                      T.output_state(site, "boiler"), T.output_state(site, "relay1")):
            sub.publish(topic, b"", retain=True)
        sub.close()


def wait_until_meter_time(sub: Subscriber, site: str, t_end: int, timeout_s: float) -> None:
    """Until a reading at or after meter time ``t_end`` (UTC seconds) has arrived."""
    def reached() -> bool:
        ms = sub.on(T.reading(site))
        return bool(ms) and meter_s(ms[-1].json()["ts"]) >= t_end
    wait_for(reached, timeout_s=timeout_s, interval_s=0.2)


def local_s(iso_local: str) -> int:
    """UTC seconds of a Belgian local time given with its offset."""
    return int(dt.datetime.fromisoformat(iso_local).timestamp())


def sign_changes(values: list[float], band_w: float = 50.0) -> int:
    last = 0
    changes = 0
    for v in values:
        sign = 1 if v > band_w else (-1 if v < -band_w else 0)
        if sign and last and sign != last:
            changes += 1
        if sign:
            last = sign
    return changes


def longest_run(flags: list[bool]) -> int:
    best = run = 0
    for f in flags:
        run = run + 1 if f else 0
        best = max(best, run)
    return best


def wall() -> float:
    return time.monotonic()
