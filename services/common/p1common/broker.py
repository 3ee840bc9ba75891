"""An MQTT broker for running the stack on one machine without installing anything.

``p1-broker`` runs Mosquitto when it is on the PATH (the reference broker, also
used by the tests) and otherwise the embedded pure-Python amqtt broker (MQTT
3.1.1 only, no ``$share``: the services only need 3.1.1). It always binds to an
explicit address (loopback by default), never 0.0.0.0 unless asked.

The embedded broker is amqtt with one fix the stack relies on: amqtt 0.12.1 sends a
client that connects the retained messages matching *every* client's subscriptions
(``Broker._handle_client_session`` loops over the broker-wide subscription table, a
change of amqtt PR #248), so with a ``p1/#`` watcher open a new subscriber to
``p1/home/peak`` also got the retained control and output states. Here retained
messages go only to a session that holds a matching subscription (MQTT-3.3.1-6).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile

log = logging.getLogger("p1-broker")


def find_mosquitto() -> str | None:
    """The mosquitto binary (Debian puts it in /usr/sbin, not always on a user's PATH)."""
    return shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)


def run_mosquitto(binary: str, host: str, port: int) -> int:
    with tempfile.TemporaryDirectory(prefix="p1-broker-") as tmp:
        os.chmod(tmp, 0o700)
        conf = os.path.join(tmp, "mosquitto.conf")
        lines = [f"listener {port} {host}", "allow_anonymous true", "persistence false",
                 "log_dest stderr", "log_type error", "log_type warning", "set_tcp_nodelay true"]
        if os.geteuid() == 0:
            lines.append("user root")
        with open(conf, "w") as fh:
            fh.write("\n".join(lines) + "\n")
        log.info("mosquitto on %s:%d (anonymous, for local use only)", host, port)
        proc = subprocess.Popen([binary, "-c", conf])
        signal.signal(signal.SIGTERM, lambda *_: proc.terminate())
        try:
            return proc.wait()
        except KeyboardInterrupt:
            proc.terminate()
            return proc.wait()


class _QuietProbes(logging.Filter):
    """A TCP connection closed before its CONNECT (a port probe, a health check) is no
    broker error: amqtt logs it as ERROR + WARNING, left out here."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        return not (text.startswith("No data from") or (
            text.startswith("Failed to initialize client session") and "No data" in text))


def rules_broker_class() -> type:
    """amqtt's ``Broker`` with retained messages sent only to matching subscriptions."""
    from amqtt.broker import Broker
    from amqtt.session import Session

    class RulesBroker(Broker):  # type: ignore[misc]
        async def _publish_retained_messages_for_subscription(
            self, subscription: tuple[str, int], session: Session
        ) -> None:
            # called on SUBSCRIBE (after the subscription is added: right) and, on each
            # CONNECT, for every filter of every client (wrong): only a filter this
            # session holds gets its retained messages, at the QoS granted to it
            topic_filter, _ = subscription
            granted = [qos for s, qos in self._subscriptions.get(topic_filter, ())
                       if s.client_id == session.client_id]
            if granted:
                await super()._publish_retained_messages_for_subscription(
                    (topic_filter, granted[0]), session)

    return RulesBroker


def run_amqtt(host: str, port: int) -> int:
    Broker = rules_broker_class()
    logging.getLogger("amqtt.broker").addFilter(_QuietProbes())

    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
        "plugins": {
            "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
        },
    }

    async def main() -> None:
        broker = Broker(config)
        await broker.start()
        log.info("embedded amqtt broker on %s:%d (anonymous, for local use only)", host, port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await broker.shutdown()

    asyncio.run(main())
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="p1-broker", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    ap.add_argument("--port", type=int, default=1883, help="TCP port (default 1883)")
    ap.add_argument("--engine", choices=("auto", "mosquitto", "amqtt"), default="auto",
                    help="auto = mosquitto when installed, else amqtt")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-7s p1-broker %(message)s")
    for noisy in ("amqtt", "transitions"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    binary = find_mosquitto()
    if args.engine == "mosquitto" or (args.engine == "auto" and binary):
        if not binary:
            ap.error("mosquitto is not installed")
        return run_mosquitto(binary, args.host, args.port)
    return run_amqtt(args.host, args.port)


if __name__ == "__main__":
    sys.exit(main())
