"""Shared data for the p1-reader tests: the fixture telegrams and which are good."""

from __future__ import annotations

from pathlib import Path

from p1common.dsmr.framer import TelegramFramer

TELEGRAMS = Path(__file__).resolve().parents[1] / "data" / "telegrams"
STREAM = TELEGRAMS / "nielsbasjes__ttyUSB0-raw_566x.dsmr"

# SOURCES.md: these carry a CRC that does not match their content (spec examples,
# anonymised captures); the reader must refuse them.
BAD_CRC = {
    "athombv__dsmr-4.0-isk-1.txt": ("522B", "8FC7"),
    "athombv__dsmr-4.0-spec-example.txt": ("522B", "F46A"),
    "athombv__dsmr-4.2-xmx-1.txt": ("D3B0", "63A1"),
    "athombv__dsmr-4.2.2-spec-example.txt": ("CE7C", "DD0F"),
    "athombv__dsmr-5.0-ene-1.txt": ("D59D", "2E0A"),
    "athombv__dsmr-5.0-ene-2.txt": ("B055", "60EB"),
    "athombv__dsmr-5.0-ene-3.txt": ("B788", "8ECC"),
    "athombv__dsmr-5.0-est-units.txt": ("FFFF", "17FF"),
    "athombv__dsmr-5.0-spec-example-lowercase.txt": ("EF2F", "5AD9"),
    "athombv__dsmr-5.0-spec-example.txt": ("EF2F", "E47C"),
    "athombv__dsmr-luxembourgh-spec-example.txt": ("8B52", "6DA1"),
    "athombv__emucs-p1-v2.1.1-spec-example-1.txt": ("1234", "74E0"),
    "athombv__emucs-p1-v2.1.1-spec-example-2.txt": ("1234", "A396"),
    "athombv__kamstrup-OMNIA-e-meter-three-phase.txt": ("3AF8", "CE8F"),
    "athombv__sagemcom-xt211.txt": ("3BA5", "47E6"),
}
# Complete DSMR 2.2/3 telegrams stored without any '!' end line.
NO_END_LINE = {
    "athombv__iskra-mt-382-no-crc-with-text-message.txt",
    "athombv__iskra-mt-382-no-crc.txt",
}

ALL_FILES = sorted(p.name for p in TELEGRAMS.glob("*.txt"))
GOOD_FILES = [n for n in ALL_FILES if n not in BAD_CRC]


def telegram_bytes(name: str) -> bytes:
    """The one telegram of a fixture file, cut by our framer (trailing junk dropped)."""
    data = (TELEGRAMS / name).read_bytes()
    framer = TelegramFramer()
    found = framer.feed(data)
    rest = framer.flush()
    if rest is not None:
        found.append(rest)
    assert len(found) == 1, f"{name}: {len(found)} telegrams"
    return found[0]


def with_crc(body: bytes) -> bytes:
    """A telegram edited by a test, with the CRC16 after '!' made to match again."""
    from p1common.dsmr_crc import crc16

    bang = body.index(b"!")
    return body[:bang + 1] + b"%04X\r\n" % crc16(body[:bang + 1])


class ReaderProc:
    """p1-reader as a real process (its console script) with a metrics port; started, it
    has said ``online`` (after its SUBSCRIBEs on the same connection: it receives its
    topics). ``stop()`` ends it with SIGTERM."""

    def __init__(self, broker_url: str, broker_port: int, site: str, log_dir: Path,
                 args: list[str], stdin: int | None = None, **env: str) -> None:
        import os
        import subprocess
        import sys

        from support import Subscriber, free_port, wait_for

        self.client_id = f"p1r-test-{site}-{os.getpid()}"
        self.metrics_port = free_port()
        self.log_path = log_dir / f"{self.client_id}.log"
        self.status_topic = f"p1/status/{self.client_id}"
        full_env = {**os.environ, "MQTT_URL": broker_url, "P1_SITE": site,
                    "MQTT_CLIENT_ID": self.client_id, "METRICS_PORT": str(self.metrics_port),
                    "P1_HA_DISCOVERY": "false", "PYTHONUNBUFFERED": "1", **env}
        watch = Subscriber(broker_port, self.status_topic)
        try:
            with self.log_path.open("ab") as fh:
                self.proc = subprocess.Popen(
                    [str(Path(sys.executable).parent / "p1-reader"), *args], env=full_env,
                    stdout=fh, stderr=subprocess.STDOUT, stdin=stdin)

            def online() -> bool:
                if any(m.payload == b"online" for m in watch.messages):
                    return True  # (a short file may be read to its end and the process gone)
                if self.proc.poll() is not None:
                    raise AssertionError(f"p1-reader exited ({self.proc.returncode}):\n"
                                         + self.output())
                return False

            wait_for(online, 20)
        finally:
            watch.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples ``name`` whose labels include ``labels`` (0 if none)."""
        import urllib.request

        from support import metric_sum

        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics",
                                    timeout=3) as r:
            return metric_sum(r.read().decode(), name, **labels)

    def wait(self, timeout_s: float = 30.0) -> int:
        """The exit status, once the process ended by itself (end of its input)."""
        return self.proc.wait(timeout_s)

    def stop(self) -> int:
        import subprocess

        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode
