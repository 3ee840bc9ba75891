"""Mutations of real telegrams and the oracle they are checked against (tests and bench).

The oracle is another implementation than p1-reader's: a CRC16 made here from the DSMR
polynomial (crcmod's generator, checked against a bitwise few-liner and the catalogue's
check value in test_rel_fuzz.py) and dsmr_parser's ``TelegramParser`` (DSMR 5
specification) parsing the telegram without error. Where the two legitimately differ:

- CRC digits in lower case (a bit flip of 0x20 in a letter digit): the value is the same,
  the content intact; p1-reader takes hex digits in either case, dsmr_parser's checksum
  regex only upper case. The oracle judges the value: it hands dsmr_parser the digits
  upper-cased.
- What follows the CRC digits: p1-reader ends the telegram at the digits when no line end
  follows (a capture cut after the CRC, as some fixtures are); so does the oracle.
- Framing a stream (:func:`expected_published`): the oracle takes the '/' nearest before
  a '!' line, like dsmr_parser's ``TelegramBuffer``; p1-reader's framer takes a '/' in
  the middle of a line as data (DSMR 2.2 text messages), so when the bytes since the
  previous telegram's end hold a '/' and the telegram's own '/' does not start a line
  (line noise with a '/' glued to it, a telegram cut short mid-line before it), p1-reader
  reads one telegram from the first '/', its CRC fails, and that telegram is lost.
"""

from __future__ import annotations

import random
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import crcmod  # type: ignore[import-untyped]
from dsmr_parser import telegram_specifications
from dsmr_parser.parsers import TelegramParser

from p1common.dsmr.framer import TelegramFramer
from p1common.dsmr.parser import TelegramError, parse_telegram

TELEGRAMS = Path(__file__).resolve().parents[1] / "data" / "telegrams"
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "p1_reader"))


def seed_telegrams() -> list[bytes]:
    """Every good fixture telegram that carries a CRC (the ones a DSMR 4/5 meter sends)."""
    from p1r_support import GOOD_FILES, NO_END_LINE, telegram_bytes

    out = []
    for name in GOOD_FILES:
        if name in NO_END_LINE:
            continue
        t = telegram_bytes(name)
        if re.search(rb"\r?\n![0-9A-Fa-f]{4}", t):
            out.append(t)
    return out


MUTATIONS = ("flip", "truncate", "insert", "delete", "dup_line", "drop_line", "swap_lines",
             "byte", "crc_digit", "junk_prefix")


def mutate(data: bytes, rnd: random.Random, n: int = 1) -> bytes:
    """``n`` random mutations: bit flips, truncation, insertion, deletion, line duplication..."""
    b = bytearray(data)
    for _ in range(n):
        kind = rnd.choice(MUTATIONS)
        if not b:
            b = bytearray(b"/")
        i = rnd.randrange(len(b))
        if kind == "flip":
            b[i] ^= 1 << rnd.randrange(8)
        elif kind == "truncate":
            del b[i:]
        elif kind == "insert":
            b[i:i] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 8)))
        elif kind == "delete":
            del b[i : i + rnd.randint(1, 8)]
        elif kind == "byte":
            b[i] = rnd.choice(b"0123456789()*.:/!\r\n-ABCDEF")
        elif kind == "junk_prefix":
            b[0:0] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 30)))
        else:
            lines = bytes(b).split(b"\n")
            j = rnd.randrange(len(lines))
            if kind == "dup_line":
                lines.insert(j, lines[j])
            elif kind == "drop_line" and len(lines) > 1:
                del lines[j]
            elif kind == "swap_lines" and len(lines) > 2:
                k = rnd.randrange(len(lines))
                lines[j], lines[k] = lines[k], lines[j]
            elif kind == "crc_digit":
                bang = bytes(b).rfind(b"\n!")
                if bang >= 0 and bang + 2 < len(b):
                    b[bang + 2 + rnd.randrange(min(4, len(b) - bang - 2))] = rnd.choice(
                        b"0123456789ABCDEF")
                continue
            b = bytearray(b"\n".join(lines))
    return bytes(b)


