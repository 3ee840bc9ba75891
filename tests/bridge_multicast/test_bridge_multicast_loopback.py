"""The bridge with real sockets and the real Mosquitto, multicast on loopback only.

Every socket here sends with IP_MULTICAST_IF 127.0.0.1 and TTL 1 and joins on
127.0.0.1, on a test group in 239.255.0.0/16 and a port free for this test, so
nothing leaves the host and parallel tests do not hear each other.
"""

from __future__ import annotations

import itertools
import socket
import struct
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from prometheus_client import REGISTRY

from bridge_multicast.bridge import Bridge
from bridge_multicast.config import BridgeSettings
from p1common.payloads import Live, Reading
from p1common.service import ServiceRuntime
from p1common.settings import CommonSettings
from p1common.topics import Topics
from support import Subscriber, wait_for

LO = "127.0.0.1"
GROUP = "239.255.83.1"
BXL = ZoneInfo("Europe/Brussels")
HOST = datetime.fromisoformat("2026-01-15T15:10:59+01:00").astimezone(BXL)
TOPICS = Topics("p1")
_sites = itertools.count(1)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((LO, 0))
        return int(s.getsockname()[1])


class LegacySender:
    """The fake ESP P1 interface: sends frames to the group on loopback."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(LO))
        self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
        self.sock.bind((LO, 0))

    def send(self, data: bytes) -> None:
        self.sock.sendto(data, (GROUP, self.port))

    def close(self) -> None:
        self.sock.close()


class LegacyListener:
    """The fake monitor/switch module: joins the group on loopback, keeps what it hears."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((GROUP, port))
        mreq = struct.pack("4s4s", socket.inet_aton(GROUP), socket.inet_aton(LO))
        self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
        self.sock.setblocking(False)
        self.got: list[tuple[bytes, tuple[str, int]]] = []

    def poll(self) -> list[tuple[bytes, tuple[str, int]]]:
        while True:
            try:
                data, src = self.sock.recvfrom(65535)
            except BlockingIOError:
                return self.got
            self.got.append((data, src))

    def frames_from(self, source: tuple[str, int]) -> list[bytes]:
        return [d for d, s in self.poll() if s == source]

    def close(self) -> None:
        self.sock.close()


def metric(name: str, site: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, {"site": site, **labels}) or 0.0


def counted(name: str, site: str, value: float, **labels: str) -> None:
    """The counter reaches ``value`` and no more: the bridge counts a frame sent or a
    reading published right after it went out, so the test may see it before the count."""
    wait_for(lambda: metric(name, site, **labels) >= value)
    assert metric(name, site, **labels) == value, name


@pytest.fixture()
def bridge_env(mosquitto):
    """Factory: a bridge on loopback (its own site and port), a fake sender and listener."""
    made: list = []

    def make(direction: str = "both"):
        site = f"mc{next(_sites)}"
        port = free_udp_port()
        listener = LegacyListener(port)  # first, so it hears everything
        settings = BridgeSettings(group=GROUP, port=port, interface=LO, ttl=1, direction=direction)
        common = CommonSettings.from_env({"MQTT_URL": mosquitto.url, "P1_SITE": site})
        runtime = ServiceRuntime(
            "bridge-multicast", common, client_id=f"bridge-test-{site}", install_signals=False
        )
        bridge = Bridge(settings, runtime, clock=lambda: HOST)
        bridge.start()
        runtime.start()
        assert runtime.mqtt.wait_connected(5)
        sub = Subscriber(mosquitto.port, TOPICS.reading(site), TOPICS.live(site))
        sender = LegacySender(port)
        made.append((bridge, runtime, sub, sender, listener))
        if direction != "to-mqtt":
            # wait until the bridge's reading subscription is live: an incomplete probe
            # reading is refused (counted) once it is
            probe = {"v": 1, "site": site, "source": "p1", "ts": "2026-01-15T00:00:00+01:00"}
            sent = []

            def probed() -> bool:
                sub.publish(TOPICS.reading(site), probe)
                sent.append(probe)
                return metric("p1_bridge_readings_skipped_total", site, reason="incomplete") > 0

            wait_for(probed, 5, 0.05)
            wait_for(lambda: len(sub.on(TOPICS.reading(site))) == len(sent))
            sub.clear()
        return site, bridge, sub, sender, listener

    yield make
    for bridge, runtime, sub, sender, listener in made:
        bridge.stop()
        runtime.close()
        sub.close()
        sender.close()
        listener.close()


