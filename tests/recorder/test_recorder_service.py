"""The real ``p1-recorder`` process between the real Mosquitto and a real VictoriaMetrics."""

from __future__ import annotations

import gzip
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from vmserver import VictoriaMetrics

from p1common.topics import Topics
from recorder.settings import RecorderSettings, site_shard
from support import Mosquitto, Subscriber, free_port, wait_for

BIN = Path(sys.executable).parent / "p1-recorder"
BASE_S = 1768481100  # 2026-01-15T12:45:00Z


def iso(second: int) -> str:
    """Meter time (+01:00) ``second`` s after 13:45:00 local."""
    minutes, secs = divmod(second, 60)
    hours, minutes = divmod(45 + minutes, 60)
    return f"2026-01-15T{13 + hours:02d}:{minutes:02d}:{secs:02d}+01:00"


def reading(site: str, i: int) -> dict:
    return {"v": 1, "site": site, "source": "p1", "ts": iso(i), "tariff": 1,
            "import_w": 1000 + i, "export_w": 0, "net_w": 1000 + i,
            "import_kwh": 100 + i / 1000, "l1_voltage_v": 230.5}


class Wiretap:
    """A loopback HTTP proxy in front of the real VictoriaMetrics: keeps each write as it
    went over the wire (path and query, headers, body bytes), passes it on unchanged and
    answers what VictoriaMetrics answered."""

    def __init__(self, target: str) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        tap = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k: v for k, v in self.headers.items()
                           if k in ("Content-Type", "Content-Encoding", "Authorization")}
                tap.requests.append((self.path, dict(self.headers.items()), body))
                req = urllib.request.Request(target + self.path, data=body, headers=headers,
                                             method="POST")
                try:
                    with urllib.request.urlopen(req, timeout=10) as resp:
                        status, answer = resp.status, resp.read()
                except urllib.error.HTTPError as exc:
                    status, answer = exc.code, exc.read()
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class RecorderProc:
    def __init__(self, broker: Mosquitto, vm: VictoriaMetrics, state: Path, prefix: str) -> None:
        self.metrics_port = free_port()
        self.env = {
            **os.environ,
            "MQTT_URL": broker.url, "P1_TOPIC_PREFIX": prefix, "INFLUX_URL": vm.url,
            "INFLUX_TOKEN": "test-token", "INFLUX_ORG": "p1", "INFLUX_BUCKET": "p1",
            "RECORDER_FLUSH_S": "0.2", "RECORDER_BATCH_SIZE": "7", "RECORDER_RETRY_MAX_S": "0.5",
            "P1_STATE_DIR": str(state), "METRICS_PORT": str(self.metrics_port),
            "MQTT_CLIENT_ID": f"recorder-{prefix}", "LOG_LEVEL": "INFO",
        }
        self.log_path = state / "recorder.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen([str(BIN)], env=self.env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        wait_for(lambda: self.metric("p1_mqtt_connected") == 1.0, 15)

    def metric(self, name: str) -> float | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2) as r:
                text = r.read().decode()
        except OSError:
            return None
        m = re.search(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M)
        return float(m.group(1)) if m else None

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc
        self.proc.send_signal(sig)
        code = self.proc.wait(30)
        self.proc = None
        return code

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture()
def setup(mosquitto: Mosquitto, vm: VictoriaMetrics, tmp_path: Path) -> Iterator[tuple]:
    prefix = "rec" + uuid.uuid4().hex[:8]
    rec = RecorderProc(mosquitto, vm, tmp_path, prefix)
    pub = Subscriber(mosquitto.port)
    rec.start()
    yield rec, pub, Topics(prefix), vm
    if rec.proc:
        rec.stop()
    pub.close()


def import_series(vm: VictoriaMetrics, site: str) -> list[tuple[int, float]]:
    return vm.export().get(f"reading_import_w{{site={site}}}", [])


