"""Helpers of the reliability suite: service processes, their metrics, status watching."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from support import Mosquitto, Subscriber, free_port, metric_sum, wait_for

BIN = Path(sys.executable).parent
STARTED: list[Proc] = []  # every process a test started; conftest stops them after it


class Proc:
    """One service as a real process (its console script), with a log and a metrics port."""

    def __init__(self, name: str, args: list[str], broker: Mosquitto | None, state: Path,
                 client_id: str | None = None, metrics: bool = True, **env: str) -> None:
        self.name = name
        self.client_id = client_id or f"rel-{name}-{os.getpid()}-{free_port()}"
        self.metrics_port = free_port() if metrics else 0
        self.cmd = [str(BIN / name), *args]
        self.env = {
            **os.environ, "P1_STATE_DIR": str(state), "MQTT_CLIENT_ID": self.client_id,
            "LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1",
            **({"MQTT_URL": broker.url} if broker else {}),
            **({"METRICS_PORT": str(self.metrics_port)} if metrics else {}),
            **env,
        }
        self.log_path = state / f"{self.client_id}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.broker = broker

    def start(self, wait_online: bool = True, timeout_s: float = 20.0) -> Proc:
        watch = Subscriber(self.broker.port, self.status_topic) if (
            self.broker and wait_online) else None
        if watch:
            watch.clear()
        with self.log_path.open("ab") as fh:
            self.proc = subprocess.Popen(self.cmd, env=self.env, stdout=fh,
                                         stderr=subprocess.STDOUT)
        STARTED.append(self)
        try:
            if watch:
                # no pause after it: the service sends "online" after its SUBSCRIBEs on the
                # same connection (p1common.mqtt, _on_connect) and the broker handles one
                # client's packets in order, so once "online" is out it receives its topics
                wait_for(lambda: self._online_seen(watch), timeout_s)
            if self.http_port:  # p1-web: its HTTP server listens too
                wait_for(lambda: self._listening(self.http_port), timeout_s)
        finally:
            if watch:
                watch.close()
        return self

    @property
    def http_port(self) -> int | None:
        """The port p1-web was told to serve (``--port N``), else None."""
        if self.name != "p1-web" or "--port" not in self.cmd:
            return None
        return int(self.cmd[self.cmd.index("--port") + 1])

    def _listening(self, port: int) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited ({self.proc.returncode}):\n{self.output()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            return False

    def _online_seen(self, watch: Subscriber) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited ({self.proc.returncode}):\n{self.output()}")
        return any(m.payload == b"online" and not m.retain for m in watch.messages)

    @property
    def status_topic(self) -> str:
        return f"p1/status/{self.client_id}"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int | None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                return self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                return self.proc.wait(5)
        return self.proc.returncode if self.proc else None

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # -- metrics --------------------------------------------------------------------
    def metrics_text(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics",
                                    timeout=3) as r:
            return r.read().decode()

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples called ``name`` whose labels include ``labels`` (0 if none)."""
        return metric_sum(self.metrics_text(), name, **labels)


def last_json(sub: Subscriber, topic: str) -> Any:
    msgs = sub.on(topic)
    return msgs[-1].json() if msgs else None


def good_reading(site: str, n: int, net_w: float = 1500.0, base: str = "2026-01-15T13:00") -> dict:
    """A contract reading ``n`` seconds after ``base`` (Brussels winter time, +01:00)."""
    h, m = int(base[11:13]), int(base[14:16])
    total = h * 3600 + m * 60 + n
    ts = f"{base[:10]}T{total // 3600 % 24:02d}:{total // 60 % 60:02d}:{total % 60:02d}+01:00"
    imp = max(net_w, 0.0)
    exp = max(-net_w, 0.0)
    return {
        "v": 1, "site": site, "source": "sim", "ts": ts, "meter_id": "1SIM0000000001",
        "tariff": 1, "import_t1_kwh": round(1000 + n * imp / 3.6e6, 6), "import_t2_kwh": 500.0,
        "export_t1_kwh": 20.0, "export_t2_kwh": 10.0,
        "import_kwh": round(1500 + n * imp / 3.6e6, 6), "export_kwh": 30.0,
        "import_w": imp, "export_w": exp, "net_w": net_w,
        "l1_import_w": imp, "l2_import_w": 0.0, "l3_import_w": 0.0,
        "l1_export_w": exp, "l2_export_w": 0.0, "l3_export_w": 0.0,
        "l1_voltage_v": 231.0, "l2_voltage_v": 232.0, "l3_voltage_v": 230.0,
        "l1_current_a": round(imp / 231, 2), "l2_current_a": 0.0, "l3_current_a": 0.0,
    }
