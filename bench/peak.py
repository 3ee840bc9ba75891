"""peak-forecaster benchmark: warning quality (default vs the original) and throughput.

Quality: simulated runs (meter-sim's house, PV and meter model; several seeds,
winter and summer), a reading every 10 s, through the real engine. A quarter is
*above* when its average ends above the threshold in force. For each algorithm:
recall (above quarters that got an ``alarm`` during the quarter), recall with at
least 4 min lead (counting the first alarm, and, stricter, only an alarm that was
still on at the quarter's end), precision (alarmed quarters that really ended
above), median lead. Two threshold regimes: the real dynamic one (max(2500 W,
month peak)) and a fixed 2500 W (many more events). The default forecaster's
parameters were tuned on seeds 101-103; seeds 1-4 are reported, the tuning seeds
are shown apart.

Throughput: one ``peak-forecaster`` process, a real Mosquitto, N sites each
publishing a reading per second; latency = reading published -> its ``peak``
received, against the plain broker hop (publish -> receive, no service) measured
in the same run; the service's CPU use per 1000 readings/s.

Standalone: ``python -m bench.peak [--days 30] [--seeds 1 2 3 4] [--tune-seeds 101 102 103]
[--sites 2000] [--only quality]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

SEASONS = {"winter": (1, 1), "summer": (7, 1)}  # (month, day) of 2026
INTERVAL_S = 10
WARMUP_S = 2


def _log(msg: str) -> None:
    print(f"[bench.peak] {msg}", flush=True)


# -- data ----------------------------------------------------------------------------------
def simulated_readings(seed: int, season: str, days: int) -> list[dict[str, Any]]:
    """Readings from meter-sim's model (Python API: the same model as its CLI, no telegram
    rendering/parsing, so a month takes seconds)."""
    try:
        from meter_sim.sim import SimConfig, Simulator
    except ImportError:  # pragma: no cover - only before meter-sim existed
        return synthetic_readings(seed, season, days)
    month, day = SEASONS[season]
    local_start = dt.datetime(2026, month, day, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    sim = Simulator(SimConfig(start=int(local_start.timestamp()), seed=seed))
    out: list[dict[str, Any]] = []
    m = sim.meter
    for _ in range(days * 86400):
        sim.step()
        if m.now % INTERVAL_S == 0:
            out.append({"ts": sim.clock.iso(m.now), "import_kwh": round(sum(m.imp_j) / 3.6e6, 3),
                        "import_w": m.import_w})
    return out


def synthetic_readings(seed: int, season: str, days: int) -> list[dict[str, Any]]:
    """Fallback house: base load plus random heavy appliances (development only)."""
    import random
    rng = random.Random(f"{seed}:{season}")
    t = dt.datetime(2026, SEASONS[season][0], 1, tzinfo=dt.UTC) - dt.timedelta(hours=1)
    wh = 0.0
    loads: list[tuple[float, float]] = []  # (until, W)
    out = []
    for s in range(0, days * 86400, INTERVAL_S):
        if rng.random() < INTERVAL_S / 3600 * 2:
            loads.append((s + rng.uniform(120, 3600), rng.choice([1500, 2000, 2500, 3500, 7400])))
        loads = [x for x in loads if x[0] > s]
        w = 300 + sum(x[1] for x in loads)
        wh += w * INTERVAL_S / 3600
        ts = (t + dt.timedelta(seconds=s)).astimezone(dt.timezone(dt.timedelta(hours=1)))
        out.append({"ts": ts.isoformat(), "import_kwh": round(wh / 1000, 3), "import_w": w})
    return out


# -- quality -------------------------------------------------------------------------------
TUNE_SEEDS = [101, 102, 103]
"""Seeds the default forecaster's parameters were chosen on (never the reported ones)."""
REPORT_SEEDS = [1, 2, 3, 4]
LEAD_MIN = 4.0


def evaluate(job: tuple[int, str, int]) -> dict[str, Any]:
    """One simulated run through the real engine, under both threshold regimes.

    Per complete quarter: (ended above, end, default's first alarm, start of the default's
    alarm that was still on at the quarter's last reading, baseline's first alarm). The
    baseline's alarm is never withdrawn, so its first alarm is also its held one.
    """
    from peak_forecaster.engine import PeakSettings, SiteEngine

    class FixedThresholdEngine(SiteEngine):
        @property
        def threshold_w(self) -> float:
            return self.settings.manual_threshold_w

    seed, season, days = job
    t0 = time.monotonic()
    readings = simulated_readings(seed, season, days)
    out: dict[str, Any] = {"seed": seed, "season": season, "readings": len(readings)}
    for regime, cls in (("dynamic", SiteEngine), ("fixed 2500 W", FixedThresholdEngine)):
        eng = cls("bench", PeakSettings(manual_threshold_w=2500.0))
        rows = []
        held: str | None = None  # start of the default's running alarm
        heads_up: str | None = None  # the default's first `warn` or `alarm` in this quarter
        for r in readings:
            res = eng.process(r)
            for i, q in enumerate(res.quarters):
                if q["complete"]:
                    rows.append((q["avg_w"] > q["threshold_w"], q["end"], q["warned_at_default"],
                                 held if i == 0 else None, q["warned_at_baseline"],
                                 heads_up if i == 0 else None))
                held = heads_up = None
            held = (held or r["ts"]) if eng.default.level == "alarm" else None
            if eng.default.level != "ok":
                heads_up = heads_up or r["ts"]
        out[regime] = rows
    out["seconds"] = time.monotonic() - t0
    return out


