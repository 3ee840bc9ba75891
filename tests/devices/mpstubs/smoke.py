# The device runtime and all three apps under real MicroPython (no Wi-Fi: the
# set-up portal opens), with the stubs of this folder for machine/network/socket.
import sys

sys.path.insert(0, "/input")
sys.path.insert(0, "/input/stubs")

import time

import monitor_app
import portal
import switch_app
import switcher_app
from device import Runtime

rt = Runtime("monitor", monitor_app.MonitorApp, path="/tmp/none.json", log=print)
rt.app.led_test(1)
for _ in range(3):
    rt.step()
print("portal", rt.portal is not None, rt.portal.networks, rt.app.m.leds(time.ticks_ms(), False))
print(b"".join(portal.page_parts(["x<y"], rt.s)).count(b"<input"))
for app in (switch_app.SwitchApp, switcher_app.SwitcherApp):
    r = Runtime("sw", app, path="/tmp/none.json", log=print)
    r.step()
    r.app.out.on_set({"seq": 1, "ttl_s": 5, "pct": 50, "on": True}, time.ticks_ms())
    r.step()
    print(type(r.app).__name__, r.app.out.value(time.ticks_ms()))
sa = r.app
for _ in range(20):
    sa.zc.h(sa.zc)
print("fired", sa.fired, sa.mode)
