"""The meter's clock: UTC seconds in, Belgian local time out (with the DSMR S/W flag).

The simulator counts time as integer UTC seconds. Everything a meter shows is local
time (Europe/Brussels), and the offset is always a whole hour, so a local hour
always starts on a UTC hour: one cached conversion per hour is enough, which keeps
a day of telegrams fast. Quarters (:00, :15, :30, :45 local) are therefore plain
multiples of 900 UTC seconds, and a repeated DST hour gives distinct quarters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

TZ = ZoneInfo("Europe/Brussels")
SUMMER_OFFSET_S = 7200


@dataclass(frozen=True)
class LocalHour:
    """The local broken-down time of one UTC hour."""

    start_utc: int
    year: int
    month: int
    day: int
    hour: int
    weekday: int  # Monday = 0
    offset_s: int

    @property
    def flag(self) -> str:
        return "S" if self.offset_s == SUMMER_OFFSET_S else "W"

    @property
    def date(self) -> date:
        return date(self.year, self.month, self.day)


class LocalClock:
    """Converts UTC seconds to local fields, caching the current hour."""

    def __init__(self, tz: ZoneInfo = TZ) -> None:
        self.tz = tz
        self._key = -1
        self._hour: LocalHour | None = None
        self._prefix = ""

    def hour(self, t: int) -> LocalHour:
        key = t // 3600
        if key != self._key:
            start = key * 3600
            dt = datetime.fromtimestamp(start, self.tz)
            off = dt.utcoffset()
            self._hour = LocalHour(
                start, dt.year, dt.month, dt.day, dt.hour, dt.weekday(),
                int(off.total_seconds()) if off is not None else 0,
            )
            h = self._hour
            self._prefix = f"{h.year % 100:02d}{h.month:02d}{h.day:02d}{h.hour:02d}"
            self._key = key
        assert self._hour is not None
        return self._hour

    def dsmr(self, t: int) -> str:
        """``YYMMDDhhmmssX`` as a meter writes its clock."""
        h = self.hour(t)
        rem = t - h.start_utc
        return f"{self._prefix}{rem // 60:02d}{rem % 60:02d}{h.flag}"

    def seconds_of_day(self, t: int) -> int:
        """Local wall-clock seconds since local midnight (the repeated hour repeats)."""
        h = self.hour(t)
        return h.hour * 3600 + (t - h.start_utc)

    def iso(self, t: int) -> str:
        h = self.hour(t)
        dt = datetime.fromtimestamp(t, timezone(timedelta(seconds=h.offset_s)))
        return dt.isoformat()


def dsmr_ts(t: int, tz: ZoneInfo = TZ) -> str:
    """One-off ``YYMMDDhhmmssX`` (no cache), for values that rarely change."""
    dt = datetime.fromtimestamp(t, tz)
    off = dt.utcoffset()
    flag = "S" if off is not None and int(off.total_seconds()) == SUMMER_OFFSET_S else "W"
    return dt.strftime("%y%m%d%H%M%S") + flag


def local_month(t: int, tz: ZoneInfo = TZ) -> tuple[int, int]:
    dt = datetime.fromtimestamp(t, tz)
    return dt.year, dt.month


def month_start_utc(year: int, month: int, tz: ZoneInfo = TZ) -> int:
    return int(datetime(year, month, 1, tzinfo=tz).timestamp())


def next_month(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


def prev_month(year: int, month: int) -> tuple[int, int]:
    return (year - 1, 12) if month == 1 else (year, month - 1)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)?\s*$")
_UNIT_S = {None: 1, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> int:
    """``90`` / ``90s`` / ``15m`` / ``2h`` / ``1d`` / ``1w`` -> seconds."""
    m = _DURATION.match(str(text))
    if not m:
        raise ValueError(f"{text!r} is not a duration (use e.g. 3600, 90s, 15m, 2h, 1d, 1w)")
    return int(float(m.group(1)) * _UNIT_S[m.group(2)])


def parse_local(value: str | datetime | date, tz: ZoneInfo = TZ) -> int:
    """An ISO date/time -> UTC seconds; without an offset it is Belgian local time.

    An ambiguous local time (the repeated hour in October) is its first (summer)
    occurrence; write the offset (``+01:00``) for the second.
    """
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime(value.year, value.month, value.day)
    else:
        try:
            dt = datetime.fromisoformat(str(value).strip())
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO date/time (e.g. 2026-01-15T00:00)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=tz)
    return int(dt.timestamp())