# CRC16 as DSMR 5.0.2 section 6.2 gives it: polynomial x^16 + x^15 + x^2 + 1, least
# significant bit first, no XOR in or out (CRC-16/ARC)
crc16_arc = crcmod.mkCrcFun(0x18005, initCrc=0, rev=True, xorOut=0)
_DSMR5 = TelegramParser(telegram_specifications.V5)
_CRC_LINE = re.compile(rb"\n!([0-9A-Fa-f]{1,4})[\r\n]*\Z")
_FRAME = re.compile(rb"/[^/]*?\n![0-9A-Fa-f]{0,4}")


def crc16_bitwise(data: bytes) -> int:
    """The same CRC bit by bit (the reference crc16_arc is checked against)."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def crc_is_genuine(telegram: bytes) -> bool:
    """The telegram is '/' .. '!XXXX' (then only line ends) and XXXX is the CRC16 of '/'..'!'."""
    m = _CRC_LINE.search(telegram)
    return bool(telegram.startswith(b"/") and m
                and int(m.group(1), 16) == crc16_arc(telegram[: m.start() + 2]))


def oracle_accepts(telegram: bytes) -> bool:
    """A genuine CRC, and dsmr_parser parses the telegram without an error."""
    if not crc_is_genuine(telegram):
        return False
    m = _CRC_LINE.search(telegram)
    assert m
    text = telegram[: m.start(1)].decode("latin-1") + m.group(1).decode().upper() + "\r\n"
    try:
        _DSMR5.parse(text, throw_ex=True)
    except Exception:  # any refusal by the other implementation
        return False
    return True


def expected_published(stream: bytes) -> int:
    """How many telegrams of ``stream`` a reader must publish (see the module docstring
    for the one framing rule where p1-reader and dsmr_parser differ)."""
    count, previous_end = 0, 0
    for m in _FRAME.finditer(stream):
        start = m.start()
        glued = start > 0 and stream[start - 1] != 0x0A and b"/" in stream[previous_end:start]
        previous_end = m.end()
        if not glued and oracle_accepts(m.group(0)):
            count += 1
    return count


@dataclass
class FuzzStats:
    cases: int = 0
    telegrams: int = 0
    accepted: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def check_stream(data: bytes, stats: FuzzStats, require_crc: bool = True) -> None:
    """Framer + parser over ``data``, each framed telegram judged by the oracle too; a
    problem is any exception other than TelegramError, a telegram p1-reader accepts and
    the oracle refuses (corrupt data let through), or one the oracle accepts and p1-reader
    refuses (a good telegram lost).

    ``require_crc``: the seeds all carry a CRC, so the meter is one that sends CRCs (what
    p1-reader's handler concludes after its first good telegram)."""
    stats.cases += 1
    framer = TelegramFramer()
    found = framer.feed(data)
    rest = framer.flush()
    if rest is not None:
        found.append(rest)
    for t in found:
        stats.telegrams += 1
        good = oracle_accepts(t)
        try:
            parse_telegram(t, check_crc=True, require_crc=require_crc)
        except TelegramError as exc:
            stats.refused[exc.reason] = stats.refused.get(exc.reason, 0) + 1
            if good:
                stats.problems.append(f"refused ({exc}) but the oracle accepts it: {t[-40:]!r}")
            continue
        except Exception as exc:  # anything else escaping is a bug
            stats.problems.append(f"{type(exc).__name__}: {exc} on {t[:80]!r}...")
            continue
        stats.accepted += 1
        if not good:
            stats.problems.append(f"accepted but the oracle refuses it: {t[-40:]!r}")


def run_mutations(count: int, seed: int = 1, progress: bool = False) -> FuzzStats:
    seeds = seed_telegrams()
    rnd = random.Random(seed)
    stats = FuzzStats()
    for k in range(count):
        base = rnd.choice(seeds)
        check_stream(mutate(base, rnd, rnd.choice((1, 1, 1, 2, 3))), stats)
        if progress and (k + 1) % 100_000 == 0:
            print(f"fuzz: {k + 1}/{count} mutated telegrams, {stats.accepted} accepted "
                  f"(genuine CRC), {len(stats.problems)} problems", file=sys.stderr, flush=True)
    return stats
