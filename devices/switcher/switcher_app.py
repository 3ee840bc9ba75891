# Switcher (D1 mini dimmer board: zero-cross in, triac gate out, SSD1306 OLED):
# follows output/<id>/set {"pct": 0-100}. Default firing: whole-cycle bursts at
# the zero crossings (exactly linear, immune to IRQ latency); option "phase":
# phase-angle firing with the power curve linearised (firing.delay_table).
import time

import hw
import firing
from outapp import OutputApp
from tick import diff

PULSE_US = 100          # gate pulse length
SCREEN_EVERY_MS = 1000


def screen(mode, pct, imp_w, exp_w, wifi_up, mqtt_up, override):
    # the OLED's lines (16 characters of 8 px on a 128 px wide screen)
    lines = ["P1 switcher", "mode " + mode + (" OVR" if override else "")]
    lines.append("out %5.1f %%" % pct)
    lines.append("imp " + ("-" if imp_w is None else "%d W" % imp_w))
    lines.append("exp " + ("-" if exp_w is None else "%d W" % exp_w))
    lines.append("wifi " + ("up" if wifi_up else "--") + " mqtt " + ("up" if mqtt_up else "--"))
    return lines


class SwitcherApp(OutputApp):
    kind = "pct"
    device = "switcher"

    def setup(self, rt, b):
        s = rt.s
        self.mode = "phase" if s.get("firing") == "phase" else "burst"
        self.gate = hw.Out(b["gate"])
        self.gp = self.gate.pin
        self.burst = firing.Burst()
        self.table = firing.delay_table(int(s.get("mains_hz") or 50)) \
            if self.mode == "phase" else None
        self.delay = -1
        self.fired = 0
        self.imp_w = None
        self.exp_w = None
        self.screen_at = None
        self.shown = None
        self.oled = hw.oled(b["sda"], b["scl"]) if b.get("sda") is not None else None
        self.zc = hw.zero_cross(b["zc"], self._zero_cross)

    def _zero_cross(self, pin):
        # hard IRQ: integers only, no allocation
        if self.table is None:
            if not self.burst.zero_cross():
                return
        else:
            d = self.delay
            if d < 0:
                return
            time.sleep_us(d)
        self.gp.value(1)
        time.sleep_us(PULSE_US)
        self.gp.value(0)
        self.fired += 1

    def subscriptions(self, rt):
        return [(self.t_set, 1), (rt.t.live, 0)]

    def on_message(self, rt, topic, obj, now_ms):
        if topic == rt.t.live:
            try:
                self.imp_w = int(obj["imp"])
                self.exp_w = int(obj["exp"])
            except (KeyError, TypeError, ValueError):
                pass
            return
        OutputApp.on_message(self, rt, topic, obj, now_ms)

    def drive(self, rt, now_ms, pct):
        self.burst.set_pct(pct)
        if self.table is not None:
            self.delay = self.table[int(pct + 0.5)]
        OutputApp.drive(self, rt, now_ms, pct)
        if self.oled is not None and (self.screen_at is None
                                      or diff(now_ms, self.screen_at)
                                      >= SCREEN_EVERY_MS):
            self.screen_at = now_ms
            lines = screen(self.mode, pct, self.imp_w, self.exp_w, rt.wifi.up, rt.link.up,
                           self.out.override)
            if lines != self.shown:
                self.shown = lines
                o = self.oled
                o.fill(0)
                for i, t in enumerate(lines):
                    o.text(t, 0, i * 10)
                o.show()


def main():
    from device import Runtime
    Runtime("switcher", SwitcherApp).run()