def test_every_topic_kind_arrives_with_exact_values(setup: tuple) -> None:
    rec, pub, t, vm = setup
    pub.publish(t.reading("home"), {**reading("home", 1), "gas_m3": 4567.891,
                                    "gas_ts": "2026-01-15T13:00:00+01:00"})
    pub.publish(t.peak("home"), {"v": 1, "site": "home", "ts": iso(300),
                                 "quarter_start": iso(0), "energy_wh": 300.25, "avg_w": 3603,
                                 "forecast_w": 3900.5, "threshold_w": 3500, "headroom_w": -400.5,
                                 "level": "alarm", "month_peak_w": 3500})
    pub.publish(t.peak_quarter("home"), {"v": 1, "site": "home", "start": iso(0), "end": iso(900),
                                         "energy_wh": 812.5, "avg_w": 3250, "complete": True,
                                         "threshold_w": 3500, "warned_at": None})
    pub.publish(t.peak_month("home"), {"v": 1, "site": "home", "month": "2026-01",
                                       "peak_w": 4100.5, "peak_start": iso(0), "history": [],
                                       "billed_w": 3950.25, "cost_eur_year": 209.36})
    pub.publish(t.output_state("home", "boiler"), {"v": 1, "ts": iso(2), "pct": 41.5,
                                                   "override": False, "seq": 17})
    pub.publish(t.control("home"), {"v": 1, "site": "home", "ts": iso(2), "watchdog": False, "outputs": [
        {"id": "boiler", "kind": "dimmer", "mode": "proportional", "priority": 0, "decision": "pct",
         "on": True, "level_w": 996.0, "reason": "export 996 W", "on_delay_remaining_s": None,
         "min_on_remaining_s": None, "following": None, "device": "no state reports", "seq": 17,
         "pct": 41.5}]})
    pub.publish(t.reading("home"), b"{not json")  # counted and ignored, the rest goes on
    expected = {
        "reading_import_w{site=home}": [((BASE_S + 1) * 1000, 1001.0)],
        "reading_import_kwh{site=home}": [((BASE_S + 1) * 1000, 100.001)],
        "reading_l1_voltage_v{site=home}": [((BASE_S + 1) * 1000, 230.5)],
        "gas_gas_m3{site=home}": [((BASE_S - 2700) * 1000, 4567.891)],
        "peak_forecast_w{site=home}": [((BASE_S + 300) * 1000, 3900.5)],
        "peak_level_code{site=home}": [((BASE_S + 300) * 1000, 2.0)],
        "peak_headroom_w{site=home}": [((BASE_S + 300) * 1000, -400.5)],
        "quarter_avg_w{site=home}": [(BASE_S * 1000, 3250.0)],
        "quarter_warned{site=home}": [(BASE_S * 1000, 0.0)],
        "month_billed_w{site=home}": [(1767225600 * 1000, 3950.25)],
        "month_cost_eur_year{site=home}": [(1767225600 * 1000, 209.36)],
        "output_pct{output=boiler,site=home}": [((BASE_S + 2) * 1000, 41.5)],
        "output_seq{output=boiler,site=home}": [((BASE_S + 2) * 1000, 17.0)],
        "control_pct{output=boiler,site=home}": [((BASE_S + 2) * 1000, 41.5)],
    }

    def arrived() -> bool:
        got = vm.export()
        return all(got.get(k) == v for k, v in expected.items())

    wait_for(arrived, 15)
    wait_for(lambda: (rec.metric("p1_mqtt_bad_payloads_total") or 0) >= 1, 5)


def test_influx_outage_loses_nothing(setup: tuple) -> None:
    rec, pub, t, vm = setup
    for i in range(10):
        pub.publish(t.reading("home"), reading("home", i))
    wait_for(lambda: len(import_series(vm, "home")) == 10, 15)
    vm.stop()
    for i in range(10, 40):
        pub.publish(t.reading("home"), reading("home", i))
    wait_for(lambda: rec.metric("p1_recorder_buffered_points") == 30.0, 15)
    vm.start()
    for i in range(40, 50):
        pub.publish(t.reading("home"), reading("home", i))
    want = [((BASE_S + i) * 1000, 1000.0 + i) for i in range(50)]
    wait_for(lambda: import_series(vm, "home") == want, 20)
    assert rec.metric("p1_recorder_buffered_points") == 0.0
    assert "buffer drained" in rec.log()


