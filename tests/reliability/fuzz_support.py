"""Mutations of real telegrams and the oracle they are checked against (tests and bench)."""

from __future__ import annotations

import random
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from p1common.dsmr.framer import TelegramFramer
from p1common.dsmr.parser import TelegramError, parse_telegram
from p1common.dsmr_crc import crc16_python

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


def crc_is_genuine(telegram: bytes) -> bool:
    """The oracle: the telegram ends in '!XXXX' and XXXX is the CRC16 of '/'..'!'."""
    m = re.search(rb"\n!([0-9A-Fa-f]{1,4})\s*$", telegram)
    if not m:
        return False
    bang = m.start() + 1
    return int(m.group(1), 16) == crc16_python(telegram[: bang + 1])


@dataclass
class FuzzStats:
    cases: int = 0
    telegrams: int = 0
    accepted: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def check_stream(data: bytes, stats: FuzzStats, require_crc: bool = True) -> None:
    """Framer + parser over ``data``; records refusals, and any accepted corrupt telegram
    or any exception other than TelegramError as a problem.

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
        try:
            parse_telegram(t, check_crc=True, require_crc=require_crc)
        except TelegramError as exc:
            stats.refused[exc.reason] = stats.refused.get(exc.reason, 0) + 1
            continue
        except Exception as exc:  # anything else escaping is a bug
            stats.problems.append(f"{type(exc).__name__}: {exc} on {t[:80]!r}...")
            continue
        stats.accepted += 1
        if not crc_is_genuine(t):
            stats.problems.append(f"accepted without a genuine CRC: {t[-40:]!r}")


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