SEED_FRAME = b'{"dsmr":{83125000,27689000,0,0,1,11,2]}'
P1_READING = {
    "v": 1, "source": "p1", "ts": "2026-01-15T15:11:03+01:00", "tariff": 2,
    "import_kwh": 1036.678, "export_kwh": 804.013, "import_w": 668.0, "export_w": 0.0,
    "net_w": 668.0, "l1_voltage_v": 234.7,
}


def test_legacy_frame_to_mqtt_exact(bridge_env, mosquitto):
    site, _bridge, sub, sender, _ = bridge_env("to-mqtt")
    sender.send(SEED_FRAME)
    [msg] = sub.wait(TOPICS.reading(site))
    assert msg.json() == {
        "v": 1, "site": site, "source": "legacy", "ts": "2026-01-15T15:11:02+01:00",
        "ts_source": "meter", "import_kwh": 83125.0, "export_kwh": 27689.0,
        "import_w": 0, "export_w": 0, "tariff": 1, "net_w": 0, "tariff_low": False,
    }
    Reading.model_validate(msg.json())
    [live] = sub.wait(TOPICS.live(site))
    assert live.json() == {"ts": 1768486262, "imp": 0, "exp": 0, "tar": 1}
    Live.model_validate(live.json())
    # the reading is retained, the live message is not
    late = Subscriber(mosquitto.port, TOPICS.reading(site), TOPICS.live(site))
    try:
        [kept] = late.wait(TOPICS.reading(site))
        assert kept.retain and kept.json()["source"] == "legacy"
        # the positive control: a marker published on the live topic now; the broker sends
        # a new subscriber the retained messages when it subscribes, before anything
        # published later, so a retained live message would be here before the marker
        sub.publish(TOPICS.live(site), b"marker", qos=1)
        late.wait(TOPICS.live(site))
        assert [m.payload for m in late.on(TOPICS.live(site))] == [b"marker"]
    finally:
        late.close()
    counted("p1_bridge_readings_published_total", site, 1)


def test_reading_to_legacy_exact_frame(bridge_env):
    site, bridge, sub, _, listener = bridge_env("to-legacy")
    sub.publish(TOPICS.reading(site), {**P1_READING, "site": site})
    own = bridge.sender.getsockname()
    assert own[0] == LO
    frames = wait_for(lambda: listener.frames_from(own))
    assert frames == [b'{"dsmr":[1036678,804013,668,0,2,11,3]}']
    # the same reading again (a redelivery) is not sent twice; a new one is
    sub.publish(TOPICS.reading(site), {**P1_READING, "site": site})
    sub.publish(TOPICS.reading(site), {**P1_READING, "site": site, "ts": "2026-01-15T15:11:04+01:00",
                                       "import_w": 0.0, "export_w": 1520.0, "net_w": -1520.0})
    # the positive control: one more new reading; its frame comes after any frame of the
    # ones before (one MQTT connection, handled in order, each frame sent by the handler)
    sub.publish(TOPICS.reading(site), {**P1_READING, "site": site, "ts": "2026-01-15T15:11:05+01:00"})
    wait_for(lambda: len(listener.frames_from(own)) >= 3)
    assert listener.frames_from(own) == [
        b'{"dsmr":[1036678,804013,668,0,2,11,3]}',
        b'{"dsmr":[1036678,804013,0,1520,2,11,4]}',
        b'{"dsmr":[1036678,804013,668,0,2,11,5]}',
    ]
    counted("p1_bridge_frames_sent_total", site, 3)
    assert metric("p1_bridge_readings_skipped_total", site, reason="duplicate") == 1


