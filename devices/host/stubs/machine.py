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


def UART(*a, **kw):
    # loaded only by the devices that use one (heap): hostuart.py
    from hostuart import UART as U
    return U(*a, **kw)


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
