# Monitor (NodeMCU v3): 5 injection LEDs, 4 import LEDs, red quarter-peak LED,
# blue status LED. Subscribes to live, peak and its config document.
import boards
import hw
from ledbar import Monitor, led_test_steps


class MonitorApp:
    def __init__(self, rt):
        s = rt.s
        b = boards.profile(s.get("board"), "monitor")
        if b.get("uart"):
            hw.free_uart()
        self.exp = [hw.Out(p) for p in b["exp"]]
        self.imp = [hw.Out(p) for p in b["imp"]]
        self.red = hw.Out(b["red"])
        self.blue = hw.Out(b["blue"])
        self.m = Monitor(s.get("max_import_w", 5000), s.get("max_export_w", 5000),
                         len(self.imp), len(self.exp))
        self.t_cfg = rt.t.config_monitor(rt.client_id)
        self.shown = None

    def led_test(self, step_ms=150):
        groups = {"exp": self.exp, "imp": self.imp, "red": [self.red], "blue": [self.blue]}
        for g, i in led_test_steps(len(self.exp), len(self.imp)):
            led = groups[g][i]
            led.set(True)
            hw.sleep_ms(step_ms)
            led.set(False)

    def subscriptions(self, rt):
        return [(rt.t.live, 0), (rt.t.peak, 0), (self.t_cfg, 1)]

    def on_message(self, rt, topic, obj, now_ms):
        if topic == rt.t.live:
            self.m.on_live(obj, now_ms)
        elif topic == rt.t.peak:
            self.m.on_peak(obj, now_ms)
        elif topic == self.t_cfg:
            if self.m.on_config(obj):
                rt.save({"max_import_w": self.m.max_import_w,
                         "max_export_w": self.m.max_export_w})
            else:
                rt.log("monitor config refused, keeping", self.m.max_import_w,
                       self.m.max_export_w)

    def tick(self, rt, now_ms):
        leds = self.m.leds(now_ms, rt.wifi.up)
        if leds == self.shown:
            return
        self.shown = leds
        exp, imp, red, blue = leds
        for i, led in enumerate(self.exp):
            led.set(exp >> i & 1)
        for i, led in enumerate(self.imp):
            led.set(imp >> i & 1)
        self.red.set(red)
        self.blue.set(blue)


def main():
    from device import Runtime
    rt = Runtime("monitor", MonitorApp)
    rt.app.led_test()
    rt.run()
