"""``ev-gateway``: the chargers people have, driven by the load-controller's ``ev`` outputs.

An OCPP 1.6J central system (wallboxes connect to ``ws://<host>:9000/<charge point id>``,
subprotocol ``ocpp1.6``; current limits go out by SetChargingProfile) and a driver for evcc
loadpoints (evcc's MQTT API). Which outputs are whose comes from the retained
``p1/config/<site>/outputs``: kind ``ev`` with ``charger`` ``ocpp`` (``charger_ref``: the charge
point id) or ``evcc`` (``charger_ref``: the loadpoint number). Reads
``p1/<site>/output/<id>/set``, publishes ``p1/<site>/output/<id>/state``. No fresh set: 0 A.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from dataclasses import replace

from p1common.settings import CommonSettings, Env, SettingsError, parse_mqtt_url

EPILOG = """\
environment (CLI flags override):
  MQTT_URL, P1_TOPIC_PREFIX, P1_SITE, LOG_LEVEL, METRICS_PORT   shared settings
  EVGW_OCPP_HOST        address the OCPP central system listens on (0.0.0.0)
  EVGW_OCPP_PORT        its port (9000; 0 = no OCPP)
  EVGW_HEARTBEAT_S      heartbeat interval given to charge points at boot (60)
  EVGW_WATCHDOG_S       a set counts at most this long, also with a longer ttl_s;
                        then the charger gets 0 A (10)
  EVGW_EVCC_TOPIC       evcc's MQTT root topic (evcc)
  EVGW_EVCC_REFRESH_S   evcc: the limit is written again this often (60)
  EVGW_EVCC_WILL_MQTT_URL  evcc: the broker URL (user) of the connection whose last
                        will pauses the loadpoint if this gateway dies (MQTT_URL)

see docs/ev-chargers.md
"""


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="ev-gateway", description=__doc__, epilog=EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--site", help="site slug (P1_SITE, default home)")
    ap.add_argument("--mqtt-url", help="broker URL (MQTT_URL)")
    ap.add_argument("--ocpp-host", help="OCPP listen address (EVGW_OCPP_HOST)")
    ap.add_argument("--ocpp-port", type=int, help="OCPP port, 0 = off (EVGW_OCPP_PORT)")
    ap.add_argument("--watchdog", dest="watchdog_s", type=float, metavar="S",
                    help="seconds a set counts at most (EVGW_WATCHDOG_S)")
    ap.add_argument("--evcc-topic", help="evcc's MQTT root topic (EVGW_EVCC_TOPIC)")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    env = dict(os.environ)
    if args.site:
        env["P1_SITE"] = args.site
    if args.mqtt_url:
        env["MQTT_URL"] = args.mqtt_url
    from .service import GatewaySettings

    try:
        common = CommonSettings.from_env(env)
        e = Env(env)
        settings = GatewaySettings(
            ocpp_host=e.str("EVGW_OCPP_HOST", "0.0.0.0"),
            ocpp_port=e.int("EVGW_OCPP_PORT", 9000, lo=0, hi=65535),
            heartbeat_s=e.int("EVGW_HEARTBEAT_S", 60, lo=10, hi=86400),
            watchdog_s=e.float("EVGW_WATCHDOG_S", 10.0, lo=1, hi=3600),
            evcc_root=e.str("EVGW_EVCC_TOPIC", "evcc"),
            evcc_refresh_s=e.float("EVGW_EVCC_REFRESH_S", 60.0, lo=5, hi=3600),
            evcc_will_url=parse_mqtt_url(e.str("EVGW_EVCC_WILL_MQTT_URL"),
                                         "EVGW_EVCC_WILL_MQTT_URL")
            if e.opt("EVGW_EVCC_WILL_MQTT_URL") else None,
        )
        over = {k: v for k, v in {"ocpp_host": args.ocpp_host, "ocpp_port": args.ocpp_port,
                                  "watchdog_s": args.watchdog_s,
                                  "evcc_root": args.evcc_topic}.items() if v is not None}
        if "ocpp_port" in over and not 0 <= over["ocpp_port"] <= 65535:
            raise SettingsError(f"--ocpp-port: {over['ocpp_port']} is not within 0..65535")
        if "watchdog_s" in over and not 1 <= over["watchdog_s"] <= 3600:
            raise SettingsError(f"--watchdog: {over['watchdog_s']} is not within 1..3600")
        settings = replace(settings, **over)
    except SettingsError as exc:
        print(f"ev-gateway: {exc}", file=sys.stderr)
        return 2

    from p1common.service import ServiceRuntime, state_dir

    from .service import Gateway

    runtime = ServiceRuntime("ev-gateway", common)
    gateway = Gateway(runtime, common.site, settings, state_dir("ev-gateway"))
    runtime.log.info("site %s; chargers from the retained %s; watchdog %g s", common.site,
                     runtime.topics.config(common.site, "outputs"), settings.watchdog_s)
    runtime.start()
    try:
        asyncio.run(gateway.run())
    finally:
        runtime.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
