"""The disk buffer (FIFO, crash-safe, bounded) and the pump's policy, time passed as values."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from vmserver import VictoriaMetrics

from recorder.diskbuffer import DiskBuffer
from recorder.pump import Pump
from recorder.sink import InfluxSink, Outcome
from support import free_port


def lines(n: int, start: int = 0, unit: str = "") -> list[str]:
    """Line protocol in seconds; ``unit="000000000"`` gives the nanoseconds older recorders wrote."""
    return [f"reading,site=home import_w={i} {1768481100 + i}{unit}" for i in range(start, start + n)]


def drain_all(buf: DiskBuffer, batch: int = 7) -> list[str]:
    out: list[str] = []
    while len(buf):
        got, upto = buf.peek(batch)
        assert got, "buffer says it has lines but gives none"
        out += got
        buf.commit(upto, len(got))
    return out


def test_fifo_across_segments(tmp_path: Path) -> None:
    buf = DiskBuffer(tmp_path, max_bytes=10_000_000, segment_bytes=1024)
    for i in range(0, 300, 30):
        buf.append(lines(30, i))
    assert len(buf) == 300
    assert len(list(tmp_path.glob("seg-*.lp"))) > 5
    assert drain_all(buf) == lines(300)
    assert len(buf) == 0 and list(tmp_path.glob("seg-*.lp")) == []


def test_restart_replays_what_was_not_committed(tmp_path: Path) -> None:
    buf = DiskBuffer(tmp_path, max_bytes=10_000_000, segment_bytes=1024)
    buf.append(lines(100))
    got, upto = buf.peek(40)
    buf.commit(upto, len(got))
    got2, _ = buf.peek(10)  # read but never committed (crash before InfluxDB answered)
    assert got2 == lines(10, 40)
    again = DiskBuffer(tmp_path, max_bytes=10_000_000, segment_bytes=1024)
    assert len(again) == 60
    assert drain_all(again) == lines(60, 40)


def test_torn_last_line_is_cut(tmp_path: Path) -> None:
    buf = DiskBuffer(tmp_path, max_bytes=10_000_000)
    buf.append(lines(3))
    seg = sorted(tmp_path.glob("seg-*.lp"))[-1]
    with open(seg, "ab") as fh:
        fh.write(b"reading,site=home import_w=9")  # power cut in the middle of a write
    again = DiskBuffer(tmp_path, max_bytes=10_000_000)
    assert len(again) == 3
    again.append(lines(1, 3))
    assert drain_all(again) == lines(4)


def test_full_buffer_drops_oldest(tmp_path: Path) -> None:
    buf = DiskBuffer(tmp_path, max_bytes=8192, segment_bytes=2048)
    for i in range(0, 1000, 10):
        buf.append(lines(10, i))
    assert buf.size_bytes <= 8192 + 2048
    kept = drain_all(buf)
    assert buf.dropped_lines + len(kept) == 1000
    assert buf.dropped_lines > 0
    assert kept == lines(len(kept), 1000 - len(kept))  # the newest survive, in order


def test_pump_outage_then_recovery_against_victoriametrics(vm: VictoriaMetrics, tmp_path: Path) -> None:
    sink = InfluxSink(vm.url, "token", "org", "bucket", timeout_s=5)
    buf = DiskBuffer(tmp_path, max_bytes=10_000_000)
    pump = Pump(sink, buf, batch_size=10, flush_s=1.0, retry_max_s=8)
    pump.add(lines(5), now=0.0)
    pump.tick(0.5)
    assert pump.pending == 5  # neither full nor old enough
    pump.tick(1.0)
    assert pump.pending == 0 and pump.written == 5
    vm.stop()
    pump.add(lines(25, 5), now=2.0)  # a full batch and more
    pump.tick(2.0)
    assert len(buf) == 25 and pump.written == 5
    pump.add(lines(3, 30), now=1.5)
    pump.tick(2.5)  # back-off: no try before t=3; the batch goes behind the backlog
    assert len(buf) == 28
    vm.start()
    pump.tick(2.9)
    assert len(buf) == 28  # still backing off
    pump.tick(3.0)
    assert len(buf) == 0 and pump.written == 33
    series = vm.export()["reading_import_w{site=home}"]
    assert series == [((1768481100 + i) * 1000, float(i)) for i in range(33)]


def test_buffer_from_an_older_recorder_in_nanoseconds_lands_on_its_second(
        vm: VictoriaMetrics, tmp_path: Path) -> None:
    """Before 0.2 the buffer held nanosecond lines; the sink writes everything with precision s."""
    DiskBuffer(tmp_path, max_bytes=10_000_000).append(lines(4, unit="000000000"))
    sink = InfluxSink(vm.url, "token", "org", "bucket", timeout_s=5)
    buf = DiskBuffer(tmp_path, max_bytes=10_000_000)  # the restart
    pump = Pump(sink, buf, batch_size=10, flush_s=1.0)
    pump.add(lines(2, 4), now=0.0)
    pump.tick(1.0)
    assert len(buf) == 0 and pump.written == 6
    assert vm.export()["reading_import_w{site=home}"] == [((1768481100 + i) * 1000, float(i))
                                                         for i in range(6)]


class _TimedSink(InfluxSink):
    """The real sink, noting when the pump tried to write."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.now = 0.0
        self.tries: list[float] = []

    def write(self, lines: list[str]) -> Outcome:
        self.tries.append(self.now)
        return super().write(lines)


def test_pump_backoff_doubles_up_to_max(tmp_path: Path) -> None:
    sink = _TimedSink(f"http://127.0.0.1:{free_port()}", "t", "o", "b", timeout_s=2)
    buf = DiskBuffer(tmp_path, max_bytes=10_000_000)
    pump = Pump(sink, buf, batch_size=1, flush_s=0.1, retry_max_s=4)
    pump.add(lines(1), now=0.0)
    for step in range(80):
        sink.now = step * 0.25
        pump.tick(sink.now)
    assert sink.tries[:6] == [0.0, 1.0, 3.0, 7.0, 11.0, 15.0]
    assert len(buf) == 1


class _Refuse(BaseHTTPRequestHandler):
    status = 422

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        body = b'{"code":"unprocessable entity","message":"field type conflict"}'
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_rejected_batch_is_dropped_not_retried(tmp_path: Path) -> None:
    """InfluxDB answers 422 to bad data (e.g. a field type conflict): retrying cannot help."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Refuse)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        sink = InfluxSink(f"http://127.0.0.1:{httpd.server_address[1]}", "t", "o", "b", 5)
        assert sink.write(lines(1)) is Outcome.REJECTED
        assert "422" in (sink.last_error or "")
        buf = DiskBuffer(tmp_path, max_bytes=10_000_000)
        pump = Pump(sink, buf, batch_size=4, flush_s=1.0)
        pump.add(lines(10), now=0.0)
        pump.tick(0.0)
        assert pump.rejected == 10 and len(buf) == 0 and pump.pending == 0
    finally:
        httpd.shutdown()
        httpd.server_close()