def _lead_min(end: str, at: str) -> float:
    return (dt.datetime.fromisoformat(end) - dt.datetime.fromisoformat(at)).total_seconds() / 60


def _score(rows: list[tuple[Any, ...]], first: int, held: int) -> dict[str, float]:
    """Recall, recall with >= 4 min lead (first alarm / alarm held to the end), precision."""
    pos = sum(1 for r in rows if r[0])
    warned = [r for r in rows if r[first]]
    tp = [r for r in warned if r[0]]
    leads = [_lead_min(r[1], r[first]) for r in tp]
    held_leads = [_lead_min(r[1], r[held]) for r in rows if r[0] and r[held]]
    nan = float("nan")
    return {
        "quarters": len(rows), "positives": pos, "alarms": len(warned), "tp": len(tp),
        "recall": len(tp) / pos if pos else nan,
        "recall4": sum(1 for x in leads if x >= LEAD_MIN) / pos if pos else nan,
        "recall4_held": sum(1 for x in held_leads if x >= LEAD_MIN) / pos if pos else nan,
        "precision": len(tp) / len(warned) if warned else nan,
        "lead_med": statistics.median(leads) if leads else nan,
    }


ALGOS = (("default", 2, 3), ("baseline (original)", 4, 4))


def _pc(x: float) -> str:
    return "-" if x != x else f"{x:.1%}"


