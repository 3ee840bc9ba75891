"""Parser fuzzing: mutated real telegrams through framer + parser, and through the process.

Mutations (fuzz_support.mutate): bit flips, truncation, random insertion / deletion,
printable-byte replacement, line duplication / removal / swap, CRC digit changes, junk
before the telegram; 1 to 3 per telegram. The oracle (fuzz_support: a CRC16 of its own
and dsmr_parser, another parser): nothing but TelegramError escapes, and p1-reader accepts
a telegram exactly when the oracle does (nothing corrupt let through, nothing good lost).
"""

from __future__ import annotations

import random
import re
import socket
import threading
import time
from pathlib import Path

import pytest
from fuzz_support import (
    FuzzStats,
    check_stream,
    crc16_arc,
    crc16_bitwise,
    crc_is_genuine,
    expected_published,
    mutate,
    oracle_accepts,
    run_mutations,
    seed_telegrams,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rel_support import Proc

from meter_sim.clock import parse_local
from meter_sim.scenario import build
from meter_sim.sim import Simulator
from p1common.dsmr.framer import TelegramFramer
from p1common.dsmr.parser import TelegramError, parse_telegram
from support import Mosquitto, Subscriber, wait_for

SEEDS = seed_telegrams()


def test_the_oracles_crc_is_crc16_arc() -> None:
    # the check value of CRC-16/ARC in the CRC catalogue: CRC of b"123456789"
    assert crc16_arc(b"123456789") == crc16_bitwise(b"123456789") == 0xBB3D
    for t in SEEDS:
        assert crc16_arc(t) == crc16_bitwise(t)


def test_seeds_are_real_telegrams_with_genuine_crcs() -> None:
    assert len(SEEDS) >= 20
    for t in SEEDS:
        assert crc_is_genuine(t) and oracle_accepts(t)
        parse_telegram(t)
        # one changed byte in the content: both refuse it
        broken = t.replace(b"(", b"[", 1)
        assert not oracle_accepts(broken)
        with pytest.raises(TelegramError):
            parse_telegram(broken)


def test_where_the_oracle_and_p1_reader_frame_differently() -> None:
    """The documented difference (fuzz_support): a '/' glued to line noise before a
    telegram makes p1-reader read it from that '/', and lose it."""
    good = one_meter(2)
    assert expected_published(good[0] + good[1]) == 2
    assert expected_published(good[0] + b"noise/x" + good[1]) == 1
    assert expected_published(good[0] + b"noise/x\r\n" + good[1]) == 2
    assert _oracle(good[0] + b"noise/x" + good[1]) == 1
    assert _oracle(good[0] + b"noise/x\r\n" + good[1]) == 2


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.sampled_from(SEEDS), rnd=st.randoms(use_true_random=False),
       n=st.integers(1, 4))
def test_hypothesis_mutations(seed: bytes, rnd: random.Random, n: int) -> None:
    stats = FuzzStats()
    check_stream(mutate(seed, rnd, n), stats)
    assert stats.problems == []


def test_20k_seeded_mutations() -> None:
    stats = run_mutations(20_000, seed=10)
    assert stats.problems == [], stats.problems[:5]
    # the mutations do reach every refusal path, and some survive intact (e.g. a flip in
    # a byte that was flipped back, or a duplicated empty line)
    assert {"crc", "truncated"} <= stats.refused.keys()
    assert stats.accepted > 0


@pytest.mark.soak
@pytest.mark.timeout(3600)
def test_soak_1m_mutations() -> None:
    stats = run_mutations(1_000_000, seed=11, progress=True)
    assert stats.problems == [], stats.problems[:5]


def _oracle(stream: bytes) -> int:
    """How many telegrams p1-reader's own framer + parser take from ``stream`` (its
    first is good, the meter sends CRCs): checked against the independent count."""
    telegrams = TelegramFramer().feed(stream)
    accepted = 0
    for i, t in enumerate(telegrams):
        try:
            parse_telegram(t, require_crc=i > 0)
        except TelegramError:
            continue
        accepted += 1
    return accepted


def one_meter(count: int) -> list[bytes]:
    """``count`` consecutive telegrams of one simulated meter, a second apart: what a P1
    port carries. (A stream of the fixtures of twenty different meters on one site would
    have its counters jump about, which the plausibility guard rightly refuses.)"""
    sim = Simulator(build({"seed": 5}, start=parse_local("2026-01-15T18:00")))
    out = []
    for _ in range(count):
        sim.step()
        out.append(sim.telegram())
    return out


