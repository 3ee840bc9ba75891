"""CRC16/ARC as DSMR 4+ uses it: over '/' .. '!' inclusive, polynomial 0xA001 (reflected 0x8005)."""

from __future__ import annotations


def _table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _table()


def crc16(data: bytes, crc: int = 0) -> int:
    table = _TABLE
    for b in data:
        crc = (crc >> 8) ^ table[(crc ^ b) & 0xFF]
    return crc


def crc_hex(data: bytes) -> str:
    """The four upper-case hex digits a meter writes after '!'."""
    return f"{crc16(data):04X}"
