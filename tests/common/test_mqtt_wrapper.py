import time

from p1common.mqtt import MqttClient, decode_json_object
from p1common.settings import parse_mqtt_url
from p1common.topics import Topics
from support import Subscriber, wait_for


def test_birth_will_subscribe_and_reconnect(private_mosquitto):
    broker = private_mosquitto
    watcher = Subscriber(broker.port, "p1/status/#")
    got = []
    c = MqttClient("svc-test", parse_mqtt_url(broker.url), Topics("p1"), max_backoff_s=1)
    c.subscribe("p1/+/reading", lambda t, p: got.append((t, decode_json_object(p))))
    c.start()
    assert c.wait_connected(5)
    wait_for(lambda: [m for m in watcher.on("p1/status/svc-test") if m.payload == b"online"])
    pub = Subscriber(broker.port)
    pub.publish("p1/home/reading", {"import_w": 5})
    wait_for(lambda: got)
    assert got == [("p1/home/reading", {"import_w": 5})]
    # a bad payload is counted and ignored; the client keeps running
    pub.publish("p1/home/reading", b"{not json")
    pub.publish("p1/home/reading", {"import_w": 6})
    wait_for(lambda: len(got) == 2)
    pub.close()
    watcher.close()

    # broker restart: reconnect and resubscribe by itself
    broker.restart()
    t0 = time.monotonic()
    wait_for(lambda: c.connect_count == 2, timeout_s=10)
    assert time.monotonic() - t0 < 5
    pub = Subscriber(broker.port)
    pub.publish("p1/home/reading", {"import_w": 7})
    wait_for(lambda: len(got) == 3)
    assert got[-1][1] == {"import_w": 7}

    watcher = Subscriber(broker.port, "p1/status/#")
    c.stop()
    wait_for(lambda: [m for m in watcher.on("p1/status/svc-test") if m.payload == b"offline"])
    watcher.close()
    pub.close()


def test_last_will_on_crash(private_mosquitto):
    broker = private_mosquitto
    c = MqttClient("svc-crash", parse_mqtt_url(broker.url), keepalive_s=1)
    c.start()
    assert c.wait_connected(5)
    watcher = Subscriber(broker.port, "p1/status/svc-crash")
    wait_for(lambda: watcher.on("p1/status/svc-crash"))
    # simulate a crash: drop the socket without DISCONNECT
    c._client._sock.close()
    c._client.loop_stop()
    wait_for(lambda: [m for m in watcher.on("p1/status/svc-crash") if m.payload == b"offline"], 10)
    watcher.close()


def test_skip_retained(mosquitto):
    pub = Subscriber(mosquitto.port)
    pub.publish("p1/skipret/reading", {"import_w": 1}, retain=True)
    fresh, every = [], []
    c = MqttClient("svc-skipret", parse_mqtt_url(mosquitto.url))
    c.subscribe("p1/skipret/reading", lambda t, p: fresh.append(p), skip_retained=True)
    c.subscribe("p1/skipret/reading", lambda t, p: every.append(p))
    c.start()
    assert c.wait_connected(5)
    wait_for(lambda: every)
    pub.publish("p1/skipret/reading", {"import_w": 2})
    wait_for(lambda: len(every) == 2)
    assert fresh == [b'{"import_w": 2}']
    assert every == [b'{"import_w": 1}', b'{"import_w": 2}']
    pub.publish("p1/skipret/reading", b"", retain=True)
    c.stop()
    pub.close()
