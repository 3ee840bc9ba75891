"""Shared data for the p1-reader tests: the fixture telegrams and which are good."""

from __future__ import annotations

from pathlib import Path

from p1common.dsmr.framer import TelegramFramer

TELEGRAMS = Path(__file__).resolve().parents[1] / "data" / "telegrams"
STREAM = TELEGRAMS / "nielsbasjes__ttyUSB0-raw_566x.dsmr"

# SOURCES.md: these carry a CRC that does not match their content (spec examples,
# anonymised captures); the reader must refuse them.
BAD_CRC = {
    "athombv__dsmr-4.0-isk-1.txt": ("522B", "8FC7"),
    "athombv__dsmr-4.0-spec-example.txt": ("522B", "F46A"),
    "athombv__dsmr-4.2-xmx-1.txt": ("D3B0", "63A1"),
    "athombv__dsmr-4.2.2-spec-example.txt": ("CE7C", "DD0F"),
    "athombv__dsmr-5.0-ene-1.txt": ("D59D", "2E0A"),
    "athombv__dsmr-5.0-ene-2.txt": ("B055", "60EB"),
    "athombv__dsmr-5.0-ene-3.txt": ("B788", "8ECC"),
    "athombv__dsmr-5.0-est-units.txt": ("FFFF", "17FF"),
    "athombv__dsmr-5.0-spec-example-lowercase.txt": ("EF2F", "5AD9"),
    "athombv__dsmr-5.0-spec-example.txt": ("EF2F", "E47C"),
    "athombv__dsmr-luxembourgh-spec-example.txt": ("8B52", "6DA1"),
    "athombv__emucs-p1-v2.1.1-spec-example-1.txt": ("1234", "74E0"),
    "athombv__emucs-p1-v2.1.1-spec-example-2.txt": ("1234", "A396"),
    "athombv__kamstrup-OMNIA-e-meter-three-phase.txt": ("3AF8", "CE8F"),
    "athombv__sagemcom-xt211.txt": ("3BA5", "47E6"),
}
# Complete DSMR 2.2/3 telegrams stored without any '!' end line.
NO_END_LINE = {
    "athombv__iskra-mt-382-no-crc-with-text-message.txt",
    "athombv__iskra-mt-382-no-crc.txt",
}

ALL_FILES = sorted(p.name for p in TELEGRAMS.glob("*.txt"))
GOOD_FILES = [n for n in ALL_FILES if n not in BAD_CRC]


def telegram_bytes(name: str) -> bytes:
    """The one telegram of a fixture file, cut by our framer (trailing junk dropped)."""
    data = (TELEGRAMS / name).read_bytes()
    framer = TelegramFramer()
    found = framer.feed(data)
    rest = framer.flush()
    if rest is not None:
        found.append(rest)
    assert len(found) == 1, f"{name}: {len(found)} telegrams"
    return found[0]


def with_crc(body: bytes) -> bytes:
    """A telegram edited by a test, with the CRC16 after '!' made to match again."""
    from p1common.dsmr_crc import crc16

    bang = body.index(b"!")
    return body[:bang + 1] + b"%04X\r\n" % crc16(body[:bang + 1])
