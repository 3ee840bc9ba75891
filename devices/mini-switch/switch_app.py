# Mini switch (ESP-01 relay board or Sonoff Basic): a relay following
# output/<id>/set {"on": bool}; see outapp.py for the watchdog and override.
import hw
from outapp import OutputApp


class SwitchApp(OutputApp):
    kind = "on"
    device = "mini-switch"

    def setup(self, rt, b):
        inv = rt.s.get("relay_inverted")
        self.relay = hw.Out(b["relay"], b.get("relay_inv") if inv is None else inv)

    def drive(self, rt, now_ms, value):
        self.relay.set(value)
        OutputApp.drive(self, rt, now_ms, value)


def main():
    from device import Runtime
    Runtime("mini-switch", SwitchApp).run()
