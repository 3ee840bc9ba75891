"""The framer: whole telegrams out of any chunking, garbage skipped, memory bounded."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from p1r_support import GOOD_FILES, NO_END_LINE, STREAM, telegram_bytes

from p1common.dsmr.framer import TelegramFramer
from p1common.dsmr.parser import TelegramError, parse_telegram

FRAMEABLE = [telegram_bytes(n) for n in GOOD_FILES if n not in NO_END_LINE]
FRAMEABLE = [t if t.endswith(b"\n") else t + b"\r\n" for t in FRAMEABLE]


def test_stream_file_gives_exactly_566_readings() -> None:
    data = STREAM.read_bytes()
    assert data.count(b"\r\n") == data.count(b"\n")  # already CRLF: nothing to convert
    framer = TelegramFramer()
    telegrams = framer.feed(data)
    assert len(telegrams) == 566
    readings = [parse_telegram(t) for t in telegrams]  # every CRC checks
    assert len(readings) == 566
    assert framer.flush() is None
    # the capture starts in the middle of a telegram: its tail is garbage
    assert framer.stats.garbage_bytes == data.index(b"/")
    assert readings[0]["ts"] == "2019-03-24T15:05:19+01:00"
    assert (readings[-1]["ts"], readings[-1]["import_t1_kwh"], readings[-1]["import_w"]) == (
        "2019-03-24T15:14:45+01:00", 3432.921, 744.0)


def test_stream_byte_by_byte_same_as_whole() -> None:
    data = STREAM.read_bytes()[:20000]
    whole = TelegramFramer().feed(data)
    framer = TelegramFramer()
    pieces = [t for i in range(len(data)) for t in framer.feed(data[i : i + 1])]
    assert pieces == whole
    assert len(whole) == data.count(b"\n!") - 1  # the first "!" ends the cut-off head


def test_crc_line_without_line_end_and_bare_bang() -> None:
    framer = TelegramFramer()
    assert framer.feed(b"/X\r\n\r\n1-0:1.8.1(1*kWh)\r\n!") == []
    assert framer.feed(b"\r") == []
    assert framer.feed(b"\n") == [b"/X\r\n\r\n1-0:1.8.1(1*kWh)\r\n!\r\n"]
    assert framer.feed(b"/Y\r\n!B9F\r\n") == [b"/Y\r\n!B9F\r\n"]


def test_slash_and_bang_inside_a_line_are_data() -> None:
    telegram = b"/ISk5\\2MT382-1003\r\n\r\n0-0:96.13.0(test-/-te!st)\r\n!\r\n"
    assert TelegramFramer().feed(b"noise" + telegram) == [telegram]


def test_new_start_at_line_start_drops_the_cut_telegram() -> None:
    good = FRAMEABLE[0]
    framer = TelegramFramer()
    out = framer.feed(good[:200] + b"\r\n" + good)
    assert out == [good]
    assert framer.stats.truncated == 1


def test_bounded_buffer_without_bang() -> None:
    framer = TelegramFramer(max_bytes=8192)
    framer.feed(b"/start\r\n")
    for _ in range(100):
        framer.feed(b"1-0:1.8.1(000001.000*kWh)\r\n" * 40)
        assert framer.pending <= 8192
    assert framer.stats.overflows >= 1
    for _ in range(100):
        framer.feed(b"x" * 5000)  # no '/' at all: nothing is kept
        assert framer.pending == 0
    assert framer.feed(FRAMEABLE[0]) == [FRAMEABLE[0]]


def test_one_huge_read_stays_bounded() -> None:
    framer = TelegramFramer(max_bytes=4096)
    out = framer.feed(b"/" + b"a" * 100_000 + b"\r\n" + FRAMEABLE[1])
    assert out == [FRAMEABLE[1]] and framer.pending == 0


GARBAGE = st.binary(max_size=60).map(lambda b: b.replace(b"/", b"").replace(b"!", b""))


@settings(max_examples=150, deadline=None)
@given(
    picks=st.lists(st.integers(0, len(FRAMEABLE) - 1), min_size=1, max_size=8),
    garbage=st.lists(GARBAGE, min_size=9, max_size=9),
    corrupt=st.lists(st.booleans(), min_size=8, max_size=8),
    cuts=st.lists(st.integers(1, 700), min_size=1, max_size=40),
)
def test_random_chunks_and_garbage_yield_exactly_the_good_telegrams(
    picks: list[int], garbage: list[bytes], corrupt: list[bool], cuts: list[int]
) -> None:
    stream = bytearray(garbage[0])
    expected = []
    for i, k in enumerate(picks):
        telegram = FRAMEABLE[k]
        if corrupt[i] and b"kWh" in telegram:  # a flipped digit: the CRC (if any) must catch it
            telegram = telegram.replace(b"kWh", b"kwh", 1)
        stream += telegram + garbage[i + 1]
        if telegram == FRAMEABLE[k] or b"!\r\n" in telegram[-3:]:
            expected.append(telegram)
    framer = TelegramFramer()
    got, pos, i = [], 0, 0
    while pos < len(stream):
        step = cuts[i % len(cuts)]
        got += framer.feed(bytes(stream[pos : pos + step]))
        pos += step
        i += 1
    good = []
    for t in got:
        try:
            parse_telegram(t)
            good.append(t)
        except TelegramError as exc:
            assert exc.reason == "crc"
    assert good == expected
