import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Iterator

from prometheus_client import REGISTRY

from p1common.mqtt import MqttClient, decode_json_object
from p1common.settings import parse_mqtt_url
from p1common.topics import Topics
from support import Subscriber, free_port, wait_for


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


def _unmatched(client_id: str) -> float:
    return REGISTRY.get_sample_value("p1_mqtt_unmatched_messages_total",
                                     {"client_id": client_id}) or 0.0


@contextlib.contextmanager
def shipped_amqtt() -> Iterator[int]:
    """amqtt 0.12.1's broker exactly as shipped (not p1-broker's fixed one), on a thread:
    a real broker that sends a connecting client retained messages it never asked for."""
    from amqtt.broker import Broker

    port = free_port()
    loop = asyncio.new_event_loop()
    ready, stop_box = threading.Event(), []

    async def main() -> None:
        broker = Broker({"listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
                         "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin":
                                     {"allow_anonymous": True}}})
        await broker.start()
        stop = asyncio.Event()
        stop_box.append(stop)
        ready.set()
        await stop.wait()
        await broker.shutdown()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(10), "amqtt did not start"
    try:
        yield port
    finally:
        loop.call_soon_threadsafe(stop_box[0].set)
        thread.join(10)


def test_a_message_no_subscription_matches_is_dropped_and_counted():
    with shipped_amqtt() as port:
        watcher = Subscriber(port, "p1/#")  # another client's wildcard subscription
        watcher.publish("p1/home/control", b'{"outputs":[]}', retain=True)
        watcher.publish("p1/home/output/boiler/state", b'{"on":true}', retain=True)
        wait_for(lambda: len(watcher.on("p1/#")) == 2)
        got: list[tuple[str, bytes]] = []
        c = MqttClient("svc-strays", parse_mqtt_url(f"mqtt://127.0.0.1:{port}"))
        c.subscribe("p1/home/peak", lambda t, p: got.append((t, p)))
        c.start()
        assert c.wait_connected(10)
        # the shipped amqtt sends both retained messages on connect: neither reaches a handler
        wait_for(lambda: _unmatched("svc-strays") == 2, 10)
        watcher.publish("p1/home/peak", b'{"headroom_w":1}')
        wait_for(lambda: got)
        assert got == [("p1/home/peak", b'{"headroom_w":1}')]
        assert _unmatched("svc-strays") == 2
        c.stop()
        watcher.close()


def test_shared_subscriptions_are_matched_without_their_prefix(private_mosquitto):
    # a broker of its own: on the shared one, other tests' readings match p1/+/reading too
    mosquitto = private_mosquitto
    got: list[tuple[str, bytes]] = []
    pub = Subscriber(mosquitto.port, "p1/status/svc-shared")
    c = MqttClient("svc-shared", parse_mqtt_url(mosquitto.url))
    c.subscribe("$share/workers/p1/+/reading", lambda t, p: got.append((t, p)), qos=1)
    c.start()
    # "online" comes after the SUBSCRIBE: the broker has the subscription by then
    wait_for(lambda: [m for m in pub.messages if m.payload == b"online"])
    pub.publish("p1/shared/reading", b"{}")
    wait_for(lambda: got)
    assert got == [("p1/shared/reading", b"{}")]
    assert _unmatched("svc-shared") == 0
    c.stop()
    pub.close()


def test_a_broker_not_listening_yet_is_no_error(private_mosquitto, caplog):
    """``make run`` starts the broker with the services: a service may try before it
    listens. paho logs "Client is not connected" as ERROR on every retry; here: DEBUG,
    with one INFO line of the wrapper, and no ERROR at all once the broker is there."""
    caplog.set_level(logging.DEBUG)
    # a service started earlier in this process set paho's logger to WARNING (setup_logging)
    caplog.set_level(logging.DEBUG, logger="paho")
    caplog.set_level(logging.DEBUG, logger="p1common.mqtt")
    private_mosquitto.stop()
    c = MqttClient("svc-early", parse_mqtt_url(private_mosquitto.url), max_backoff_s=1)
    c.start()
    wait_for(lambda: "not reachable yet" in caplog.text, 10)
    wait_for(lambda: "Client is not connected" in caplog.text, 10)  # paho retried meanwhile
    private_mosquitto.start()
    assert c.wait_connected(10)
    c.stop()
    # this client's records only: clients of earlier tests may still be winding down
    mine = [r for r in caplog.records if r.threadName in ("MainThread", "paho-mqtt-client-svc-early")]
    assert {r.threadName for r in caplog.records if "svc-early" in r.getMessage()} <= {
        "MainThread", "paho-mqtt-client-svc-early"}
    assert [r.getMessage() for r in mine if r.levelno >= logging.WARNING] == []
    assert [r.getMessage() for r in caplog.records if r.name == "p1common.mqtt"][:2] == [
        f"connecting to {private_mosquitto.url} as svc-early",
        f"broker {private_mosquitto.url} not reachable yet; retrying with back-off"]
