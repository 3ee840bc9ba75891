# MQTT link on the firmware's umqtt.simple: last will "offline" / birth "online"
# (retained, QoS 1) on <prefix>/status/<client-id>, keepalive pings so the broker
# fires the will when the device dies, reconnect forever with back-off, and a
# bound on every incoming message (bigger ones are read in chunks and dropped).
from umqtt.simple import MQTTClient

from tick import Backoff, diff

MAX_MSG = 768       # bytes of payload accepted; the contract's device payloads are < 300
MAX_TOPIC = 128


class Client(MQTTClient):
    # umqtt.simple's client with a bounded wait_msg(): nothing larger than
    # MAX_MSG/MAX_TOPIC is ever allocated for a message
    dropped = 0

    def _skip(self, n):
        while n > 0:
            k = 64 if n > 64 else n
            self.sock.read(k)
            n -= k

    def wait_msg(self):
        res = self.sock.read(1)
        self.sock.setblocking(True)
        if res is None:
            return None
        if res == b"":
            raise OSError(-1)
        if res == b"\xd0":      # PINGRESP
            self.sock.read(1)
            self.pong = True
            return None
        op = res[0]
        if op & 0xf0 != 0x30:
            return op
        sz = self._recv_len()
        tl = self.sock.read(2)
        tl = (tl[0] << 8) | tl[1]
        sz -= tl + 2
        if op & 6:
            sz -= 2
        if tl > MAX_TOPIC or sz > MAX_MSG:
            self._skip(tl)
            pid = self.sock.read(2) if op & 6 else None
            self._skip(sz)
            msg = None
            topic = None
            Client.dropped += 1
        else:
            topic = self.sock.read(tl)
            pid = self.sock.read(2) if op & 6 else None
            msg = self.sock.read(sz)
        if op & 6 == 2:
            self.sock.write(b"\x40\x02" + pid)      # PUBACK
        elif op & 6 == 4:
            raise OSError(-2)                       # QoS 2: never subscribed so
        if topic is not None:
            self.cb(topic, msg)


class Link:
    # subs: list of (topic, qos); on_msg(topic_str, payload_bytes)
    def __init__(self, s, client_id, status_topic, subs, on_msg, log=print):
        self.s = s
        self.client_id = client_id
        self.status = status_topic
        self.subs = subs
        self.on_msg = on_msg
        self.log = log
        self.c = None
        self.up = False
        self.backoff = Backoff(1000, 30000)
        self.keep_ms = int(s.get("keepalive_s", 30)) * 1000
        self.last_tx = 0
        self.ping_at = None
        self.connects = 0
        self.rx = 0

    def _cb(self, topic, msg):
        self.rx += 1
        try:
            self.on_msg(topic.decode(), msg)
        except Exception as e:      # a bad message must not kill the link
            self.log("msg error", repr(e))

    def connect(self, now_ms):
        s = self.s
        c = Client(self.client_id, s["mqtt_host"], int(s.get("mqtt_port") or 1883),
                   s.get("mqtt_user") or None, s.get("mqtt_password") or None,
                   keepalive=self.keep_ms // 1000)
        c.pong = False
        c.set_callback(self._cb)
        c.set_last_will(self.status, b"offline", retain=True, qos=1)
        self.c = c
        c.connect()
        self.up = True
        c.publish(self.status, b"online", retain=True, qos=1)
        for t, q in self.subs:
            c.subscribe(t, q)
        self.last_tx = now_ms
        self.ping_at = None
        self.connects += 1
        self.backoff.reset()
        self.log("mqtt up", s["mqtt_host"])

    def drop(self, now_ms, why):
        if self.c is not None:
            try:
                self.c.sock.close()
            except Exception:
                pass
        self.c = None
        self.log("mqtt down" if self.up else "mqtt connect failed", why)
        self.up = False
        self.backoff.failed(now_ms)

    def poll(self, now_ms, max_msgs=8):
        # one step: (re)connect when due, read what is waiting, ping when idle
        if not self.up:
            if self.s.get("mqtt_host") and self.backoff.ready(now_ms):
                try:
                    self.connect(now_ms)
                except Exception as e:
                    self.drop(now_ms, repr(e))
            return
        try:
            for _ in range(max_msgs):
                n = self.rx
                if self.c.check_msg() is None and self.rx == n:
                    break
            if self.ping_at is not None:
                if self.c.pong:
                    self.ping_at = None
                elif diff(now_ms, self.ping_at) > self.keep_ms // 2:
                    raise OSError("no PINGRESP")
            if self.ping_at is None and diff(now_ms, self.last_tx) >= self.keep_ms // 2:
                self.c.pong = False
                self.c.ping()
                self.ping_at = now_ms
                self.last_tx = now_ms
        except Exception as e:
            self.drop(now_ms, repr(e))

    def publish(self, topic, payload, now_ms, retain=False, qos=0):
        if not self.up:
            return False
        try:
            self.c.publish(topic, payload, retain=retain, qos=qos)
            self.last_tx = now_ms
            return True
        except Exception as e:
            self.drop(now_ms, repr(e))
            return False

    def close(self):
        # clean disconnect: the broker discards the will, so say offline first
        if self.up:
            try:
                self.c.publish(self.status, b"offline", retain=True, qos=1)
                self.c.disconnect()
            except Exception:
                pass
        self.c = None
        self.up = False
