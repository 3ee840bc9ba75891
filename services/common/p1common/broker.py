"""An MQTT broker for running the stack on one machine without installing anything.

``p1-broker`` runs Mosquitto when it is on the PATH (the reference broker, also
used by the tests) and otherwise the embedded pure-Python amqtt broker (MQTT
3.1.1 only, no ``$share``: the services only need 3.1.1). It always binds to an
explicit address (loopback by default), never 0.0.0.0 unless asked.
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


def run_amqtt(host: str, port: int) -> int:
    from amqtt.broker import Broker

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
    binary = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)
    if args.engine == "mosquitto" or (args.engine == "auto" and binary):
        if not binary:
            ap.error("mosquitto is not installed")
        return run_mosquitto(binary, args.host, args.port)
    return run_amqtt(args.host, args.port)


if __name__ == "__main__":
    sys.exit(main())
