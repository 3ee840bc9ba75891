"""``p1-reader``: read P1 telegrams from a serial port (or a capture) and publish them on MQTT.

``p1-reader parse FILE...`` checks captures offline: one reading JSON line per good
telegram on stdout, one error line per bad telegram on stderr, exit 1 if any was bad.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from p1common.dsmr.framer import TelegramFramer
from p1common.dsmr.parser import parse_telegram
from p1common.dsmr.tariff import SETTINGS as TARIFF_SETTINGS
from p1common.dsmr.values import TelegramError
from p1common.settings import CommonSettings, SettingsError, check_slug

from .reading import build_reading
from .service import PROFILE_CHOICES, ReaderSettings, check_settings, run
from .sources import SOURCE_CHOICES

ENV_HELP = """\
environment (flags override):
  P1_SOURCE             serial (P1_SERIAL_URL) | mqtt (whole raw telegrams, one per message, on
                        P1_RAW_TOPIC, as ESP P1 dongles publish them) | homewizard (the
                        local API of a HomeWizard P1 Meter) (default serial)
  P1_RAW_TOPIC          mqtt source: the topic to read (default p1/<site>/raw, on MQTT_URL)
  P1_HOMEWIZARD_HOST    homewizard source: the HomeWizard P1 Meter's address (or URL); polls
                        http://HOST/api/v1/telegram (API v1), or with a token
                        https://HOST/api/telegram (API v2)
  P1_HOMEWIZARD_TOKEN   homewizard source: API v2 token (Authorization: Bearer)
  P1_HOMEWIZARD_CA_FILE homewizard v2: check the device's certificate against this CA file
                        (default: not checked, as HomeWizard's examples)
  P1_HOMEWIZARD_INTERVAL_S  homewizard source: seconds between polls, >= 0.5 (default 1)
  P1_SERIAL_URL         pyserial URL: /dev/ttyUSB0, a pty path, socket://host:port (ser2net),
                        rfc2217://host:port; or - (stdin), a file or a named pipe: read to
                        its end, then exit 0 (default /dev/ttyUSB0)
  P1_SERIAL_PROFILE     auto | dsmr4 (115200 8N1, DSMR 4/5, Fluvius) | dsmr2 (9600 7E1,
                        DSMR 2.2/3); auto tries 115200 8N1 and switches when no valid
                        telegram arrives within P1_DETECT_S seconds (default 5) (default auto)
  P1_SERVE_RAW          serve every accepted telegram, byte for byte, to TCP clients (ser2net
                        style, read-only): PORT (on 127.0.0.1) or HOST:PORT, e.g. 0.0.0.0:2323
                        (default off); for Home Assistant DSMR (network), dsmr-reader
  P1_SERVE_RAW_CLIENTS  raw server: at most this many clients (default 16)
  P1_SERVE_RAW_QUEUE    raw server: telegrams queued for a client before it is dropped as
                        slow (default 60)
  P1_DSMRREADER_URL     forward telegrams to dsmr-reader's remote datalogger API: its base URL,
                        e.g. http://dsmr-reader:7777 (POST /api/v1/datalogger/dsmrreading)
  P1_DSMRREADER_API_KEY dsmr-reader's API key (sent as Authorization: Token KEY)
  P1_DSMRREADER_EVERY   forward every Nth accepted telegram (default 1 = all)
  P1_PUBLISH_RAW        true: also publish the telegram text on p1/<site>/raw (default false)
  P1_PUBLISH_EVERY      publish every Nth accepted telegram (default 1 = all)
  P1_PUBLISH_ON_CHANGE  true: publish only when a value (not the clock) changed (default false)
  P1_HA_DISCOVERY       Home Assistant MQTT discovery (default true)
  P1_CHECK_CRC          refuse telegrams whose CRC16 does not match (default true)
  P1_TARIFF_LOW         which tariff code is the low (night) one: auto (Belgian eMUCS 2,
                        Dutch DSMR 1, other countries unknown) | 1 | 2 | none (default auto)
  MQTT_URL, P1_TOPIC_PREFIX, P1_SITE, LOG_LEVEL, METRICS_PORT   shared settings

examples:
  p1-reader --serial /dev/ttyUSB0
  p1-reader --serial socket://192.168.1.20:2001 --site home
  socat -u TCP:192.168.1.20:2001 - | p1-reader --serial -
  P1_HOMEWIZARD_TOKEN=... p1-reader --source homewizard --homewizard-host 192.168.1.30
  p1-reader --source mqtt --site home          # telegrams an ESP dongle publishes on p1/home/raw
  p1-reader --replay capture.txt --speed 10
  p1-reader parse capture.txt
  cat /dev/ttyUSB0 | p1-reader parse -
"""


def _bool(text: str) -> bool:
    low = text.lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not a boolean (use true/false)")


def _speed(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value < 0:
        raise argparse.ArgumentTypeError("speed must be >= 0 (0 = as fast as possible)")
    return value


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="p1-reader",
        description="Read DSMR/Fluvius P1 telegrams from a serial port, a pipe or file, an ESP "
        "dongle's MQTT topic or a HomeWizard P1 Meter (or replay a capture), check their CRC, "
        "parse them and publish p1/<site>/reading (retained), p1/<site>/live and optionally "
        "p1/<site>/raw on MQTT, with Home Assistant discovery; optionally serve the raw "
        "telegrams on TCP and forward them to dsmr-reader.",
        epilog=ENV_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--source", choices=SOURCE_CHOICES, help="where telegrams come from (P1_SOURCE)")
    ap.add_argument("--raw-topic", metavar="TOPIC", help="mqtt source: topic to read (P1_RAW_TOPIC)")
    ap.add_argument("--homewizard-host", metavar="HOST",
                    help="HomeWizard P1 Meter address (P1_HOMEWIZARD_HOST)")
    ap.add_argument("--dsmrreader-url", metavar="URL",
                    help="forward telegrams to dsmr-reader (P1_DSMRREADER_URL)")
    ap.add_argument("--serve-raw", metavar="[HOST:]PORT",
                    help="serve raw telegrams on TCP (P1_SERVE_RAW)")
    ap.add_argument("--serial", metavar="URL", help="pyserial URL, or - / a file / a named pipe (P1_SERIAL_URL)")
    ap.add_argument("--profile", choices=PROFILE_CHOICES, help="serial settings (P1_SERIAL_PROFILE)")
    ap.add_argument("--site", help="site slug in the topics (P1_SITE)")
    ap.add_argument("--mqtt", metavar="URL", help="broker, mqtt://user:pw@host:1883 (MQTT_URL)")
    ap.add_argument("--publish-raw", type=_bool, metavar="BOOL", help="(P1_PUBLISH_RAW)")
    ap.add_argument("--publish-every", type=int, metavar="N", help="(P1_PUBLISH_EVERY)")
    ap.add_argument("--publish-on-change", type=_bool, metavar="BOOL",
                    help="(P1_PUBLISH_ON_CHANGE)")
    ap.add_argument("--ha-discovery", type=_bool, metavar="BOOL", help="(P1_HA_DISCOVERY)")
    ap.add_argument("--check-crc", type=_bool, metavar="BOOL", help="(P1_CHECK_CRC)")
    ap.add_argument("--tariff-low", choices=TARIFF_SETTINGS, help="low tariff code (P1_TARIFF_LOW)")
    ap.add_argument("--replay", metavar="FILE", type=Path,
                    help="publish the telegrams of a capture file instead of reading a port "
                    "(source 'replay'), then exit")
    ap.add_argument("--speed", type=_speed, default=1.0, metavar="N",
                    help="replay at N x real time (meter clock); 0 = as fast as possible")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    parse = sub.add_parser(
        "parse",
        help="print one reading JSON line per telegram of capture files (no MQTT)",
        description="Parse captured telegrams offline: one reading JSON line per good telegram "
        "on stdout (the payload p1-reader would publish), one error line per bad telegram on "
        "stderr (file, telegram number, reason). Exit status 1 if any telegram was bad.",
    )
    parse.add_argument("files", nargs="+", metavar="FILE", help="capture file, or - for stdin")
    parse.add_argument("--site", dest="parse_site", metavar="SITE", help="site in the payload (P1_SITE, home)")
    parse.add_argument("--no-crc", action="store_true", help="accept telegrams with a bad CRC")
    return ap


def _telegrams(data: bytes) -> Iterator[tuple[bytes | None, str]]:
    """Each telegram of a capture in order, or (None, why) for one the framer dropped."""
    framer = TelegramFramer()
    for line in data.splitlines(keepends=True):
        truncated, overflows = framer.stats.truncated, framer.stats.overflows
        found = framer.feed(line)
        if framer.stats.truncated > truncated:
            yield None, "telegram cut short: a new '/' started before its '!' line"
        if framer.stats.overflows > overflows:
            yield None, f"no '!' line within {framer.max_bytes} bytes"
        for telegram in found:
            yield telegram, ""
    rest = framer.flush()
    if rest is not None:
        yield rest, ""


def parse_files(files: list[str], site: str, check_crc: bool, tariff_low: str = "auto") -> int:
    bad = 0
    for name in files:
        try:
            data = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
        except OSError as exc:
            print(f"p1-reader parse: {name}: {exc.strerror or exc}", file=sys.stderr)
            bad += 1
            continue
        label = "<stdin>" if name == "-" else name
        count = 0
        for index, (telegram, why) in enumerate(_telegrams(data), start=1):
            count += 1
            if telegram is None:
                print(f"{label}: telegram {index}: {why}", file=sys.stderr)
                bad += 1
                continue
            try:
                parsed = parse_telegram(telegram, check_crc=check_crc, tariff_low=tariff_low)
            except TelegramError as exc:
                print(f"{label}: telegram {index}: {exc}", file=sys.stderr)
                bad += 1
                continue
            reading = build_reading(parsed, site=site, source="replay", now=time.time())
            sys.stdout.write(json.dumps(reading, ensure_ascii=False) + "\n")
        if count == 0:
            print(f"{label}: no telegram found (no '/' start)", file=sys.stderr)
            bad += 1
    sys.stdout.flush()
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    try:
        if args.command == "parse":
            site = check_slug(args.parse_site or args.site or _env_site(), "--site")
            env_settings = ReaderSettings.from_env()
            check = not args.no_crc and env_settings.check_crc
            try:
                return parse_files(args.files, site, check, args.tariff_low or env_settings.tariff_low)
            except BrokenPipeError:  # `p1-reader parse ... | head`: the reader has what it wanted
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                return 0
        settings = ReaderSettings.from_env().with_overrides(
            serial_url=args.serial, profile=args.profile, publish_raw=args.publish_raw,
            publish_every=args.publish_every, publish_on_change=args.publish_on_change,
            ha_discovery=args.ha_discovery, check_crc=args.check_crc, tariff_low=args.tariff_low,
            source=args.source, raw_topic=args.raw_topic, serve_raw=args.serve_raw,
            homewizard_host=args.homewizard_host, dsmrreader_url=args.dsmrreader_url,
        )
        if settings.publish_every < 1:
            raise SettingsError("--publish-every: must be >= 1")
        overrides = {}
        if args.site:
            overrides["P1_SITE"] = args.site
        if args.mqtt:
            overrides["MQTT_URL"] = args.mqtt
        common = CommonSettings.from_env({**os.environ, **overrides})
        check_settings(settings, common)
    except SettingsError as exc:
        print(f"p1-reader: {exc}", file=sys.stderr)
        return 2
    if args.replay is not None and not args.replay.is_file():
        print(f"p1-reader: --replay: {args.replay}: no such file", file=sys.stderr)
        return 2
    return run(settings, common, replay_file=args.replay, speed=args.speed)


def _env_site() -> str:
    return os.environ.get("P1_SITE") or "home"


if __name__ == "__main__":
    sys.exit(main())
