"""``p1-broker``, the broker of ``make run``, keeps the MQTT rules the services and devices
rely on, with either engine: retained messages only to matching subscriptions (amqtt
0.12.1 on its own breaks this), cleared retained messages, last wills, QoS 1.

Each test runs the real ``p1-broker`` process on a free loopback port and talks to it
with plain paho clients (and the services' own ``MqttClient`` for the status contract).
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from p1common.mqtt import MqttClient
from p1common.settings import parse_mqtt_url
from support import Subscriber, free_port, mosquitto_bin, wait_for

BIN = Path(sys.executable).parent


class BrokerProcess:
    """``p1-broker --engine <engine>`` on 127.0.0.1:<free port>, output kept for the report."""

    def __init__(self, engine: str, tmp: Path) -> None:
        self.port = free_port()
        self.log_path = tmp / f"broker-{engine}.log"
        self.log = open(self.log_path, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [str(BIN / "p1-broker"), "--engine", engine, "--port", str(self.port)],
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.close()
                    raise RuntimeError("p1-broker did not start: " + self.output()) from None
                time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text(errors="replace")

    def close(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


ENGINES = ["amqtt", pytest.param("mosquitto", marks=pytest.mark.skipif(
    not mosquitto_bin(), reason="mosquitto is not installed"))]


@pytest.fixture(params=ENGINES)
def broker(request, tmp_path) -> Iterator[BrokerProcess]:
    b = BrokerProcess(request.param, tmp_path)
    yield b
    rc = b.close()
    out = b.output()
    assert rc == 0, out
    assert "Traceback" not in out and " ERROR " not in out, out


def _subscribed(port: int, *topics: str) -> Subscriber:
    """A recording client whose subscriptions the broker has acknowledged (SUBACK)."""
    sub = Subscriber(port)
    acks: list[int] = []
    sub.client.on_subscribe = lambda c, u, mid, codes, p: acks.append(mid)
    for topic in topics:
        _, mid = sub.client.subscribe(topic, 1)
        wait_for(lambda mid=mid: mid in acks)
    return sub


def _barrier(sub: Subscriber, pub: Subscriber, topic: str, marker: bytes) -> None:
    """Publish ``marker`` on a topic ``sub`` subscribes to and wait for it: the broker sends
    a client's messages in order, so whatever it was going to send before is in by then."""
    pub.publish(topic, marker, qos=1)
    wait_for(lambda: [m for m in sub.messages if m.topic == topic and m.payload == marker], 10)


def test_retained_only_to_matching_subscriptions(broker):
    """The bug seen with amqtt 0.12.1: while another client holds ``p1/#``, a client that
    subscribes to ``p1/home/peak`` also got the retained control and output states."""
    pub = Subscriber(broker.port)
    pub.publish("p1/home/control", b'{"outputs":[]}', retain=True)
    pub.publish("p1/home/output/boiler/state", b'{"on":true}', retain=True)
    pub.publish("p1/home/output/relay1/state", b'{"on":false}', retain=True)
    pub.publish("p1/home/peak", b'{"headroom_w":1000}', retain=True)
    watcher = _subscribed(broker.port, "p1/#")  # the wildcard subscription held meanwhile
    wait_for(lambda: len(watcher.messages) == 4)
    assert all(m.retain for m in watcher.messages)

    peak = _subscribed(broker.port, "p1/home/peak")
    _barrier(peak, pub, "p1/home/peak", b"marker")
    assert sorted((m.topic, m.payload, m.retain) for m in peak.messages) == [
        ("p1/home/peak", b"marker", False),  # a live message: retain flag 0
        ("p1/home/peak", b'{"headroom_w":1000}', True),
    ]

    states = _subscribed(broker.port, "p1/home/output/+/state")
    _barrier(states, pub, "p1/home/output/x/state", b"marker")
    assert sorted((m.topic, m.payload) for m in states.messages if m.retain) == [
        ("p1/home/output/boiler/state", b'{"on":true}'),
        ("p1/home/output/relay1/state", b'{"on":false}'),
    ]
    assert [m.topic for m in states.messages if not m.retain] == ["p1/home/output/x/state"]

    # nothing at all for a client without subscriptions
    bare = _subscribed(broker.port, "p1/other/marker")
    _barrier(bare, pub, "p1/other/marker", b"m")
    assert [m.topic for m in bare.messages] == ["p1/other/marker"]

    # an empty retained message clears it: a later subscriber gets nothing for that topic
    pub.publish("p1/home/control", b"", retain=True)
    later = _subscribed(broker.port, "p1/home/control", "p1/home/peak")
    _barrier(later, pub, "p1/home/peak", b"marker2")
    assert sorted((m.topic, m.payload) for m in later.messages) == [
        ("p1/home/peak", b"marker2"), ("p1/home/peak", b'{"headroom_w":1000}')]
    for c in (pub, watcher, peak, states, bare, later):
        c.close()


