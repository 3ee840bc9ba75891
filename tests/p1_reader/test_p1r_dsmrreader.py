"""Forwarding to dsmr-reader's remote datalogger API (P1_DSMRREADER_URL) against a small
HTTP server in this test that checks each request as dsmr-reader documents it
(https://dsmr-reader.readthedocs.io/en/latest/api.html, "[API v1] Remote datalogger"):
POST /api/v1/datalogger/dsmrreading, form-encoded, the one parameter `telegram` holding the
raw telegram with its \\r\\n, header `Authorization: Token <key>`; 201 with an empty body on
success. It stands in for dsmr-reader (no Django here); p1-reader is a real process reading
a real pipe. Expected telegrams are cut from the capture by a regular expression here."""

from __future__ import annotations

import re
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from p1r_support import STREAM, ReaderProc

from support import Mosquitto, wait_for

TELEGRAMS = re.findall(rb"/[^!]*![0-9A-F]{4}\r\n", STREAM.read_bytes())
KEY = "3ZJ7XQK1L0W9P2M8N4B6V5C3"


class DsmrReaderStandIn:
    def __init__(self) -> None:
        self.key = KEY
        self.fail_next = 0  # answer 503 to this many requests (dsmr-reader restarting)
        self.stored: list[bytes] = []  # telegrams accepted (201)
        self.problems: list[str] = []  # requests that break the documented form
        self.answers: list[int] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status = stand_in.judge(self.path, dict(self.headers), body)
                stand_in.answers.append(status)
                payload = b"" if status == 201 else b'{"detail":"see the status"}'
                self.send_response(status)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def judge(self, path: str, headers: dict[str, str], body: bytes) -> int:
        if path != "/api/v1/datalogger/dsmrreading":
            self.problems.append(f"path {path}")
            return 404
        if headers.get("Content-Type") != "application/x-www-form-urlencoded":
            self.problems.append(f"content type {headers.get('Content-Type')}")
            return 400
        if headers.get("Authorization") != f"Token {self.key}":
            return 403
        if self.fail_next:
            self.fail_next -= 1
            return 503
        form = parse_qs(body.decode("ascii"), keep_blank_values=True, strict_parsing=True)
        if list(form) != ["telegram"] or len(form["telegram"]) != 1:
            self.problems.append(f"form {list(form)}")
            return 400
        self.stored.append(form["telegram"][0].encode("ascii"))
        return 201

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_forward_every_second_telegram_retry_and_refusal(mosquitto: Mosquitto,
                                                         tmp_path: Path) -> None:
    assert len(TELEGRAMS) == 566
    dsmr = DsmrReaderStandIn()
    proc = ReaderProc(mosquitto.url, mosquitto.port, "fwd-dsmr", tmp_path, ["--serial", "-"],
                      stdin=subprocess.PIPE, P1_DSMRREADER_URL=dsmr.url,
                      P1_DSMRREADER_API_KEY=KEY, P1_DSMRREADER_EVERY="2")
    assert proc.proc.stdin is not None

    def feed(telegrams: list[bytes]) -> None:
        assert proc.proc.stdin is not None
        proc.proc.stdin.write(b"".join(telegrams))
        proc.proc.stdin.flush()

    try:
        feed(TELEGRAMS[:10])  # accepted 1..10: the 1st, 3rd, ... go to dsmr-reader
        wait_for(lambda: len(dsmr.stored) == 5)
        assert dsmr.stored == TELEGRAMS[0:10:2]  # byte for byte, \r\n and all
        # dsmr-reader restarting: two 503s, the telegram waits and is posted afterwards
        dsmr.fail_next = 2
        feed(TELEGRAMS[10:12])
        wait_for(lambda: len(dsmr.stored) == 6, 20)
        assert dsmr.stored[-1] == TELEGRAMS[10]
        assert proc.metric("p1_reader_dsmrreader_posts_total", result="retry") == 2
        # a wrong key: refused (403), counted, not retried
        dsmr.key = "another key"
        feed(TELEGRAMS[12:14])
        wait_for(lambda: proc.metric("p1_reader_dsmrreader_posts_total", result="refused") == 1)
        dsmr.key = KEY
        feed(TELEGRAMS[14:16])
        wait_for(lambda: len(dsmr.stored) == 7)
        assert dsmr.stored[-1] == TELEGRAMS[14]
        assert dsmr.answers.count(403) == 1 and dsmr.problems == []
        assert proc.metric("p1_reader_dsmrreader_posts_total", result="ok") == 7
        assert proc.metric("p1_reader_dsmrreader_dropped_total") == 0
    finally:
        proc.proc.stdin.close()
        assert proc.wait() == 0, proc.output()
        dsmr.close()


def test_dsmrreader_settings_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from p1_reader.cli import main

    monkeypatch.delenv("P1_DSMRREADER_API_KEY", raising=False)
    assert main(["--dsmrreader-url", "http://127.0.0.1:9", "--serial", "-"]) == 2  # no key
    assert main(["--dsmrreader-url", "ftp://x", "--serial", "-"]) == 2
