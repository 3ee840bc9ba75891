"""``load-controller``: decides the outputs (relays, dimmers) of one site from its meter
(or, with ``--all-sites``, of every site or one shard of them, from one process).

Reads ``p1/<site>/reading``, ``p1/<site>/peak``, ``p1/<site>/output/+/state`` and the
retained ``p1/config/<site>/outputs``; publishes ``p1/<site>/output/<id>/set`` on every
reading (heartbeat, QoS 1) and ``p1/<site>/control`` (retained). No reading for 10 s:
every output off until data returns.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from p1common.settings import CommonSettings, SettingsError

from .config import ConfigError, LoadControllerSettings, load_outputs_file, parse_outputs

if TYPE_CHECKING:
    from p1common.payloads import OutputConfig
    from p1common.service import ServiceRuntime

EPILOG = """\
environment (CLI flags override):
  MQTT_URL, P1_TOPIC_PREFIX, P1_SITE, LOG_LEVEL, METRICS_PORT   shared settings
  LOADCTL_CONFIG            outputs document (JSON file) used until the retained
                            config topic says otherwise
  LOADCTL_TTL_S             ttl_s put in every set command (10)
  LOADCTL_WATCHDOG_S        no reading for this long -> every output off (10)
  LOADCTL_GAIN              proportional gain, 0.05..1 (0.9)
  LOADCTL_DEVICE_DELAY_S    assumed delay before a device applies a command (0.5)
  LOADCTL_METER_LAG_S       a reading arrives this long after the meter's second (0.1)
  LOADCTL_METER_AVERAGE_S   the meter's power is the mean over this long (1; 0 = instant)
  LOADCTL_RAMP_LEAD_S       a household ramp is extrapolated this far ahead (1.5; 0 = off)
  LOADCTL_CONFIRM_TIMEOUT_S how long to wait for a state report's seq (2)
  LOADCTL_FOLLOW_TIMEOUT_S  report a device not following after this long (5)
  LOADCTL_PEAK_MAX_AGE_S    peak forecasts older than this are ignored (60)
  LOADCTL_DEADBAND_W        proportional changes smaller than this are not made (0)
  P1_STATE_DIR              EV mode state in $P1_STATE_DIR/load-controller/<site>.json
                            (default ./var; single-site mode)
  LOADCTL_HA_DISCOVERY      Home Assistant entities of EV chargers (true)
  LOADCTL_SPEED             clock speed for simulations: match meter-sim --speed (1)
  LOADCTL_ALL_SITES         true: serve every site (p1/+/reading ...), not P1_SITE (false)
  LOADCTL_SHARDS, LOADCTL_SHARD  with all sites: split them over N processes; this one
                            serves those with crc32(site) % N == K (1, 0)

