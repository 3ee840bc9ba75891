"""Test helpers: a real Mosquitto on a free loopback port, a collecting subscriber, waits."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

REPO = Path(__file__).resolve().parent.parent
TELEGRAMS = REPO / "tests" / "data" / "telegrams"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def metric_sum(text: str, name: str, **labels: str) -> float:
    """Sum of the Prometheus samples called ``name`` whose labels include ``labels`` (0 if none)."""
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for fam in text_string_to_metric_families(text):
        for sample in fam.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def wait_for(pred: Callable[[], Any], timeout_s: float = 10.0, interval_s: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        time.sleep(interval_s)


def mosquitto_bin() -> str | None:
    return shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None
    )


class Mosquitto:
    """A real Mosquitto broker, config written here, on 127.0.0.1:<free port>."""

    def __init__(self, extra_conf: str = "", anonymous: bool = True,
                 render: Callable[[int, Path], str] | None = None) -> None:
        """``render(port, dir)`` returns a whole configuration instead (a shipped file with
        its listener and paths pointed here)."""
        binary = mosquitto_bin()
        if not binary:
            raise RuntimeError("mosquitto is not installed (make setup installs it)")
        self.binary = binary
        self.dir = Path(tempfile.mkdtemp(prefix="p1-mosquitto-"))
        os.chmod(self.dir, 0o700)
        self.port = free_port()
        self.host = "127.0.0.1"
        self.conf = self.dir / "mosquitto.conf"
        lines = [
            f"listener {self.port} 127.0.0.1",
            f"allow_anonymous {'true' if anonymous else 'false'}",
            "persistence false",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "max_queued_messages 100000",
            "set_tcp_nodelay true",
        ]
        if os.geteuid() == 0:
            lines.append("user root")
        if render is not None:
            lines = [render(self.port, self.dir)] + (["user root"] if os.geteuid() == 0 else [])
        self.conf.write_text("\n".join(lines) + "\n" + extra_conf)
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def start(self) -> None:
        self.log = open(self.dir / "mosquitto.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(self.conf)], stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        "mosquitto exited: " + (self.dir / "mosquitto.log").read_text()
                    ) from None
                time.sleep(0.02)
        raise RuntimeError("mosquitto did not start listening")

    def stop(self, kill: bool = False) -> None:
        if self.proc and self.proc.poll() is None:
            (self.proc.kill if kill else self.proc.terminate)()
            self.proc.wait(10)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@dataclass
class Msg:
    topic: str
    payload: bytes
    retain: bool
    qos: int
    t: float = field(default_factory=time.monotonic)

    def json(self) -> Any:
        return json.loads(self.payload)


class Subscriber:
    """A plain paho client that records every message on its subscriptions.

    Ready (the constructor returns) once the broker has acknowledged every subscription
    (SUBACK): whatever is published after that reaches it. ``granted`` holds the SUBACK
    reason codes (0-2 the QoS granted, 128 refused, e.g. by an ACL)."""

    def __init__(self, broker_url_or_port: str | int, *topics: str, username: str | None = None,
                 password: str | None = None, timeout_s: float = 10.0) -> None:
        port = broker_url_or_port if isinstance(broker_url_or_port, int) else int(
            str(broker_url_or_port).rsplit(":", 1)[1]
        )
        self.messages: list[Msg] = []
        self.queue: queue.Queue[Msg] = queue.Queue()
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._pending: set[int] = set()
        self.granted: list[int] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        if username:
            self.client.username_pw_set(username, password)
        self.topics = topics

        # every callback runs on paho's network thread: the SUBACK of a subscription made
        # in on_connect is handled only after on_connect returned and its mid was noted
        def on_connect(c, u, f, rc, p):  # type: ignore[no-untyped-def]
            if rc.is_failure:
                return
            if not topics:
                self._ready.set()
                return
            result, mid = c.subscribe([(t, 1) for t in topics])
            if result == mqtt.MQTT_ERR_SUCCESS and mid is not None:
                self._pending.add(mid)

        def on_subscribe(c, u, mid, reason_codes, p):  # type: ignore[no-untyped-def]
            self._pending.discard(mid)
            self.granted = [int(getattr(rc, "value", rc)) for rc in reason_codes]
            if not self._pending:
                self._ready.set()

        def on_message(c, u, m):  # type: ignore[no-untyped-def]
            msg = Msg(m.topic, m.payload, bool(m.retain), m.qos)
            with self._lock:
                self.messages.append(msg)
            self.queue.put(msg)

        self.client.on_connect = on_connect
        self.client.on_subscribe = on_subscribe
        self.client.on_message = on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not self._ready.wait(timeout_s):
            self.close()
            raise AssertionError(f"subscriber to {topics} not acknowledged within {timeout_s} s")

    def on(self, topic_filter: str) -> list[Msg]:
        with self._lock:
            return [m for m in self.messages if mqtt.topic_matches_sub(topic_filter, m.topic)]

    def wait(self, topic_filter: str, count: int = 1, timeout_s: float = 10.0) -> list[Msg]:
        return wait_for(lambda: (lambda ms: ms if len(ms) >= count else None)(self.on(topic_filter)),
                        timeout_s)

    def publish(self, topic: str, payload: Any, qos: int = 1, retain: bool = False) -> None:
        data = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
        self.client.publish(topic, data, qos=qos, retain=retain).wait_for_publish(5)

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@dataclass
class Stack:
    """``make run`` as a process group, with a subscriber on its broker."""

    proc: subprocess.Popen[bytes]
    mqtt_port: int
    web_port: int
    sub: Subscriber
    output: str = ""  # everything the runner printed, once it has stopped


@contextlib.contextmanager
def running_stack(state_dir: Path, broker_engine: str = "auto") -> Iterator[Stack]:
    """Start the stack runner on free ports; on exit Ctrl-C it (SIGINT to its process
    group, as a terminal does), keep its whole output in ``stack.output`` and print the end."""
    mqtt_port, web_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("MQTT_URL", "SERIAL", "INFLUX_URL", "BROKER_ENGINE")
           and not k.startswith("P1_WEB_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "p1common.runstack", "--mqtt-port", str(mqtt_port),
         "--web-port", str(web_port), "--state-dir", str(state_dir),
         "--broker-engine", broker_engine],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    sub: Subscriber | None = None
    stack: Stack | None = None
    try:
        def connect() -> Subscriber | None:
            try:
                return Subscriber(mqtt_port, "p1/#")
            except (OSError, AssertionError):
                return None

        sub = wait_for(connect, timeout_s=30, interval_s=0.5)
        stack = Stack(proc, mqtt_port, web_port, sub)
        yield stack
    finally:
        if sub is not None:
            sub.close()
        os.killpg(proc.pid, signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
        text = out.decode(errors="replace")
        if stack is not None:
            stack.output = text
        print(text[-4000:])