def test_restart_replays_the_disk_buffer(setup: tuple) -> None:
    """A crash (SIGKILL) while InfluxDB is away: the next start writes what was buffered."""
    rec, pub, t, vm = setup
    vm.stop()
    for i in range(20):
        pub.publish(t.reading("home"), reading("home", i))
    wait_for(lambda: rec.metric("p1_recorder_buffered_points") == 20.0, 15)
    rec.stop(signal.SIGKILL)
    vm.start()
    rec.start()
    want = [((BASE_S + i) * 1000, 1000.0 + i) for i in range(20)]
    wait_for(lambda: import_series(vm, "home") == want, 20)
    assert "points from before the restart" in rec.log()


def test_clean_stop_keeps_unwritten_points(setup: tuple) -> None:
    rec, pub, t, vm = setup
    vm.stop()
    for i in range(3):
        pub.publish(t.reading("home"), reading("home", i))
    wait_for(lambda: rec.metric("p1_recorder_buffered_points") == 3.0, 15)
    assert rec.stop() == 0
    assert "3 on disk for later" in rec.log()


def test_shard_and_sites_filter(setup: tuple, mosquitto: Mosquitto, vm: VictoriaMetrics,
                                tmp_path: Path) -> None:
    rec, pub, t, _ = setup
    rec.stop()
    rec.env["RECORDER_SITES"] = "alpha,beta"
    rec.start()
    pub.publish(t.reading("alpha"), reading("alpha", 1))
    pub.publish(t.reading("gamma"), reading("gamma", 1))
    pub.publish(t.reading("beta"), reading("beta", 1))
    wait_for(lambda: import_series(vm, "beta") and import_series(vm, "alpha"), 15)
    assert import_series(vm, "gamma") == []


def test_shard_is_stable_and_partitions_sites() -> None:
    sites = [f"site{i}" for i in range(40)]
    shards = [RecorderSettings(shard=(i, 3)) for i in range(3)]
    owners = [[s.records_site(site) for s in shards].count(True) for site in sites]
    assert owners == [1] * 40  # every site recorded by exactly one shard
    assert site_shard("home", 4) == zlib.crc32(b"home") % 4 == 0
    assert RecorderSettings(sites=("a",), shard=(0, 1)).records_site("b") is False


