"""The firmware under the real MicroPython (devices/host/run.py) as a process of the test.

Reads the device's stdout on a thread: the output lines (`relay on ...`, `leds ...`),
its log lines and the `stat ...` status lines (every P1_HOST_STAT_MS), with the
time each arrived.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

REPO = Path(__file__).resolve().parents[2]
RUN = REPO / "devices" / "host" / "run.py"


def parse_stat(line: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in line.split()[1:]:
        k, _, v = part.partition("=")
        out[k] = int(v) if v.lstrip("-").isdigit() else v
    return out


class HostDevice:
    def __init__(self, device: str, port: int, workdir: Path, *settings: str,
                 env: dict[str, str] | None = None, uart: Path | None = None,
                 wifi_file: Path | None = None, device_id: str = "dev1") -> None:
        self.device = device
        self.wifi_file = wifi_file
        cmd = [sys.executable, str(RUN), device, "--mqtt-url", f"mqtt://127.0.0.1:{port}",
               "--device-id", device_id, "--workdir", str(workdir)]
        for s in settings:
            cmd += ["--set", s]
        if uart is not None:
            cmd += ["--uart", str(uart)]
        if wifi_file is not None:
            wifi_file.write_text("up")
            cmd += ["--wifi-file", str(wifi_file)]
        e = dict(os.environ)
        e["P1_HOST_STAT_MS"] = "100"
        e.update(env or {})
        self.lines: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     env=e, text=True, bufsize=1)
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._lock:
                self.lines.append((time.monotonic(), line.rstrip("\n")))

    def output(self) -> list[str]:
        with self._lock:
            return [line for _, line in self.lines]

    def find(self, prefix: str) -> list[tuple[float, str]]:
        with self._lock:
            return [(t, line) for t, line in self.lines if line.startswith(prefix)]

    def stat(self) -> dict[str, Any]:
        got = self.find("stat ")
        return parse_stat(got[-1][1]) if got else {}

    def wait(self, pred: Callable[[], Any], timeout_s: float = 20.0, what: str = "") -> Any:
        deadline = time.monotonic() + timeout_s
        while True:
            v = pred()
            if v:
                return v
            if self.proc.poll() is not None:
                raise AssertionError(f"device exited ({self.proc.returncode}) waiting for {what}:\n"
                                     + "\n".join(self.output()[-30:]))
            if time.monotonic() > deadline:
                raise AssertionError(f"not within {timeout_s} s: {what}\n"
                                     + "\n".join(self.output()[-30:]))
            time.sleep(0.02)

    def wait_stat(self, pred: Callable[[dict[str, Any]], Any], timeout_s: float = 20.0,
                  what: str = "") -> dict[str, Any]:
        """The first status line from now on for which pred holds."""
        n = len(self.find("stat "))

        def check() -> dict[str, Any] | None:
            for _, line in self.find("stat ")[n:]:
                st = parse_stat(line)
                if pred(st):
                    return st
            return None
        return self.wait(check, timeout_s, what)  # type: ignore[no-any-return]

    def last(self, prefix: str) -> str | None:
        got = self.find(prefix)
        return got[-1][1] if got else None

    def wifi(self, up: bool) -> None:
        assert self.wifi_file is not None
        tmp = self.wifi_file.with_suffix(".tmp")
        tmp.write_text("up" if up else "down")
        tmp.replace(self.wifi_file)

    def stop(self) -> list[str]:
        """Ctrl-C: the device closes its link and prints its summary; -> all its lines."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._t.join(5)
        return self.output()

    def high_water(self) -> int:
        line = self.last("heap high-water:")
        assert line is not None, "no summary"
        return int(line.split()[2])


class Publisher:
    """A paho client that publishes many messages without waiting for each."""

    def __init__(self, port: int) -> None:
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        self.c.max_queued_messages_set(0)
        self.c.max_inflight_messages_set(100)
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        self.last: Any = None

    def pub(self, topic: str, payload: bytes | str, qos: int = 0) -> None:
        self.last = self.c.publish(topic, payload, qos=qos)

    def flush(self) -> None:
        if self.last is not None:
            self.last.wait_for_publish(20)

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()
