"""The serial thread never dies silently.

A port stand-in (hardware: the only fake here) raises what real adapters raise: a
``termios.error`` when the auto profile switches a tty to 7E1 (not an OSError), or
something no port should raise (a bug). The first is a port fault (reopen), the second
stops p1-reader with exit status 1 so its supervisor restarts it.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import termios
import threading
from typing import Any

import pytest
from p1r_support import TELEGRAMS

from p1_reader import service
from p1_reader.service import ReaderSettings, TelegramHandler, read_port, run
from p1common.settings import CommonSettings
from p1common.topics import Topics
from support import Mosquitto


class StandInPort:
    """Reads nothing; ``apply_settings`` / ``read`` raise what the test says."""

    def __init__(self, on_apply: BaseException | None = None, on_read: BaseException | None = None,
                 opened: threading.Event | None = None) -> None:
        self.on_apply, self.on_read = on_apply, on_read
        if opened is not None:
            opened.set()

    def read(self, n: int) -> bytes:
        if self.on_read is not None:
            raise self.on_read
        return b""

    def apply_settings(self, settings: dict[str, Any]) -> None:
        if self.on_apply is not None:
            raise self.on_apply

    def close(self) -> None:
        pass


def test_termios_error_on_profile_switch_reopens_the_port(monkeypatch: pytest.MonkeyPatch,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    stop = threading.Event()
    opens: list[str] = []

    def open_port(url: str, profile: str) -> StandInPort:
        opens.append(profile)
        if len(opens) == 1:  # the auto profile gives up on 8N1 and switches: the tty refuses
            return StandInPort(on_apply=termios.error(5, "Input/output error"))
        stop.set()  # reopened: that is what the test wanted to see
        return StandInPort()

    monkeypatch.setattr(service, "open_port", open_port)
    handler = TelegramHandler(ReaderSettings(), Topics(), "home", "p1", lambda *a: None, "p1/status/x")
    caplog.set_level(logging.INFO, "p1-reader")
    thread = threading.Thread(target=read_port, args=(handler, ReaderSettings(detect_s=0.5), stop),
                              kwargs={"min_backoff_s": 0.01})
    thread.start()
    thread.join(10)
    assert not thread.is_alive()
    assert opens == ["dsmr4", "dsmr2"]
    lost = [r.getMessage() for r in caplog.records if r.getMessage().startswith("lost ")]
    assert lost == ["lost /dev/ttyUSB0: (5, 'Input/output error'); reopening in 0.0 s"]


def test_an_unexpected_error_stops_the_process_with_status_1(monkeypatch: pytest.MonkeyPatch,
                                                              mosquitto: Mosquitto,
                                                              capfd: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(service, "open_port",
                        lambda url, profile: StandInPort(on_read=RuntimeError("a bug in a driver")))
    common = CommonSettings.from_env({"MQTT_URL": mosquitto.url, "P1_SITE": "faults"})
    result: list[int] = []
    thread = threading.Thread(
        target=lambda: result.append(run(ReaderSettings(), common, install_signals=False)))
    thread.start()
    thread.join(20)
    assert not thread.is_alive() and result == [1]
    err = capfd.readouterr().err  # the service's own log handler writes stderr
    critical = [line.split(" p1-reader ", 1)[1] for line in err.splitlines() if " CRITICAL " in line]
    assert critical == ["serial reader failed: RuntimeError: a bug in a driver; stopping (exit status 1) "
                        "so that the supervisor restarts p1-reader"]


def test_parse_into_a_closed_pipe_is_quiet() -> None:
    """`p1-reader parse ... | head -c 10`: the reader leaves early; no BrokenPipe traceback."""
    fixture = str(TELEGRAMS / "dsmr_parser__v5.txt")
    proc = subprocess.Popen([sys.executable, "-m", "p1_reader.cli", "parse", *[fixture] * 500],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.read(10) == b'{"v": 1, "'
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(30) == 0
    assert err == ""
