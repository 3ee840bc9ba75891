"""Legacy frames <-> readings: lenient decode, strict encode, the hour of a frame.

Pure: no sockets and no clocks; the host time is passed in as a value.

Input is taken as the ESP firmware really sends it (the seed guide prints
``{"dsmr":{83125000,27689000,0,0,1,11,2]}`` with a ``{`` for the ``[``; trailing
NULs, CR/LF, spaces, extra keys and extra trailing values are tolerated); output
is always strict JSON ``{"dsmr":[...]}``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from p1common import CONTRACT_VERSION
from p1common.dsmr.tariff import is_low

from .layouts import FieldSpec, Layout

MAX_FRAME_BYTES = 1500  # one Ethernet MTU; the ESP sends ~45 bytes
Number = int | float

# reasons, also the Prometheus label values
TOO_BIG = "too_big"
NOT_TEXT = "not_text"
NOT_JSON = "not_json"
NO_ARRAY = "no_array"
NOT_NUMBER = "not_number"
WRONG_LENGTH = "wrong_length"
BAD_TIME = "bad_time"
INCOMPLETE = "incomplete"
BAD_READING = "bad_reading"
REASONS = (TOO_BIG, NOT_TEXT, NOT_JSON, NO_ARRAY, NOT_NUMBER, WRONG_LENGTH, BAD_TIME)

_NUMBER_RE = re.compile(r"^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$")


class FrameError(ValueError):
    """A frame (or a reading to encode) the bridge cannot use; ``reason`` is a short code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


# -- bytes <-> values ----------------------------------------------------------------
def _number(item: Any, pos: int) -> Number:
    if isinstance(item, bool) or not isinstance(item, int | float):
        raise FrameError(NOT_NUMBER, f"value {pos} is not a number: {item!r}")
    if isinstance(item, float) and not math.isfinite(item):
        raise FrameError(NOT_NUMBER, f"value {pos} is not finite: {item!r}")
    return item


def _lenient_values(text: str, key: str) -> list[Number]:
    """The array after ``"key":`` whatever bracket opens or closes it."""
    if not (text.startswith("{") and text.endswith("}")):
        raise FrameError(NOT_JSON, f"not a JSON object: {text[:60]!r}")
    m = re.search(r'"' + re.escape(key) + r'"\s*:\s*[\[{]([^\[\]{}]*)[\]}]', text)
    if not m:
        if f'"{key}"' in text:
            raise FrameError(NO_ARRAY, f"{key!r} holds no array: {text[:60]!r}")
        raise FrameError(NOT_JSON, f"not JSON and no {key!r} array: {text[:60]!r}")
    items = [s.strip() for s in m.group(1).split(",")]
    if items and items[-1] == "":
        items.pop()  # trailing comma
    out: list[Number] = []
    for pos, item in enumerate(items):
        if not _NUMBER_RE.match(item):
            raise FrameError(NOT_NUMBER, f"value {pos} is not a number: {item[:20]!r}")
        num = float(item) if any(c in item for c in ".eE") else int(item)
        out.append(_number(num, pos))
    return out


def parse_frame(data: bytes, key: str = "dsmr", max_bytes: int = MAX_FRAME_BYTES) -> list[Number]:
    """The numbers of one datagram, leniently; :class:`FrameError` says why not."""
    if len(data) > max_bytes:
        raise FrameError(TOO_BIG, f"datagram of {len(data)} bytes is over the {max_bytes} byte limit")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise FrameError(NOT_TEXT, f"not text: {data[:24]!r}") from None
    text = text.strip(" \t\r\n\x00")
    if not text:
        raise FrameError(NOT_JSON, "empty datagram")
    try:
        obj = json.loads(text)
    except ValueError:
        return _lenient_values(text, key)
    if not isinstance(obj, dict):
        raise FrameError(NOT_JSON, f"expected a JSON object, got {type(obj).__name__}")
    if key not in obj:
        raise FrameError(NO_ARRAY, f"no {key!r} in the object (keys: {', '.join(list(obj)[:5])})")
    arr = obj[key]
    if not isinstance(arr, list):
        raise FrameError(NO_ARRAY, f"{key!r} is not an array: {arr!r}"[:120])
    return [_number(v, i) for i, v in enumerate(arr)]


def encode_frame(values: Sequence[Number], key: str = "dsmr") -> bytes:
    """Strict JSON, compact, like the ESP's own: ``{"dsmr":[1,2,3]}``."""
    for i, v in enumerate(values):
        _number(v, i)
    return json.dumps({key: list(values)}, separators=(",", ":"), allow_nan=False).encode()


# -- values -> reading ------------------------------------------------------------------
def scaled(spec: FieldSpec, raw: Number) -> Number:
    value = raw * spec.scale
    digits = spec.reading_decimals()
    if spec.is_int or digits == 0:
        return round(value)
    return round(value, digits)


def decode_values(values: Sequence[Number], layout: Layout) -> dict[str, Number]:
    """Field name -> value in the reading's unit; extra trailing values are ignored."""
    if len(values) < len(layout.fields):
        raise FrameError(
            WRONG_LENGTH,
            f"{len(values)} values, layout {layout.name!r} needs {len(layout.fields)}",
        )
    out: dict[str, Number] = {}
    for spec, raw in zip(layout.fields, values, strict=False):
        if spec.name:
            out[spec.name] = scaled(spec, raw)
    for name in ("minute", "second"):
        if name in out and not 0 <= out[name] <= 59:
            raise FrameError(BAD_TIME, f"{name} {out[name]} is out of range 0-59")
    return out


