# The device runtime shared by every module: settings, Wi-Fi (+ set-up portal),
# MQTT link, hardware watchdog, periodic gc, and the app's hooks:
#   app.subscriptions(rt) -> [(topic, qos)]
#   app.on_message(rt, topic, obj, now_ms)   obj: the decoded JSON payload
#   app.tick(rt, now_ms)                     every loop, drives the outputs
import gc
import json

import hw
import settings
from mq import Link
from tick import diff
from topics import Topics
from wifi import Wifi

GC_EVERY_MS = 5000


class Runtime:
    def __init__(self, device, make_app, path=settings.PATH, portal_bind=("0.0.0.0", 80),
                 wdt=True, log=print):
        self.device = device
        self.path = path
        self.log = log
        self.s = s = settings.load(path)
        self.client_id = s.get("device_id") or (device + "-" + hw.unique_id())
        self.t = Topics(s.get("prefix") or "p1", s.get("site") or "home")
        self.portal_bind = portal_bind
        self.portal = None
        self.restart = False
        self.dog = hw.Watchdog(wdt)
        # the link's fixed buffers first, while the heap is still in one piece
        self.link = Link(s, self.client_id, self.t.status(self.client_id), [], self._on_msg,
                         log, getattr(make_app, "out_size", 1024))
        self.app = make_app(self)
        self.link.subs = self.app.subscriptions(self)
        self.wifi = Wifi(s, log)
        self.gc_at = hw.ticks_ms()
        self.bad = 0

    def _on_msg(self, topic, payload):
        if not payload:
            return      # a retained message being cleared
        try:
            obj = json.loads(payload)
        except ValueError:
            self.bad += 1
            self.log("bad json on", topic)
            return
        self.app.on_message(self, topic, obj, hw.ticks_ms())

    def publish(self, topic, obj, now_ms, retain=False, qos=0):
        return self.link.publish(topic, json.dumps(obj), now_ms, retain, qos)

    def save(self, update):
        # persist a change of settings (flash is written only when it differs)
        changed = False
        for k in update:
            if self.s.get(k) != update[k]:
                self.s[k] = update[k]
                changed = True
        if changed:
            settings.save(self.s, self.path)
        return changed

    def _portal_saved(self, update):
        self.save(update)
        self.restart = True

    def step(self):
        now = hw.ticks_ms()
        self.dog.feed()
        up = self.wifi.poll(now)
        if self.portal is None and self.wifi.wants_portal(now):
            from portal import Portal   # loaded only when needed: RAM
            nets = self.wifi.scan()
            self.wifi.access_point(True, "P1-" + self.client_id)
            self.portal = Portal(self.s, nets, self._portal_saved, self.portal_bind, self.log)
        if self.portal is not None:
            self.portal.poll()
            if up and not self.restart:
                self.portal.close()
                self.portal = None
                self.wifi.access_point(False)
        if up:
            self.link.poll(now)
        elif self.link.active():
            self.link.drop(now, "wifi down")
        self.app.tick(self, now)
        if self.restart:
            self.log("restarting with the new settings")
            hw.sleep_ms(500)
            hw.reset()
            self.restart = False
        if diff(now, self.gc_at) >= GC_EVERY_MS:
            self.gc_at = now
            gc.collect()

    def run(self, period_ms=10):
        while True:
            self.step()
            hw.sleep_ms(period_ms)
