"""The whole p1-reader process: CPU seconds per 1,000 telegrams and latency (pty -> MQTT).

Starts a private Mosquitto (tests/support.py), a pty pair and the ``p1-reader``
console script on the pty; a subscriber measures from the last byte written to the
pty to the ``reading`` message received. The telegrams are different ones: a stream
of meter-sim Fluvius eMUCS 1.7.1 telegrams (own clock, powers, voltages each).
Reference in the same run: the in-process cost of framing + CRC + parse of the same
telegrams, caches emptied first. Standalone: ``python -m bench.reader``.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import termios
import time
import tty
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from meter_sim.clock import parse_local  # noqa: E402
from meter_sim.scenario import build  # noqa: E402
from meter_sim.sim import Simulator  # noqa: E402
from p1common.dsmr.framer import TelegramFramer  # noqa: E402
from p1common.dsmr.parser import clear_caches, parse_telegram  # noqa: E402
from support import Mosquitto, Subscriber  # noqa: E402

CPU_TELEGRAMS = 2000
LATENCY_SAMPLES = 300


def _telegrams(n: int) -> list[bytes]:
    sim = Simulator(build({"seed": 3}, start=parse_local("2026-01-15T18:00")))
    out = []
    for _ in range(n):
        sim.step()
        out.append(sim.telegram())
    return out


TELEGRAMS = _telegrams(CPU_TELEGRAMS + LATENCY_SAMPLES + 100)


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _in_process_us() -> float:
    clear_caches()
    framer = TelegramFramer()
    t0 = time.process_time()
    for telegram in TELEGRAMS:
        for t in framer.feed(telegram):
            parse_telegram(t)
    return (time.process_time() - t0) / len(TELEGRAMS) * 1e6


def run(report: Any) -> None:
    broker = Mosquitto(extra_conf="set_tcp_nodelay true\n")  # as deploy/mosquitto configures it
    master, slave = os.openpty()
    tty.setraw(slave)
    attrs = termios.tcgetattr(slave)
    attrs[4] = attrs[5] = termios.B115200
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    env = {**os.environ, "MQTT_URL": broker.url, "P1_SITE": "bench", "P1_HA_DISCOVERY": "false",
           "P1_SERIAL_URL": os.ttyname(slave), "P1_SERIAL_PROFILE": "dsmr4", "LOG_LEVEL": "WARNING"}
    exe = Path(sys.executable).parent / "p1-reader"
    proc = subprocess.Popen([str(exe)], env=env, stderr=subprocess.DEVNULL)
    sub = Subscriber(broker.port, "p1/bench/reading")
    try:
        stream = iter(TELEGRAMS)
        deadline = time.monotonic() + 20
        while not sub.on("p1/bench/reading"):  # wait until the port is open and MQTT is up
            assert time.monotonic() < deadline, "p1-reader did not publish"
            os.write(master, next(stream))
            time.sleep(0.2)
        time.sleep(0.3)
        print("  latency ...", flush=True)
        latencies = []
        while not sub.queue.empty():
            sub.queue.get_nowait()
        for _ in range(LATENCY_SAMPLES):
            os.write(master, next(stream))
            t0 = time.monotonic()
            msg = sub.queue.get(timeout=5)  # blocks: no polling in the measuring process
            latencies.append((msg.t - t0) * 1000)
            time.sleep(0.01)
        print("  CPU ...", flush=True)
        n0 = len(sub.on("p1/bench/reading"))
        cpu0, wall0 = _cpu_s(proc.pid), time.monotonic()
        for _ in range(CPU_TELEGRAMS):  # 100 telegrams/s, 100x a real meter
            os.write(master, next(stream))
            time.sleep(0.01)
        deadline = time.monotonic() + 20
        while len(sub.on("p1/bench/reading")) < n0 + CPU_TELEGRAMS:
            assert time.monotonic() < deadline, "readings lost"
            time.sleep(0.05)
        cpu = _cpu_s(proc.pid) - cpu0
        wall = time.monotonic() - wall0
    finally:
        sub.close()
        proc.terminate()
        proc.wait(10)
        os.close(master)
        os.close(slave)
        broker.close()
    per_1000 = cpu / CPU_TELEGRAMS * 1000
    ref_us = _in_process_us()
    lat = sorted(latencies)
    p50 = statistics.median(lat)
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    lines = [
        f"p1-reader as a process (console script), {len(TELEGRAMS)} different meter-sim Fluvius "
        f"1.7.1 telegrams (about {len(TELEGRAMS[-1])} bytes each) written to a pty at 115200 "
        "baud settings, private Mosquitto on loopback.",
        "",
        "| measure | value |",
        "|---|---:|",
        f"| CPU seconds per 1,000 telegrams (whole process, {CPU_TELEGRAMS} telegrams at "
        f"100/s over {wall:.0f} s) | {per_1000:.3f} s |",
        f"| of which framing + CRC + parse (in-process reference, same run) | "
        f"{ref_us / 1000:.3f} s ({ref_us / (per_1000 * 1000) * 100:.0f} %) |",
        f"| latency last byte on pty -> `reading` at a subscriber, p50 ({LATENCY_SAMPLES} samples) "
        f"| {p50:.2f} ms |",
        f"| latency p99 | {p99:.2f} ms |",
        "",
        f"Target p99 <= 5 ms on loopback: **{'met' if p99 <= 5 else 'NOT met'}**. A real meter "
        f"sends one telegram per second: {per_1000 / 1000 * 100:.2f} % of one core.",
    ]
    report.section("p1-reader: process CPU and latency", "\n".join(lines))


class _Print:
    def section(self, title: str, markdown: str) -> None:
        print(f"## {title}\n\n{markdown}\n")


if __name__ == "__main__":
    run(_Print())