see docs/load-controller.md
"""


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="load-controller", description=__doc__, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--site", help="site slug (P1_SITE, default home)")
    ap.add_argument("--mqtt-url", help="broker URL (MQTT_URL)")
    ap.add_argument("--config", dest="config_file", metavar="FILE",
                    help="outputs document used at start (LOADCTL_CONFIG)")
    ap.add_argument("--ttl", dest="ttl_s", type=float, metavar="S", help="ttl_s of set commands")
    ap.add_argument("--watchdog", dest="watchdog_s", type=float, metavar="S",
                    help="seconds without a reading before every output goes off")
    ap.add_argument("--gain", type=float, help="proportional gain (0.05..1)")
    ap.add_argument("--device-delay", dest="device_delay_s", type=float, metavar="S",
                    help="assumed delay before a device applies a command")
    ap.add_argument("--follow-timeout", dest="follow_timeout_s", type=float, metavar="S",
                    help="report a device that has not followed after this long")
    ap.add_argument("--speed", type=float, metavar="X",
                    help="simulations only: every timer counts X seconds per wall second, to "
                    "run against `meter-sim --speed X` (LOADCTL_SPEED, default 1)")
    ap.add_argument("--all-sites", action="store_true", default=None,
                    help="serve every site from this process, each with its own outputs "
                    "config, state and watchdog (LOADCTL_ALL_SITES); --site is then unused")
    ap.add_argument("--shards", type=int, metavar="N",
                    help="with --all-sites: the sites are split over N processes (LOADCTL_SHARDS)")
    ap.add_argument("--shard", type=int, metavar="K",
                    help="with --all-sites: this process serves shard K, 0-based (LOADCTL_SHARD)")
    ap.add_argument("--state-dir", metavar="DIR",
                    help="where EV mode keeps its plans and the learnt base load "
                    "(default $P1_STATE_DIR/load-controller)")
    ap.add_argument("--no-ha-discovery", action="store_true",
                    help="publish no Home Assistant entities for EV chargers "
                    "(LOADCTL_HA_DISCOVERY=false)")
    ap.add_argument("--check-config", metavar="FILE",
                    help="validate an outputs document, print it normalised, and exit")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.check_config:
        try:
            outputs = parse_outputs(json.loads(Path(args.check_config).read_text()))
        except (OSError, ValueError, ConfigError) as exc:
            print(f"load-controller: {args.check_config}: {exc}", file=sys.stderr)
            return 1
        print(json.dumps({"v": 1, "outputs": [o.model_dump() for o in outputs]}, indent=2))
        return 0
    env = dict(os.environ)
    if args.site:
        env["P1_SITE"] = args.site
    if args.mqtt_url:
        env["MQTT_URL"] = args.mqtt_url
    try:
        common = CommonSettings.from_env(env)
        settings = LoadControllerSettings.from_env(env, vars(args))
        outputs = load_outputs_file(settings.config_file) if settings.config_file else []
    except SettingsError as exc:
        print(f"load-controller: {exc}", file=sys.stderr)
        return 2

    from p1common.service import ServiceRuntime

    from .service import scaled_clock

    runtime = ServiceRuntime("load-controller", common)
    if settings.all_sites:
        from .multisite import MultiSiteService

        multi = MultiSiteService(runtime, settings.params, outputs,
                                 clock=scaled_clock(settings.speed),
                                 shards=settings.shards, shard=settings.shard)
        runtime.log.info("serving every site%s; %d default output(s) from %s; watchdog %g s, "
                         "gain %g%s",
                         f" of shard {settings.shard}/{settings.shards}"
                         if settings.shards > 1 else "",
                         len(outputs), settings.config_file or "none (each site's config topic)",
                         settings.params.watchdog_s, settings.params.gain,
                         f", clock speed x{settings.speed:g}" if settings.speed != 1 else "")
        runtime.start()
        runtime.run_until_stopped(tick=multi.tick, tick_s=1.0 / settings.speed)
        return 0
    return _run_single(args, env, common, settings, outputs, runtime)


def _run_single(args: argparse.Namespace, env: dict[str, str], common: CommonSettings,
                settings: LoadControllerSettings, outputs: list[OutputConfig],
                runtime: ServiceRuntime) -> int:
    """One site's controller, with its state file (EV mode) and its Home Assistant entities."""
    from p1common.service import state_dir

    from .service import LoadControllerService, scaled_clock

    sdir = Path(args.state_dir) if args.state_dir else state_dir("load-controller")
    service = LoadControllerService(runtime, common.site, settings.params, outputs,
                                    clock=scaled_clock(settings.speed),
                                    state_path=sdir / f"{common.site}.json",
                                    ha_discovery=not args.no_ha_discovery and env_bool(
                                        env, "LOADCTL_HA_DISCOVERY", True))
    topic = runtime.topics.config(common.site, "outputs")
    runtime.log.info("site %s, %s; watchdog %g s, gain %g%s", common.site,
                     f"{len(outputs)} output(s) from {settings.config_file} until {topic} says "
                     "otherwise" if settings.config_file else
                     f"outputs from the retained {topic} (none until it arrives)",
                     settings.params.watchdog_s, settings.params.gain,
                     f", clock speed x{settings.speed:g}" if settings.speed != 1 else "")
    runtime.start()
    service.discover()
    runtime.run_until_stopped(tick=service.tick, tick_s=1.0 / settings.speed)
    return 0

def env_bool(env: dict[str, str], name: str, default: bool) -> bool:
    from p1common.settings import Env

    return Env(env).bool(name, default)


if __name__ == "__main__":
    sys.exit(main())