def frame_time(minute: int, second: int, host_now: datetime) -> datetime:
    """The instant a frame's minute:second means, taking date and hour from the host.

    The frame carries only the meter clock's minute and second. Of the three
    candidates (that minute:second in the host's previous, current and next hour)
    the one nearest the host time wins, so a frame read at 15:00:01 saying 59:58 is
    14:59:58, and one read at 14:59:59 saying 00:01 is 15:00:01 (meter and host
    clocks may differ by up to half an hour). Hours are counted in absolute time,
    so the DST changes (a repeated or skipped hour) give the right instant; the
    returned datetime is in the host's zone (``host_now.tzinfo``).
    """
    if host_now.tzinfo is None:
        raise ValueError("host_now must be timezone-aware")
    now_utc = host_now.astimezone(UTC)
    offset = host_now.utcoffset() or timedelta(0)
    # local mm:ss -> seconds into the UTC hour (differs only in zones with :30/:45 offsets)
    frac = int(offset.total_seconds()) % 3600
    into_hour = (minute * 60 + second - frac) % 3600
    hour_start = now_utc.replace(minute=0, second=0, microsecond=0)
    candidates = [hour_start + timedelta(hours=k, seconds=into_hour) for k in (-1, 0, 1)]
    best = min(candidates, key=lambda c: abs((c - now_utc).total_seconds()))
    return best.astimezone(host_now.tzinfo)


def reading_from_values(
    values: Sequence[Number], layout: Layout, site: str, host_now: datetime,
    tariff_low_code: int | None = 2,
) -> dict[str, Any]:
    """A ``reading`` payload (contract v1) from a frame: only what the frame carries.

    ``net_w`` (import_w - export_w) and ``import_kwh``/``export_kwh`` (T1 + T2) are
    added when the frame carries their parts, as p1-reader does; ``tariff_low`` when
    the frame carries the tariff and ``tariff_low_code`` says which code is low (the
    original modules read Belgian meters: 2 = night; ``BRIDGE_TARIFF_LOW``).
    """
    fields = decode_values(values, layout)
    if "minute" in fields:
        ts = frame_time(int(fields.pop("minute")), int(fields.pop("second")), host_now)
        ts_source = "meter"
    else:
        ts = host_now.replace(microsecond=0)
        ts_source = "host"
    reading: dict[str, Any] = {
        "v": CONTRACT_VERSION,
        "site": site,
        "source": "legacy",
        "ts": ts.isoformat(),
        "ts_source": ts_source,
    }
    reading.update(fields)
    for total, t1, t2 in (
        ("import_kwh", "import_t1_kwh", "import_t2_kwh"),
        ("export_kwh", "export_t1_kwh", "export_t2_kwh"),
    ):
        if total not in reading and t1 in reading and t2 in reading:
            reading[total] = round(reading[t1] + reading[t2], 3)
    if "net_w" not in reading and "import_w" in reading and "export_w" in reading:
        reading["net_w"] = reading["import_w"] - reading["export_w"]
    if "tariff" in reading:
        reading["tariff"] = int(reading["tariff"])
        low = is_low(reading["tariff"], tariff_low_code)
        if low is not None:
            reading["tariff_low"] = low
    return reading


def live_from_reading(reading: Mapping[str, Any]) -> dict[str, Any] | None:
    """The compact ``live`` payload, when the reading has both powers."""
    if "import_w" not in reading or "export_w" not in reading:
        return None
    live: dict[str, Any] = {
        "ts": int(datetime.fromisoformat(reading["ts"]).timestamp()),
        "imp": round(reading["import_w"]),
        "exp": round(reading["export_w"]),
    }
    if reading.get("tariff") is not None:
        live["tar"] = int(reading["tariff"])
    return live


# -- reading -> frame ---------------------------------------------------------------------
def _reading_number(reading: Mapping[str, Any], name: str) -> Number | None:
    value = reading.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise FrameError(BAD_READING, f"reading field {name} is not a number: {value!r}"[:120])
    return value


def _derived(reading: Mapping[str, Any], name: str) -> Number | None:
    """A field the reading lacks but whose parts it has (totals, powers from net_w)."""
    value = _reading_number(reading, name)
    if value is not None:
        return value
    if name in ("import_kwh", "export_kwh"):
        t1 = _reading_number(reading, name.replace("_kwh", "_t1_kwh"))
        t2 = _reading_number(reading, name.replace("_kwh", "_t2_kwh"))
        if t1 is not None and t2 is not None:
            return t1 + t2
    if name in ("import_w", "export_w"):
        net = _reading_number(reading, "net_w")
        if net is not None:
            return max(net, 0) if name == "import_w" else max(-net, 0)
    return None


def values_from_reading(reading: Mapping[str, Any], layout: Layout) -> list[Number]:
    """The frame values for a reading, in the layout's units; :class:`FrameError` if
    the reading lacks a field the layout needs (the legacy modules need every position)."""
    ts_text = reading.get("ts")
    try:
        ts = datetime.fromisoformat(ts_text) if isinstance(ts_text, str) else None
    except ValueError:
        ts = None
    out: list[Number] = []
    for spec in layout.fields:
        if spec.name is None:
            out.append(0)
            continue
        if spec.name in ("minute", "second"):
            if ts is None:
                raise FrameError(BAD_READING, f"reading has no valid ts: {ts_text!r}"[:120])
            out.append(ts.minute if spec.name == "minute" else ts.second)
            continue
        value = _derived(reading, spec.name)
        if value is None:
            raise FrameError(INCOMPLETE, f"reading has no {spec.name} for layout {layout.name!r}")
        raw = value / spec.scale
        if spec.decimals:
            out.append(round(raw, spec.decimals))
        else:
            out.append(round(raw))
    return out


def frame_from_reading(reading: Mapping[str, Any], layout: Layout) -> bytes:
    return encode_frame(values_from_reading(reading, layout), layout.key)
