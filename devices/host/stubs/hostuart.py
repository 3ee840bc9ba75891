# machine.UART for the host runner: RX from P1_HOST_UART, a regular file read as
# `tail -f` does (bytes appended later arrive too), or a pty / FIFO, or "-" for
# stdin. Paced at P1_HOST_UART_BAUD (default: the baud rate given) bits per
# second, 10 bits a byte (8N1), into a ring of `rxbuf` bytes as on the board:
# bytes the loop does not fetch in time overrun it and are lost (counted).
# P1_HOST_UART_BAUD=0: no pacing, as fast as the loop reads.
import os
import select
import sys
import time

import hostrt


class UART:
    INV_RX = 1
    INV_TX = 2

    def __init__(self, id, baudrate=115200, bits=8, parity=None, stop=1, rxbuf=256, **kw):
        self.baud = int(hostrt.env("P1_HOST_UART_BAUD", str(baudrate)))
        self.rxbuf = rxbuf
        self.overrun = 0
        self.total = 0
        src = hostrt.env("P1_HOST_UART", "-")
        if src == "-":
            self.f = sys.stdin.buffer
            self.regular = False
        else:
            self.regular = os.stat(src)[0] & 0o170000 == 0o100000
            self.f = open(src, "rb")
        self.poll = None
        if not self.regular:
            self.poll = select.poll()
            self.poll.register(self.f, select.POLLIN)
        self.t = time.ticks_ms()
        self.avail = 0
        hostrt.say("uart%d %d %d%s%d rxbuf=%d from %s" % (
            id, baudrate, bits, "N" if parity is None else str(parity), stop, rxbuf, src))

    def _get(self, mv, n):
        # up to n bytes that are there now, never waiting
        if self.regular:
            return self.f.readinto(mv[:n]) or 0
        k = 0
        while k < n and self.poll.poll(0):
            b = self.f.read(1)
            if not b:
                break
            mv[k] = b[0]
            k += 1
        return k

    def _arrive(self):
        now = time.ticks_ms()
        n = time.ticks_diff(now, self.t) * self.baud // 10000
        if n <= 0:
            return
        self.t = now
        self.avail += n
        if self.avail > self.rxbuf:
            # what did not fit the ring is gone from the line
            lost = self.avail - self.rxbuf
            self.avail = self.rxbuf
            scratch = bytearray(64)
            mv = memoryview(scratch)
            while lost > 0:
                k = self._get(mv, 64 if lost > 64 else lost)
                if not k:
                    self.avail = 0      # the line is idle: nothing was lost
                    break
                self.overrun += k
                lost -= k

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
        if n <= 0:
            return None
        got = self._get(memoryview(buf), n)
        if not got:
            if self.baud:
                self.avail = 0          # idle line
            return None
        if self.baud:
            self.avail -= got
        self.total += got
        return got

    def read(self, n=256):
        b = bytearray(n)
        k = self.readinto(b)
        return None if not k else bytes(b[:k])
