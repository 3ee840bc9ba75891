"""One telegram (bytes) -> a flat dict of reading fields, in one pass over its lines.

The result uses the field names of ``p1common.payloads.Reading`` (``import_w``,
``gas_m3``...), plain float/int/str values in the units the names say, and leaves
a field out when the meter did not send it (never ``None``). ``reading.py`` adds
the envelope (``v``, ``site``, ``source``, host time when the meter has no clock).

Anything wrong with the telegram itself (no '/', no '!' end line, CRC mismatch, a
line that is not ``OBIS(value)``, a known object whose value is not a number)
raises :class:`TelegramError` with a message saying which and why, and a short
``reason`` label for metrics. Unknown OBIS references are kept in ``extra``.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ..dsmr_crc import crc16
from . import obis as O
from .tariff import is_low, low_code, meter_family

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


def _hex_text(text: str) -> str:
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


def _split_unit(value: str) -> tuple[str, str]:
    star = value.find("*")
    if star < 0:
        return value, ""
    return value[:star], value[star + 1 :].lower()


def _number(text: str, obis: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise TelegramError(f"{obis}: {text!r} is not a number", "unparsable") from None


def _integer(text: str, obis: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise TelegramError(f"{obis}: {text!r} is not an integer", "unparsable") from None


def _power_w(value: str, obis: str, kilo: str = "kw", base: str = "w") -> float | None:
    """A power in its base unit (W, var, VA); no unit means the kilo one (DSMR's)."""
    num, unit = _split_unit(value)
    x = _number(num, obis)
    if unit == kilo or unit == "":
        return round(x * 1000, 3)
    if unit == base:
        return x
    return None


def _energy_kwh(value: str, obis: str, kilo: str = "kwh", base: str = "wh") -> float | None:
    """An energy counter in its kilo unit (kWh, kvarh); no unit means the kilo one."""
    num, unit = _split_unit(value)
    x = _number(num, obis)
    if unit == kilo or unit == "":
        return x
    if unit == base:
        return x / 1000
    return None


def _number_in(value: str, obis: str, unit: str) -> float | None:
    """A plain number sent in ``unit`` (lower case) or without unit; None for another unit."""
    num, sent = _split_unit(value)
    x = _number(num, obis)
    return x if sent in (unit, "") else None


def _previous_month(iso: str) -> str:
    """The month a 98.1.0 entry belongs to: its stamp is the start of the next month."""
    dt = datetime.fromisoformat(iso)
    if dt.day == 1 and dt.hour == 0 and dt.minute == 0 and dt.second == 0:
        dt -= timedelta(days=1)
    return f"{dt.year:04d}-{dt.month:02d}"


def _history(values: list[str], obis: str) -> list[dict[str, Any]] | None:
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
        peak = _power_w(values[5 + 3 * i], obis)
        if month_ts is None or peak is None:
            continue
        entry: dict[str, Any] = {"month": _previous_month(month_ts)}
        if when is not None:
            entry["ts"] = when
        entry["peak_w"] = peak
        out.append(entry)
    out.sort(key=lambda e: e["month"])
    return out


def _history_cached(text: str, values: list[str], obis: str) -> list[dict[str, Any]] | None:
    """:func:`_history` cached per distinct line (it changes once a month); the
    entries are fresh dicts every time, so a caller may change its reading."""
    try:
        cached = _HISTORY_CACHE[text]
    except KeyError:
        hist = _history(values, obis)
        if len(_HISTORY_CACHE) >= 64:
            _HISTORY_CACHE.clear()
        cached = _HISTORY_CACHE[text] = None if hist is None else tuple(hist)
    return None if cached is None else [dict(e) for e in cached]


def _failure_log(values: list[str], obis: str) -> list[dict[str, Any]] | None:
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
        num, _ = _split_unit(values[3 + 2 * i])
        out.append({"end_ts": end, "duration_s": _integer(num, obis)})
    return out


# -- the parser ------------------------------------------------------------------------
def split_telegram(data: bytes, allow_missing_end: bool = False) -> tuple[str, str, str | None, int]:
    """-> (header, body, crc text or None, index of '!'); checks the frame, not the CRC."""
    if not data.startswith(b"/"):
        raise TelegramError("does not start with '/' (not a telegram start)", "no_start")
    text = data.decode("latin-1")
    first_nl = text.find("\n")
    if first_nl < 0:
        raise TelegramError("no line after the '/' header: truncated telegram", "truncated")
    header = text[1:first_nl].rstrip("\r")
    bang = text.find("\n!", first_nl - 1) + 1
    if bang == 0:
        if not allow_missing_end:
            raise TelegramError("no '!' end line: truncated telegram", "truncated")
        return header, text[first_nl + 1 :], None, -1
    crc_line = text[bang + 1 :].split("\n", 1)[0].strip()
    return header, text[first_nl + 1 : bang], crc_line, bang


# version objects only DSMR 4/5 (1-3:0.2.8) and Belgian eMUCS (0-0:96.1.4) meters send
_VERSION_4_PLUS = re.compile(r"^(?:1-3:0\.2\.8|0-0:96\.1\.4)\(", re.M)


# IEC 62056-21 identification: 3 letters of the maker, then the baud-rate digit (ISk5, KFM5, ...)
_IDENTIFICATION = re.compile(r"^[A-Za-z]{3}\d")
# what every DSMR 2.2/3 meter sends: an energy counter or the power
_ESSENTIAL = ("import_t1_kwh", "import_t2_kwh", "import_kwh", "import_w")


def _check_without_crc(header: str, out: dict[str, Any]) -> None:
    """A telegram without CRC (DSMR 2.2/3) is only believed when it looks like a meter's:
    a maker's identification and at least a counter or the power (line noise that
    happens to hold a '/' and a '!' is neither)."""
    if not _IDENTIFICATION.match(header):
        raise TelegramError(f"telegram without CRC and identification {header[:20]!r} is not a "
                            "meter's (3 letters and a digit): refused as line noise", "unparsable")
    if not any(field in out for field in _ESSENTIAL):
        raise TelegramError("telegram without CRC carries no energy counter nor power: "
                            "refused as line noise", "unparsable")


def check_crc16(data: bytes, crc_text: str, bang: int) -> None:
    if not crc_text:
        return  # DSMR 2.2/3: the end line is a bare '!'
    if len(crc_text) > 4 or not _HEX.issuperset(crc_text):
        raise TelegramError(f"CRC field {crc_text!r} after '!' is not 1-4 hex digits", "crc")
    given = int(crc_text, 16)
    computed = crc16(data[: bang + 1])
    if given != computed:
        raise TelegramError(
            f"CRC mismatch: the telegram says {given:04X}, its content gives {computed:04X}",
            "crc",
        )


def parse_telegram(
    data: bytes, *, check_crc: bool = True, allow_missing_end: bool = False,
    require_crc: bool = False, tariff_low: str = "auto",
) -> dict[str, Any]:
    """Parse one telegram ('/' .. '!CRC'); raises :class:`TelegramError` when refused.

    ``allow_missing_end`` accepts a telegram with no '!' line at all (some DSMR 2.2
    captures); a stream never needs it because the framer cuts at '!'.
    ``require_crc`` (with ``check_crc``) refuses a bare '!' too: for a meter known to
    send CRCs, a telegram whose CRC digits were lost on the line is corrupt.
    ``tariff_low`` says which tariff code is low (:mod:`.tariff`): ``auto`` from the
    meter family, ``1``/``2`` for a meter the rule does not know, ``none``.
    """
    header, body, crc_text, bang = split_telegram(data, allow_missing_end)
    if check_crc and crc_text:
        check_crc16(data, crc_text, bang)
    elif check_crc and crc_text is not None and (require_crc or _VERSION_4_PLUS.search(body)):
        # a bare '!' is DSMR 2.2/3; a DSMR 4/5 (or eMUCS) telegram always carries its CRC,
        # so one whose CRC digits were lost on the line is corrupt, not "without a CRC"
        raise TelegramError("DSMR 4/5 telegram without its CRC after '!'", "crc")

    out: dict[str, Any] = {"header": header}
    extra: dict[str, str] = {}
    mbus: dict[int, dict[str, Any]] = {}
    objects = O.OBJECTS
    get = objects.get
    kind_w, kind_kwh, kind_v, kind_a, kind_int, kind_ts = O.W, O.KWH, O.VOLT, O.AMP, O.INT, O.TS
    last_obis = ""
    legacy_channel = 0
    lineno = 1
    # one pass; "\r\n" -> "\n" first keeps the line count (and the numbers in errors)
    lines = body.replace("\r\n", "\n").split("\n") if "\r" in body else body.split("\n")
    for line in lines:
        lineno += 1
        # Fast paths for the objects of every telegram (one dict lookup, the number
        # sliced out of the line). Anything unusual (other unit, empty or several
        # values, bad number) falls through to the general code below, which gives
        # the same value or the same error as it always did.
        p = line.find("(")
        if p > 0 and line[-1] == ")":
            ref = line[:p]
            spec = get(ref)
            if spec is not None:
                field, kind = spec
                try:
                    if kind is kind_w:
                        if line[-4:] == "*kW)":
                            num = line[p + 1 : -4]
                            if num[-4:-3] == ".":  # kW with 3 decimals: W is exact
                                digits = num.replace(".", "")
                                if len(digits) == len(num) - 1 and digits.isdecimal():
                                    out[field] = float(digits)
                                    last_obis = ref
                                    continue
                    elif kind is kind_kwh:
                        if line[-5:] == "*kWh)":
                            out[field] = float(line[p + 1 : -5])
                            last_obis = ref
                            continue
                    elif kind is kind_v or kind is kind_a:
                        star = line.find("*", p)
                        if star > 0:
                            out[field] = float(line[p + 1 : star])
                            last_obis = ref
                            continue
                    elif kind is kind_int:
                        out[field] = int(line[p + 1 : -1])
                        last_obis = ref
                        continue
                    elif kind is kind_ts:
                        ts = convert_timestamp(line[p + 1 : -1])
                        if ts is not None:
                            out[field] = ts
                            last_obis = ref
                            continue
                except ValueError:
                    pass  # the general code gives the error (or the value) as it always did
        if not line or line[-1] != ")":
            line = line.strip()
            if not line:
                continue
        p = line.find("(")
        if p < 0 or line[-1] != ")":
            raise TelegramError(f"line {lineno} {line[:40]!r} is not OBIS(value)", "unparsable")
        if p == 0:  # continuation line: DSMR 2.2/3 gas value under its 24.3.0 line
            if legacy_channel:
                dev = mbus[legacy_channel]
                dev["value"] = _number(line[1:-1], last_obis)
                legacy_channel = 0
            elif last_obis:
                extra[last_obis] = extra.get(last_obis, "") + line
            continue
        ref = line[:p]
        last_obis = ref
        values = line[p + 1 : -1].split(")(")
        spec = get(ref)
        if spec is None and ref not in _MBUS_REFS:
            ref = _normalise(ref)
            spec = get(ref)
        if spec is None:
            channel = _mbus_channel(ref)
            mbus_kind = O.MBUS_OBJECTS.get(ref[4:]) if channel else None
            if mbus_kind is None:
                extra[line[:p]] = line[p:]
                continue
            if channel not in mbus:
                mbus[channel] = {"channel": channel}
            legacy_channel = _mbus_object(mbus[channel], mbus_kind, values, ref, line[p:], extra)
            continue
        field, kind = spec
        value = values[0]
        # fast paths for the common units (most lines of every telegram)
        if kind is O.W and value.endswith("*kW"):
            try:
                out[field] = round(float(value[:-3]) * 1000, 3)
                continue
            except ValueError:
                pass
        elif kind is O.KWH and value.endswith("*kWh"):
            try:
                out[field] = float(value[:-4])
                continue
            except ValueError:
                pass
        if kind is O.W:
            if value:
                w = _power_w(value, ref)
                if w is None:
                    extra[ref] = line[p:]
                else:
                    out[field] = w
        elif kind is O.KWH:
            if value:
                e = _energy_kwh(value, ref)
                if e is None:
                    extra[ref] = line[p:]
                else:
                    out[field] = e
        elif kind is O.VOLT or kind is O.AMP:
            if value:
                out[field] = _number(_split_unit(value)[0], ref)
        elif kind is O.INT:
            if value:
                out[field] = _integer(_split_unit(value)[0], ref)
        elif kind is O.TS:
            ts = parse_timestamp(value)
            if ts is not None:
                out[field] = ts
        elif kind is O.HEXTEXT:
            if value and field not in out:
                out[field] = _hex_text(value)
        elif kind is O.STR:
            if value:
                out[field] = value
        elif kind is O.MAX_DEMAND:
            if len(values) == 2:
                ts = parse_timestamp(values[0])
                if ts is not None:
                    out["month_max_ts"] = ts
                if values[1]:
                    w = _power_w(values[1], ref)
                    if w is not None:
                        out["month_max_w"] = w
            else:
                extra[ref] = line[p:]
        elif kind is O.HISTORY:
            hist = _history_cached(line[p + 1 : -1], values, ref)
            if hist is None:
                extra[ref] = line[p:]
            else:
                out[field] = hist
        elif kind is O.FAILURE_LOG:
            log = _failure_log(values, ref)
            if log is None:
                extra[ref] = line[p:]
            else:
                out[field] = log
        elif kind is O.VAR or kind is O.KVARH or kind is O.HZ or kind is O.RATIO:
            if value:
                if kind is O.VAR:
                    x = _power_w(value, ref, "kvar", "var")
                elif kind is O.KVARH:
                    x = _energy_kwh(value, ref, "kvarh", "varh")
                else:
                    x = _number_in(value, ref, "hz" if kind is O.HZ else "")
                if x is None:
                    extra[ref] = line[p:]
                else:
                    out[field] = x
        elif kind is O.LIMITER:
            _num, unit = _split_unit(value)
            if unit in ("kw", "w"):
                out["limiter_w"] = _power_w(value, ref)
            elif unit in ("kva", "va"):
                out["limiter_va"] = _power_w(value, ref, "kva", "va")
            elif unit == "a":
                out["limiter_a"] = _number(_num, ref)
            elif value:
                extra[ref] = line[p:]
    _finish(out, mbus)
    if check_crc and not crc_text:
        _check_without_crc(header, out)
    tariff = out.get("tariff")
    if tariff is not None:
        family = meter_family(header, body) if tariff_low == "auto" else "unknown"
        low = is_low(tariff, low_code(tariff_low, family))
        if low is not None:
            out["tariff_low"] = low
    if extra:
        out["extra"] = extra
    return out


# "0-1:24.2.1" .. "0-4:24.4.0": every M-Bus reference in one lookup
_MBUS_REFS = frozenset(
    f"0-{channel}:{suffix}" for channel in O.MBUS_CHANNELS for suffix in O.MBUS_OBJECTS
)


def _normalise(ref: str) -> str:
    """``1-0:1.8.0*255`` / ``1-0:31.7.0.255`` -> ``1-0:1.8.0`` (full 6-group OBIS)."""
    star = ref.find("*")
    if star > 0:
        return ref[:star]
    if ref.count(".") == 3:
        return ref.rsplit(".", 1)[0]
    return ref


def _mbus_channel(ref: str) -> int:
    if len(ref) > 4 and ref[0] == "0" and ref[1] == "-" and ref[3] == ":" and ref[2] in "1234":
        return ord(ref[2]) - 48
    return 0


def _mbus_object(
    dev: dict[str, Any], kind: str, values: list[str], ref: str, raw: str, extra: dict[str, str]
) -> int:
    """Fill one M-Bus channel; returns the channel when its value follows on the next line."""
    value = values[0]
    if kind == O.MBUS_DEVICE_TYPE:
        if value:
            dev["device_type"] = _integer(value, ref)
    elif kind == O.MBUS_EQUIPMENT_ID:
        if value and "equipment_id" not in dev:
            dev["equipment_id"] = _hex_text(value)
    elif kind == O.MBUS_VALVE:
        if value:
            dev["valve"] = _integer(value, ref)
    elif kind == O.MBUS_BREAKER:
        if value:
            dev["breaker"] = _integer(value, ref)
    elif kind == O.MBUS_EAN:
        if value:
            dev["ean"] = _hex_text(value)
    elif kind == O.MBUS_READING:
        if len(values) != 2:
            extra[ref] = raw
            return 0
        ts = parse_timestamp(value)
        if ts is not None:
            dev["ts"] = ts
        num, _, unit = values[1].partition("*")
        if num:
            dev["value"] = _number(num, ref)
        if unit:
            dev["unit"] = unit
    elif kind == O.MBUS_LEGACY_READING:
        # (ts)(status)(period)(1)(0-n:24.2.1)(unit) and the value on the next line
        if len(values) != 6:
            extra[ref] = raw
            return 0
        ts = parse_timestamp(value)
        if ts is not None:
            dev["ts"] = ts
        if values[5]:
            dev["unit"] = values[5]
        return dev["channel"]  # type: ignore[no-any-return]
    return 0


_TOTALS = tuple(
    (f"{way}_kwh", f"{way}_t1_kwh", f"{way}_t2_kwh", f"{way}_t3_kwh", f"{way}_t4_kwh")
    for way in ("import", "export")
)


# Limiter and fuse-supervision values that mean "no limit set" (DSMR 4/5 and eMUCS send
# 0-0:17.0.0(999.9*kW) and 1-0:31.4.0(999*A); DSMR 2.2 0-0:17.0.0(999*A)): left out of
# the reading, so nobody shows 999900 W as a threshold.
_NO_LIMIT: dict[str, float] = {
    "limiter_w": 999_900.0, "limiter_va": 999_900.0, "limiter_a": 999.0,
    "fuse_limit_a": 999.0, "l2_fuse_limit_a": 999.0, "l3_fuse_limit_a": 999.0,
}


def _finish(out: dict[str, Any], mbus: dict[int, dict[str, Any]]) -> None:
    """Derived fields: totals, net power, M-Bus devices and their top-level fields."""
    for total, f1, f2, f3, f4 in _TOTALS:
        if total in out:
            continue
        t1, t2 = out.get(f1), out.get(f2)
        if t1 is not None and t2 is not None:  # the sum of every tariff register sent
            t3, t4 = out.get(f3), out.get(f4)
            s = t1 + t2
            if t3 is not None:
                s += t3
            if t4 is not None:
                s += t4
            out[total] = round(s, 6)
    for field, no_limit in _NO_LIMIT.items():
        if (out.get(field) or 0.0) >= no_limit:
            del out[field]  # the meter's "no limit" code, not a threshold
    imp, exp = out.get("import_w"), out.get("export_w")
    if imp is not None and exp is not None:
        out["net_w"] = round(imp - exp, 3)
    if not mbus:
        return
    devices = []
    for channel in sorted(mbus):
        dev = mbus[channel]
        dtype = dev.get("device_type")
        dev["kind"] = O.DEVICE_KINDS.get(dtype, "other") if dtype is not None else "other"
        devices.append(dev)
        top = O.MBUS_TOP_LEVEL.get(dev["kind"])
        if top is None:
            continue
        value_f, ts_f, id_f, valve_f, units = top
        factor = units.get(dev.get("unit", "").lower())
        if factor is None or "value" not in dev or value_f in out:
            continue  # no reading (no unit: an empty slot) or an earlier channel won
        out[value_f] = dev["value"] if factor == 1.0 else round(dev["value"] * factor, 9)
        if "ts" in dev:
            out[ts_f] = dev["ts"]
        if id_f and "equipment_id" in dev:
            out[id_f] = dev["equipment_id"]
        if valve_f and "valve" in dev:
            out[valve_f] = dev["valve"]
    out["mbus"] = [_ordered(d) for d in devices]


_MBUS_ORDER = ("channel", "device_type", "kind", "equipment_id", "ean", "value", "unit", "ts",
               "valve", "breaker")


def _ordered(dev: dict[str, Any]) -> dict[str, Any]:
    return {k: dev[k] for k in _MBUS_ORDER if k in dev}

