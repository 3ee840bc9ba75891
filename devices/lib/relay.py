# Output logic of the switch devices, pure: follows `output/<id>/set` heartbeat
# commands (seq, ttl_s), falls back to the safe value (off / 0 %) when no valid
# command arrived for the watchdog time, and lets a local button override it.
from tick import Timeout, diff

WATCHDOG_MS = 10000


def parse_set(msg, kind):
    # -> (seq, ttl_ms, value) or None. kind "on" (relay: bool) or "pct" (0-100).
    if not isinstance(msg, dict):
        return None
    seq = msg.get("seq")
    ttl = msg.get("ttl_s")
    value = msg.get(kind)
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or ttl <= 0:
        return None
    if kind == "on":
        if not isinstance(value, bool):
            return None
    else:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        if not (0 <= value <= 100):
            return None
    return seq, int(ttl * 1000), value


class Output:
    # kind "on": value is a bool; kind "pct": value is a float 0..100.
    def __init__(self, kind="on", watchdog_ms=WATCHDOG_MS):
        self.kind = kind
        self.safe = False if kind == "on" else 0.0
        self.commanded = self.safe
        self.seq = None
        self.override = False
        self.forced = self.safe
        self.watchdog = Timeout(watchdog_ms)
        self.valid_ms = watchdog_ms
        self.changed = True   # state worth reporting

    def on_set(self, msg, now_ms):
        # Apply a `set` command; False when refused (bad, duplicate or old seq).
        cmd = parse_set(msg, self.kind)
        if cmd is None:
            return False
        seq, ttl_ms, value = cmd
        live = not self.expired(now_ms)
        if live and self.seq is not None and seq <= self.seq:
            return False           # QoS 1 redelivery or out of order
        before = self.value(now_ms)
        self.seq = seq
        self.commanded = value
        self.valid_ms = min(ttl_ms, self.watchdog.limit_ms)
        self.watchdog.feed(now_ms)
        if self.value(now_ms) != before or not live:
            self.changed = True
        return True

    def expired(self, now_ms):
        w = self.watchdog
        return w.fed is None or diff(now_ms, w.fed) >= self.valid_ms

    def toggle_override(self, now_ms):
        # button: first press forces the opposite of what runs now, second press
        # hands control back to the commands
        if self.override:
            self.override = False
        else:
            cur = self.value(now_ms)
            if self.kind == "on":
                self.forced = not cur
            else:
                self.forced = 0.0 if cur > 0 else 100.0
            self.override = True
        self.changed = True

    def value(self, now_ms):
        if self.override:
            return self.forced
        if self.expired(now_ms):
            return self.safe
        return self.commanded

    def poll(self, now_ms):
        # call often: notices the watchdog expiry once; True when state changed
        if not self.override and self.watchdog.fed is not None and self.expired(now_ms):
            self.watchdog.clear()
            if self.commanded != self.safe:
                self.changed = True
            self.commanded = self.safe
        ch = self.changed
        self.changed = False
        return ch

    def state(self, now_ms, stamp):
        # the `state` payload fields (ts given as an ISO string)
        d = {"v": 1, "ts": stamp, "override": self.override, "seq": self.seq}
        v = self.value(now_ms)
        if self.kind == "on":
            d["on"] = v
        else:
            d["pct"] = v
        return d


class Button:
    # Debounced push button (active level given): press() True once per press.
    def __init__(self, debounce_ms=50):
        self.debounce_ms = debounce_ms
        self.stable = False
        self.since = None
        self.raw = False

    def sample(self, pressed, now_ms):
        if pressed != self.raw:
            self.raw = pressed
            self.since = now_ms
            return False
        if pressed != self.stable and self.since is not None \
                and diff(now_ms, self.since) >= self.debounce_ms:
            self.stable = pressed
            return pressed
        return False
