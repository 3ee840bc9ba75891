"""The serial port goes away and comes back: p1-reader publishes again within 3 s each time.

Two ways a port disappears: the pty (USB cable) closes and meter-sim comes back with the
same ``--pty-link``; the TCP server (ser2net) is dropped and comes back on the same port.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from rel_support import Proc

from support import Mosquitto, Subscriber, free_port, wait_for

SITE = "relserial"


def _sim(broker: Mosquitto, tmp: Path, *out: str, counters: dict[str, float] | None = None) -> Proc:
    """The meter (no MQTT for the simulator here). ``counters``: a restarted simulator is
    the same meter, its counters where they were (a real meter's never go back, and
    p1-reader refuses a reading whose counters do: p1common.plausibility)."""
    args = [*out, "--speed", "1", "--no-mqtt"]
    if counters:
        scenario = tmp / f"meter-{len(list(tmp.glob('meter-*.yaml')))}.yaml"
        scenario.write_text(yaml.safe_dump({"meter": counters}))
        args += ["--scenario", str(scenario)]
    return Proc("meter-sim", args, None, tmp, metrics=False)


COUNTERS = ("import_t1_kwh", "import_t2_kwh", "export_t1_kwh", "export_t2_kwh", "gas_m3", "water_m3")


def _cycles(broker: Mosquitto, tmp: Path, url: str, out: list[str], times: int,
            ready: Callable[[], None]) -> None:
    sub = Subscriber(broker.port, f"p1/{SITE}/reading")
    sim = _sim(broker, tmp, *out).start(wait_online=False)
    ready()
    reader = Proc("p1-reader", ["--serial", url, "--site", SITE, "--profile", "dsmr4"],
                  broker, tmp, P1_HA_DISCOVERY="false").start()
    try:
        sub.wait(f"p1/{SITE}/reading", 1, 15)
        for k in range(times):
            sim.stop()
            time.sleep(1.5)  # gone for a while
            n = len(sub.on(f"p1/{SITE}/reading"))
            last = sub.on(f"p1/{SITE}/reading")[-1].json()
            sim = _sim(broker, tmp, *out, counters={k: last[k] for k in COUNTERS if k in last}).start(
                wait_online=False)
            ready()
            back = time.monotonic()
            wait_for(lambda n=n: len(sub.on(f"p1/{SITE}/reading")) > n, 10)
            took = sub.on(f"p1/{SITE}/reading")[n].t - back
            assert took < 3.0, f"cycle {k}: published again after {took:.1f} s"
            assert reader.alive(), reader.output()[-2000:]
        assert "Traceback" not in reader.output(), reader.output()[-3000:]
    finally:
        sub.close()
        reader.stop()
        sim.stop()


def _pty(private_mosquitto: Mosquitto, tmp_path: Path, times: int) -> None:
    link = tmp_path / "ttyP1"

    def ready() -> None:
        wait_for(lambda: link.exists(), 10)

    _cycles(private_mosquitto, tmp_path, str(link), ["--pty-link", str(link)], times, ready)


def _tcp(private_mosquitto: Mosquitto, tmp_path: Path, times: int) -> None:
    port = free_port()

    def ready() -> None:
        def listening() -> bool:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                return True
            except OSError:
                return False
        wait_for(listening, 10)

    _cycles(private_mosquitto, tmp_path, f"socket://127.0.0.1:{port}",
            ["--tcp", str(port)], times, ready)


def test_pty_gone_and_back_three_times(private_mosquitto: Mosquitto, tmp_path: Path) -> None:
    _pty(private_mosquitto, tmp_path, 3)


def test_tcp_server_gone_and_back_three_times(private_mosquitto: Mosquitto,
                                              tmp_path: Path) -> None:
    _tcp(private_mosquitto, tmp_path, 3)


@pytest.mark.soak
@pytest.mark.timeout(3600)
def test_soak_pty_twenty_times(private_mosquitto: Mosquitto, tmp_path: Path) -> None:
    _pty(private_mosquitto, tmp_path, 20)


@pytest.mark.soak
@pytest.mark.timeout(3600)
def test_soak_tcp_twenty_times(private_mosquitto: Mosquitto, tmp_path: Path) -> None:
    _tcp(private_mosquitto, tmp_path, 20)
