"""Cut a byte stream into telegrams: '/' .. '!XXXX\\r\\n' (or a bare '!' for DSMR 2.2/3).

Pure: no I/O, no clock. Rules, chosen for what real serial lines do:
- Outside a telegram every byte is garbage until a '/' (a stream may start in the
  middle of a telegram, or carry line noise between telegrams).
- Inside a telegram, '!' at the start of a line ends it, followed by up to four hex
  digits and the line end; '/' at the start of a line means the telegram before it
  was cut short: it is dropped (counted as ``truncated``) and a new one starts.
  A '/' or '!' in the middle of a line is data (DSMR 2.2 text messages).
- Memory is bounded: a telegram that grows past ``max_bytes`` without its '!'
  line is dropped (``overflows``) and the framer looks for the next '/'.
CRC and content are checked later by the parser; the framer only cuts.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_TELEGRAM_BYTES = 8192
_HEX = b"0123456789abcdefABCDEF"


@dataclass
class FramerStats:
    telegrams: int = 0
    garbage_bytes: int = 0
    truncated: int = 0
    overflows: int = 0


class TelegramFramer:
    def __init__(self, max_bytes: int = MAX_TELEGRAM_BYTES) -> None:
        self.max_bytes = max_bytes
        self.stats = FramerStats()
        self._buf = bytearray()  # empty, or a telegram in progress starting with '/'
        self._scan = 0  # where to look for the next line-start '!' or '/'

    @property
    def pending(self) -> int:
        """Bytes held for the telegram in progress (at most ``max_bytes``)."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        """Add bytes from the line; return the telegrams they complete, oldest first."""
        out: list[bytes] = []
        step = self.max_bytes
        if len(data) > step:  # keep the buffer bounded whatever the read size
            for i in range(0, len(data), step):
                out += self.feed(data[i : i + step])
            return out
        buf = self._buf
        if not buf:
            data = self._skip_garbage(data)
            if not data:
                return out
        buf += data
        while buf:
            done = self._cut(buf, out)
            if not done:
                break
        if len(buf) > self.max_bytes:
            self.stats.overflows += 1
            buf.clear()
            self._scan = 0
        return out

    def flush(self) -> bytes | None:
        """At the end of a file: the unfinished telegram, if any (the parser judges it)."""
        if not self._buf:
            return None
        rest = bytes(self._buf)
        self._buf.clear()
        self._scan = 0
        return rest

    # -- internals ---------------------------------------------------------------
    def _skip_garbage(self, data: bytes) -> bytes:
        start = data.find(b"/")
        if start < 0:
            self.stats.garbage_bytes += len(data)
            return b""
        self.stats.garbage_bytes += start
        return data[start:]

    def _cut(self, buf: bytearray, out: list[bytes]) -> bool:
        """Handle the next line-start marker in ``buf``; False when more bytes are needed.

        Two searches in C (``\\n!`` and ``\\n/``) instead of a Python step per line."""
        scan = self._scan
        n = len(buf)
        bang = buf.find(b"\n!", scan)
        slash = buf.find(b"\n/", scan, n if bang < 0 else bang)
        if slash >= 0:  # '/' at a line start before any end line: the telegram was cut short
            self.stats.truncated += 1
            del buf[: slash + 1]
            self._scan = 0
            return True
        if bang < 0:
            self._scan = n - 1 if n else 0  # a '\\n' at the very end is looked at again
            return False
        end = self._end_of_crc_line(buf, bang + 1)
        if end < 0:
            self._scan = bang
            return False
        out.append(bytes(buf[:end]))
        self.stats.telegrams += 1
        rest = self._skip_garbage(bytes(buf[end:]))
        buf.clear()
        buf += rest
        self._scan = 0
        return bool(buf)

    @staticmethod
    def _end_of_crc_line(buf: bytearray, bang: int) -> int:
        """Index just past the '!' line, or -1 if it is not complete yet."""
        j = bang + 1
        n = len(buf)
        while j < n and j - bang <= 4 and buf[j] in _HEX:
            j += 1
        if j >= n:
            return -1
        if buf[j] == 0x0D:  # '\r'
            if j + 1 >= n:
                return -1
            return j + 2 if buf[j + 1] == 0x0A else j + 1
        if buf[j] == 0x0A:
            return j + 1
        return j  # no line end (a capture cut after the CRC): end right there