def _table(results: list[dict[str, Any]], seeds: list[int]) -> list[str]:
    lines = [
        "| threshold | season | algorithm | quarters | above | alarmed | recall | recall, lead >= 4 min "
        "(first alarm) | recall, lead >= 4 min (alarm held to the end) | precision | median lead (min) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    mine = [res for res in results if res["seed"] in seeds]
    for regime in ("fixed 2500 W", "dynamic"):
        for season in [*SEASONS, "all"]:
            rows = [r for res in mine if season in ("all", res["season"]) for r in res[regime]]
            for name, first, held in ALGOS:
                s = _score(rows, first, held)
                b = "**" if season == "all" else ""
                lines.append(
                    f"| {regime} | {season} | {b}{name}{b} | {s['quarters']} | {s['positives']} | "
                    f"{s['alarms']} | {_pc(s['recall'])} | {_pc(s['recall4'])} | {b}{_pc(s['recall4_held'])}{b} | "
                    f"{b}{_pc(s['precision'])}{b} | {'-' if s['lead_med'] != s['lead_med'] else round(s['lead_med'], 1)} |"
                )
    return lines


def quality(report: Any, seeds: list[int], days: int, tune_seeds: list[int] | None = None) -> None:
    tune = TUNE_SEEDS if tune_seeds is None else tune_seeds
    jobs = [(s, season, days) for s in [*seeds, *tune] for season in SEASONS]
    _log(f"quality: {len(jobs)} simulated runs of {days} days ({INTERVAL_S} s readings) ...")
    t0 = time.monotonic()
    workers = max(1, min(2, os.cpu_count() or 1))
    with ProcessPoolExecutor(workers) as pool:
        results = []
        for res in pool.map(evaluate, jobs):
            _log(f"  seed {res['seed']} {res['season']}: {res['readings']} readings, "
                 f"{res['seconds']:.0f} s")
            results.append(res)
    fixed = [r for res in results if res["seed"] in seeds for r in res["fixed 2500 W"]]
    d, b = _score(fixed, 2, 3), _score(fixed, 4, 4)
    met = d["recall4_held"] >= 0.95 and d["precision"] >= 0.80
    hu = [_lead_min(r[1], r[5]) for r in fixed if r[0] and r[5]]
    hu_pos = sum(1 for r in fixed if r[0])
    lines = [
        f"Simulated meter-sim house + PV + meter, a reading every {INTERVAL_S} s, {days} days from "
        "1 January (winter) and from 1 July (summer) per seed, through the real engine "
        f"({time.monotonic() - t0:.0f} s). A quarter is *above* when its average ends above the "
        "threshold in force; an *alarm* is level `alarm`; lead = quarter end - the alarm's start. "
        "Recall = above quarters with an alarm / above quarters; the 4-min columns count an alarm "
        "only if it came at least 4 min before the end (first alarm; or the alarm that was still on "
        "at the quarter's last reading, i.e. not withdrawn in between). Precision = alarmed "
        "quarters that ended above / alarmed quarters. Fixed 2500 W = the 2.5 kW threshold all "
        "month (many events); dynamic = the service's max(2500 W, month peak) (few events: only "
        "quarters that set a new month peak).",
        "",
        f"**Reported seeds {', '.join(map(str, seeds))}** (not used for tuning):",
        "",
        *_table(results, seeds),
        "",
        f"Target (issue 4) on the reported seeds, fixed 2500 W, all: recall with >= 4 min lead "
        f">= 95 % and precision >= 80 %, better than the baseline on both: default "
        f"{d['recall4_held']:.1%} / {d['precision']:.1%} vs baseline {b['recall4_held']:.1%} / "
        f"{b['precision']:.1%}: recall target {'met' if d['recall4_held'] >= 0.95 else 'NOT met'}, "
        f"precision target {'met' if d['precision'] >= 0.80 else 'NOT met'}, better than the baseline "
        f"on both: {'yes' if d['recall4_held'] > b['recall4_held'] and d['precision'] > b['precision'] else 'no'}"
        f"{'' if met else ' (see docs/peak-forecaster.md: the precision target is out of reach on this data)'}.",
        "",
        f"Heads-up (default, fixed 2500 W, reported seeds): the first `warn` or `alarm` came at least "
        f"8 min before the end for {_pc(sum(1 for x in hu if x >= 8) / hu_pos if hu_pos else float('nan'))} "
        f"of the above quarters (median lead {statistics.median(hu) if hu else float('nan'):.1f} min); "
        f"{sum(1 for r in fixed if r[5])} quarters had one. `warn` = forecast above 90 % of the threshold.",
    ]
    if tune:
        lines += ["", f"Tuning seeds {', '.join(map(str, tune))} (the parameters were chosen on these):",
                  "", *_table(results, tune)]
    report.section("peak-forecaster: warning quality, default vs the original algorithm",
                   "\n".join(lines))


# -- throughput ------------------------------------------------------------------------------
def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _load(port: int, sites: list[str], seconds: int, topic_of: Any, listen: str) -> dict[str, Any]:
    """Publish a reading per site per second; return latencies (s) of the echoes on ``listen``."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    sent: dict[tuple[str, str], float] = {}
    lat: list[float] = []
    lock = threading.Lock()
    got = threading.Event()

    def on_message(c: Any, u: Any, msg: Any) -> None:
        now = time.monotonic()
        site = msg.topic.split("/")[1]
        ts = json.loads(msg.payload)["ts"]
        with lock:
            t = sent.pop((site, ts), None)
        if t is not None:
            lat.append(now - t)

    rx = mqtt.Client(CallbackAPIVersion.VERSION2)
    rx.on_message = on_message
    rx.on_connect = lambda c, u, f, rc, p: (c.subscribe(listen, 0), got.set())
    rx.connect("127.0.0.1", port)
    rx.loop_start()
    got.wait(5)
    tx = mqtt.Client(CallbackAPIVersion.VERSION2)
    tx.max_queued_messages_set(0)
    tx.connect("127.0.0.1", port)
    tx.loop_start()
    time.sleep(0.3)
    base = dt.datetime(2026, 1, 15, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    tmpl = ('{"v":1,"site":"%s","source":"sim","ts":"%s","tariff":1,"import_t1_kwh":%.3f,'
            '"import_t2_kwh":5000.000,"import_kwh":%.3f,"export_kwh":100.0,"import_w":%d,"export_w":0,'
            '"net_w":%d,"l1_voltage_v":231.2,"l2_voltage_v":230.1,"l3_voltage_v":229.8,'
            '"avg_demand_w":%d,"month_max_w":3100.0,"month_max_ts":"2026-01-10T18:15:00+01:00"}')
    topics = {s: topic_of(s) for s in sites}
    t_start = time.monotonic()
    published = 0
    for sec in range(seconds):
        ts = (base + dt.timedelta(seconds=sec)).isoformat()
        tick = t_start + sec
        for i, s in enumerate(sites):
            if i % 50 == 0:  # spread the sites over the second, as real meters are
                pause = tick + i / len(sites) - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
            w = 500 + (i * 37 + sec * 11) % 3000
            kwh = 7000 + sec * 0.001 + i
            payload = tmpl % (s, ts, kwh, kwh + 5000, w, w, w)
            if sec >= WARMUP_S:  # the first seconds create every site's state
                with lock:
                    sent[(s, ts)] = time.monotonic()
            tx.publish(topics[s], payload, qos=0)
            published += 1
        delay = tick + 1 - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    elapsed = time.monotonic() - t_start
    time.sleep(2.0)
    rx.loop_stop()
    tx.loop_stop()
    rx.disconnect()
    tx.disconnect()
    measured = published - WARMUP_S * len(sites)
    return {"published": published, "measured": measured, "elapsed": elapsed, "lat": sorted(lat)}


def _pct(xs: list[float], p: float) -> float:
    return xs[min(len(xs) - 1, int(len(xs) * p))] * 1000 if xs else float("nan")


def throughput(report: Any, n_sites: int, seconds: int) -> None:
    from p1common.topics import Topics
    from support import Mosquitto

    topics = Topics()
    broker = Mosquitto()
    sites = [f"b{i:05d}" for i in range(n_sites)]
    rows = []
    try:
        _log(f"throughput: broker hop reference, {n_sites} sites x {seconds} s ...")
        ref = _load(broker.port, sites, seconds, lambda s: f"bench/{s}/echo", "bench/+/echo")
        rows.append(("broker only (publish -> subscriber)", ref, None))
        with tempfile.TemporaryDirectory() as state:
            env = {**os.environ, "MQTT_URL": broker.url, "P1_STATE_DIR": state, "LOG_LEVEL": "WARNING",
                   "MQTT_CLIENT_ID": "pf-bench", "PEAK_HA_DISCOVERY": "false"}
            proc = subprocess.Popen([sys.executable, "-m", "peak_forecaster.cli", "run"], env=env)
            try:
                time.sleep(2.0)
                _log(f"throughput: peak-forecaster, {n_sites} sites x {seconds} s ...")
                cpu0, w0 = _cpu_s(proc.pid), time.monotonic()
                res = _load(broker.port, sites, seconds, topics.reading, "p1/+/peak")
                cpu = (_cpu_s(proc.pid) - cpu0) / (time.monotonic() - w0)
                rows.append(("peak-forecaster (reading -> peak)", res, cpu))
            finally:
                proc.terminate()
                proc.wait(30)
    finally:
        broker.close()
    lines = [
        f"{n_sites} sites, one reading per site per second for {seconds} s, one `peak-forecaster` "
        "process and one Mosquitto on this machine (publisher and subscriber in the bench process); "
        f"sites spread evenly over each second; latencies after a {WARMUP_S} s warm-up.",
        "",
        "| path | readings | offered/s | answered | p50 ms | p99 ms | max ms | service CPU (cores) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r, cpu in rows:
        lat = r["lat"]
        lines.append(
            f"| {name} | {r['published']} | {r['published'] / r['elapsed']:.0f} | "
            f"{len(lat) / max(1, r['measured']):.1%} | {_pct(lat, 0.5):.1f} | {_pct(lat, 0.99):.1f} | "
            f"{_pct(lat, 1.0):.1f} | {'' if cpu is None else f'{cpu:.2f}'} |"
        )
    svc, ref_r = rows[1][1], rows[0][1]
    cpu = rows[1][2] or float("nan")
    rate = svc["published"] / svc["elapsed"]
    lines += [
        "",
        f"Service p99 / broker-hop p99: {_pct(svc['lat'], 0.99) / max(_pct(ref_r['lat'], 0.99), 1e-9):.1f}x. "
        f"CPU per 1000 readings/s: {cpu / rate * 1000:.2f} core, so one core handles about "
        f"{rate / cpu:.0f} readings/s (sites at 1 Hz) at this load." if cpu == cpu and cpu > 0 else "",
    ]
    report.section("peak-forecaster: throughput across many sites", "\n".join(lines))


def run(report: Any, days: int = 14, seeds: list[int] | None = None, sites: int = 2000,
        seconds: int = 15) -> None:
    quality(report, seeds or REPORT_SEEDS, days)
    throughput(report, sites, seconds)


class _Print:
    def section(self, title: str, markdown: str) -> None:
        print(f"\n## {title}\n{markdown}", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.peak", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=int, default=14,
                    help="simulated days per run (default 14, to stay within make bench's time; 30: a month)")
    ap.add_argument("--seeds", type=int, nargs="+", default=REPORT_SEEDS,
                    help="reported simulator seeds (default 1 2 3 4)")
    ap.add_argument("--tune-seeds", type=int, nargs="*", default=TUNE_SEEDS,
                    help="tuning seeds, also reported apart (default 101 102 103; none: skip)")
    ap.add_argument("--sites", type=int, default=2000, help="sites for the throughput test")
    ap.add_argument("--seconds", type=int, default=15, help="length of the throughput test")
    ap.add_argument("--only", choices=("quality", "throughput"), default=None)
    args = ap.parse_args(argv)
    rep = _Print()
    if args.only != "throughput":
        quality(rep, args.seeds, args.days, args.tune_seeds)
    if args.only != "quality":
        throughput(rep, args.sites, args.seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
