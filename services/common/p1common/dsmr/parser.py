"""One telegram (bytes) -> a flat dict of reading fields, in one pass over its lines.

The result uses the field names of ``p1common.payloads.Reading`` (``import_w``,
``gas_m3``...), plain float/int/str values in the units the names say, and leaves
a field out when the meter did not send it (never ``None``). ``reading.py`` adds
the envelope (``v``, ``site``, ``source``, host time when the meter has no clock).

Anything wrong with the telegram itself (no '/', no '!' end line, CRC mismatch, a
line that is not ``OBIS(value)``, a known object whose value is not a number)
raises :class:`TelegramError` with a message saying which and why, and a short
``reason`` label for metrics. Unknown OBIS references are kept in ``extra``.

What each object means is data (:mod:`.obis`), how a value is converted is
:mod:`.values`; here: framing, CRC, the loop over the lines, M-Bus channels and the
derived fields.
"""

from __future__ import annotations

import re
from typing import Any

from ..dsmr_crc import crc16
from . import obis
from .tariff import is_low, low_code, meter_family
from .values import (  # noqa: F401  (re-exported: the parser's public helpers)
    _CACHE_MAX,
    _HEX,
    _TS_CACHE,
    MISS,
    TelegramError,
    clear_caches,
    convert_timestamp,
    decode_hex_text,
    hex_text,
    integer,
    number,
    parse_timestamp,
)


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
    lines = _Lines(out)
    lines.read(body)
    _finish(out, lines.mbus)
    if check_crc and not crc_text:
        _check_without_crc(header, out)
    tariff = out.get("tariff")
    if tariff is not None:
        family = meter_family(header, body) if tariff_low == "auto" else "unknown"
        low = is_low(tariff, low_code(tariff_low, family))
        if low is not None:
            out["tariff_low"] = low
    if lines.extra:
        out["extra"] = lines.extra
    return out


class _Lines:
    """The loop over a telegram's lines, with what one line leaves for the next (the
    DSMR 2.2/3 gas value comes on the line after its 24.3.0 object)."""

    def __init__(self, out: dict[str, Any]) -> None:
        self.out = out
        self.extra: dict[str, str] = {}
        self.mbus: dict[int, dict[str, Any]] = {}
        self.legacy_channel = 0

    def read(self, body: str) -> None:
        out, get, miss, general = self.out, obis.OBJECTS.get, MISS, self.general
        last_obis = ""  # the reference of the last OBIS line (for a value-only line after it)
        # "\r\n" -> "\n" first keeps the line count (and the numbers in errors)
        lines = body.replace("\r\n", "\n").split("\n") if "\r" in body else body.split("\n")
        for lineno, line in enumerate(lines, 2):
            p = line.find("(")
            if p > 0 and line[-1] == ")":
                spec = get(line[:p])
                if spec is not None and spec.fast is not None:
                    value = spec.fast(line, p)
                    if value is not miss:
                        out[spec.field] = value  # type: ignore[index]
                        last_obis = line
                        continue
            last_obis = general(line, lineno, last_obis)

    def general(self, line: str, lineno: int, last_obis: str) -> str:
        """One line the fast path did not take; returns the new ``last_obis`` (a line
        whose reference is ``line[:line.find('(')]``, or "")."""
        if not line or line[-1] != ")":
            line = line.strip()
            if not line:
                return last_obis
        p = line.find("(")
        if p < 0 or line[-1] != ")":
            raise TelegramError(f"line {lineno} {line[:40]!r} is not OBIS(value)", "unparsable")
        if p == 0:
            self.continuation(line, last_obis[: last_obis.find("(")] if last_obis else "")
            return last_obis
        ref = line[:p]
        values = line[p + 1 : -1].split(")(")
        spec = obis.OBJECTS.get(ref)
        if spec is None and ref not in _MBUS_REFS:
            ref = _normalise(ref)
            spec = obis.OBJECTS.get(ref)
        if spec is None:
            self.mbus_line(ref, values, line, p)
            return line
        value = spec.convert(values, ref)
        if value is None:
            return line
        if value is obis.EXTRA:
            self.extra[ref] = line[p:]
        elif spec.field is None:
            self.out.update(value)
        elif not (spec.first_wins and spec.field in self.out):
            self.out[spec.field] = value
        return line

    def continuation(self, line: str, last_ref: str) -> None:
        """A line that is only a value: the DSMR 2.2/3 gas value under its 24.3.0 line."""
        if self.legacy_channel:
            self.mbus[self.legacy_channel]["value"] = number(line[1:-1], last_ref)
            self.legacy_channel = 0
        elif last_ref:
            self.extra[last_ref] = self.extra.get(last_ref, "") + line

    def mbus_line(self, ref: str, values: list[str], line: str, p: int) -> None:
        channel = _mbus_channel(ref)
        mbus_spec = obis.MBUS_OBJECTS.get(ref[4:]) if channel else None
        if mbus_spec is None:
            self.extra[line[:p]] = line[p:]
            return
        if channel not in self.mbus:
            self.mbus[channel] = {"channel": channel}
        self.legacy_channel = _mbus_object(self.mbus[channel], mbus_spec, values, ref, line[p:], self.extra)


