"""The P1 dongle's framing and CRC (devices/lib/p1frame.py) under CPython: telegrams cut
at any byte boundary, noise, bad CRCs, too long; CRCs checked against crcmod's CRC-16/ARC."""

from __future__ import annotations

import random

import crcmod.predefined
import p1frame
import pytest

from support import TELEGRAMS

ARC = crcmod.predefined.mkCrcFun("crc-16")
ISK5 = (TELEGRAMS / "nielsbasjes__ISK5_AM550T_real.txt").read_bytes()


def closed(body: bytes) -> bytes:
    return body + b"%04X\r\n" % ARC(body)


def frames(data: bytes, chunks: list[int], size: int = 2048) -> tuple[list[bytes], p1frame.Framer]:
    got: list[bytes] = []
    f = p1frame.Framer(lambda mv: got.append(bytes(mv)), size)
    i = 0
    for n in chunks:
        part = bytearray(data[i:i + n])
        f.feed(part, len(part))
        i += n
    assert i >= len(data)
    return got, f


@pytest.mark.parametrize("text", [b"123456789", b"", b"/ISK5\\2M550T-1012\r\n\r\n!"])
def test_crc16_is_crc16_arc(text: bytes) -> None:
    assert p1frame.crc16(bytearray(text), len(text)) == ARC(text)


def test_telegrams_cut_anywhere_noise_and_refusals() -> None:
    a = closed(b"/AAA5\\2meter\r\n\r\n1-0:1.8.1(000001.000*kWh)\r\n!")
    b = closed(b"/BBB5\\2meter\r\n\r\n1-0:1.8.1(000002.000*kWh)\r\n!")
    lower = a[:-6] + a[-6:-2].lower() + b"\r\n"          # hex digits in lower case: fine
    bad_crc = a.replace(b"000001", b"000009")
    too_long = closed(b"/CCC5\\2m\r\n\r\n0-0:96.13.0(" + b"41" * 1200 + b")\r\n!")
    cut = a[:40]                                        # a "/" restarts: cut one is dropped
    no_tail = a[:-2] + b"xx"
    stream = b"noise\x00\xff" + a + bad_crc + too_long + cut + b + no_tail + lower
    rnd = random.Random(7)
    for _ in range(20):
        chunks = [rnd.randint(1, 300) for _ in range(len(stream))]
        got, f = frames(stream, chunks)
        assert got == [a, b, lower]
        assert (f.good, f.bad_crc, f.too_long, f.bad_tail, f.restarts) == (3, 1, 1, 1, 1)


def test_real_meter_telegram_passes() -> None:
    start = ISK5.index(b"/")
    end = ISK5.index(b"!", start) + 7
    got, f = frames(ISK5, [64] * (len(ISK5) // 64 + 1))
    assert got == [ISK5[start:end]] and f.good == 1
