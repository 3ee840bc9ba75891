# MQTT 3.1.1 link that never blocks the device's loop: a non-blocking socket
# stepped by poll() from the main loop, as mqtt_as does with asyncio (every
# socket call non-blocking, every wait a deadline), rewritten as a small state
# machine so the one loop that feeds the watchdog and drives the outputs keeps
# running while the broker is away. Last will "offline" / birth "online"
# (retained, QoS 1) on <prefix>/status/<client-id>, re-sent on every connect;
# subscriptions re-made on every connect (clean session); keepalive pings;
# reconnect forever with back-off; fixed buffers: an incoming message larger
# than MAX_TOPIC/MAX_MSG is skipped without being stored, an outgoing one that
# does not fit the send buffer is refused (counted), nothing grows.
# The one blocking call left is the DNS lookup of a host name (lwIP): give
# mqtt_host as an IP address to avoid it; it is looked up once and cached.
import select
import socket

from tick import Backoff, diff

MAX_MSG = 768       # bytes of payload accepted; the contract's device payloads are < 300
MAX_TOPIC = 128
CONNECT_MS = 5000   # TCP connect + CONNACK must complete within this
RX_PER_POLL = 4     # socket reads per poll() at most (bounded work per loop)
_BUSY = (11, 115, 119, 36, 35, 110)   # EAGAIN, EINPROGRESS (Linux, lwIP), macOS; ETIMEDOUT

DOWN, TCP, CONNACK, UP = 0, 1, 2, 3


def _errno(e):
    return e.args[0] if e.args and isinstance(e.args[0], int) else None


def _vlen(n):
    # bytes of the MQTT "remaining length" of n
    return 1 if n < 128 else 2 if n < 16384 else 3


