"""Prometheus metrics and a health endpoint on one small HTTP server per service.

``GET /metrics`` gives the Prometheus text format, ``GET /healthz`` answers 200
when the service's health check passes (503 otherwise), for container probes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, generate_latest

MQTT_CONNECTED = Gauge("p1_mqtt_connected", "1 while connected to the broker", ["client_id"])
MQTT_RECEIVED = Counter("p1_mqtt_messages_received_total", "MQTT messages received", ["client_id"])
# counted once every handler of a message has returned (or raised): a test (or an
# operator) that sees it rise knows the message before is completely dealt with
MQTT_HANDLED = Counter("p1_mqtt_messages_handled_total", "MQTT messages whose handlers have finished",
                       ["client_id"])
MQTT_PUBLISHED = Counter("p1_mqtt_messages_published_total", "MQTT messages published", ["client_id"])
MQTT_BAD_PAYLOADS = Counter(
    "p1_mqtt_bad_payloads_total", "MQTT payloads refused (bad JSON, wrong types, too big)",
    ["client_id", "topic_kind"],
)
MQTT_UNMATCHED = Counter(
    "p1_mqtt_unmatched_messages_total",
    "messages dropped because their topic matches none of the client's subscriptions",
    ["client_id"],
)
MQTT_HANDLER_ERRORS = Counter(
    "p1_mqtt_handler_errors_total", "exceptions raised by message handlers", ["client_id"]
)


class MetricsServer:
    def __init__(self, port: int, health: Callable[[], bool] | None = None, host: str = "0.0.0.0") -> None:
        health_fn = health or (lambda: True)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.startswith("/metrics"):
                    body, ctype, code = generate_latest(), CONTENT_TYPE_LATEST, 200
                elif self.path.startswith("/healthz"):
                    ok = health_fn()
                    body, ctype, code = (b"ok\n" if ok else b"unhealthy\n"), "text/plain", (200 if ok else 503)
                else:
                    body, ctype, code = b"not found\n", "text/plain", 404
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True, name="metrics")
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
