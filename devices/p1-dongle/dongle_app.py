# P1 dongle (D1 mini / ESP-12 on the meter's P1 port): reads the meter's
# telegrams on UART0 RX at 115200 8N1, frames them in a fixed buffer, checks the
# CRC and publishes each good telegram as it came, on p1/<site>/raw (QoS 0, not
# retained): the bytes from "/" to the CRC line "!XXXX" and its CRLF. p1-reader
# (P1_SOURCE=mqtt) parses it. Hardware notes: devices/README.md.
import boards
import hw
from p1frame import Framer

MAX_TELEGRAM = 2048     # bytes; DSMR 5 telegrams are ~0.7-1.2 KB (more with M-Bus meters)
RXBUF = 1024            # UART ring buffer (bytes): ~90 ms of 115200 baud
READS_PER_TICK = 32     # at most 32 x 256 bytes per loop pass (bounded work; the board gets
                        # ~115 bytes per 10 ms pass at 115200 baud, the bound is for bursts)


class DongleApp:
    out_size = MAX_TELEGRAM + 160     # the MQTT send buffer: a whole telegram and then some

    def __init__(self, rt):
        s = rt.s
        self.rt = rt
        b = boards.profile(s.get("board"), "p1-dongle")
        self.t_raw = rt.t.raw
        self.framer = Framer(self._telegram, int(s.get("max_telegram") or MAX_TELEGRAM))
        self.chunk = bytearray(256)
        self.sent = 0
        self.unsent = 0         # good telegrams while the link was down or full
        self.now = 0
        self.led = hw.Out(b["led"], b.get("led_inv")) if b.get("led") is not None else None
        self.led_at = None
        # the meter sends only while its Data Request line is high (DSMR 4/5)
        self.req = hw.Out(b["req"]) if b.get("req") is not None else None
        if self.req is not None:
            self.req.set(True)
        self.uart = hw.uart_rx(int(s.get("baud") or 115200), RXBUF)
        self.legacy = None
        if s.get("legacy_multicast"):
            # the original module's UDP frame for the old monitors/switches (RAM: only then)
            import legacy
            self.legacy = legacy.Sender(s.get("legacy_group") or "224.0.1.3",
                                        int(s.get("legacy_port") or 8266),
                                        s.get("legacy_iface") or None)
            self.frame = legacy.frame

    def subscriptions(self, rt):
        return []

    def on_message(self, rt, topic, obj, now_ms):
        pass

    def _telegram(self, mv):
        if self.rt.link.publish(self.t_raw, mv, self.now):
            self.sent += 1
            if self.led is not None:
                self.led.set(True)
                self.led_at = self.now
        else:
            self.unsent += 1
        if self.legacy is not None:
            f = self.frame(bytes(mv))
            if f is not None:
                self.legacy.send(f)

    def tick(self, rt, now_ms):
        self.now = now_ms
        u = self.uart
        for _ in range(READS_PER_TICK):
            n = u.readinto(self.chunk)
            if not n:
                break
            self.framer.feed(self.chunk, n)
        if self.led_at is not None and now_ms - self.led_at > 50:
            self.led.set(False)
            self.led_at = None

    def host_stats(self):
        f = self.framer
        return ("telegrams=%d sent=%d unsent=%d bad_crc=%d too_long=%d bad_tail=%d restarts=%d"
                " overrun=%d uart_bytes=%d frames=%d" % (
                    f.good, self.sent, self.unsent, f.bad_crc, f.too_long, f.bad_tail, f.restarts,
                    getattr(self.uart, "overrun", 0), getattr(self.uart, "total", 0),
                    self.legacy.sent if self.legacy is not None else 0))


def main():
    from device import Runtime
    rt = Runtime("p1-dongle", DongleApp)
    rt.run()
