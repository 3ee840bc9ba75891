"""Value conversions of DSMR / eMUCS objects: units, timestamps, hex text, the 13-month
history and the power-failure log. Pure functions (with small bounded caches); the
OBIS table (:mod:`.obis`) names which one each object uses.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

_OFFSETS = {"S": "+02:00", "W": "+01:00", "s": "+02:00", "w": "+01:00"}
_LOCAL = ZoneInfo("Europe/Brussels")  # for DSMR 2.2/3 timestamps that carry no S/W flag
_HEX = frozenset("0123456789abcdefABCDEF")


class TelegramError(ValueError):
    """A telegram is refused; ``reason`` is a short label (crc, truncated, ...) for metrics."""

    def __init__(self, message: str, reason: str = "unparsable") -> None:
        super().__init__(message)
        self.reason = reason


# -- value helpers -------------------------------------------------------------------
# Bounded caches, per distinct string: history/month-peak/gas stamps, equipment ids
# and the 13-month history line repeat in every telegram for minutes to months.
_CACHE_MAX = 4096
_TS_CACHE: dict[str, str | None] = {}
_DAY_CACHE: dict[str, str | None] = {}
_HEX_CACHE: dict[str, str] = {}
_HISTORY_CACHE: dict[str, tuple[dict[str, Any], ...] | None] = {}


def clear_caches() -> None:
    """Forget every cached conversion (benchmarks start each pass cold)."""
    for cache in (_TS_CACHE, _DAY_CACHE, _HEX_CACHE, _HISTORY_CACHE):
        cache.clear()


def parse_timestamp(text: str) -> str | None:
    """Cached :func:`convert_timestamp`: most stamps (history, month peak, gas hour)
    repeat in every telegram for minutes to months."""
    try:
        return _TS_CACHE[text]
    except KeyError:
        pass
    if len(_TS_CACHE) >= _CACHE_MAX:
        _TS_CACHE.clear()
    iso = _TS_CACHE[text] = convert_timestamp(text)
    return iso


def _day(yymmdd: str) -> str | None:
    """``YYMMDD`` (ASCII digits) -> ``YYYY-MM-DDT``, or None when it is no calendar date."""
    try:
        return _DAY_CACHE[yymmdd]
    except KeyError:
        pass
    yy = int(yymmdd[0:2])
    try:
        d = date((2000 if yy < 69 else 1900) + yy, int(yymmdd[2:4]), int(yymmdd[4:6]))
    except ValueError:
        prefix = None
    else:
        prefix = d.isoformat() + "T"
    if len(_DAY_CACHE) >= _CACHE_MAX:
        _DAY_CACHE.clear()
    _DAY_CACHE[yymmdd] = prefix
    return prefix


def convert_timestamp(text: str) -> str | None:
    """``YYMMDDhhmmssX`` -> ISO 8601 with the offset of X (S = +02:00, W = +01:00).

    ``None`` for a timestamp that is not a real date (meters send ``632525252525W``
    or ``000000000000W`` for "no value"). Without a flag (DSMR 2.2/3) the offset is
    the one Belgian/Dutch local time has at that moment.
    """
    n = len(text)
    if n not in (12, 13) or not (text.isascii() and text[:12].isdigit()):
        return None
    day = _day(text[:6])
    hh, mm, ss = text[6:8], text[8:10], text[10:12]
    if day is None or hh > "23" or mm > "59" or ss > "59":
        return None
    if n == 13:
        offset = _OFFSETS.get(text[12])
        if offset is None:
            return None
        return f"{day}{hh}:{mm}:{ss}{offset}"
    dt = datetime.fromisoformat(f"{day}{hh}:{mm}:{ss}")
    return dt.replace(tzinfo=_LOCAL).isoformat()


def hex_text(text: str) -> str:
    """Cached :func:`decode_hex_text` (equipment ids repeat in every telegram)."""
    try:
        return _HEX_CACHE[text]
    except KeyError:
        pass
    if len(_HEX_CACHE) >= _CACHE_MAX:
        _HEX_CACHE.clear()
    decoded = _HEX_CACHE[text] = decode_hex_text(text)
    return decoded


def decode_hex_text(text: str) -> str:
    """Octet strings come hex encoded: decode when that gives printable ASCII."""
    if len(text) % 2 or not _HEX.issuperset(text):
        return text
    raw = bytes.fromhex(text)
    if all(0x20 <= b < 0x7F for b in raw):
        return raw.decode("ascii")
    return text


def split_unit(value: str) -> tuple[str, str]:
    star = value.find("*")
    if star < 0:
        return value, ""
    return value[:star], value[star + 1 :].lower()


def number(text: str, obis: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise TelegramError(f"{obis}: {text!r} is not a number", "unparsable") from None


def integer(text: str, obis: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise TelegramError(f"{obis}: {text!r} is not an integer", "unparsable") from None


def power_w(value: str, obis: str, kilo: str = "kw", base: str = "w") -> float | None:
    """A power in its base unit (W, var, VA); no unit means the kilo one (DSMR's)."""
    num, unit = split_unit(value)
    x = number(num, obis)
    if unit == kilo or unit == "":
        return round(x * 1000, 3)
    if unit == base:
        return x
    return None


def energy_kwh(value: str, obis: str, kilo: str = "kwh", base: str = "wh") -> float | None:
    """An energy counter in its kilo unit (kWh, kvarh); no unit means the kilo one."""
    num, unit = split_unit(value)
    x = number(num, obis)
    if unit == kilo or unit == "":
        return x
    if unit == base:
        return x / 1000
    return None


def number_in(value: str, obis: str, unit: str) -> float | None:
    """A plain number sent in ``unit`` (lower case) or without unit; None for another unit."""
    num, sent = split_unit(value)
    x = number(num, obis)
    return x if sent in (unit, "") else None


def _previous_month(iso: str) -> str:
    """The month a 98.1.0 entry belongs to: its stamp is the start of the next month."""
    dt = datetime.fromisoformat(iso)
    if dt.day == 1 and dt.hour == 0 and dt.minute == 0 and dt.second == 0:
        dt -= timedelta(days=1)
    return f"{dt.year:04d}-{dt.month:02d}"


def _history_uncached(values: list[str], obis: str) -> list[dict[str, Any]] | None:
    """``(n)(1-0:1.6.0)(1-0:1.6.0)(month)(when)(value*kW)...`` oldest first; None if malformed."""
    if not values or not values[0].isdecimal():
        return None
    count = int(values[0])
    if len(values) != 3 + 3 * count:
        return None
    out = []
    for i in range(count):
        month_ts = parse_timestamp(values[3 + 3 * i])
        when = parse_timestamp(values[4 + 3 * i])
        peak = power_w(values[5 + 3 * i], obis)
        if month_ts is None or peak is None:
            continue
        entry: dict[str, Any] = {"month": _previous_month(month_ts)}
        if when is not None:
            entry["ts"] = when
        entry["peak_w"] = peak
        out.append(entry)
    out.sort(key=lambda e: e["month"])
    return out


def history(text: str, values: list[str], obis: str) -> list[dict[str, Any]] | None:
    """:func:`_history_uncached` cached per distinct line (it changes once a month); the
    entries are fresh dicts every time, so a caller may change its reading."""
    try:
        cached = _HISTORY_CACHE[text]
    except KeyError:
        hist = _history_uncached(values, obis)
        if len(_HISTORY_CACHE) >= 64:
            _HISTORY_CACHE.clear()
        cached = _HISTORY_CACHE[text] = None if hist is None else tuple(hist)
    return None if cached is None else [dict(e) for e in cached]


def failure_log(values: list[str], obis: str) -> list[dict[str, Any]] | None:
    """``(n)(0-0:96.7.19)(end)(duration*s)...``; entries with an invalid end time are skipped."""
    if not values or not values[0].isdecimal():
        return None
    count = int(values[0])
    if len(values) != 2 + 2 * count:
        return None
    out = []
    for i in range(count):
        end = parse_timestamp(values[2 + 2 * i])
        if end is None:
            continue
        num, _ = split_unit(values[3 + 2 * i])
        out.append({"end_ts": end, "duration_s": integer(num, obis)})
    return out


# -- fast paths: the lines every telegram has, sliced out in one step -------------------
# Each returns the value, or MISS for anything unusual (another unit, several values, a
# bad number), which the object's converter then handles as it always does.
MISS: Any = object()


def fast_kw3(line: str, p: int) -> Any:
    """``(01.193*kW)``: kW with 3 decimals, so the W are its digits, exactly."""
    if line[-4:] == "*kW)":
        num = line[p + 1 : -4]
        if num[-4:-3] == ".":
            digits = num.replace(".", "")
            if len(digits) == len(num) - 1 and digits.isdecimal():
                return float(digits)
    return MISS


def fast_kwh(line: str, p: int) -> Any:
    if line[-5:] == "*kWh)":
        try:
            return float(line[p + 1 : -5])
        except ValueError:
            pass
    return MISS


def fast_number(line: str, p: int) -> Any:
    """``(230.1*V)``, ``(001*A)``: the unit is the field's."""
    star = line.find("*", p)
    if star > 0:
        try:
            return float(line[p + 1 : star])
        except ValueError:
            pass
    return MISS


def fast_int(line: str, p: int) -> Any:
    try:
        return int(line[p + 1 : -1])
    except ValueError:
        return MISS


def fast_ts(line: str, p: int) -> Any:
    """The telegram's own clock: a new one every telegram, so not cached."""
    ts = convert_timestamp(line[p + 1 : -1])
    return MISS if ts is None else ts
