# The original P1 module's UDP multicast frame, so the old monitors and switches keep
# working from the dongle without a Pi: {"dsmr":[import Wh, export Wh, import W,
# export W, tariff, minute, second]} (bridge-multicast's layout "seed-7"). Values are
# read the way the original firmware did: the decimal point dropped ("000559.373*kWh"
# -> 559373 Wh, "00.668*kW" -> 668 W), integers only. Pure; send() does the I/O.
import socket

_KEYS = (b"1-0:1.8.1(", b"1-0:1.8.2(", b"1-0:2.8.1(", b"1-0:2.8.2(", b"1-0:1.7.0(",
         b"1-0:2.7.0(", b"0-0:96.14.0(", b"0-0:1.0.0(")


def _digits(t, i):
    # the integer of the digits from t[i] up to "*" or ")", the "." skipped; None if none
    v = 0
    seen = False
    while i < len(t):
        c = t[i]
        if 48 <= c <= 57:
            v = v * 10 + c - 48
            seen = True
        elif c != 46:
            break
        i += 1
    return v if seen else None


def frame(telegram):
    # telegram: bytes of one whole telegram -> the frame (bytes), None if a value is missing
    vals = []
    for k in _KEYS:
        i = telegram.find(k)
        if i < 0:
            return None
        i += len(k)
        if k == b"0-0:1.0.0(":          # YYMMDDhhmmss: minute and second
            v = _digits(telegram, i)
            if v is None:
                return None
            vals.append(v // 100 % 100)
            vals.append(v % 100)
            continue
        v = _digits(telegram, i)
        if v is None:
            return None
        vals.append(v)
    imp = vals[0] + vals[1]
    exp = vals[2] + vals[3]
    return b'{"dsmr":[%d,%d,%d,%d,%d,%d,%d]}' % (imp, exp, vals[4], vals[5], vals[6], vals[7],
                                                  vals[8])


class Sender:
    # UDP to the group; iface: the IPv4 address to send from (None: the default one)
    def __init__(self, group, port, iface=None):
        self.addr = socket.getaddrinfo(group, port)[0][-1]
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        if iface:
            # IP_MULTICAST_IF (IPPROTO_IP 0): 32 on Linux; lwIP boards do not need it
            self.sock.setsockopt(0, 32, bytes(int(x) for x in iface.split(".")))
        self.sent = 0
        self.failed = 0

    def send(self, data):
        try:
            self.sock.sendto(data, self.addr)
            self.sent += 1
        except OSError:
            self.failed += 1
