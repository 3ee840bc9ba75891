"""p1-reader parser speed: framing + CRC + parse, ours vs dsmr_parser, same process, same run.

Both sides get the same byte stream of *different* telegrams, cut in 512-byte reads
like a serial port delivers them: ours is ``TelegramFramer`` + ``parse_telegram``
(CRC on), dsmr_parser is its ``TelegramBuffer`` + ``TelegramParser(spec).parse``
(CRC on). Streams:

- Fluvius eMUCS 1.7.1: 30 simulated minutes of meter-sim (default house, PV, gas
  and water), one telegram per second, made here with the ``meter_sim`` Python API:
  every telegram has its own clock, powers, voltages and currents.
- DSMR 5.0: the real 566-telegram serial capture of an Iskra AM550
  (``nielsbasjes__ttyUSB0-raw_566x.dsmr``), as recorded.

Our caches (timestamps, month history) are emptied before every timed pass, so a
pass pays for every distinct string once, as a reader does on a live meter. Before
timing, every telegram of both streams is compared field by field with
dsmr_parser (the comparison of tests/p1_reader/test_p1r_differential.py).
A third, informative row repeats the one fixture telegram (the old benchmark).
Run standalone: ``python -m bench.parser``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dsmr_parser import telegram_specifications as specs
from dsmr_parser.clients.telegram_buffer import TelegramBuffer
from dsmr_parser.parsers import TelegramParser

from meter_sim.clock import parse_local
from meter_sim.scenario import build
from meter_sim.sim import Simulator
from p1common.dsmr.framer import TelegramFramer
from p1common.dsmr.parser import clear_caches, parse_telegram

REPO = Path(__file__).resolve().parents[1]
TELEGRAMS = REPO / "tests" / "data" / "telegrams"
CHUNK = 512
SIM_SECONDS = 1800


def _differential() -> Any:
    sys.path.insert(0, str(REPO / "tests" / "p1_reader"))
    import test_p1r_differential as diff

    return diff


def _meter_sim_stream(seconds: int) -> bytes:
    sim = Simulator(build({"seed": 7}, start=parse_local("2026-01-15T17:30")))
    out = []
    for _ in range(seconds):
        sim.step()
        out.append(sim.telegram())
    return b"".join(out)


def _chunks(stream: bytes) -> list[bytes]:
    return [stream[i : i + CHUNK] for i in range(0, len(stream), CHUNK)]


def ours(chunks: list[bytes]) -> list[dict[str, Any]]:
    clear_caches()
    framer = TelegramFramer()
    out = []
    for chunk in chunks:
        for telegram in framer.feed(chunk):
            out.append(parse_telegram(telegram))
    return out


def theirs(chunks: list[str], spec: dict[str, Any]) -> list[Any]:
    buffer = TelegramBuffer()
    parser = TelegramParser(spec)
    out = []
    for chunk in chunks:
        buffer.append(chunk)
        for telegram in buffer.get_all():
            out.append(parser.parse(telegram))
    return out


def _best_rate(fn: Callable[[], list[Any]], n: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        count = len(fn())
        best = min(best, time.perf_counter() - t0)
        assert count == n, (count, n)
    return n / best


def _measure(title: str, stream: bytes, spec: dict[str, Any], diff: Any,
             repeat_ours: int = 7, repeat_theirs: int = 3) -> tuple[str, int, int, float, float]:
    ours_chunks = _chunks(stream)
    their_chunks = [c.decode("latin-1") for c in ours_chunks]
    print(f"  {title}: checking values ...", flush=True)
    mine, ref = ours(ours_chunks), theirs(their_chunks, spec)
    assert len(mine) == len(ref) > 0, (len(mine), len(ref))
    for i, (a, b) in enumerate(zip(mine, ref, strict=True)):
        assert diff.compare(f"{title} #{i}", a, b, spec) >= 10
    n = len(mine)
    print(f"  {title}: {n} telegrams identical; timing ...", flush=True)
    rate_ours = _best_rate(lambda: ours(ours_chunks), n, repeat_ours)
    rate_theirs = _best_rate(lambda: theirs(their_chunks, spec), n, repeat_theirs)
    size = len(stream) // n
    return title, n, size, rate_ours, rate_theirs


def run(report: Any) -> None:
    diff = _differential()
    print(f"  making {SIM_SECONDS} meter-sim Fluvius telegrams ...", flush=True)
    fluvius = _meter_sim_stream(SIM_SECONDS)
    capture = (TELEGRAMS / "nielsbasjes__ttyUSB0-raw_566x.dsmr").read_bytes()
    fixture = (TELEGRAMS / "dsmr_parser__fluvius_v171.txt").read_bytes()
    rows = [
        _measure("Fluvius eMUCS 1.7.1, meter-sim", fluvius, specs.BELGIUM_FLUVIUS, diff),
        _measure("DSMR 5.0, Iskra AM550 real capture", capture, specs.V5, diff),
    ]
    info = _measure("(info) one Fluvius fixture telegram repeated", fixture * 600,
                    specs.BELGIUM_FLUVIUS, diff, repeat_theirs=2)
    lines = [
        "Framing + CRC16 + parse of a byte stream of different telegrams (512-byte reads), "
        "best of 7 passes (ours) and of 3 (dsmr_parser), one core, our caches emptied "
        "before each pass. Every telegram's values were compared with dsmr_parser's "
        "first, field by field.",
        "",
        "| stream | telegrams | bytes each | p1-reader (telegrams/s) | dsmr_parser (telegrams/s) "
        "| ratio |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for title, n, size, a, b in [*rows, info]:
        lines.append(f"| {title} | {n} | {size} | {a:,.0f} | {b:,.0f} | {a / b:.1f}x |")
    worst = min(a / b for _, _, _, a, b in rows)
    verdict = "met" if worst >= 10 else "NOT met"
    lines += [
        "",
        f"Target >= 10x dsmr_parser: **{verdict}** (worst of the two varied streams: "
        f"{worst:.1f}x). Streams: 30 simulated minutes of meter-sim (seed 7, a January "
        "evening, 1 telegram/s: every telegram has its own clock, powers, voltages, "
        "currents) and the 566 telegrams of a real DSMR 5.0 capture. What we cache, "
        "bounded, per distinct string: timestamp conversions, hex-encoded ids and the parsed 13-month "
        "history line (it changes once a month); the caches start empty in every pass. "
        "CRC16 by crcmod's C extension (p1common.dsmr_crc). The last row repeats one "
        "telegram (everything cached after the first): for comparison with earlier runs only.",
    ]
    report.section("p1-reader: parser vs dsmr_parser", "\n".join(lines))


class _Print:
    def section(self, title: str, markdown: str) -> None:
        print(f"## {title}\n\n{markdown}\n")


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    run(_Print())