def test_settings_errors_and_check() -> None:
    env = {**os.environ, "RECORDER_BATCH_SIZE": "zero", "P1_STATE_DIR": "/tmp/p1-rec-check"}
    bad = subprocess.run([str(BIN)], env=env, capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2
    assert "RECORDER_BATCH_SIZE: 'zero' is not an integer" in bad.stderr
    env = {**os.environ, "INFLUX_URL": "ftp://x", "P1_STATE_DIR": "/tmp/p1-rec-check"}
    bad = subprocess.run([str(BIN)], env=env, capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "INFLUX_URL" in bad.stderr
    env = {**os.environ, "RECORDER_PEAK_EVERY_S": "-1", "P1_STATE_DIR": "/tmp/p1-rec-check"}
    bad = subprocess.run([str(BIN)], env=env, capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "RECORDER_PEAK_EVERY_S" in bad.stderr
    env = {**os.environ, "INFLUX_TOKEN": "s3cret", "RECORDER_SHARD": "1/3"}
    ok = subprocess.run([str(BIN), "--check", "--influx-bucket", "energy", "--sites", "a,b"],
                        env=env, capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0, ok.stderr
    assert "influx_bucket: energy" in ok.stdout and "shard: (1, 3)" in ok.stdout
    assert "long_bucket: energy_long" in ok.stdout and "peak_every_s: 10" in ok.stdout
    assert "sites: ('a', 'b')" in ok.stdout and "s3cret" not in ok.stdout
    helptext = subprocess.run([str(BIN), "--help"], capture_output=True, text=True, timeout=30)
    assert "INFLUX_TOKEN_FILE" in helptext.stdout and "RECORDER_BUFFER_MAX_MB" in helptext.stdout
    assert "INFLUX_LONG_BUCKET" in helptext.stdout and "RECORDER_PEAK_EVERY_S" in helptext.stdout


def test_gzip_seconds_buckets_tariff_low_and_thinned_peaks_on_the_wire(
        mosquitto: Mosquitto, vm: VictoriaMetrics, tmp_path: Path) -> None:
    """What goes over the wire to a real VictoriaMetrics: gzip bodies, precision s, quarter and
    month records to the long-term bucket, tariff_low as 0/1, peak every 10 s, not every second."""
    tap = Wiretap(vm.url)
    prefix = "rec" + uuid.uuid4().hex[:8]
    rec = RecorderProc(mosquitto, vm, tmp_path, prefix)
    rec.env["INFLUX_URL"] = tap.url
    pub = Subscriber(mosquitto.port)
    t = Topics(prefix)
    try:
        rec.start()
        for i in range(10):  # the low tariff starts at 13:45:05
            pub.publish(t.reading("home"), {**reading("home", i), "tariff_low": i >= 5})
        for i in range(25):  # one peak a second, as the forecaster publishes them
            pub.publish(t.peak("home"), {"v": 1, "site": "home", "ts": iso(i), "quarter_start": iso(0),
                                         "energy_wh": 1.0, "avg_w": 4.0 * i, "forecast_w": 2.0,
                                         "threshold_w": 2500.0, "headroom_w": 3.0, "level": "ok",
                                         "month_peak_w": 2500.0})
        pub.publish(t.peak_quarter("home"), {"v": 1, "site": "home", "start": iso(0), "end": iso(900),
                                             "energy_wh": 812.5, "avg_w": 3250, "complete": True,
                                             "threshold_w": 3500, "warned_at": None})
        pub.publish(t.peak_month("home"), {"v": 1, "site": "home", "month": "2026-01",
                                           "peak_w": 4100.5, "peak_start": iso(0),
                                           "history": [{"month": "2025-02", "peak_w": 3000}],
                                           "billed_w": 3950.25, "cost_eur_year": 209.36})
        expected = {
            "reading_tariff_low{site=home}": [((BASE_S + i) * 1000, 1.0 if i >= 5 else 0.0)
                                              for i in range(10)],
            "reading_import_w{site=home}": [((BASE_S + i) * 1000, 1000.0 + i) for i in range(10)],
            "peak_avg_w{site=home}": [((BASE_S + i) * 1000, 4.0 * i) for i in (0, 10, 20)],
            "quarter_avg_w{site=home}": [(BASE_S * 1000, 3250.0)],
            "month_peak_w{site=home}": [(1738368000 * 1000, 3000.0),  # 2025-02-01T00:00:00Z
                                        (1767225600 * 1000, 4100.5)],  # 2026-01-01T00:00:00Z
        }

        def arrived() -> bool:
            got = vm.export()
            return all(got.get(k) == v for k, v in expected.items())

        wait_for(arrived, 15)
        rec.stop()  # every batch written: the wire record is complete
        by_bucket: dict[str, list[str]] = {}
        for path, headers, body in tap.requests:
            url = urllib.parse.urlsplit(path)
            query = dict(urllib.parse.parse_qsl(url.query))
            assert url.path == "/api/v2/write"
            assert query["precision"] == "s" and query["org"] == "p1", query
            assert headers["Content-Encoding"] == "gzip"
            raw = gzip.decompress(body)
            assert len(body) < len(raw) or len(raw) < 200  # compressed (tiny bodies may not shrink)
            by_bucket.setdefault(query["bucket"], []).extend(raw.decode().splitlines())
        assert set(by_bucket) == {"p1", "p1_long"}
        assert {line.split(",")[0] for line in by_bucket["p1"]} == {"reading", "peak"}
        assert {line.split(",")[0] for line in by_bucket["p1_long"]} == {"quarter", "month"}
        stamps = {line.rsplit(" ", 1)[1] for lines in by_bucket.values() for line in lines}
        # readings 0..9 s, peaks at 0, 10 and 20 s, the quarter at 0 s, the months: whole seconds
        assert stamps == {str(BASE_S + i) for i in (*range(10), 10, 20)} | {"1738368000", "1767225600"}
        assert len([line for line in by_bucket["p1"] if line.startswith("peak,")]) == 3
    finally:
        if rec.proc:
            rec.stop()
        pub.close()
        tap.close()
