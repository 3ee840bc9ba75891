"""``p1-recorder``: the contract's MQTT topics into InfluxDB 2, buffered on disk while it is away."""

from __future__ import annotations

import argparse
import sys

from p1common.service import ServiceRuntime
from p1common.settings import CommonSettings, SettingsError

from .app import Recorder
from .settings import RecorderSettings, parse_shard, parse_sites

EPILOG = """\
settings (environment; flags override):
  MQTT_URL, P1_TOPIC_PREFIX, LOG_LEVEL, METRICS_PORT   shared by every service
  INFLUX_URL            InfluxDB 2 base URL (default http://127.0.0.1:8086)
  INFLUX_TOKEN          API token with write access to both buckets, or
  INFLUX_TOKEN_FILE     a file holding it (Docker/Kubernetes secret)
  INFLUX_ORG            organisation (default p1)
  INFLUX_BUCKET         raw bucket (default p1): readings, peaks, outputs, control
  INFLUX_LONG_BUCKET    long-term bucket for quarter and month records (default <INFLUX_BUCKET>_long)
  RECORDER_PEAK_EVERY_S at most one peak point per this many seconds, plus level changes
                        and quarter ends (default 10; 0 = every peak)
  RECORDER_BATCH_SIZE   points per write (default 500)
  RECORDER_FLUSH_S      longest wait before a partial batch is written (default 5)
  RECORDER_BUFFER_MAX_MB  disk buffer while InfluxDB is away (default 100; oldest dropped)
  RECORDER_BUFFER_DIR   buffer folder (default $P1_STATE_DIR/recorder/buffer)
  RECORDER_RETRY_MAX_S  longest back-off between tries (default 30)
  RECORDER_TIMEOUT_S    HTTP timeout of one write (default 10)
  RECORDER_SITES        comma-separated sites to record (default: every site)
  RECORDER_SHARD        INDEX/COUNT: record only sites with crc32(site) % COUNT == INDEX

topics: p1/+/reading, p1/+/peak, p1/+/peak/quarter, p1/+/peak/month,
p1/+/output/+/state, p1/+/control. See docs/recorder.md for the measurements.
"""


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="p1-recorder", description=__doc__, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--influx-url", help="InfluxDB 2 URL (INFLUX_URL)")
    ap.add_argument("--influx-org", help="organisation (INFLUX_ORG)")
    ap.add_argument("--influx-bucket", help="raw bucket (INFLUX_BUCKET)")
    ap.add_argument("--influx-long-bucket", help="long-term bucket (INFLUX_LONG_BUCKET)")
    ap.add_argument("--peak-every-s", type=int,
                    help="seconds between peak points (RECORDER_PEAK_EVERY_S)")
    ap.add_argument("--batch-size", type=int, help="points per write (RECORDER_BATCH_SIZE)")
    ap.add_argument("--flush-s", type=float, help="max wait for a batch (RECORDER_FLUSH_S)")
    ap.add_argument("--buffer-max-mb", type=float,
                    help="disk buffer limit in MiB (RECORDER_BUFFER_MAX_MB)")
    ap.add_argument("--buffer-dir", help="disk buffer folder (RECORDER_BUFFER_DIR)")
    ap.add_argument("--sites", help="comma-separated sites (RECORDER_SITES)")
    ap.add_argument("--shard", help="INDEX/COUNT of the sites to record (RECORDER_SHARD)")
    ap.add_argument("--check", action="store_true",
                    help="validate the settings, print them (token hidden) and exit")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        common = CommonSettings.from_env()
        settings = RecorderSettings.from_env().with_overrides(
            influx_url=args.influx_url, influx_org=args.influx_org,
            influx_bucket=args.influx_bucket, influx_long_bucket=args.influx_long_bucket,
            buffer_dir=args.buffer_dir,
            sites=parse_sites(args.sites, "--sites") if args.sites is not None else None,
            shard=parse_shard(args.shard, "--shard") if args.shard is not None else None,
        )
        if args.batch_size is not None and not 1 <= args.batch_size <= 100_000:
            raise SettingsError("--batch-size: must be 1..100000")
        if args.flush_s is not None and not 0.05 <= args.flush_s <= 3600:
            raise SettingsError("--flush-s: must be 0.05..3600")
        if args.buffer_max_mb is not None and args.buffer_max_mb < 0.01:
            raise SettingsError("--buffer-max-mb: must be at least 0.01")
        if args.peak_every_s is not None and not 0 <= args.peak_every_s <= 3600:
            raise SettingsError("--peak-every-s: must be 0..3600")
        settings = settings.with_overrides(batch_size=args.batch_size, flush_s=args.flush_s,
                                           buffer_max_mb=args.buffer_max_mb,
                                           peak_every_s=args.peak_every_s)
    except SettingsError as exc:
        print(f"p1-recorder: {exc}", file=sys.stderr)
        return 2
    if args.check:
        shown = {k: v for k, v in vars(settings).items() if k != "influx_token"}
        shown["influx_token"] = "set" if settings.influx_token else "not set"
        shown["mqtt"] = common.mqtt.redacted()
        shown["long_bucket"] = settings.long_bucket
        for key, value in shown.items():
            print(f"{key}: {value}")
        return 0
    runtime = ServiceRuntime("recorder", common)
    if not settings.influx_token:
        runtime.log.warning("INFLUX_TOKEN is not set: InfluxDB 2 will refuse the writes (401)")
    recorder = Recorder(settings, runtime)
    recorder.start()
    runtime.start()
    try:
        runtime.stop_event.wait()
    finally:
        runtime.close()
        recorder.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
