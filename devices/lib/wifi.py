# Wi-Fi station with back-off. The set-up access point is wanted when no network
# is known, or when joining has failed for PORTAL_AFTER_MS since start (as the
# original WiFiManager did after ~15 s). Once up, a lost network is rejoined
# forever (no portal then: a router reboot must not open an access point).
import network

from tick import Backoff, diff

PORTAL_AFTER_MS = 15000


class Wifi:
    def __init__(self, s, log=print):
        self.s = s
        self.log = log
        self.sta = network.WLAN(network.STA_IF)
        self.ap = network.WLAN(network.AP_IF)
        self.up = False
        self.ever_up = False
        self.since = None
        self.backoff = Backoff(10000, 60000)
        self.ap_on = False

    def _join(self, now_ms):
        try:
            self.sta.active(True)
            self.sta.disconnect()
            self.sta.connect(self.s["ssid"], self.s.get("password") or "")
        except OSError as e:
            self.log("wifi join error", repr(e))
        self.backoff.failed(now_ms)     # next retry if this one does not come up

    def poll(self, now_ms):
        # -> True when the station is connected; wants_portal() tells the rest
        if self.since is None:
            self.since = now_ms
            self.sta.active(True)
        if self.sta.isconnected():
            if not self.up:
                self.up = True
                self.ever_up = True
                self.backoff.reset()
                self.log("wifi up", self.sta.ifconfig()[0])
            return True
        if self.up:
            self.up = False
            self.since = now_ms
            self.log("wifi down")
        if self.s.get("ssid") and self.backoff.ready(now_ms):
            self._join(now_ms)
        return False

    def wants_portal(self, now_ms):
        if self.up or self.ever_up:
            return False
        if not self.s.get("ssid"):
            return True
        return self.since is not None and diff(now_ms, self.since) >= PORTAL_AFTER_MS

    def scan(self):
        # SSIDs around, strongest first, unique, at most 12
        try:
            nets = self.sta.scan()
        except OSError:
            return []
        nets = sorted(nets, key=lambda n: -n[3])
        out = []
        for n in nets:
            name = n[0].decode() if isinstance(n[0], bytes) else n[0]
            if name and name not in out:
                out.append(name)
            if len(out) >= 12:
                break
        return out

    def access_point(self, on, essid="P1-setup"):
        if on == self.ap_on:
            return
        self.ap.active(on)
        if on:
            self.ap.config(essid=essid)     # open network, as AutoConnectAP was
        self.ap_on = on
        self.log("access point", essid if on else "off")
