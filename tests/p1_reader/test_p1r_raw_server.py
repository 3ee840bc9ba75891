"""The raw telegram server (P1_SERVE_RAW) with real clients on loopback: dsmr_parser's own
asyncio TCP reader (the library of Home Assistant's DSMR integration), 20 clients at once
with one that never reads, a client connecting mid-telegram. p1-reader is a real process
reading a real pipe (its stdin), the test writes the meter's bytes into it.

Expected telegrams are cut from the capture by a regular expression here (not by
p1-reader's framer): '/' up to '!' + four hex digits + CRLF."""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
import threading
from pathlib import Path
from typing import Any

from dsmr_parser import telegram_specifications
from dsmr_parser.clients.protocol import create_tcp_dsmr_reader
from dsmr_parser.parsers import TelegramParser
from p1r_support import STREAM, ReaderProc, telegram_bytes

from support import Mosquitto, Subscriber, free_port, wait_for

TELEGRAMS = re.findall(rb"/[^!]*![0-9A-F]{4}\r\n", STREAM.read_bytes())
FLUVIUS = telegram_bytes("dsmr_parser__fluvius_v171.txt")
ISK5 = telegram_bytes("nielsbasjes__ISK5_AM550T_real.txt")


def start_reader(broker: Mosquitto, site: str, tmp_path: Path, **env: str) -> tuple[ReaderProc, int]:
    port = free_port()
    proc = ReaderProc(broker.url, broker.port, site, tmp_path, ["--serial", "-"],
                      stdin=subprocess.PIPE, P1_SERVE_RAW=str(port), **env)
    return proc, port


def feed(proc: ReaderProc, data: bytes) -> None:
    assert proc.proc.stdin is not None
    proc.proc.stdin.write(data)
    proc.proc.stdin.flush()


def end(proc: ReaderProc) -> int:
    assert proc.proc.stdin is not None
    proc.proc.stdin.close()  # end of input: p1-reader exits 0
    return proc.wait()


def test_dsmr_parser_tcp_reader_gets_every_telegram(mosquitto: Mosquitto, tmp_path: Path) -> None:
    assert len(TELEGRAMS) == 566
    proc, port = start_reader(mosquitto, "raw-dsmrparser", tmp_path)
    got: list[Any] = []
    connected = threading.Event()
    finished = threading.Event()

    async def client() -> None:
        transport, _ = await create_tcp_dsmr_reader("127.0.0.1", port, "5", got.append)
        connected.set()
        while not finished.is_set():
            await asyncio.sleep(0.02)  # the poll interval of the wait for the test's end
        transport.close()

    thread = threading.Thread(target=asyncio.run, args=(client(),), daemon=True)
    thread.start()
    try:
        assert connected.wait(10)
        wait_for(lambda: proc.metric("p1_reader_raw_clients") == 1)
        feed(proc, STREAM.read_bytes()[:320])  # the capture starts mid-telegram: not served
        for start in range(0, 566, 50):  # in steps, each waited for: a meter's pace, faster
            feed(proc, b"".join(TELEGRAMS[start:start + 50]))
            upto = min(start + 50, 566)
            wait_for(lambda n=upto: len(got) >= n, 20)
        parser = TelegramParser(telegram_specifications.V5)
        expected = [parser.parse(t.decode("ascii")).to_json() for t in TELEGRAMS]
        assert len(got) == 566
        assert [t.to_json() for t in got] == expected
        assert proc.metric("p1_reader_raw_telegrams_served_total") == 566
    finally:
        finished.set()
        thread.join(10)
        assert end(proc) == 0, proc.output()


def test_twenty_clients_one_never_reading(mosquitto: Mosquitto, tmp_path: Path) -> None:
    site = "raw-twenty"
    sub = Subscriber(mosquitto.port, f"p1/{site}/reading")
    proc, port = start_reader(mosquitto, site, tmp_path, P1_SERVE_RAW_CLIENTS="20")
    readers: list[socket.socket] = []
    received: list[bytearray] = [bytearray() for _ in range(19)]
    stuck = socket.socket()
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # and it never reads
    try:
        stuck.connect(("127.0.0.1", port))
        for _ in range(19):
            readers.append(socket.create_connection(("127.0.0.1", port)))
        threads = [threading.Thread(target=_drain, args=(s, buf), daemon=True)
                   for s, buf in zip(readers, received, strict=True)]
        for t in threads:
            t.start()
        wait_for(lambda: proc.metric("p1_reader_raw_clients") == 20)
        extra = socket.create_connection(("127.0.0.1", port))  # the 21st: over the limit
        extra.settimeout(10)
        assert extra.recv(100) == b""  # closed at once
        extra.close()
        assert proc.metric("p1_reader_raw_clients_dropped_total", reason="limit") == 1
        sent = 0
        for start in range(0, 566, 20):
            chunk = b"".join(TELEGRAMS[start:start + 20])
            feed(proc, chunk)
            sent += len(chunk)
            wait_for(lambda n=sent: all(len(buf) >= n for buf in received), 20)
        whole = b"".join(TELEGRAMS)
        assert all(bytes(buf) == whole for buf in received)  # byte for byte, every reader
        wait_for(lambda: proc.metric("p1_reader_raw_clients_dropped_total", reason="slow") == 1)
        assert proc.metric("p1_reader_raw_clients") == 19
        # the reader went on publishing every reading meanwhile
        msgs = sub.wait(f"p1/{site}/reading", 566, timeout_s=20)
        assert msgs[-1].json()["ts"] == "2019-03-24T15:14:45+01:00"
        assert proc.metric("p1_reader_raw_telegrams_served_total") >= 19 * 566
    finally:
        sub.close()
        for s in [stuck, *readers]:
            s.close()
        assert end(proc) == 0, proc.output()


def _drain(sock: socket.socket, buf: bytearray) -> None:
    while True:
        try:
            data = sock.recv(65536)
        except OSError:
            return
        if not data:
            return
        buf += data


def test_client_connecting_mid_telegram_gets_whole_telegrams(mosquitto: Mosquitto,
                                                             tmp_path: Path) -> None:
    proc, port = start_reader(mosquitto, "raw-mid", tmp_path)
    try:
        feed(proc, FLUVIUS[:400])  # the meter is in the middle of a telegram
        client = socket.create_connection(("127.0.0.1", port))
        client.settimeout(10)
        wait_for(lambda: proc.metric("p1_reader_raw_clients") == 1)
        feed(proc, FLUVIUS[400:] + ISK5)
        data = b""
        while not data.endswith(ISK5):
            more = client.recv(65536)
            assert more, data
            data += more
        # the telegram under way when it connected comes whole (queued once accepted), never
        # its tail alone
        assert data == FLUVIUS + ISK5
        client.close()
    finally:
        assert end(proc) == 0, proc.output()


def test_serve_raw_setting_refused_when_bad(tmp_path: Path) -> None:
    from p1_reader.cli import main

    for value in ("0.0.0.0", "host:99999", "x:y"):
        assert main(["--serve-raw", value, "--serial", "-"]) == 2


def test_listen_address_forms() -> None:
    from p1_reader.rawserver import parse_listen

    assert parse_listen("2323") == ("127.0.0.1", 2323)  # loopback unless told otherwise
    assert parse_listen("0.0.0.0:2323") == ("0.0.0.0", 2323)
    assert parse_listen("[::]:2323") == ("::", 2323)
    assert parse_listen("192.168.1.20:2001") == ("192.168.1.20", 2001)