class Link:
    # subs: list of (topic, qos); on_msg(topic_str, payload_bytes)
    def __init__(self, s, client_id, status_topic, subs, on_msg, log=print, out_size=1024):
        self.s = s
        self.client_id = client_id
        self.status = status_topic
        self.subs = subs
        self.on_msg = on_msg
        self.log = log
        self.sock = None
        self.poller = None
        self.state = DOWN
        self.up = False
        self.backoff = Backoff(1000, 30000)
        self.keep_ms = int(s.get("keepalive_s", 30)) * 1000
        self.addr = None
        self.t0 = 0
        self.last_tx = 0
        self.last_rx = 0
        self.ping_at = None
        self.pong = False
        self.pid = 0
        self.connects = 0
        self.rx = 0             # messages handed to on_msg
        self.dropped = 0        # incoming messages too large (skipped)
        self.refused = 0        # outgoing messages that did not fit the buffer
        self.errors = 0         # on_msg raised
        self.down_at = None
        self.reconnect_ms = []  # last outage lengths (link down -> CONNACK), at most 8
        self.ib = bytearray(MAX_TOPIC + MAX_MSG + 8)
        self.imv = memoryview(self.ib)
        self.il = 0
        self.skip = 0
        self.ob = bytearray(out_size)
        self.omv = memoryview(self.ob)
        self.ol = 0

    def active(self):
        return self.state != DOWN

    # ---- the connection
    def _start(self, now_ms):
        s = self.s
        if self.addr is None:
            self.addr = socket.getaddrinfo(s["mqtt_host"], int(s.get("mqtt_port") or 1883))[0][-1]
        self.sock = sk = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sk.setblocking(False)
        self.t0 = now_ms
        self.state = TCP
        self.il = self.ol = self.skip = 0
        try:
            sk.connect(self.addr)
        except OSError as e:
            if _errno(e) not in _BUSY:
                raise
        self.poller = select.poll()
        self.poller.register(sk, select.POLLOUT)

    def _tcp_ready(self):
        ev = self.poller.poll(0)
        if not ev:
            return False
        f = ev[0][1]
        if f & (select.POLLERR | select.POLLHUP):
            raise OSError("connect refused")
        if not f & select.POLLOUT:
            return False
        self.poller = None
        return True

    def _connect_packet(self):
        s = self.s
        user = s.get("mqtt_user") or ""
        pw = s.get("mqtt_password") or ""
        cid = self.client_id
        flags = 0x02 | 0x04 | 0x08 | 0x20      # clean session, will, will QoS 1, will retain
        n = 10 + 2 + len(cid) + 2 + len(self.status) + 2 + 7
        if user:
            flags |= 0x80
            n += 2 + len(user)
            if pw:
                flags |= 0x40
                n += 2 + len(pw)
        self._hdr(0x10, n)
        self._put(b"\x00\x04MQTT\x04")
        self._b(flags)
        self._u16(self.keep_ms // 1000)
        self._str(cid)
        self._str(self.status)
        self._str(b"offline")
        if user:
            self._str(user)
            if pw:
                self._str(pw)

    def _on_connack(self, rc, now_ms):
        if rc != 0:
            raise OSError("CONNACK refused, code %d" % rc)
        self.state = UP
        self.up = True
        self.connects += 1
        self.backoff.reset()
        self.ping_at = None
        self.last_tx = self.last_rx = now_ms
        if self.down_at is not None:
            self.reconnect_ms.append(diff(now_ms, self.down_at))
            if len(self.reconnect_ms) > 8:
                self.reconnect_ms.pop(0)
            self.down_at = None
        self.publish(self.status, b"online", now_ms, True, 1)     # birth
        if self.subs:
            n = 2
            for t, q in self.subs:
                n += 2 + len(t) + 1
            self._hdr(0x82, n)
            self._u16(self._next_pid())
            for t, q in self.subs:
                self._str(t)
                self._b(q)
        self.log("mqtt up", self.s["mqtt_host"])

    def drop(self, now_ms, why):
        if self.sock is not None:
            try:
                self.sock.close()
            except Exception:
                pass
        self.sock = None
        self.poller = None
        if self.up:
            self.down_at = now_ms
        elif self.down_at is None:
            self.down_at = now_ms
        self.log("mqtt down" if self.up else "mqtt connect failed", why)
        if self.state != UP:
            self.addr = None    # looked up again at the next attempt
        self.state = DOWN
        self.up = False
        self.backoff.failed(now_ms)

    def poll(self, now_ms):
        # one step, never waiting: (re)connect when due, send what is queued,
        # read and handle what is waiting, ping when idle
        st = self.state
        try:
            if st == DOWN:
                if self.s.get("mqtt_host") and self.backoff.ready(now_ms):
                    self._start(now_ms)
                return
            if st != UP and diff(now_ms, self.t0) > CONNECT_MS:
                raise OSError("connect timeout")
            if st == TCP:
                if not self._tcp_ready():
                    return
                self._connect_packet()
                self.state = CONNACK
            self._flush(now_ms)
            self._read(now_ms)
            if self.state == UP:
                self._keepalive(now_ms)
                self._flush(now_ms)
        except Exception as e:
            self.drop(now_ms, repr(e))

    def _keepalive(self, now_ms):
        # a ping after keepalive/2 without sending or without receiving (a device that
        # only publishes, the dongle, still finds out that the broker is gone); no answer
        # within keepalive/2, or queued bytes the socket has not taken for a whole
        # keepalive (a dead peer whose TCP window is full): the link is dead
        half = self.keep_ms // 2
        if self.ping_at is not None:
            if self.pong:
                self.ping_at = None
            elif diff(now_ms, self.ping_at) > half:
                raise OSError("no PINGRESP")
        if self.ol and diff(now_ms, self.last_tx) > self.keep_ms:
            raise OSError("send stalled")
        if self.ping_at is None and (diff(now_ms, self.last_tx) >= half
                                     or diff(now_ms, self.last_rx) >= half):
            if self._room(2):
                self.pong = False
                self._put(b"\xc0\x00")
                self.ping_at = now_ms
                self.last_tx = now_ms

    # ---- the send buffer
    def _room(self, n):
        return len(self.ob) - self.ol >= n

    def _b(self, b):
        self.ob[self.ol] = b
        self.ol += 1

    def _u16(self, v):
        self._b(v >> 8)
        self._b(v & 0xff)

    def _put(self, data):
        n = len(data)
        self.ob[self.ol:self.ol + n] = data
        self.ol += n

    def _str(self, s):
        if isinstance(s, str):
            s = s.encode()
        self._u16(len(s))
        self._put(s)

    def _hdr(self, b0, n):
        self._b(b0)
        while True:
            d = n & 0x7f
            n >>= 7
            self._b(d | 0x80 if n else d)
            if not n:
                break

    def _next_pid(self):
        self.pid = self.pid % 65535 + 1
        return self.pid

    def _flush(self, now_ms):
        if self.ol == 0 or self.state == TCP:
            return
        try:
            n = self.sock.send(self.omv[:self.ol])
        except OSError as e:
            if _errno(e) in _BUSY:
                return
            raise
        if n:
            rest = self.ol - n
            if rest:
                self.omv[0:rest] = self.omv[n:self.ol]
            self.ol = rest
            self.last_tx = now_ms

    def publish(self, topic, payload, now_ms, retain=False, qos=0):
        # queue a message; False (and counted) when the link is down or the
        # send buffer cannot take it: the caller's data is never half sent
        if not self.up:
            return False
        if isinstance(topic, str):
            topic = topic.encode()
        if isinstance(payload, str):
            payload = payload.encode()
        n = 2 + len(topic) + (2 if qos else 0) + len(payload)
        if not self._room(1 + _vlen(n) + n):
            self.refused += 1
            return False
        self._hdr(0x30 | (qos << 1) | (1 if retain else 0), n)
        self._str(topic)
        if qos:
            self._u16(self._next_pid())
        self._put(payload)
        try:
            self._flush(now_ms)
        except Exception as e:
            self.drop(now_ms, repr(e))
        return True

    # ---- the receive side
    def _recv(self, mv):
        try:
            r = self.sock.readinto(mv)      # MicroPython: None when nothing waits
        except AttributeError:
            r = self.sock.recv_into(mv)     # CPython (the PC tests)
        except OSError as e:
            if _errno(e) in _BUSY:
                return None
            raise
        return r

    def _read(self, now_ms):
        for _ in range(RX_PER_POLL):
            if self.state == DOWN:
                return
            try:
                if self.skip:
                    k = self.skip if self.skip < len(self.ib) else len(self.ib)
                    n = self._recv(self.imv[0:k])
                else:
                    n = self._recv(self.imv[self.il:])
            except OSError as e:
                if _errno(e) in _BUSY:
                    return
                raise
            if n is None:
                return
            if n == 0:
                raise OSError("closed by the broker")
            self.last_rx = now_ms
            if self.skip:
                self.skip -= n
                continue
            self.il += n
            self._packets(now_ms)

    def _packets(self, now_ms):
        ib = self.ib
        p = 0
        while p < self.il:
            # fixed header: type byte + remaining length (1-4 bytes)
            rl = 0
            sh = 0
            i = p + 1
            whole = False
            while i < self.il:
                c = ib[i]
                i += 1
                rl |= (c & 0x7f) << sh
                if not c & 0x80:
                    whole = True
                    break
                sh += 7
                if sh > 21:
                    raise OSError("bad packet length")
            if not whole:
                break       # header incomplete
            end = i + rl
            if end - p > len(ib):
                if not self._oversized(p, i, rl):
                    break
                p = self.il
                break
            if end > self.il:
                break       # wait for the rest
            self._packet(ib[p], i, end, now_ms)
            p = end
            if self.state == DOWN:
                return
        rest = self.il - p
        if rest and p:
            self.imv[0:rest] = self.imv[p:self.il]
        self.il = rest

    def _oversized(self, p, i, rl):
        # a packet that cannot fit the buffer: acknowledge it if QoS 1, skip it
        b0 = self.ib[p]
        qos = (b0 >> 1) & 3
        if b0 & 0xf0 == 0x30 and qos:
            if i + 2 > self.il:
                return False
            tl = (self.ib[i] << 8) | self.ib[i + 1]
            if i + 2 + tl + 2 > len(self.ib):
                raise OSError("topic too long to acknowledge")
            if i + 2 + tl + 2 > self.il:
                return False
            j = i + 2 + tl
            self._puback(self.ib[j], self.ib[j + 1])
        self.skip = i + rl - self.il
        self.dropped += 1
        return True

    def _puback(self, hi, lo):
        if self._room(4):
            self._put(b"\x40\x02")
            self._b(hi)
            self._b(lo)

    def _packet(self, b0, i, end, now_ms):
        t = b0 & 0xf0
        ib = self.ib
        if t == 0x30:
            qos = (b0 >> 1) & 3
            tl = (ib[i] << 8) | ib[i + 1]
            j = i + 2 + tl
            if qos:
                if qos == 2:
                    raise OSError("QoS 2 message (never subscribed so)")
                self._puback(ib[j], ib[j + 1])
                j += 2
            if tl > MAX_TOPIC or end - j > MAX_MSG:
                self.dropped += 1
                return
            try:
                topic = bytes(self.imv[i + 2:i + 2 + tl]).decode()
            except UnicodeError:
                self.errors += 1
                self.log("msg error", "topic not UTF-8")
                return
            self.rx += 1
            try:
                self.on_msg(topic, bytes(self.imv[j:end]))
            except Exception as e:      # a bad message must not kill the link
                self.errors += 1
                self.log("msg error", repr(e))
        elif t == 0x20:
            self._on_connack(ib[i + 1], now_ms)
        elif t == 0xd0:
            self.pong = True
        elif t == 0x90:
            for k in range(i + 2, end):
                if ib[k] == 0x80:
                    self.log("subscription refused", self.subs[k - i - 2][0])

    def close(self):
        # clean disconnect: the broker discards the will, so say offline first
        if self.up:
            try:
                self.publish(self.status, b"offline", 0, True, 1)
                if self._room(2):
                    self._put(b"\xe0\x00")
                self._flush(0)
            except Exception:
                pass
        if self.sock is not None:
            try:
                self.sock.close()
            except Exception:
                pass
        self.sock = None
        self.state = DOWN
        self.up = False
