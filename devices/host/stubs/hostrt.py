# The host runner's state, shared by the stubs (machine, network, ssd1306):
# output pins printed as text lines, Wi-Fi up/down from a control file,
# simulated mains zero crossings, heap use sampled on every loop, a status line
# every P1_HOST_STAT_MS, and the summary printed on exit. MicroPython unix port only.
import gc
import os
import sys
import time

PINS = {}           # gpio -> Pin
OUT = []            # output pins, in creation order
IRQS = []           # (pin, handler) of the zero-cross input
dirty = [False]
view = [None]       # fn() -> the line that shows the outputs (set by hostmain)
rt = [None]         # the device's Runtime, once built
stats = {"loops": 0, "heap_live_max": 0, "heap_raw_max": 0, "feed_gap_max": 0,
         "crossings": 0}
_last = [None, 0, 0, None, None]   # last feed, last stat, last zc, wifi file checked, last view


def env(name, default=None):
    v = os.getenv(name)
    return default if v is None or v == "" else v


WDT_MS = int(env("P1_HOST_WDT_MS", "3200"))       # ESP8266 hardware watchdog: ~3.2 s
STAT_MS = int(env("P1_HOST_STAT_MS", "30000"))
MAINS_HZ = int(env("P1_HOST_MAINS_HZ", "50"))
WIFI_FILE = env("P1_HOST_WIFI_FILE")
wifi_up = [True]


def say(*a):
    print(*a)


def _heap():
    raw = gc.mem_alloc()
    if raw > stats["heap_raw_max"]:
        stats["heap_raw_max"] = raw
    gc.collect()
    live = gc.mem_alloc()
    if live > stats["heap_live_max"]:
        stats["heap_live_max"] = live


def _wifi(now):
    if WIFI_FILE is None:
        return
    if _last[3] is not None and time.ticks_diff(now, _last[3]) < 50:
        return
    _last[3] = now
    try:
        with open(WIFI_FILE) as f:
            up = not f.read().startswith("down")
    except OSError:
        up = True
    if up != wifi_up[0]:
        wifi_up[0] = up
        say("wifi", "up" if up else "down", "(stub)")


def _zero_cross(now):
    if not IRQS:
        _last[2] = now
        return
    # the mains' crossings since the last loop (at most 20: a hard IRQ would
    # have run them on time; the burst logic only counts them)
    n = time.ticks_diff(now, _last[2]) * 2 * MAINS_HZ // 1000
    if n <= 0:
        return
    _last[2] = now
    for _ in range(n if n < 20 else 20):
        for pin, h in IRQS:
            h(pin)
        stats["crossings"] += 1


def status_line():
    r = rt[0]
    s = "stat loops=%d heap_live_max=%d heap_raw_max=%d feed_gap_max=%d" % (
        stats["loops"], stats["heap_live_max"], stats["heap_raw_max"], stats["feed_gap_max"])
    if r is not None:
        k = r.link
        s += " mqtt=%s connects=%d rx=%d bad=%d dropped=%d refused=%d errors=%d" % (
            "up" if k.up else "down", k.connects, k.rx, r.bad, k.dropped, k.refused, k.errors)
        s += " reconnect_ms=%s" % ",".join(str(x) for x in k.reconnect_ms)
        extra = getattr(r.app, "host_stats", None)
        if extra:
            s += " " + extra()
    return s


def loop():
    # called by machine.WDT.feed(): once per pass of the device's main loop
    now = time.ticks_ms()
    if _last[0] is not None:
        gap = time.ticks_diff(now, _last[0])
        if gap > stats["feed_gap_max"]:
            stats["feed_gap_max"] = gap
        if gap > WDT_MS:
            say("WATCHDOG RESET: the loop did not feed the watchdog for %d ms" % gap)
            summary()
            sys.exit(75)
    else:
        _last[1] = now
        _last[2] = now
    _last[0] = now
    stats["loops"] += 1
    _heap()
    _wifi(now)
    _zero_cross(now)
    if view[0] is not None:
        line = view[0]()
        if line != _last[4]:
            _last[4] = line
            say(line)
    if time.ticks_diff(now, _last[1]) >= STAT_MS:
        _last[1] = now
        say(status_line())


def summary():
    say(status_line())
    say("heap high-water: %d bytes live (after collection), %d bytes before collection, of %d"
        % (stats["heap_live_max"], stats["heap_raw_max"], gc.mem_alloc() + gc.mem_free()))
