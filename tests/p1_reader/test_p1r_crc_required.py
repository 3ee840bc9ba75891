"""A telegram of a meter that sends CRCs, whose CRC digits were lost on the line, is refused.

Found by the reliability fuzzer (tests/reliability/test_rel_fuzz.py): a flipped CRC digit
made the framer cut at a bare '!', which a DSMR 2.2 meter legitimately sends, so the
telegram went through without any CRC check.
"""

from __future__ import annotations

import pytest
from p1r_support import telegram_bytes

from p1_reader.service import ReaderSettings, TelegramHandler
from p1common.dsmr.parser import TelegramError, parse_telegram
from p1common.plausibility import ReadingGuard
from p1common.topics import Topics

GOOD = telegram_bytes("nielsbasjes__ISK5_AM550T_real.txt")  # DSMR 5, has 1-3:0.2.8
BARE = GOOD[: GOOD.rindex(b"\n!") + 2] + b"\r\n"  # the same telegram, CRC digits gone


def test_dsmr5_telegram_without_its_crc_is_refused() -> None:
    with pytest.raises(TelegramError) as exc:
        parse_telegram(BARE)
    assert exc.value.reason == "crc"
    assert parse_telegram(BARE, check_crc=False)["header"] == parse_telegram(GOOD)["header"]


def test_without_version_line_a_bare_bang_needs_require_crc() -> None:
    lines = [ln for ln in BARE.split(b"\n") if not ln.startswith(b"1-3:0.2.8(")]
    old_style = b"\n".join(lines)
    assert parse_telegram(old_style)["header"]  # could be a DSMR 2.2 meter
    with pytest.raises(TelegramError):
        parse_telegram(old_style, require_crc=True)


def test_handler_requires_crcs_once_the_meter_sent_one() -> None:
    out: list[tuple[str, bytes]] = []
    h = TelegramHandler(ReaderSettings(ha_discovery=False), Topics(), "crc", "p1",
                        lambda t, p, q, r: out.append((t, p)), "p1/status/x",
                        guard=ReadingGuard(max_drift_s=None, tolerate_extra=False))  # a 2019 capture: no clock check
    lines = [ln for ln in BARE.split(b"\n") if not ln.startswith(b"1-3:0.2.8(")]
    old_style = b"\n".join(lines)
    assert h.handle(old_style) is not None  # first: nothing known about this meter
    assert h.handle(GOOD) is not None and h.crc_seen
    assert h.handle(old_style) is None  # now a bare '!' is a lost CRC
