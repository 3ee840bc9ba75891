"""P1_SOURCE=homewizard against a HARDWARE STAND-IN: a small HTTP(S) server in this test
that answers as HomeWizard's documentation says the Wi-Fi P1 Meter (HWE-P1) does
(api-documentation.homewizard.com: v1 GET /api/v1/telegram over HTTP; v2 GET
/api/telegram over HTTPS with "Authorization: Bearer <token>" and "X-Api-Version: 2",
401 user:unauthorized for a bad token, 503 before the first telegram), serving real
telegrams from tests/data/telegrams. No HomeWizard device is involved: what the real
device does beyond its documentation is not tested here.

p1-reader is a real process; the readings come through the real Mosquitto."""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from p1r_support import ReaderProc, telegram_bytes

from support import Mosquitto, Subscriber, free_port, wait_for

FLUVIUS = telegram_bytes("dsmr_parser__fluvius_v171.txt")
ISK5 = telegram_bytes("nielsbasjes__ISK5_AM550T_real.txt")
V5 = telegram_bytes("dsmr_parser__v5.txt")
BAD_CRC = ISK5.replace(b"00.377*kW", b"00.999*kW")
TOKEN = "5C2FAFAABBCC1234567890ABCDEF0123"


class StandIn:
    """The HomeWizard P1 Meter's local API as documented; ``body`` is what it serves now
    (None: no telegram yet -> 503)."""

    def __init__(self, port: int, token: str | None = None, cert: Path | None = None) -> None:
        self.body: bytes | None = None
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.connections: list[Any] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as an HTTP/1.1 device

            def setup(self) -> None:
                super().setup()
                stand_in.connections.append(self.connection)

            def do_GET(self) -> None:
                stand_in.requests.append((self.path, dict(self.headers)))
                if token is not None:
                    if self.path != "/api/telegram":
                        return self._send(404, b'{"error":"request:not-found"}', "application/json")
                    if (self.headers.get("Authorization") != f"Bearer {token}"
                            or self.headers.get("X-Api-Version") != "2"):
                        return self._send(401, b'{"error":"user:unauthorized"}', "application/json")
                elif self.path != "/api/v1/telegram":
                    return self._send(404, b'{"error":"request:not-found"}', "application/json")
                if stand_in.body is None:
                    return self._send(503, b'{"error":"telegram:unavailable"}', "application/json")
                return self._send(200, stand_in.body, "text/plain")

            def _send(self, status: int, body: bytes, ctype: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        if cert is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(cert, cert.with_suffix(".key"))
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        """The device is gone: no listener, and its open connections cut."""
        self.server.shutdown()
        self.server.server_close()
        for conn in self.connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def make_cert(path: Path) -> Path:
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=appliance-p1meter-standin", "-keyout", str(path.with_suffix(".key")),
                    "-out", str(path)], check=True, capture_output=True, timeout=60)
    return path


