"""The raw telegram server's cost to the reader: time spent in ``offer()`` per telegram,
with no client and with 20 clients (19 reading, 1 that never reads), against the
reference of the same run: framing + CRC + parse of the same telegrams.

The 566 telegrams of a real DSMR 5 capture (tests/data/telegrams), offered 5 times in
groups of 20; after each group the bench waits until every reading client has the group
(so readers are not dropped for a burst no meter sends), and only the ``offer()`` calls
are timed. Standalone: ``python -m bench.rawserver``.
"""

from __future__ import annotations

import re
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from prometheus_client import REGISTRY  # noqa: E402

from p1_reader.rawserver import RawTelegramServer  # noqa: E402
from p1common.dsmr.parser import clear_caches, parse_telegram  # noqa: E402

STREAM = REPO / "tests" / "data" / "telegrams" / "nielsbasjes__ttyUSB0-raw_566x.dsmr"
ROUNDS = 5


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _drain(sock: socket.socket, counts: list[int], i: int) -> None:
    while True:
        try:
            data = sock.recv(65536)
        except OSError:
            return
        if not data:
            return
        counts[i] += len(data)


def _offer_time(telegrams: list[bytes], clients: int) -> tuple[float, dict[str, Any]]:
    server = RawTelegramServer("127.0.0.1", 0, max_clients=clients + 1)
    server.start()
    port = server.address[1]
    socks, counts = [], [0] * max(clients - 1, 0)
    if clients:
        stuck = socket.socket()
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.connect(("127.0.0.1", port))
        socks.append(stuck)
        for i in range(clients - 1):
            s = socket.create_connection(("127.0.0.1", port))
            socks.append(s)
            threading.Thread(target=_drain, args=(s, counts, i), daemon=True).start()
        while _sample("p1_reader_raw_clients") < clients:
            time.sleep(0.01)  # the poll interval of the wait for the accepts
    dropped = _sample("p1_reader_raw_clients_dropped_total", reason="slow")
    spent, sent = 0.0, 0
    for _ in range(ROUNDS):
        for start in range(0, len(telegrams), 20):
            group = telegrams[start:start + 20]
            t0 = time.perf_counter()
            for t in group:
                server.offer(t)
            spent += time.perf_counter() - t0
            sent += sum(map(len, group))
            deadline = time.monotonic() + 30
            while any(c < sent for c in counts) and time.monotonic() < deadline:
                time.sleep(0.001)  # the poll interval of the wait for the readers
    info = {"readers_complete": all(c == sent for c in counts),
            "stuck_dropped": _sample("p1_reader_raw_clients_dropped_total", reason="slow") - dropped}
    for s in socks:
        s.close()
    server.close()
    return spent / (ROUNDS * len(telegrams)), info


def run(report: Any) -> None:
    telegrams = re.findall(rb"/[^!]*![0-9A-F]{4}\r\n", STREAM.read_bytes())
    clear_caches()
    t0 = time.perf_counter()
    for _ in range(ROUNDS):
        for t in telegrams:
            parse_telegram(t)
    parse_s = (time.perf_counter() - t0) / (ROUNDS * len(telegrams))
    print(f"parse: {parse_s * 1e6:.1f} us/telegram", flush=True)
    none_s, _ = _offer_time(telegrams, 0)
    print(f"offer, no client: {none_s * 1e6:.2f} us/telegram", flush=True)
    twenty_s, info = _offer_time(telegrams, 20)
    print(f"offer, 20 clients: {twenty_s * 1e6:.2f} us/telegram {info}", flush=True)
    report.section("p1-reader: raw telegram server cost to the reader", "\n".join([
        f"{ROUNDS} x the {len(telegrams)} telegrams of a real DSMR 5 capture; time inside "
        "`offer()` (what the reader pays per accepted telegram) against parsing the same "
        "telegrams (framing + CRC + parse, caches emptied first), same run.",
        "",
        "| clients | offer() per telegram | vs parse |",
        "|---|---|---|",
        f"| none | {none_s * 1e6:.2f} µs | {none_s / parse_s:.3f}x |",
        f"| 20 (19 reading, 1 never reading) | {twenty_s * 1e6:.2f} µs | {twenty_s / parse_s:.3f}x |",
        "",
        f"Parse: {parse_s * 1e6:.1f} µs per telegram. Every reading client got every byte: "
        f"{info['readers_complete']}; the client that never reads was dropped as slow: "
        f"{info['stuck_dropped']:.0f} time(s).",
    ]))


if __name__ == "__main__":
    from bench.run import Report

    run(Report())
