"""The console script as a process: a user layout from a YAML file, metrics over HTTP, SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import urllib.request
from datetime import datetime
from zoneinfo import ZoneInfo

from bridge_multicast.cli import main
from p1common.topics import Topics
from support import Subscriber, free_port, wait_for

LO = "127.0.0.1"
GROUP = "239.255.83.2"
TOPICS = Topics("p1")
LAYOUT_YAML = """\
default: fw-test
layouts:
  fw-test:
    description: a user's own firmware, nine values
    fields:
      - {name: import_t1_kwh, scale: 0.001, unit: Wh}
      - {name: import_t2_kwh, scale: 0.001, unit: Wh}
      - {name: export_t1_kwh, scale: 0.001, unit: Wh}
      - {name: export_t2_kwh, scale: 0.001, unit: Wh}
      - {name: import_w, unit: W}
      - {name: export_w, unit: W}
      - tariff
      - minute
      - second
"""


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge_multicast.cli", *args],
        capture_output=True, text=True, timeout=30, env={**os.environ, **(env or {})},
    )


def test_help_layouts_decode_and_errors(tmp_path, capsys):
    out = cli("--help")
    assert out.returncode == 0 and "BRIDGE_LAYOUTS_FILE" in out.stdout and "--interface" in out.stdout

    path = tmp_path / "layouts.yaml"
    path.write_text(LAYOUT_YAML)
    out = cli("layouts", "--layouts-file", str(path))
    doc = json.loads(out.stdout)
    assert doc["default"] == "fw-test" and sorted(doc["layouts"]) == ["fw-test", "seed-7"]
    assert doc["layouts"]["fw-test"]["fields"][0] == {"name": "import_t1_kwh", "scale": 0.001, "unit": "Wh"}

    assert main(["decode", '{"dsmr":{83125000,27689000,0,0,1,11,2]}', "nope", "--site", "x"]) == 1
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[0]["import_kwh"] == 83125.0 and lines[0]["site"] == "x"
    assert (lines[0]["ts"][14:19], lines[0]["source"]) == ("11:02", "legacy")
    assert lines[1] == {"error": "not_json", "message": "not a JSON object: 'nope'"}

    out = cli(env={"BRIDGE_TTL": "-1"})
    assert out.returncode == 2
    assert "BRIDGE_TTL: -1 is below the minimum 0" in out.stderr
    out = cli("--interface", "lo")
    assert out.returncode == 2 and "--interface: 'lo' must be the IPv4 address" in out.stderr


def test_process_with_user_layout_metrics_and_sigterm(tmp_path, mosquitto):
    path = tmp_path / "layouts.yaml"
    path.write_text(LAYOUT_YAML)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((LO, 0))
        port = s.getsockname()[1]
    metrics_port = free_port()
    site = "clisite"
    sub = Subscriber(mosquitto.port, TOPICS.reading(site), "p1/status/bridge-cli-test")
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((GROUP, port))
    listener.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                        struct.pack("4s4s", socket.inet_aton(GROUP), socket.inet_aton(LO)))
    listener.settimeout(5)
    env = {
        **os.environ, "MQTT_URL": mosquitto.url, "P1_SITE": site, "METRICS_PORT": str(metrics_port),
        "BRIDGE_GROUP": GROUP, "BRIDGE_PORT": str(port), "BRIDGE_INTERFACE": LO,
        "BRIDGE_LAYOUTS_FILE": str(path), "BRIDGE_TZ": "Europe/Brussels",
        "MQTT_CLIENT_ID": "bridge-cli-test",
    }
    proc = subprocess.Popen([sys.executable, "-m", "bridge_multicast.cli"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        def healthy() -> bool:
            try:
                with urllib.request.urlopen(f"http://{LO}:{metrics_port}/healthz", timeout=1) as r:
                    return r.status == 200
            except OSError:
                return False

        wait_for(healthy, 10)
        # its "online" follows its SUBSCRIBEs on the same connection: seen, it gets readings
        wait_for(lambda: [m for m in sub.on("p1/status/bridge-cli-test")
                          if m.payload == b"online" and not m.retain], 10)
        sender.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(LO))
        sender.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        now = datetime.now(ZoneInfo("Europe/Brussels"))
        frame = f"{{\"dsmr\":[559373,477305,549778,254235,668,0,1,{now.minute},{now.second}]}}"
        sender.sendto(frame.encode(), (GROUP, port))
        [msg] = sub.wait(TOPICS.reading(site))
        reading = msg.json()
        ts = datetime.fromisoformat(reading.pop("ts"))
        assert (ts.minute, ts.second) == (now.minute, now.second)
        assert abs((ts - now).total_seconds()) < 2
        assert reading == {
            "v": 1, "site": site, "source": "legacy", "ts_source": "meter",
            "import_t1_kwh": 559.373, "import_t2_kwh": 477.305,
            "export_t1_kwh": 549.778, "export_t2_kwh": 254.235,
            "import_w": 668, "export_w": 0, "tariff": 1, "tariff_low": False,
            "import_kwh": 1036.678, "export_kwh": 804.013, "net_w": 668,
        }

        # the other way, in the user's layout
        sub.publish(TOPICS.reading(site), {
            "v": 1, "site": site, "source": "p1", "ts": "2026-01-15T15:11:03+01:00",
            "import_t1_kwh": 559.373, "import_t2_kwh": 477.305, "export_t1_kwh": 549.778,
            "export_t2_kwh": 254.235, "import_w": 0.0, "export_w": 1520.0, "tariff": 2,
        })
        got = []
        while True:
            data, _src = listener.recvfrom(2048)
            got.append(data)
            if data != frame.encode():
                break
        assert got[-1] == b'{"dsmr":[559373,477305,549778,254235,0,1520,2,11,3]}'

        def metrics() -> str:
            with urllib.request.urlopen(f"http://{LO}:{metrics_port}/metrics", timeout=2) as r:
                return r.read().decode()

        # the counters go up right after the frame / reading went out (the listener and
        # the subscriber may have them first): wait for them; the bridge's own frame came
        # back on loopback and was dropped, not published
        wanted = [f'p1_bridge_readings_published_total{{site="{site}"}} 1.0',
                  f'p1_bridge_frames_sent_total{{site="{site}"}} 1.0',
                  f'p1_bridge_frames_dropped_total{{reason="own",site="{site}"}} 1.0']
        wait_for(lambda: all(w in metrics() for w in wanted))
        assert [m.json()["source"] for m in sub.on(TOPICS.reading(site))] == ["legacy", "p1"]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        sender.close()
        listener.close()
        sub.close()
    assert proc.returncode == 0, out
    assert "layout fw-test" in out and "stopped" in out
