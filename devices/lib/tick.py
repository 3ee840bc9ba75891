# Tick arithmetic and small timers, pure (no clock read here: callers pass now_ms).
# ESP8266 time.ticks_ms() wraps at 2**30 ms (12.4 days); diff() is time.ticks_diff()
# for that period, so the logic is the same under CPython and on the board.

PERIOD = 0x40000000
_MASK = PERIOD - 1
_HALF = PERIOD >> 1


def diff(a, b):
    # a - b in ms, signed, across the wrap
    d = (a - b) & _MASK
    return d - PERIOD if d >= _HALF else d


def add(a, ms):
    return (a + ms) & _MASK


class Timeout:
    # Watchdog/deadline: expired() once `limit_ms` passed since the last feed().
    def __init__(self, limit_ms, now_ms=None):
        self.limit_ms = limit_ms
        self.fed = now_ms

    def feed(self, now_ms):
        self.fed = now_ms

    def clear(self):
        self.fed = None

    def expired(self, now_ms):
        return self.fed is None or diff(now_ms, self.fed) >= self.limit_ms

    def age(self, now_ms):
        return -1 if self.fed is None else diff(now_ms, self.fed)


class Backoff:
    # Retry delays that double from first_ms up to max_ms; reset() after a success.
    def __init__(self, first_ms=1000, max_ms=60000):
        self.first_ms = first_ms
        self.max_ms = max_ms
        self.delay_ms = first_ms
        self.due = None

    def ready(self, now_ms):
        return self.due is None or diff(now_ms, self.due) >= 0

    def failed(self, now_ms):
        self.due = add(now_ms, self.delay_ms)
        self.delay_ms = min(self.delay_ms * 2, self.max_ms)

    def reset(self):
        self.delay_ms = self.first_ms
        self.due = None


def blink(now_ms, period_ms, duty=50):
    # True in the first `duty` percent of each period: the LED pattern clock
    return (now_ms % period_ms) * 100 < period_ms * duty