def test_v1_polls_telegrams_and_reconnects(mosquitto: Mosquitto, tmp_path: Path) -> None:
    site, port = "hw-v1", free_port()
    device = StandIn(port)
    reading = f"p1/{site}/reading"
    sub = Subscriber(mosquitto.port, reading)
    proc = ReaderProc(mosquitto.url, mosquitto.port, site, tmp_path, ["--source", "homewizard"],
                      P1_HOMEWIZARD_HOST=f"127.0.0.1:{port}", P1_HOMEWIZARD_INTERVAL_S="0.5")
    try:
        # no telegram yet: 503, counted
        wait_for(lambda: proc.metric("p1_reader_source_errors_total", source="homewizard",
                                     reason="no_telegram") >= 1)
        device.body = FLUVIUS
        first = sub.wait(reading)[0].json()
        assert (first["meter_id"], first["import_kwh"], first["gas_m3"], first["month_max_w"]) == (
            "1SAG3101021605", 15.792, 112.384, 2589.0)
        polls = len(device.requests)
        wait_for(lambda: len(device.requests) >= polls + 2)  # the same telegram polled again...
        device.body = BAD_CRC
        wait_for(lambda: proc.metric("p1_reader_bad_telegrams_total", reason="crc") == 1)
        device.body = b"<html>not a telegram</html>"
        wait_for(lambda: proc.metric("p1_reader_source_errors_total", source="homewizard",
                                     reason="no_start") >= 1)
        device.body = V5  # the marker
        msgs = sub.wait(reading, 2)
        assert [m.json()["meter_id"] for m in msgs] == ["1SAG3101021605", "K8EG004046395507"]
        assert msgs[1].json()["import_w"] == 244.0
        assert proc.metric("p1_reader_bad_telegrams_total", reason="crc") == 1  # once, not per poll
        assert {p for p, _ in device.requests} == {"/api/v1/telegram"}
        assert all("Authorization" not in h for _, h in device.requests)

        device.close()  # the device goes away (reboot, Wi-Fi)...
        wait_for(lambda: proc.metric("p1_reader_source_errors_total", source="homewizard",
                                     reason="connect") >= 1)
        device = StandIn(port)  # ...and comes back
        device.body = ISK5
        again = sub.wait(reading, 3)[2].json()
        assert (again["meter_id"], again["import_w"]) == ("E0044007131650618", 377.0)
        assert proc.metric("p1_reader_telegrams_total") == 3
    finally:
        sub.close()
        device.close()
        assert proc.stop() == 0, proc.output()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_v2_https_token(mosquitto: Mosquitto, tmp_path: Path) -> None:
    site, port = "hw-v2", free_port()
    cert = make_cert(tmp_path / "device.pem")
    device = StandIn(port, token=TOKEN, cert=cert)
    device.body = ISK5
    reading = f"p1/{site}/reading"
    sub = Subscriber(mosquitto.port, reading)
    wrong = ReaderProc(mosquitto.url, mosquitto.port, site, tmp_path, ["--source", "homewizard"],
                       P1_HOMEWIZARD_HOST=f"127.0.0.1:{port}", P1_HOMEWIZARD_TOKEN="not-the-token",
                       P1_HOMEWIZARD_INTERVAL_S="0.5")
    try:
        wait_for(lambda: wrong.metric("p1_reader_source_errors_total", source="homewizard",
                                      reason="auth") >= 1)
        assert wrong.metric("p1_reader_telegrams_total") == 0
    finally:
        assert wrong.stop() == 0, wrong.output()
    proc = ReaderProc(mosquitto.url, mosquitto.port, site, tmp_path, ["--source", "homewizard"],
                      P1_HOMEWIZARD_HOST=f"https://127.0.0.1:{port}", P1_HOMEWIZARD_TOKEN=TOKEN,
                      P1_HOMEWIZARD_CA_FILE=str(cert), P1_HOMEWIZARD_INTERVAL_S="0.5")
    try:
        got = sub.wait(reading)[0].json()
        assert (got["meter_id"], got["import_w"], got["import_kwh"]) == (
            "E0044007131650618", 377.0, 6657.459)
        path, headers = device.requests[-1]
        assert (path, headers["Authorization"], headers["X-Api-Version"]) == (
            "/api/telegram", f"Bearer {TOKEN}", "2")
        assert json.loads(sub.on(reading)[0].payload)["source"] == "p1"
    finally:
        sub.close()
        device.close()
        assert proc.stop() == 0, proc.output()


@pytest.mark.parametrize(("env", "field"), [
    ({}, "P1_HOMEWIZARD_HOST"),
    ({"P1_HOMEWIZARD_HOST": "https://10.0.0.9"}, "P1_HOMEWIZARD_TOKEN"),
    ({"P1_HOMEWIZARD_HOST": "http://10.0.0.9", "P1_HOMEWIZARD_TOKEN": "x"}, "P1_HOMEWIZARD_TOKEN"),
    ({"P1_HOMEWIZARD_HOST": "10.0.0.9", "P1_HOMEWIZARD_INTERVAL_S": "0.1"}, "P1_HOMEWIZARD_INTERVAL_S"),
])
def test_homewizard_settings_refused(env: dict[str, str], field: str, tmp_path: Path) -> None:
    done = subprocess.run([str(Path(sys.executable).parent / "p1-reader"), "--source", "homewizard"],
                          capture_output=True, text=True, timeout=30,
                          env={"PATH": "/usr/bin:/bin", **env})
    assert done.returncode == 2, done.stderr
    assert field in done.stderr
