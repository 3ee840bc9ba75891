"""The default settings (224.0.1.3:8266, interface 0.0.0.0 = the kernel's choice) inside a
network namespace this test creates: only ``lo`` exists there, with a 224.0.0.0/4 route,
so the real group and port are used without touching any other interface."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys

import pytest

_n = itertools.count()

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None, reason="needs root and iproute2 (ip netns)"
)

SCRIPT = r"""
import json, socket, time
from datetime import datetime
from zoneinfo import ZoneInfo
from bridge_multicast.bridge import open_receiver, open_sender
from bridge_multicast.config import BridgeSettings
from bridge_multicast.core import BridgeCore

s = BridgeSettings.from_env({})
rx = open_receiver(s.group, s.port, s.interface)
tx = open_sender(s.group, s.port, s.interface, s.ttl, s.loop)
core = BridgeCore(s.layout, "home", own_address=tx.getsockname())
esp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
esp.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
esp.sendto(b'{"dsmr":{83125000,27689000,0,0,1,11,2]}', (s.group, s.port))
reading = {"source": "p1", "ts": "2026-01-15T15:11:03+01:00", "tariff": 1,
           "import_kwh": 83125.0, "export_kwh": 27689.0, "import_w": 668, "export_w": 0}
tx.send(core.on_reading(reading, 0.0).frame)
host = datetime.fromisoformat("2026-01-15T15:10:59+01:00").astimezone(ZoneInfo(s.tz_name))
out = {"own": list(tx.getsockname()), "group": s.group, "port": s.port, "verdicts": []}
for _ in range(2):
    data, src = rx.recvfrom(65535)
    v = core.on_datagram(data, src, 0.1, host)
    out["verdicts"].append([data.decode(), list(src), v.action, v.reason, v.reading and v.reading["ts"]])
print(json.dumps(out))
"""


@pytest.fixture()
def netns():
    name = f"p1bm-{os.getpid()}-{next(_n)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        subprocess.run(["ip", "-n", name, "route", "add", "224.0.0.0/4", "dev", "lo"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def test_default_group_port_and_interface_in_a_namespace(netns):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_")}
    out = subprocess.run(
        ["ip", "netns", "exec", netns, sys.executable, "-c", SCRIPT],
        capture_output=True, text=True, timeout=30, env=env,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert (result["group"], result["port"]) == ("224.0.1.3", 8266)
    by_frame = {v[0]: v[1:] for v in result["verdicts"]}
    # the ESP's frame is published; ours, seen from the address the socket reports
    # (0.0.0.0 here: lo's 127.0.0.1 is host-scoped, so no source is chosen), is dropped
    esp = by_frame['{"dsmr":{83125000,27689000,0,0,1,11,2]}']
    assert esp[1:] == ["publish", "", "2026-01-15T15:11:02+01:00"]
    own = by_frame['{"dsmr":[83125000,27689000,668,0,1,11,3]}']
    assert own == [result["own"], "drop", "own", None]