WILL_CLIENT = """
import sys, time
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=sys.argv[2], protocol=mqtt.MQTTv311)
c.will_set("p1/status/" + sys.argv[2], b"offline", qos=1, retain=True)
c.connect("127.0.0.1", int(sys.argv[1]), keepalive=30)
c.loop_start()
c.publish("p1/status/" + sys.argv[2], b"online", qos=1, retain=True).wait_for_publish(5)
print("up", flush=True)
if sys.argv[3] == "clean":
    c.disconnect()
    c.loop_stop()
    print("gone", flush=True)
else:
    time.sleep(60)
"""


def test_last_will_on_a_crash_and_none_on_a_clean_disconnect(broker, tmp_path):
    script = tmp_path / "will_client.py"
    script.write_text(WILL_CLIENT)
    watcher = _subscribed(broker.port, "p1/status/+")

    crash = subprocess.Popen([sys.executable, str(script), str(broker.port), "dev-crash", "crash"],
                             stdout=subprocess.PIPE)
    assert crash.stdout is not None and crash.stdout.readline() == b"up\n"
    wait_for(lambda: [m for m in watcher.messages if m.payload == b"online"])
    crash.kill()  # no DISCONNECT: the broker must publish the will
    crash.wait()
    wait_for(lambda: [m for m in watcher.messages if m.topic == "p1/status/dev-crash"
                      and m.payload == b"offline"], 10)

    clean = subprocess.Popen([sys.executable, str(script), str(broker.port), "dev-clean", "clean"],
                             stdout=subprocess.PIPE)
    out, _ = clean.communicate(timeout=20)
    assert out == b"up\ngone\n"
    # the will is retained; a clean disconnect leaves "online" as the retained state
    late = _subscribed(broker.port, "p1/status/dev-crash", "p1/status/dev-clean")
    pub = Subscriber(broker.port)
    _barrier(late, pub, "p1/status/dev-clean", b"marker")
    assert sorted((m.topic, m.payload, m.retain) for m in late.messages) == [
        ("p1/status/dev-clean", b"marker", False),
        ("p1/status/dev-clean", b"online", True),
        ("p1/status/dev-crash", b"offline", True),
    ]
    assert not [m for m in watcher.messages if m.topic == "p1/status/dev-clean"
                and m.payload == b"offline"]
    for c in (watcher, late, pub):
        c.close()


def test_the_services_status_contract(broker):
    """``MqttClient``: birth ``online`` after its subscriptions, ``offline`` on a clean stop."""
    watcher = _subscribed(broker.port, "p1/status/+")
    got: list[tuple[str, bytes]] = []
    c = MqttClient("svc-embedded", parse_mqtt_url(broker.url))
    c.subscribe("p1/+/reading", lambda t, p: got.append((t, p)), qos=1)
    c.start()
    assert c.wait_connected(10)
    wait_for(lambda: [m for m in watcher.messages if m.payload == b"online"])
    pub = Subscriber(broker.port)
    pub.publish("p1/home/reading", b'{"import_w":5}', qos=1)
    wait_for(lambda: got)
    assert got == [("p1/home/reading", b'{"import_w":5}')]
    c.stop()
    wait_for(lambda: [m for m in watcher.messages if m.payload == b"offline"])
    assert [m.payload for m in watcher.messages if m.topic == "p1/status/svc-embedded"] == [
        b"online", b"offline"]
    watcher.close()
    pub.close()


def test_qos1_every_message_acknowledged_and_delivered_in_order(broker):
    received: list[tuple[int, bytes]] = []
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="qos1-sub", protocol=mqtt.MQTTv311)
    subscribed: list[list[int]] = []
    sub.on_subscribe = lambda c, u, mid, codes, p: subscribed.append([int(x.value) for x in codes])
    sub.on_message = lambda c, u, m: received.append((m.qos, m.payload))
    sub.connect("127.0.0.1", broker.port)
    sub.loop_start()
    sub.subscribe("p1/home/output/boiler/set", qos=1)
    wait_for(lambda: subscribed)
    assert subscribed == [[1]]  # QoS 1 granted

    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="qos1-pub", protocol=mqtt.MQTTv311)
    acked: list[int] = []
    pub.on_publish = lambda c, u, mid, rc, p: acked.append(mid)
    pub.connect("127.0.0.1", broker.port)
    pub.loop_start()
    infos = [pub.publish("p1/home/output/boiler/set", f'{{"seq":{i}}}'.encode(), qos=1)
             for i in range(300)]
    for info in infos:
        info.wait_for_publish(10)  # returns once the broker's PUBACK came back
    assert sorted(acked) == sorted(i.mid for i in infos)
    wait_for(lambda: len(received) >= 300, 20)
    assert received == [(1, f'{{"seq":{i}}}'.encode()) for i in range(300)]
    for c in (pub, sub):
        c.loop_stop()
        c.disconnect()