def _through_the_process(broker: Mosquitto, tmp: Path, count: int, seed: int) -> None:
    rnd = random.Random(seed)
    telegrams = one_meter(count + 2)
    # the first and the last are good; the rest mutated (1 to 3 mutations each)
    stream = telegrams[0] + b"".join(mutate(t, rnd, rnd.randint(1, 3)) for t in telegrams[1:-1]) + telegrams[-1]
    want = expected_published(stream)
    assert _oracle(stream) == want  # the framer and parser offline agree with the oracle
    # the meter clock of the last telegram (good): once its reading is out, p1-reader has
    # handled every telegram before it
    stamp = re.search(rb"0-0:1\.0\.0\((\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)([SW])\)", telegrams[-1])
    assert stamp
    yy, mo, dd, hh, mi, ss, dst = (g.decode() for g in stamp.groups())
    last_ts = f"20{yy}-{mo}-{dd}T{hh}:{mi}:{ss}+0{1 if dst == 'W' else 2}:00"
    server = socket.create_server(("127.0.0.1", 0))
    conns: list[socket.socket] = []
    port_open = threading.Event()

    def serve() -> None:
        try:
            conn, _ = server.accept()
        except OSError:
            return
        conns.append(conn)
        # p1-reader drops what is waiting while it opens the port: send once it has
        # opened it (p1_reader_port_opens_total)
        if not port_open.wait(30):
            return
        for i in range(0, len(stream), 4096):
            conn.sendall(stream[i : i + 4096])
            time.sleep(0.0005)  # pacing: a line, not one burst

    threading.Thread(target=serve, daemon=True).start()
    site = "relfuzz"
    sub = Subscriber(broker.port, f"p1/{site}/reading")
    proc = Proc("p1-reader", ["--serial", f"socket://127.0.0.1:{server.getsockname()[1]}",
                              "--site", site, "--profile", "dsmr4"],
                broker, tmp, P1_HA_DISCOVERY="false")
    try:
        proc.start()
        wait_for(lambda: proc.metric("p1_reader_port_opens_total") >= 1, 20)
        port_open.set()
        frames = len(TelegramFramer().feed(stream))
        # wait while it makes progress (a loaded machine is slow, not wrong): fail only
        # when the count stands still for 30 s before every frame was seen
        seen, since = -1.0, time.monotonic()
        while True:
            now_seen = (proc.metric("p1_reader_telegrams_total")
                        + proc.metric("p1_reader_bad_telegrams_total"))
            if now_seen >= frames:
                break
            if now_seen > seen:
                seen, since = now_seen, time.monotonic()
            assert time.monotonic() - since < 30, f"stuck at {now_seen} of {frames} telegrams"
            time.sleep(0.5)
        sub.wait(f"p1/{site}/reading", want, 30)
        wait_for(lambda: any(m.json()["ts"] == last_ts for m in sub.on(f"p1/{site}/reading")), 30)
        ok = proc.metric("p1_reader_telegrams_total")
        assert ok == want, (ok, want)
        assert len(sub.on(f"p1/{site}/reading")) == want  # in order, the last one last
        # most mutations are refused and counted (a cut one may swallow the next telegram:
        # one refusal for two); the framer's counts of a read come after its telegrams
        wait_for(lambda: proc.metric("p1_reader_bad_telegrams_total") >= count * 0.7, 10)
        assert ok + proc.metric("p1_reader_bad_telegrams_total") >= frames
        assert proc.alive()
    finally:
        proc.stop()
        sub.close()
        server.close()
        for c in conns:
            c.close()


def test_mutated_stream_through_p1_reader_counted_not_published(
        private_mosquitto: Mosquitto, tmp_path: Path) -> None:
    _through_the_process(private_mosquitto, tmp_path, 2000, seed=3)


@pytest.mark.soak
@pytest.mark.timeout(3600)
def test_soak_mutated_stream_through_p1_reader(private_mosquitto: Mosquitto,
                                              tmp_path: Path) -> None:
    _through_the_process(private_mosquitto, tmp_path, 100_000, seed=4)
