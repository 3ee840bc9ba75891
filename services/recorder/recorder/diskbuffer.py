"""A bounded, crash-safe, first-in-first-out queue of line-protocol lines on disk.

Used while InfluxDB is down or slow. Lines are appended to segment files
(``seg-000000000001.lp`` ...), each append flushed and fsynced, so a crash or a
restart replays them. A cursor file (written atomically) says how far the oldest
segment has been delivered. A crash between a successful write and the cursor
update replays that one batch: the same points with the same timestamps, which
InfluxDB stores once (a point is identified by measurement, tags and time).

Bounded: when the segments pass ``max_bytes`` the oldest segment is dropped
(counted and logged loudly), so a long outage never fills the SD card.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from p1common.persist import atomic_write_json, load_json

log = logging.getLogger(__name__)

CURSOR = "cursor.json"


class DiskBuffer:
    def __init__(self, directory: str | os.PathLike[str], max_bytes: int,
                 segment_bytes: int = 1 << 20) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.segment_bytes = max(1024, min(segment_bytes, max_bytes // 4 or 1024))
        self.dropped_lines = 0
        cursor = load_json(self.dir / CURSOR, default={}) or {}
        self._head_seq = int(cursor.get("segment", 0))
        self._head_offset = int(cursor.get("offset", 0))
        self._repair()
        self._count = self._count_lines()

    # -- segments ------------------------------------------------------------------
    def _segments(self) -> list[tuple[int, Path]]:
        out = []
        for path in self.dir.glob("seg-*.lp"):
            try:
                out.append((int(path.stem[4:]), path))
            except ValueError:
                continue
        return sorted(out)

    @staticmethod
    def _name(seq: int) -> str:
        return f"seg-{seq:012d}.lp"

    def _repair(self) -> None:
        """After a crash: cut a torn last line, forget segments the cursor has passed."""
        segs = self._segments()
        for seq, path in segs:
            if seq < self._head_seq:
                path.unlink()
        segs = self._segments()
        if not segs:
            self._head_offset = 0
            return
        if segs[0][0] != self._head_seq:  # cursor's segment is gone (dropped when full)
            self._head_seq, self._head_offset = segs[0][0], 0
        tail = segs[-1][1]
        data = tail.read_bytes()
        if data and not data.endswith(b"\n"):
            keep = data.rfind(b"\n") + 1
            log.warning("buffer: cut a torn line at the end of %s (%d bytes)", tail.name,
                        len(data) - keep)
            with open(tail, "r+b") as fh:
                fh.truncate(keep)
                os.fsync(fh.fileno())

    def _count_lines(self) -> int:
        total = 0
        for seq, path in self._segments():
            with open(path, "rb") as fh:
                if seq == self._head_seq:
                    fh.seek(self._head_offset)
                total += fh.read().count(b"\n")
        return total

    # -- public -------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._count

    @property
    def size_bytes(self) -> int:
        return sum(p.stat().st_size for _, p in self._segments())

    def append(self, lines: list[str]) -> None:
        if not lines:
            return
        data = "".join(line + "\n" for line in lines).encode()
        segs = self._segments()
        if segs and segs[-1][1].stat().st_size < self.segment_bytes:
            path = segs[-1][1]
        else:
            seq = (segs[-1][0] + 1) if segs else max(self._head_seq, 1)
            if not segs:
                self._head_seq, self._head_offset = seq, 0
            path = self.dir / self._name(seq)
        with open(path, "ab") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        self._count += len(lines)
        self._enforce_limit()

    def _enforce_limit(self) -> None:
        segs = self._segments()
        total = sum(p.stat().st_size for _, p in segs)
        while total > self.max_bytes and len(segs) > 1:
            seq, path = segs.pop(0)
            with open(path, "rb") as fh:
                if seq == self._head_seq:
                    fh.seek(self._head_offset)
                lost = fh.read().count(b"\n")
            total -= path.stat().st_size
            path.unlink()
            self._count -= lost
            self.dropped_lines += lost
            self._head_seq, self._head_offset = segs[0][0], 0
            self._save_cursor()
            log.error("buffer full (%d bytes max): dropped the oldest %d points", self.max_bytes,
                      lost)

    def peek(self, max_lines: int) -> tuple[list[str], tuple[int, int]]:
        """The oldest lines (at most ``max_lines``, from one segment) and where they end."""
        segs = self._segments()
        if not segs:
            return [], (self._head_seq, self._head_offset)
        seq, path = segs[0]
        while len(segs) > 1 and seq == self._head_seq and self._head_offset >= path.stat().st_size:
            path.unlink()  # delivered before a crash, deletion not done yet
            segs.pop(0)
            seq, path = segs[0]
            self._head_seq, self._head_offset = seq, 0
        offset = self._head_offset if seq == self._head_seq else 0
        lines: list[str] = []
        with open(path, "rb") as fh:
            fh.seek(offset)
            while len(lines) < max_lines:
                raw = fh.readline()
                if not raw.endswith(b"\n"):
                    break
                offset += len(raw)
                text = raw.decode(errors="replace").rstrip("\n")
                if text:
                    lines.append(text)
        return lines, (seq, offset)

    def commit(self, upto: tuple[int, int], count: int) -> None:
        """Mark what :meth:`peek` returned as delivered."""
        seq, offset = upto
        segs = self._segments()
        path = self.dir / self._name(seq)
        self._count = max(0, self._count - count)
        if path.exists() and offset >= path.stat().st_size and len(segs) > 1:
            path.unlink()  # fully delivered and not the segment being appended to
            rest = [s for s, _ in segs if s > seq]
            self._head_seq, self._head_offset = rest[0], 0
        elif path.exists() and offset >= path.stat().st_size:
            path.unlink()  # the last segment, fully delivered: the buffer is empty
            self._head_seq, self._head_offset = seq + 1, 0
        else:
            self._head_seq, self._head_offset = seq, offset
        self._save_cursor()

    def _save_cursor(self) -> None:
        atomic_write_json(self.dir / CURSOR, {"segment": self._head_seq,
                                              "offset": self._head_offset}, keep_backup=False)
