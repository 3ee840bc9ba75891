# `machine` for the host runner (the unix port has no pins, WDT or UART):
# output pins are shown by hostrt's view line, the WDT checks the loop's feeds
# against the ESP8266's ~3.2 s, UART reads a file, a pty or stdin.
import sys
import time

import hostrt


class Pin:
    IN = 0
    OUT = 1
    OPEN_DRAIN = 2
    PULL_UP = 1
    IRQ_RISING = 1
    IRQ_FALLING = 2

    def __init__(self, gpio, mode=-1, pull=-1, value=None):
        self.gpio = gpio
        self.v = 1 if pull == Pin.PULL_UP else 0
        self.mode = mode
        if gpio not in hostrt.PINS:
            hostrt.PINS[gpio] = self
            if mode == Pin.OUT:
                hostrt.OUT.append(self)
        if value is not None:
            self.value(value)

    def value(self, v=None):
        if v is None:
            return self.v
        v = 1 if v else 0
        if v != self.v:
            self.v = v
            hostrt.dirty[0] = True
        return None

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    def __call__(self, v=None):
        return self.value(v)

    def irq(self, trigger=0, handler=None, hard=False):
        if handler is not None:
            hostrt.IRQS.append((self, handler))


class PWM:
    def __init__(self, pin, freq=1000, duty=0):
        self.pin = pin
        self.f = freq
        self.d = duty
        hostrt.say("pwm gpio%d freq=%d duty=%d" % (pin.gpio, freq, duty))

    def duty(self, d=None):
        if d is None:
            return self.d
        if d != self.d:
            self.d = d
            hostrt.say("pwm gpio%d duty=%d" % (self.pin.gpio, d))
        return None

    def freq(self, f=None):
        if f is None:
            return self.f
        self.f = f
        return None

    def deinit(self):
        pass


class WDT:
    def __init__(self, id=0, timeout=0):
        hostrt.say("watchdog on (%d ms)" % hostrt.WDT_MS)

    def feed(self):
        hostrt.loop()


class SoftI2C:
    def __init__(self, scl=None, sda=None, freq=400000):
        pass


I2C = SoftI2C


class UART:
    # RX from P1_HOST_UART: a file or a pty path, or "-" for stdin. At
    # P1_HOST_UART_BAUD (default: the baud rate given) bytes arrive at baud/10 per
    # second into a ring of `rxbuf` bytes, as on the board: what the loop does not
    # fetch in time overruns and is lost (counted). P1_HOST_UART_BAUD=0: no pacing.
    INV_RX = 1
    INV_TX = 2

    def __init__(self, id, baudrate=115200, bits=8, parity=None, stop=1, rxbuf=256, **kw):
        self.baud = int(hostrt.env("P1_HOST_UART_BAUD", str(baudrate)))
        self.rxbuf = rxbuf
        self.overrun = 0
        self.eof = False
        src = hostrt.env("P1_HOST_UART", "-")
        self.f = sys.stdin.buffer if src == "-" else open(src, "rb")
        self.t = time.ticks_ms()
        self.avail = 0      # bytes arrived and not yet read (paced mode)
        self.total = 0
        hostrt.say("uart%d %d %d%s%d rxbuf=%d from %s" % (id, baudrate, bits, "N" if parity is None else parity,
                                                       stop, rxbuf, src))

    def _arrive(self):
        now = time.ticks_ms()
        n = time.ticks_diff(now, self.t) * self.baud // 10000
        if n <= 0:
            return
        self.t = now
        self.avail += n
        if self.avail > self.rxbuf:
            lost = self.avail - self.rxbuf
            self.avail = self.rxbuf
            # the bytes that did not fit the ring are gone from the line
            got = self.f.read(lost)
            if got:
                self.overrun += len(got)

    def any(self):
        if self.baud:
            self._arrive()
            return self.avail
        return 1

    def readinto(self, buf, n=None):
        n = len(buf) if n is None else n
        if self.baud:
            self._arrive()
            if self.avail < n:
                n = self.avail
        if n <= 0 or self.eof:
            return None
        got = self.f.readinto(memoryview(buf)[:n]) if hasattr(self.f, "readinto") else None
        if got is None:
            data = self.f.read(n)
            got = len(data) if data else 0
            if got:
                buf[:got] = data
        if not got:
            self.eof = True
            hostrt.say("uart: end of input after %d bytes" % self.total)
            return None
        self.avail -= got if self.baud else 0
        self.total += got
        return got

    def read(self, n=256):
        b = bytearray(n)
        k = self.readinto(b)
        return None if not k else bytes(b[:k])


def reset():
    hostrt.say("RESET (machine.reset)")
    hostrt.summary()
    sys.exit(76)


def unique_id():
    return b"\x0a\x0b\x0c"


def freq(f=None):
    return 80000000


def idle():
    pass


def disable_irq():
    return 0


def enable_irq(state=0):
    pass
