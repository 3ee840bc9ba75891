"""``peak-forecaster``: the capacity-tariff service, and ``replay`` over captures.

  peak-forecaster [run] [--shards N --shard K] [--state-dir DIR] ...
  peak-forecaster replay FILE... [--baseline] [--site SITE] [--threshold-w W]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from p1common.settings import Env, SettingsError

from .engine import ALGORITHMS, BadReading, PeakSettings, SiteEngine
from .forecast import ForecastParams

ENV_HELP = """\
environment (CLI flags override):
  MQTT_URL, P1_TOPIC_PREFIX, LOG_LEVEL, METRICS_PORT   shared settings
  P1_STATE_DIR              state lives in $P1_STATE_DIR/peak-forecaster (default ./var)
  PEAK_SHARDS, PEAK_SHARD   split the sites over N instances; this one serves shard K
  PEAK_PERSIST_S            write each site's state at least this often (default 60)
  PEAK_HA_DISCOVERY         publish Home Assistant discovery (default true)
  PEAK_MANUAL_THRESHOLD_W   threshold until a p1/config/<site>/peak arrives (default 2500)
  PEAK_PRICE_EUR_PER_KW_YEAR  price until a config arrives (default 53)
  PEAK_ALGORITHM            default | baseline, until a config arrives
  PEAK_LEARNED_CUT          0.05-1: the default alarms when the site's learner gives at least
                            this probability (opt-in; unset: today's rule, probability stated)
"""


def _dump(obj: dict[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


# -- replay ------------------------------------------------------------------------------
def _json_lines(path: Path) -> Iterator[dict[str, Any]]:
    with path.open("rb") as fh:
        for n, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except ValueError as exc:
                print(f"{path}:{n}: not JSON ({exc}); skipped", file=sys.stderr)
                continue
            if isinstance(obj, dict):
                yield obj


def _telegrams(path: Path, site: str) -> Iterator[dict[str, Any]]:
    try:
        from p1common.dsmr.framer import TelegramFramer
        from p1common.dsmr.parser import parse_telegram
        from p1common.dsmr.values import TelegramError
    except ImportError as exc:  # pragma: no cover - p1-reader is part of this project
        raise SystemExit(f"{path}: telegram files need p1_reader ({exc})") from None
    framer = TelegramFramer()
    bad = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 16):
            for tg in framer.feed(chunk):
                try:
                    parsed = parse_telegram(tg)
                except TelegramError as exc:
                    bad += 1
                    if bad <= 5:
                        print(f"{path}: telegram refused ({exc})", file=sys.stderr)
                    continue
                if parsed.get("ts") is None:
                    bad += 1
                    continue
                reading = {"v": 1, "site": site, "source": "replay"}
                reading.update(parsed)
                yield reading
    if bad:
        print(f"{path}: {bad} telegram(s) refused or without a meter clock", file=sys.stderr)


def readings_from(paths: Iterable[Path], site: str | None) -> Iterator[dict[str, Any]]:
    """Readings from JSON-lines files and/or telegram captures (sniffed per file)."""
    for path in paths:
        with path.open("rb") as fh:
            head = fh.read(4096).lstrip()
        if head.startswith(b"{"):
            for r in _json_lines(path):
                if site:
                    r["site"] = site
                yield r
        else:
            yield from _telegrams(path, site or "home")


def replay(
    paths: list[Path], settings: PeakSettings, site: str | None = None, peaks: bool = False,
    out: Any = None,
) -> dict[str, SiteEngine]:
    """Run the engine over files; print quarter and month records (and peaks) as JSON lines."""
    out = out or sys.stdout
    engines: dict[str, SiteEngine] = {}
    bad = 0
    for r in readings_from(paths, site):
        raw_site = r.get("site")
        s = raw_site if isinstance(raw_site, str) else "home"
        eng = engines.get(s)
        if eng is None:
            eng = engines[s] = SiteEngine(s, settings)
        try:
            res = eng.process(r)
        except BadReading as exc:
            bad += 1
            if bad <= 5:
                print(f"reading refused: {exc}", file=sys.stderr)
            continue
        for ev in res.events:
            print(f"{s}: {ev}", file=sys.stderr)
        for q in res.quarters:
            out.write(_dump(q) + "\n")
        for m in res.months:
            out.write(_dump(m) + "\n")
        if peaks and res.peak is not None:
            out.write(_dump(res.peak) + "\n")
    if bad:
        print(f"{bad} reading(s) refused", file=sys.stderr)
    return engines


# -- the service ---------------------------------------------------------------------------
def _defaults(env: Env, args: argparse.Namespace) -> PeakSettings:
    thr = args.threshold_w if args.threshold_w is not None else env.float(
        "PEAK_MANUAL_THRESHOLD_W", 2500.0, lo=0, hi=100000)
    price = args.price if args.price is not None else env.float(
        "PEAK_PRICE_EUR_PER_KW_YEAR", 53.0, lo=0, hi=1000)
    algo = "baseline" if getattr(args, "baseline", False) else (
        args.algorithm or env.choice("PEAK_ALGORITHM", "default", ALGORITHMS))
    return PeakSettings(thr, price, algo)


def _learned_cut(env: Env, args: argparse.Namespace) -> float | None:
    cut = args.learned_cut if args.learned_cut is not None else (
        env.float("PEAK_LEARNED_CUT", 0.0, lo=0.05, hi=1.0) if env.opt("PEAK_LEARNED_CUT") else None)
    if cut is not None and not 0.05 <= cut <= 1.0:
        raise SettingsError(f"--learned-cut: {cut} must be in 0.05..1")
    return cut


def _run(args: argparse.Namespace) -> int:
    from p1common.service import ServiceRuntime, state_dir

    from .service import Options, PeakService

    env = Env()
    shards = args.shards if args.shards is not None else env.int("PEAK_SHARDS", 1, lo=1, hi=1024)
    shard = args.shard if args.shard is not None else env.int("PEAK_SHARD", 0, lo=0)
    if not 0 <= shard < shards:
        raise SettingsError(f"PEAK_SHARD/--shard: {shard} must be in 0..{shards - 1}")
    persist_s = args.persist_s if args.persist_s is not None else env.float(
        "PEAK_PERSIST_S", 60.0, lo=0.1, hi=86400)
    ha = env.bool("PEAK_HA_DISCOVERY", True) and not args.no_ha_discovery
    defaults = _defaults(env, args)
    runtime = ServiceRuntime("peak-forecaster")
    sdir = Path(args.state_dir) if args.state_dir else state_dir("peak-forecaster")
    svc = PeakService(runtime, Options(shards, shard, sdir, persist_s, ha, defaults),
                      ForecastParams(learned_cut=_learned_cut(env, args)))
    svc.start()
    try:
        runtime.run_until_stopped(svc.tick, 1.0)
    finally:
        svc.close()
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="peak-forecaster",
        description="Capacity tariff (Fluvius kwartierpiek): quarter-hour peaks, month peak, "
        "billed 12-month average and an early warning, for every site on the broker.",
        epilog=ENV_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = ap.add_subparsers(dest="cmd", metavar="{run,replay}")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--threshold-w", type=float, default=None,
                       help="manual threshold in W (default PEAK_MANUAL_THRESHOLD_W or 2500)")
        p.add_argument("--price", type=float, default=None, metavar="EUR_PER_KW_YEAR",
                       help="capacity price (default PEAK_PRICE_EUR_PER_KW_YEAR or 53)")
        p.add_argument("--algorithm", choices=ALGORITHMS, default=None,
                       help="warning algorithm (default PEAK_ALGORITHM or default)")

    run = sub.add_parser("run", help="the MQTT service (the default command)",
                         epilog=ENV_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("--shards", type=int, default=None, help="number of instances (PEAK_SHARDS)")
    run.add_argument("--shard", type=int, default=None, help="this instance's shard, 0-based (PEAK_SHARD)")
    run.add_argument("--state-dir", default=None, help="state folder (default $P1_STATE_DIR/peak-forecaster)")
    run.add_argument("--persist-s", type=float, default=None, help="state write interval (PEAK_PERSIST_S)")
    run.add_argument("--no-ha-discovery", action="store_true", help="no Home Assistant discovery")
    run.add_argument("--learned-cut", type=float, default=None, metavar="P",
                     help="alarm when the site's learner gives at least this probability "
                     "(PEAK_LEARNED_CUT; default: today's rule alone, the probability stated)")
    common(run)

    rp = sub.add_parser(
        "replay", help="offline: closed quarters and month records of a capture, as JSON lines",
        description="Run the same logic over telegram captures or reading JSON lines (one reading "
        "per line) and print every closed quarter and every month record as JSON lines.",
    )
    rp.add_argument("files", nargs="+", type=Path, help="telegram capture(s) or reading JSON-lines file(s)")
    rp.add_argument("--baseline", action="store_true", help="warnings of the original algorithm")
    rp.add_argument("--site", default=None, help="site name (default: from the readings, or 'home')")
    rp.add_argument("--peaks", action="store_true", help="also print the peak payload of every reading")
    common(rp)
    return ap


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv.insert(0, "run")
    args = build_parser().parse_args(argv)
    try:
        if args.cmd == "replay":
            for f in args.files:
                if not f.is_file():
                    print(f"peak-forecaster: {f}: no such file", file=sys.stderr)
                    return 2
            replay(args.files, _defaults(Env(), args), args.site, args.peaks)
            return 0
        return _run(args)
    except SettingsError as exc:
        print(f"peak-forecaster: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
