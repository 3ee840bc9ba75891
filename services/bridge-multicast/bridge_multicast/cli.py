"""``bridge-multicast``: the original ESP modules (UDP multicast JSON) <-> MQTT, both ways."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime

from p1common.settings import CommonSettings, SettingsError

from . import frames, layouts
from .config import DIRECTIONS, TARIFF_LOW_CHOICES, BridgeSettings

DESCRIPTION = """\
Bridge between the original DIY project's ESP modules (P1 interface, monitor,
mini-switch: JSON frames by UDP multicast, 224.0.1.3:8266 by default) and MQTT.

  legacy -> MQTT  frames from the ESP P1 interface become p1/<site>/reading
                  (retained, "source": "legacy") and p1/<site>/live
  MQTT -> legacy  readings of p1-reader (source p1/replay/sim) become one frame
                  each, so the old monitor and switch modules keep working

Commands:
  (none) / run    run the bridge until SIGTERM/Ctrl-C
  layouts         print the known frame layouts (built-in + BRIDGE_LAYOUTS_FILE) as JSON
  decode FRAME    decode frame text (e.g. copied from Packet Sender) to a reading, as JSON
"""

EPILOG = """\
environment (flags override): BRIDGE_GROUP, BRIDGE_PORT, BRIDGE_INTERFACE, BRIDGE_TTL,
BRIDGE_MULTICAST_LOOP, BRIDGE_DIRECTION, BRIDGE_LAYOUT, BRIDGE_LAYOUTS_FILE, BRIDGE_TZ,
BRIDGE_DEDUP_S, BRIDGE_TARIFF_LOW; shared: MQTT_URL, P1_TOPIC_PREFIX, P1_SITE, LOG_LEVEL, METRICS_PORT.
See docs/bridge-multicast.md.
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bridge-multicast",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("command", nargs="?", default="run", choices=("run", "layouts", "decode"),
                   help="what to do (default: run)")
    p.add_argument("frame", nargs="*", help="decode: frame text(s)")
    p.add_argument("--group", help="multicast group (BRIDGE_GROUP, default 224.0.1.3)")
    p.add_argument("--port", type=int, help="UDP port (BRIDGE_PORT, default 8266)")
    p.add_argument("--interface",
                   help="IPv4 address of the local interface to join and send on "
                        "(BRIDGE_INTERFACE, default 0.0.0.0 = the kernel's choice)")
    p.add_argument("--ttl", type=int, help="multicast TTL of sent frames (BRIDGE_TTL, default 1)")
    p.add_argument("--no-loop", dest="loop", action="store_const", const=False,
                   help="do not loop sent frames back to listeners on this host "
                        "(BRIDGE_MULTICAST_LOOP=false)")
    p.add_argument("--direction", choices=DIRECTIONS,
                   help="both | to-mqtt | to-legacy (BRIDGE_DIRECTION, default both)")
    p.add_argument("--layout", help="frame layout name (BRIDGE_LAYOUT, default seed-7)")
    p.add_argument("--layouts-file", help="JSON/YAML file of extra layouts (BRIDGE_LAYOUTS_FILE)")
    p.add_argument("--tz", help="host time zone for frame times (BRIDGE_TZ, default Europe/Brussels)")
    p.add_argument("--dedup-s", type=float,
                   help="window for duplicate and echo detection, s (BRIDGE_DEDUP_S, default 30)")
    p.add_argument("--tariff-low", choices=TARIFF_LOW_CHOICES,
                   help="which tariff code of the frames is the low (night) one: 2 for the "
                        "Belgian meters the modules were built for, 1 for a Dutch meter "
                        "(BRIDGE_TARIFF_LOW, default 2)")
    p.add_argument("--site", help="site slug (P1_SITE, default home)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    overrides = {
        k: getattr(args, k)
        for k in ("group", "port", "interface", "ttl", "loop", "direction", "layout",
                  "layouts_file", "tz", "dedup_s", "tariff_low")
    }
    try:
        settings = BridgeSettings.from_env(overrides=overrides)
        if args.command == "layouts":
            known = layouts.all_layouts(settings.extra_layouts)
            doc = {"default": settings.layout.name,
                   "layouts": {n: lay.to_json() for n, lay in sorted(known.items())}}
            print(json.dumps(doc, indent=1))
            return 0
        env = dict(os.environ)
        if args.site:
            env["P1_SITE"] = args.site
        common = CommonSettings.from_env(env)
    except SettingsError as exc:
        print(f"bridge-multicast: {exc}", file=sys.stderr)
        return 2
    if args.command == "decode":
        if not args.frame:
            print("bridge-multicast: decode needs frame text", file=sys.stderr)
            return 2
        status = 0
        now = datetime.now(settings.tz)
        for text in args.frame:
            try:
                values = frames.parse_frame(text.encode(), settings.layout.key)
                reading = frames.reading_from_values(values, settings.layout, common.site, now,
                                                     settings.tariff_low_code)
            except frames.FrameError as exc:
                print(json.dumps({"error": exc.reason, "message": str(exc)}))
                status = 1
                continue
            print(json.dumps(reading))
        return status
    return run(settings, common)


def run(settings: BridgeSettings, common: CommonSettings) -> int:
    from p1common.service import ServiceRuntime

    from .bridge import Bridge

    runtime = ServiceRuntime("bridge-multicast", common)
    bridge = Bridge(settings, runtime)
    try:
        bridge.start()
    except OSError as exc:
        runtime.log.error("cannot open the multicast sockets on %s: %s", settings.interface, exc)
        return 1
    runtime.start()
    try:
        runtime.run_until_stopped()
    finally:
        bridge.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
