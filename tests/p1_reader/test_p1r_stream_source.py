"""stdin, pipes, files and named pipes as sources (``--serial -``, ``--serial PATH``): real
pipes into a p1-reader process, the real Mosquitto, exact values read off the telegram
text in tests/data/telegrams; the process ends by itself (status 0) at the end of its input."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from p1r_support import STREAM, ReaderProc, telegram_bytes

from support import Mosquitto, Subscriber

FLUVIUS = telegram_bytes("dsmr_parser__fluvius_v171.txt")
ISK5 = telegram_bytes("nielsbasjes__ISK5_AM550T_real.txt")
V5 = telegram_bytes("dsmr_parser__v5.txt")
BAD_CRC = ISK5.replace(b"00.377*kW", b"00.999*kW")


@pytest.mark.skipif(shutil.which("socat") is None, reason="socat is not installed (make setup)")
def test_pipe_from_a_network_meter(mosquitto: Mosquitto, tmp_path: Path) -> None:
    """``socat -u TCP:host:port - | p1-reader --serial -``: a ser2net-like meter on loopback."""
    site = "stream-pipe"
    meter = socket.create_server(("127.0.0.1", 0))
    socat = subprocess.Popen(["socat", "-u", f"TCP:127.0.0.1:{meter.getsockname()[1]}", "STDOUT"],
                             stdout=subprocess.PIPE)
    conn, _ = meter.accept()
    sub = Subscriber(mosquitto.port, f"p1/{site}/reading")
    assert socat.stdout is not None
    proc = ReaderProc(mosquitto.url, mosquitto.port, site, tmp_path, ["--serial", "-"],
                      stdin=socat.stdout.fileno())
    socat.stdout.close()  # p1-reader holds the pipe now
    try:
        stream = b"\x00line noise" + BAD_CRC + FLUVIUS + ISK5 + V5[:300]
        for i in range(0, len(stream), 97):  # a serial line: any cut
            conn.sendall(stream[i:i + 97])
        readings = [m.json() for m in sub.wait(f"p1/{site}/reading", 2)]
        assert [(r["meter_id"], r["import_kwh"], r["source"]) for r in readings] == [
            ("1SAG3101021605", 15.792, "p1"), ("E0044007131650618", 6657.459, "p1")]
        assert readings[0]["gas_m3"] == 112.384 and readings[1]["import_w"] == 377.0
        assert proc.metric("p1_reader_bad_telegrams_total", reason="crc") == 1
        assert proc.metric("p1_reader_garbage_bytes_total") == len(b"\x00line noise")
        conn.close()  # the meter goes away: socat ends, p1-reader reads the end of its input
        assert proc.wait() == 0, proc.output()
        # the unfinished last telegram was judged, not dropped silently
        assert "bad telegram (truncated)" in proc.output()
        assert "end of stdin: 2 telegrams accepted" in proc.output()
        assert len(sub.on(f"p1/{site}/reading")) == 2
    finally:
        sub.close()
        proc.stop()
        socat.wait(10)
        meter.close()


def test_capture_file(mosquitto: Mosquitto, tmp_path: Path) -> None:
    """``--serial capture.dsmr``: a 566-telegram capture, as fast as it reads, source p1."""
    site = "stream-file"
    sub = Subscriber(mosquitto.port, f"p1/{site}/reading")
    proc = ReaderProc(mosquitto.url, mosquitto.port, site, tmp_path, ["--serial", str(STREAM)])
    try:
        assert proc.wait() == 0, proc.output()
        msgs = sub.wait(f"p1/{site}/reading", 566, timeout_s=20)
        assert len(msgs) == 566
        assert {m.json()["source"] for m in msgs} == {"p1"}
        assert msgs[-1].json()["ts"] == "2019-03-24T15:14:45+01:00"
    finally:
        sub.close()
        proc.stop()


def test_named_pipe(mosquitto: Mosquitto, tmp_path: Path) -> None:
    """``--serial /path/to/fifo``: read as written; the writer closing it ends p1-reader."""
    site = "stream-fifo"
    fifo = tmp_path / "p1.fifo"
    os.mkfifo(fifo)
    sub = Subscriber(mosquitto.port, f"p1/{site}/reading")
    proc = ReaderProc(mosquitto.url, mosquitto.port, site, tmp_path, ["--serial", str(fifo)])
    try:
        with fifo.open("wb", buffering=0) as writer:  # opens once p1-reader has it open
            writer.write(FLUVIUS[:100])
            writer.write(FLUVIUS[100:])
            reading = sub.wait(f"p1/{site}/reading")[0].json()
            assert (reading["meter_id"], reading["month_max_w"]) == ("1SAG3101021605", 2589.0)
            assert proc.metric("p1_reader_telegrams_total") == 1
            assert proc.metric("p1_reader_source_errors_total") == 0
        assert proc.wait() == 0, proc.output()
    finally:
        sub.close()
        proc.stop()
