# Monitor LED logic, pure: what the 5 injection LEDs, 4 import LEDs, the red
# peak LED and the blue status LED show, from the data seen and the time now.
from tick import Timeout, blink

NO_DATA_MS = 10000      # no `live` for 10 s: bars off, blue blinks
BLUE_BLINK_MS = 1000    # blue: 0.5 s on / 0.5 s off without data
WARN_BLINK_MS = 1000    # red: peak level "warn"
ALARM_BLINK_MS = 250    # red: peak level "alarm" blinks faster
PEAK_STALE_MS = 120000  # a peak message older than this no longer counts


def lit(watts, max_w, n):
    # How many of n LEDs light for `watts` on a bar whose top LED means max_w.
    # Each LED stands for max_w / n watts and lights from half its step on
    # (round to nearest), so 5000 W over 5 LEDs: 500 W -> 1 LED, 1500 W -> 2.
    if watts <= 0 or max_w <= 0:
        return 0
    k = int((watts * n + max_w / 2) // max_w)
    return n if k > n else k


def mask(count):
    # bit i set = LED i (lowest level first) on
    return (1 << count) - 1


class Monitor:
    def __init__(self, max_import_w=5000, max_export_w=5000, n_imp=4, n_exp=5):
        self.max_import_w = max_import_w
        self.max_export_w = max_export_w
        self.n_imp = n_imp
        self.n_exp = n_exp
        self.imp_w = 0
        self.exp_w = 0
        self.level = "ok"
        self.data = Timeout(NO_DATA_MS)
        self.peak = Timeout(PEAK_STALE_MS)

    def on_live(self, msg, now_ms):
        # msg: the decoded `live` dict {"ts","imp","exp","tar"}; False if unusable
        try:
            imp = msg["imp"]
            exp = msg["exp"]
            if not (-1e6 < imp < 1e6 and -1e6 < exp < 1e6):
                return False
        except (KeyError, TypeError):
            return False
        self.imp_w = imp
        self.exp_w = exp
        self.data.feed(now_ms)
        return True

    def on_peak(self, msg, now_ms):
        level = msg.get("level") if isinstance(msg, dict) else None
        if level not in ("ok", "warn", "alarm"):
            return False
        self.level = level
        self.peak.feed(now_ms)
        return True

    def on_config(self, msg):
        # {"v":1,"max_import_w","max_export_w"}: keep the last good values
        try:
            mi = msg.get("max_import_w", self.max_import_w)
            me = msg.get("max_export_w", self.max_export_w)
            if not (0 < mi <= 100000 and 0 < me <= 100000):
                return False
        except (AttributeError, TypeError):
            return False
        self.max_import_w = mi
        self.max_export_w = me
        return True

    def leds(self, now_ms, wifi_up):
        # -> (export_mask, import_mask, red, blue)
        if not wifi_up:
            return 0, 0, True, False           # joining Wi-Fi: red steady
        if self.data.expired(now_ms):
            return 0, 0, False, blink(now_ms, BLUE_BLINK_MS)
        exp = mask(lit(self.exp_w, self.max_export_w, self.n_exp))
        imp = mask(lit(self.imp_w, self.max_import_w, self.n_imp))
        red = False
        if not self.peak.expired(now_ms):
            if self.level == "warn":
                red = blink(now_ms, WARN_BLINK_MS)
            elif self.level == "alarm":
                red = blink(now_ms, ALARM_BLINK_MS)
        return exp, imp, red, True


def led_test_steps(n_exp=5, n_imp=4):
    # Start-up test order of the original: injection bar low->high, import bar
    # low->high, then the peak LED, then the status LED. Yields (group, index).
    for i in range(n_exp):
        yield "exp", i
    for i in range(n_imp):
        yield "imp", i
    yield "red", 0
    yield "blue", 0
