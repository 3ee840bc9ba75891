# Wall clock without NTP: the device learns Unix time from the messages it gets
# (live "ts" seconds, set "ts" ISO 8601), as the original modules used the meter's
# clock, and stamps its state with ISO 8601 UTC. Pure: ticks are passed in.
from tick import diff

_CUM = (0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334)


def _days(y, m, d):
    # days since 1970-01-01 (proleptic Gregorian)
    leap = 1 if (m > 2 and (y % 4 == 0 and (y % 100 != 0 or y % 400 == 0))) else 0
    y1 = y - 1
    return (y1 * 365 + y1 // 4 - y1 // 100 + y1 // 400 - 719162) + _CUM[m - 1] + leap + d - 1


def parse_iso(s):
    # "2026-01-15T13:45:00+01:00" (also "Z", fractions) -> Unix seconds, None if bad
    try:
        y, mo, d = int(s[0:4]), int(s[5:7]), int(s[8:10])
        h, mi, se = int(s[11:13]), int(s[14:16]), int(s[17:19])
        if s[4] != "-" or s[10] not in "T " or not (1 <= mo <= 12):
            return None
        rest = s[19:]
        if rest.startswith("."):
            i = 1
            while i < len(rest) and rest[i].isdigit():
                i += 1
            rest = rest[i:]
        off = 0
        if rest and rest not in ("Z", "z"):
            sign = -1 if rest[0] == "-" else 1
            off = sign * (int(rest[1:3]) * 3600 + int(rest[4:6]) * 60)
        return _days(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - off
    except (ValueError, IndexError):
        return None


def iso(t):
    # Unix seconds -> "YYYY-MM-DDTHH:MM:SS+00:00"
    t = int(t)
    days, s = divmod(t, 86400)
    # civil from days (Howard Hinnant's algorithm)
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    if m <= 2:
        y += 1
    return "%04d-%02d-%02dT%02d:%02d:%02d+00:00" % (y, m, d, s // 3600, s // 60 % 60, s % 60)


class Clock:
    def __init__(self):
        self.base_s = None
        self.base_ms = 0

    def sync(self, unix_s, now_ms):
        if unix_s is not None and unix_s > 1000000000:
            self.base_s = unix_s
            self.base_ms = now_ms

    def now(self, now_ms):
        # Unix seconds, or uptime seconds (since 1970 in the stamp) before any sync
        if self.base_s is None:
            return now_ms // 1000
        # a tick taken a moment before the sync (the loop's tick of the same pass that
        # handled the message) is the synced second, not the one before
        return self.base_s + max(0, diff(now_ms, self.base_ms)) // 1000

    def stamp(self, now_ms):
        return iso(self.now(now_ms))
