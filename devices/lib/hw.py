# The thin hardware layer: pins, hardware watchdog, reset, display, ticks.
# Everything the apps touch on the board goes through here, so the PC tests
# run the same apps with fake `machine`/`network` modules.
import time

import machine


def ticks_ms():
    return time.ticks_ms()


def sleep_ms(ms):
    time.sleep_ms(ms)


class Out:
    # a digital output; inv: the load is on when the pin is low
    def __init__(self, gpio, inv=False):
        self.inv = bool(inv)
        self.pin = machine.Pin(gpio, machine.Pin.OUT)
        self.state = None
        self.set(False)

    def set(self, on):
        on = bool(on)
        if on != self.state:
            self.state = on
            self.pin.value(1 if on != self.inv else 0)


class In:
    # a button to ground with the internal pull-up: pressed() when low
    def __init__(self, gpio):
        self.pin = machine.Pin(gpio, machine.Pin.IN, machine.Pin.PULL_UP)

    def pressed(self):
        return self.pin.value() == 0


def free_uart():
    # the monitor drives LEDs on TX/RX: detach the REPL from UART0 first
    try:
        import os
        os.dupterm(None, 1)
    except (ImportError, AttributeError, OSError, TypeError):
        pass


class Watchdog:
    # machine.WDT against hangs: a wedged loop resets the board (ESP8266: ~3 s,
    # the timeout is fixed by the SDK). Feed from the main loop only.
    def __init__(self, enabled=True):
        self.wdt = machine.WDT() if enabled else None

    def feed(self):
        if self.wdt:
            self.wdt.feed()


def reset():
    machine.reset()


def unique_id():
    import binascii
    return binascii.hexlify(machine.unique_id()).decode()


def oled(sda, scl, width=128, height=64):
    # SSD1306 on I2C (the driver is frozen in the ESP8266 firmware); None if absent
    try:
        import ssd1306
        i2c = machine.SoftI2C(scl=machine.Pin(scl), sda=machine.Pin(sda))
        return ssd1306.SSD1306_I2C(width, height, i2c)
    except (ImportError, OSError):
        return None


def sleep_us(us):
    time.sleep_us(us)


def zero_cross(gpio, handler):
    # the dimmer board's zero-cross detector: a hard IRQ at every crossing
    pin = machine.Pin(gpio, machine.Pin.IN)
    pin.irq(trigger=machine.Pin.IRQ_RISING, handler=handler, hard=True)
    return pin


def uart_rx(baud, rxbuf):
    # the meter's data on UART0 RX (GPIO3), 8N1; the REPL is detached first (it
    # shares UART0). readinto() never waits: None when nothing came.
    free_uart()
    return machine.UART(0, baud, bits=8, parity=None, stop=1, rxbuf=rxbuf, timeout=0)
