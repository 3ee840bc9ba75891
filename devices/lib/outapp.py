# The common part of the output devices (mini switch, switcher): follows
# output/<id>/set, reports output/<id>/state (retained, QoS 1, on change, after
# every (re)connect and each minute); a button toggles a local override; no
# valid `set` for watchdog_s -> safe state (off / 0 %).
import boards
import hw
from clock import Clock, parse_iso
from relay import Button, Output
from tick import blink, diff

STATE_EVERY_MS = 60000


class OutputApp:
    kind = "on"
    device = "mini-switch"

    def __init__(self, rt):
        s = rt.s
        b = boards.profile(s.get("board"), self.device)
        self.b = b
        self.out = Output(self.kind, int(s.get("watchdog_s") or 10) * 1000)
        self.clock = Clock()
        self.oid = s.get("output_id") or rt.client_id
        self.t_set = rt.t.output_set(self.oid)
        self.t_state = rt.t.output_state(self.oid)
        self.btn = hw.In(b["btn"]) if b.get("btn") is not None else None
        self.button = Button()
        self.led = hw.Out(b["led"], b.get("led_inv")) if b.get("led") is not None else None
        self.sent_conn = 0
        self.sent_at = 0
        self.setup(rt, b)

    def setup(self, rt, b):
        pass  # the device's own outputs

    def subscriptions(self, rt):
        return [(self.t_set, 1)]

    def on_message(self, rt, topic, obj, now_ms):
        if topic == self.t_set:
            if self.out.on_set(obj, now_ms):
                self.clock.sync(parse_iso(obj.get("ts") or ""), now_ms)

    def drive(self, rt, now_ms, value):
        if self.led is not None:
            # LED = relay; a short flash every 2 s while the broker is unreachable
            self.led.set(blink(now_ms, 2000, 5) if not rt.link.up else bool(value))

    def tick(self, rt, now_ms):
        if self.btn is not None and self.button.sample(self.btn.pressed(), now_ms):
            self.out.toggle_override(now_ms)
            rt.log("override", self.out.override)
        changed = self.out.poll(now_ms)
        self.drive(rt, now_ms, self.out.value(now_ms))
        link = rt.link
        if link.up and (changed or link.connects != self.sent_conn
                        or diff(now_ms, self.sent_at) >= STATE_EVERY_MS):
            st = self.out.state(now_ms, self.clock.stamp(now_ms))
            if rt.publish(self.t_state, st, now_ms, retain=True, qos=1):
                self.sent_conn = link.connects
                self.sent_at = now_ms
        elif changed:
            self.out.changed = True     # report once the link is back

