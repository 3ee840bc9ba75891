# Minimal `network` for the MicroPython smoke run: no network in range joins.
STA_IF = 0
AP_IF = 1


class WLAN:
    def __init__(self, i):
        self.i = i

    def active(self, v=None):
        return True

    def connect(self, ssid, password):
        pass

    def disconnect(self):
        pass

    def isconnected(self):
        return False

    def scan(self):
        return [(b"net-b", b"", 1, -70, 3, 0), (b"net-a", b"", 1, -40, 3, 0)]

    def config(self, **kw):
        pass

    def ifconfig(self):
        return ("0.0.0.0",)