def test_no_loops_with_both_directions(bridge_env):
    site, bridge, sub, sender, listener = bridge_env("both")
    own = bridge.sender.getsockname()
    legacy_src = sender.sock.getsockname()

    # 1. a p1 reading -> one frame; that frame comes back to the bridge (loop on) and is dropped
    sub.publish(TOPICS.reading(site), {**P1_READING, "site": site})
    wait_for(lambda: listener.frames_from(own))
    wait_for(lambda: metric("p1_bridge_frames_dropped_total", site, reason="own") == 1)

    # 2. a legacy frame -> one legacy reading; the bridge hears its own reading and emits nothing
    sender.send(SEED_FRAME)
    wait_for(lambda: [m for m in sub.on(TOPICS.reading(site)) if m.json()["source"] == "legacy"])
    wait_for(lambda: metric("p1_bridge_readings_skipped_total", site, reason="legacy") == 1)

    # 3. someone else repeats the bridge's frame (a reflector, a second path): echo, dropped
    sender.send(b'{"dsmr":[1036678,804013,668,0,2,11,3]}')
    wait_for(lambda: metric("p1_bridge_frames_dropped_total", site, reason="echo") == 1)

    # 4. the positive control, one marker down each path after all that: a loop started
    # above would have shown itself before the markers are through (each path is handled
    # in order: the datagrams by one thread, the MQTT messages by another)
    marker_frame = b'{"dsmr":[83125000,27689000,0,0,1,11,4]}'
    sender.send(marker_frame)
    wait_for(lambda: [m for m in sub.on(TOPICS.reading(site))
                      if m.json()["ts"] == "2026-01-15T15:11:04+01:00"])
    wait_for(lambda: metric("p1_bridge_readings_skipped_total", site, reason="legacy") == 2)
    sub.publish(TOPICS.reading(site), {**P1_READING, "site": site, "ts": "2026-01-15T15:11:05+01:00"})
    wait_for(lambda: len(listener.frames_from(own)) >= 2)
    wait_for(lambda: metric("p1_bridge_frames_dropped_total", site, reason="own") == 2)
    readings = [m.json() for m in sub.on(TOPICS.reading(site))]
    assert [(r["source"], r["ts"][11:19]) for r in readings] == [
        ("p1", "15:11:03"), ("legacy", "15:11:02"), ("legacy", "15:11:04"), ("p1", "15:11:05")]
    assert listener.frames_from(own) == [b'{"dsmr":[1036678,804013,668,0,2,11,3]}',
                                         b'{"dsmr":[1036678,804013,668,0,2,11,5]}']
    assert listener.frames_from(legacy_src) == [
        SEED_FRAME, b'{"dsmr":[1036678,804013,668,0,2,11,3]}', marker_frame,
    ]
    counted("p1_bridge_frames_sent_total", site, 2)
    counted("p1_bridge_readings_published_total", site, 2)


def test_duplicates_and_bad_frames_counted_not_published(bridge_env):
    site, _bridge, sub, sender, _ = bridge_env("to-mqtt")
    bad = {
        "not_json": b"hello ESP",
        "wrong_length": b'{"dsmr":[83125000,27689000,0,0,1]}',
        "not_number": b'{"dsmr":[83125000,"27689000",0,0,1,11,5]}',
        "too_big": b'{"dsmr":[' + b"0," * 1000 + b"0]}",
        "not_text": b"\xff\xfe\x00\x01",
        "bad_time": b'{"dsmr":[83125000,27689000,0,0,1,61,5]}',
    }
    for data in bad.values():
        sender.send(data)
    sender.send(SEED_FRAME)
    sender.send(SEED_FRAME)  # a duplicate
    sender.send(b'{"dsmr":[83125000,27689000,0,0,1,11,3]}')
    # the positive control: a last good frame; the datagrams are handled in order, so once
    # its reading is out, every frame before it has been judged
    sender.send(b'{"dsmr":[83125000,27689000,0,0,1,11,4]}')
    wait_for(lambda: [m for m in sub.on(TOPICS.reading(site))
                      if m.json()["ts"] == "2026-01-15T15:11:04+01:00"])
    assert metric("p1_bridge_datagrams_received_total", site) == len(bad) + 4
    assert [m.json()["ts"] for m in sub.on(TOPICS.reading(site))] == [
        "2026-01-15T15:11:02+01:00", "2026-01-15T15:11:03+01:00", "2026-01-15T15:11:04+01:00",
    ]
    for reason in bad:
        assert metric("p1_bridge_bad_frames_total", site, reason=reason) == 1, reason
    assert metric("p1_bridge_frames_dropped_total", site, reason="duplicate") == 1
    counted("p1_bridge_readings_published_total", site, 3)


def test_direction_to_mqtt_sends_nothing(bridge_env):
    site, bridge, sub, _, listener = bridge_env("to-mqtt")
    # the positive control: a marker topic on the bridge's own MQTT connection. A reading
    # published before a marker reaches the bridge (were it subscribed) before the marker,
    # and its frame would be sent by the handler, before the marker is handled.
    marks: list[bytes] = []
    marker = f"test/{site}/marker"
    bridge.runtime.mqtt.subscribe(marker, lambda _t, payload: marks.append(payload), qos=1)
    wait_for(lambda: sub.publish(marker, b"probe") or marks, 5, 0.05)  # subscribed now
    sub.publish(TOPICS.reading(site), {**P1_READING, "site": site})
    sub.publish(marker, b"after")
    wait_for(lambda: b"after" in marks)
    assert listener.frames_from(bridge.sender.getsockname()) == []
    assert metric("p1_bridge_frames_sent_total", site) == 0
