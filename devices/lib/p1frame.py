# DSMR P1 telegram framing and CRC, pure (no clock, no I/O): bytes from the
# meter's port go in, whole telegrams with a good CRC come out. A telegram is
# "/" header ... "!" + 4 hex digits of CRC16 + CRLF; the CRC (poly 0xA001
# reflected, init 0: "CRC16/ARC") covers "/" up to and including "!". The buffer
# is fixed: a telegram longer than it is dropped (counted), never grown.
from array import array


def _table():
    t = array("H", bytes(512))
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0xA001 if c & 1 else c >> 1
        t[i] = c
    return t


TABLE = _table()


def crc16(buf, n, crc=0):
    # CRC16/ARC of buf[0:n]
    t = TABLE
    for i in range(n):
        crc = (crc >> 8) ^ t[(crc ^ buf[i]) & 0xff]
    return crc


def _hex(c):
    # value of an ASCII hex digit (either case), -1 if not one
    if 48 <= c <= 57:
        return c - 48
    c |= 0x20
    if 97 <= c <= 102:
        return c - 87
    return -1


HUNT, BODY, TAIL = 0, 1, 2


class Framer:
    # feed(data, n) -> number of complete telegrams found; for each one the
    # callback on_telegram(memoryview of the telegram) runs before feed returns.
    # The view is valid only during the call (the buffer is reused).
    def __init__(self, on_telegram, size=2048):
        self.buf = bytearray(size)
        self.mv = memoryview(self.buf)
        self.n = 0
        self.state = HUNT
        self.tail = 0
        self.on_telegram = on_telegram
        self.good = 0
        self.bad_crc = 0
        self.too_long = 0
        self.bad_tail = 0
        self.restarts = 0      # a "/" in the middle of a telegram: started over

    def feed(self, data, n):
        found = 0
        buf = self.buf
        size = len(buf)
        for i in range(n):
            c = data[i]
            st = self.state
            if c == 0x2f and st != HUNT:        # "/" inside: a new telegram starts
                self.restarts += 1
                st = HUNT
            if st == HUNT:
                if c != 0x2f:
                    continue
                self.n = 0
                st = BODY
            if self.n >= size:
                self.too_long += 1
                self.state = HUNT
                continue
            buf[self.n] = c
            self.n += 1
            if st == BODY:
                if c == 0x21:               # "!": 4 hex digits and CRLF follow
                    st = TAIL
                    self.tail = 0
            else:
                self.tail += 1
                if self.tail == 6:
                    st = HUNT
                    if self._check():
                        found += 1
                        self.good += 1
                        self.on_telegram(self.mv[0:self.n])
            self.state = st
        return found

    def _check(self):
        b = self.buf
        e = self.n - 6          # index of the first CRC digit
        if b[e + 4] != 13 or b[e + 5] != 10:
            self.bad_tail += 1
            return False
        want = 0
        for k in range(e, e + 4):
            d = _hex(b[k])
            if d < 0:
                self.bad_tail += 1
                return False
            want = (want << 4) | d
        if crc16(b, e) != want:
            self.bad_crc += 1
            return False
        return True
