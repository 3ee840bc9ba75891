"""CRC16/ARC as DSMR 4+ uses it: over '/' .. '!' inclusive, polynomial 0xA001 (reflected 0x8005).

The reader checks and the simulator writes a CRC per telegram, thousands a second
when replaying, so :func:`crc16` is crcmod's C extension (a pinned dependency,
some 20x faster) when it is there; :func:`crc16_python` is the same CRC in pure
Python, the fallback and the reference the tests compare with.
"""

from __future__ import annotations

from collections.abc import Callable


def _table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _table()


def crc16_python(data: bytes, crc: int = 0) -> int:
    table = _TABLE
    for b in data:
        crc = (crc >> 8) ^ table[(crc ^ b) & 0xFF]
    return crc


def _fast() -> tuple[Callable[[bytes], int], bool]:
    try:
        from crcmod.crcmod import _usingExtension
        from crcmod.predefined import mkPredefinedCrcFun
    except ImportError:  # pragma: no cover - crcmod is a pinned dependency
        return crc16_python, False
    if not _usingExtension:  # pragma: no cover - crcmod built without its C part
        return crc16_python, False
    return mkPredefinedCrcFun("crc-16"), True


crc16, USING_C_EXTENSION = _fast()


def crc_hex(data: bytes) -> str:
    """The four upper-case hex digits a meter writes after '!'."""
    return f"{crc16(data):04X}"
