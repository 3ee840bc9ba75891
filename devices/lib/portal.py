# The set-up page (192.168.4.1 on the access point): scan list, SSID, password,
# MQTT broker and credentials, site and device id. A tiny blocking-per-request
# HTTP/1.0 server polled from the main loop; nothing bigger than a request of
# MAX_REQ bytes is ever held.
import socket

import form

MAX_REQ = 2048

_HEAD = b"\r\nContent-Type: text/html; charset=utf-8\r\nConnection: close\r\n\r\n"
_REASON = {200: b" OK", 400: b" Bad Request", 404: b" Not Found"}
_TOP = (b"<!DOCTYPE html><html><head><meta name=viewport content='width=device-width'>"
        b"<title>P1 device set-up</title></head><body><h1>P1 device set-up</h1>")
_LABELS = (("ssid", "Wi-Fi network (SSID)", "text"), ("password", "Wi-Fi password", "password"),
           ("mqtt_host", "MQTT broker", "text"), ("mqtt_port", "MQTT port", "number"),
           ("mqtt_user", "MQTT user", "text"), ("mqtt_password", "MQTT password", "password"),
           ("site", "Site", "text"), ("device_id", "Device id", "text"))


def page_parts(networks, s, errors=()):
    # the form as a sequence of byte chunks (sent one by one: no big string)
    yield _TOP
    for e in errors:
        yield b"<p style='color:red'>" + form.escape(e).encode() + b"</p>"
    yield b"<h2>Networks</h2><ul>"
    for n in networks:
        yield b"<li>" + form.escape(n).encode() + b"</li>"
    yield b"</ul><form method=post action=/save>"
    for k, label, kind in _LABELS:
        v = "" if kind == "password" else form.escape(s.get(k, "") or "")
        yield ("<p><label>%s<br><input name=%s type=%s value=\"%s\"></label></p>"
               % (label, k, kind, v)).encode()
    yield b"<p><button type=submit>Save</button></p></form></body></html>"


def parse_request(data):
    # -> (method, path, body) from the raw request bytes, or None
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = data[:end].decode()
    line = head.split("\r\n", 1)[0].split(" ")
    if len(line) < 2:
        return None
    return line[0], line[1], data[end + 4:]


def content_length(data):
    i = data.lower().find(b"content-length:")
    if i < 0:
        return 0
    j = data.find(b"\r\n", i)
    try:
        return int(data[i + 15:j].strip())
    except ValueError:
        return -1


class Portal:
    def __init__(self, s, networks, on_save, bind=("0.0.0.0", 80), log=print):
        self.s = s
        self.networks = networks
        self.on_save = on_save
        self.log = log
        self.saved = None
        addr = socket.getaddrinfo(bind[0], bind[1])[0][-1]
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(addr)
        srv.listen(2)
        srv.setblocking(False)
        self.srv = srv
        self.log("portal on", bind[1])

    def close(self):
        self.srv.close()

    def poll(self):
        try:
            cl = self.srv.accept()[0]
        except OSError:
            return False
        try:
            cl.settimeout(3)
            self._serve(cl)
        except OSError as e:
            self.log("portal", repr(e))
        finally:
            cl.close()
        return True

    def _read(self, cl):
        data = b""
        while len(data) < MAX_REQ:
            chunk = cl.recv(512)
            if not chunk:
                break
            data += chunk
            end = data.find(b"\r\n\r\n")
            if end >= 0 and len(data) - end - 4 >= content_length(data):
                break
        return data

    def _send(self, cl, code, parts):
        cl.sendall(b"HTTP/1.0 " + str(code).encode() + _REASON[code] + _HEAD)
        for p in parts:
            cl.sendall(p)

    def _serve(self, cl):
        req = parse_request(self._read(cl))
        if req is None:
            self._send(cl, 400, (b"bad request",))
            return
        method, path, body = req
        if method == "POST" and path == "/save":
            up, errors = form.validate(form.parse(body[:form.MAX_BODY]))
            if errors:
                self._send(cl, 400, page_parts(self.networks, up, errors))
                return
            self._send(cl, 200, (_TOP, b"<p>Saved. The device restarts and joins ",
                                 form.escape(up["ssid"]).encode(), b".</p></body></html>"))
            self.saved = up
            self.on_save(up)
        elif method == "GET" and (path in ("/", "/index.html") or path.startswith("/?")):
            self._send(cl, 200, page_parts(self.networks, self.s))
        else:
            self._send(cl, 404, (b"not found",))
