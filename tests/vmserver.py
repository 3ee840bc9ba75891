"""A real VictoriaMetrics (Debian ``victoria-metrics``) on a free loopback port.

It accepts influxdb-client's ``/api/v2/write`` (a field becomes the series
``<measurement>_<field>``) and gives the points back through ``/api/v1/export``,
so the recorder is tested against a real server of the InfluxDB v2 write API.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from support import free_port


def vm_binary() -> str | None:
    return shutil.which("victoria-metrics")


class VictoriaMetrics:
    def __init__(self) -> None:
        binary = vm_binary()
        if not binary:
            raise RuntimeError("victoria-metrics is not installed (make setup installs it)")
        self.binary = binary
        self.dir = Path(tempfile.mkdtemp(prefix="p1-vm-"))
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.log = open(self.dir / "vm.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [self.binary, f"-httpListenAddr=127.0.0.1:{self.port}",
             f"-storageDataPath={self.dir / 'data'}", "-search.latencyOffset=0s",
             "-retentionPeriod=100y", "-loggerLevel=ERROR"],
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("victoria-metrics exited: " + (self.dir / "vm.log").read_text())
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=0.5) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("victoria-metrics did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)
        self.proc = None
        self.log.close()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def export(self, match: str = '{__name__=~".+"}') -> dict[str, list[tuple[int, float]]]:
        """Every series as ``name{tag=value,...}`` -> [(time_ms, value), ...] in time order."""
        with urllib.request.urlopen(self.url + "/internal/force_flush", timeout=10):
            pass
        query = urllib.parse.urlencode({"match[]": match})
        with urllib.request.urlopen(f"{self.url}/api/v1/export?{query}", timeout=10) as resp:
            body = resp.read().decode()
        out: dict[str, list[tuple[int, float]]] = {}
        for line in body.splitlines():
            if not line.strip():
                continue
            row: dict[str, Any] = json.loads(line)
            metric = dict(row["metric"])
            name = metric.pop("__name__")
            tags = ",".join(f"{k}={v}" for k, v in sorted(metric.items()))
            key = f"{name}{{{tags}}}"
            pairs = sorted(zip(row["timestamps"], row["values"], strict=True))
            out.setdefault(key, []).extend(pairs)
            out[key].sort()
        return out