# "0-1:24.2.1" .. "0-4:24.4.0": every M-Bus reference in one lookup
_MBUS_REFS = frozenset(
    f"0-{channel}:{suffix}" for channel in obis.MBUS_CHANNELS for suffix in obis.MBUS_OBJECTS
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
    dev: dict[str, Any], spec: obis.Spec, values: list[str], ref: str, raw: str, extra: dict[str, str]
) -> int:
    """Fill one M-Bus channel; returns the channel when its value follows on the next line."""
    value = spec.convert(values, ref)
    if value is None:
        return 0
    if value is obis.EXTRA:
        extra[ref] = raw
    elif spec.field is None:
        follows = value.pop(obis.VALUE_FOLLOWS, False)
        dev.update(value)
        return int(dev["channel"]) if follows else 0
    elif not (spec.first_wins and spec.field in dev):
        dev[spec.field] = value
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
    _totals(out)
    for field, no_limit in _NO_LIMIT.items():
        if (out.get(field) or 0.0) >= no_limit:
            del out[field]  # the meter's "no limit" code, not a threshold
    imp, exp = out.get("import_w"), out.get("export_w")
    if imp is not None and exp is not None:
        out["net_w"] = round(imp - exp, 3)
    if mbus:
        out["mbus"] = [_mbus_device(out, mbus[channel]) for channel in sorted(mbus)]


def _totals(out: dict[str, Any]) -> None:
    """import_kwh / export_kwh: the meter's total register, else the sum of every tariff
    register it sends (T1 + T2, + T3 + T4 on four-rate meters)."""
    for total, *registers in _TOTALS:
        if total in out:
            continue
        sent = [out[f] for f in registers if f in out]
        if registers[0] in out and registers[1] in out:
            out[total] = round(sum(sent), 6)


def _mbus_device(out: dict[str, Any], dev: dict[str, Any]) -> dict[str, Any]:
    """The channel's kind; the first channel of a kind with a reading in a known unit also
    gives the reading's top-level fields (gas_m3, gas_ts ...)."""
    dtype = dev.get("device_type")
    dev["kind"] = obis.DEVICE_KINDS.get(dtype, "other") if dtype is not None else "other"
    top = obis.MBUS_TOP_LEVEL.get(dev["kind"])
    if top is not None:
        value_f, ts_f, id_f, valve_f, units = top
        factor = units.get(dev.get("unit", "").lower())
        # no unit: an empty slot; a field already set: an earlier channel won
        if factor is not None and "value" in dev and value_f not in out:
            out[value_f] = dev["value"] if factor == 1.0 else round(dev["value"] * factor, 9)
            for field, key in ((ts_f, "ts"), (id_f, "equipment_id"), (valve_f, "valve")):
                if field and key in dev:
                    out[field] = dev[key]
    return _ordered(dev)


_MBUS_ORDER = ("channel", "device_type", "kind", "equipment_id", "ean", "value", "unit", "ts",
               "valve", "breaker")


def _ordered(dev: dict[str, Any]) -> dict[str, Any]:
    return {k: dev[k] for k in _MBUS_ORDER if k in dev}

