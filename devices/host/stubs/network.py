# `network` for the host runner: the station is "up" on this machine's
# loopback unless the control file P1_HOST_WIFI_FILE says "down".
import hostrt

STA_IF = 0
AP_IF = 1


class WLAN:
    def __init__(self, i=0):
        self.i = i
        self.on = False

    def active(self, v=None):
        if v is None:
            return self.on
        self.on = bool(v)
        return None

    def connect(self, ssid=None, password=None):
        pass

    def disconnect(self):
        pass

    def isconnected(self):
        return self.i == STA_IF and hostrt.wifi_up[0]

    def scan(self):
        return [(b"host-net", b"", 1, -40, 3, 0)]

    def config(self, *a, **kw):
        return None

    def ifconfig(self, *a):
        return ("127.0.0.1", "255.0.0.0", "127.0.0.1", "127.0.0.1")

    def status(self, *a):
        return 5 if self.isconnected() else 1
