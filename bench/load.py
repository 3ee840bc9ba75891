"""Load: 1, 100, 1000, 2000 simulated sites at 1 Hz through Mosquitto into peak-forecaster
and load-controller.

One real Mosquitto, one ``peak-forecaster run`` process (all sites; ``--shards`` for more
processes), and load-controllers: below ``--all-sites-from`` sites (1000) a few
single-site ``load-controller --site S`` processes (each gets one of the first sites, the
others only go to the forecaster); from there on ``load-controller --all-sites`` serving
every site (``--shards`` 2 from 2000 sites). A paho publisher sends every site's reading
once a second (paced over the second); a paho subscriber times ``peak`` (matched to its
reading by site and meter ts) and ``set`` (the heartbeat a load-controller sends for each
reading) against the publish time.
Reported per level: readings/s offered, peaks/s and sets/s received, p50/p99 latency
reading->peak and reading->set, CPU (% of one core) and RSS of each process.

``python -m bench.load [--levels 1 100 1000 2000] [--seconds 8] [--controllers 4]
[--all-sites-from 1000]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
BIN = Path(sys.executable).parent


def _proc_usage(pid: int) -> tuple[float, float]:
    """(cpu seconds, rss MiB) of a process: psutil if there, else /proc."""
    try:
        import psutil

        p = psutil.Process(pid)
        t = p.cpu_times()
        return t.user + t.system, p.memory_info().rss / 2**20
    except ImportError:
        with open(f"/proc/{pid}/stat") as fh:
            f = fh.read().rsplit(")", 1)[1].split()
        tick = os.sysconf("SC_CLK_TCK")
        rss = int(f[21]) * os.sysconf("SC_PAGE_SIZE") / 2**20
        return (int(f[11]) + int(f[12])) / tick, rss


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def _reading(site: str, k: int) -> dict[str, Any]:
    t = 1768478400 + k  # 2026-01-15T13:00:00+01:00 + k s
    lt = time.gmtime(t + 3600)
    ts = time.strftime("%Y-%m-%dT%H:%M:%S+01:00", lt)
    return {"v": 1, "site": site, "source": "sim", "ts": ts, "tariff": 1,
            "import_kwh": round(1000 + k * 0.0004, 4), "import_w": 1440.0, "export_w": 0.0,
            "net_w": 1440.0 - 2000.0 * (k % 2)}


def level(n_sites: int, seconds: float, controllers: int, shards: int,
          lc_shards: int = 0) -> dict[str, Any]:
    """One load level. ``lc_shards`` 0: ``controllers`` single-site load-controllers on the
    first sites; else ``lc_shards`` ``--all-sites`` load-controllers serving every site."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from support import Mosquitto, wait_for

    broker = Mosquitto()
    tmp = Path(tempfile.mkdtemp(prefix="p1-load-"))
    cfg = tmp / "outputs.json"
    cfg.write_text(json.dumps({"v": 1, "outputs": [
        {"id": "heater", "kind": "dimmer", "rated_w": 2000, "mode": "proportional"}]}))
    env = {**os.environ, "MQTT_URL": broker.url, "P1_STATE_DIR": str(tmp), "LOG_LEVEL": "WARNING",
           "PEAK_PERSIST_S": "60"}
    sites = [f"s{i:05d}" for i in range(n_sites)]
    procs: dict[str, subprocess.Popen[bytes]] = {}
    for sh in range(shards):
        procs[f"peak-forecaster[{sh}]"] = subprocess.Popen(
            [str(BIN / "peak-forecaster"), "run", "--no-ha-discovery", "--shards", str(shards),
             "--shard", str(sh)], env={**env, "MQTT_CLIENT_ID": f"pf-load-{sh}"},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if lc_shards:
        lc_sites = set(sites)
        for sh in range(lc_shards):
            procs[f"load-controller --all-sites[{sh}]"] = subprocess.Popen(
                [str(BIN / "load-controller"), "--all-sites", "--shards", str(lc_shards),
                 "--shard", str(sh), "--config", str(cfg)],
                env={**env, "MQTT_CLIENT_ID": f"lc-load-all-{sh}"},
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    else:
        lc_sites = set(sites[:controllers])
        for s in sites[:controllers]:
            procs[f"load-controller[{s}]"] = subprocess.Popen(
                [str(BIN / "load-controller"), "--site", s, "--config", str(cfg)],
                env={**env, "MQTT_CLIENT_ID": f"lc-load-{s}"},
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sent: dict[tuple[str, str], float] = {}
    last_sent: dict[str, float] = {}
    lat_peak: list[float] = []
    lat_set: list[float] = []
    peaks = 0
    lock = threading.Lock()
    t_meas = float("inf")  # readings sent from then on are measured

    def on_message(c, u, m):  # type: ignore[no-untyped-def]
        nonlocal peaks
        now = time.monotonic()
        parts = m.topic.split("/")
        if parts[-1] == "peak":
            try:
                ts = json.loads(m.payload)["ts"]
            except (ValueError, KeyError, TypeError):
                return
            with lock:
                t0 = sent.pop((parts[1], ts), None)
                if t0 is not None and t0 >= t_meas:
                    peaks += 1
                    lat_peak.append(now - t0)
        elif parts[-1] == "set":
            with lock:
                t0 = last_sent.pop(parts[1], None)
                if t0 is not None and t0 >= t_meas:
                    lat_set.append(now - t0)

    sub = mqtt.Client(CallbackAPIVersion.VERSION2)
    sub.on_message = on_message
    sub.connect("127.0.0.1", broker.port)
    sub.subscribe([("p1/+/peak", 0), ("p1/+/output/+/set", 0)])
    sub.loop_start()
    pub = mqtt.Client(CallbackAPIVersion.VERSION2)
    pub.max_queued_messages_set(0)
    pub.connect("127.0.0.1", broker.port)
    pub.loop_start()
    usage0: dict[str, tuple[float, float]] = {}
    watched = dict(procs)  # CPU / RSS rows: the services, the broker and this harness
    if broker.proc is not None:
        watched["mosquitto"] = broker.proc
    try:
        wait_for(lambda: all(p.poll() is None for p in procs.values()), 5)
        time.sleep(2.0)  # the processes connect and subscribe
        warm = 2
        rounds = warm + int(seconds)
        t_start = time.monotonic()
        offered = 0
        offered_lc = 0
        for k in range(rounds):
            if k == warm:
                t_meas = time.monotonic()
                usage0 = {n: _proc_usage(p.pid) for n, p in watched.items()}
                usage0["bench harness (publisher + subscriber)"] = _proc_usage(os.getpid())
            t_round = t_start + k
            for i, s in enumerate(sites):
                due = t_round + i / n_sites
                d = due - time.monotonic()
                if d > 0.002:
                    time.sleep(d)
                r = _reading(s, k)
                now = time.monotonic()
                with lock:
                    sent[(s, r["ts"])] = now
                    if s in lc_sites:
                        last_sent[s] = now
                pub.publish(f"p1/{s}/reading", json.dumps(r), qos=0)
                if k >= warm:
                    offered += 1
                    offered_lc += s in lc_sites
        time.sleep(1.0)  # let the last second's answers arrive
        elapsed = time.monotonic() - t_meas
        usage1 = {n: _proc_usage(p.pid) for n, p in watched.items()}
        usage1["bench harness (publisher + subscriber)"] = _proc_usage(os.getpid())
        alive = all(p.poll() is None for p in procs.values())
    finally:
        pub.loop_stop()
        sub.loop_stop()
        for p in procs.values():
            p.terminate()
        for p in procs.values():
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
        broker.close()
    per_proc = {n: (100 * (usage1[n][0] - usage0[n][0]) / elapsed, usage1[n][1]) for n in usage1}
    return {
        "sites": n_sites, "offered_per_s": offered / (elapsed - 1.0),
        "peaks_per_s": peaks / (elapsed - 1.0), "lost_peaks": offered - peaks,
        "sets_per_s": len(lat_set) / (elapsed - 1.0), "lost_sets": offered_lc - len(lat_set),
        "peak_p50_ms": 1000 * _pct(lat_peak, 0.5), "peak_p99_ms": 1000 * _pct(lat_peak, 0.99),
        "set_p50_ms": 1000 * _pct(lat_set, 0.5), "set_p99_ms": 1000 * _pct(lat_set, 0.99),
        "sets": len(lat_set), "procs": per_proc, "alive": alive,
    }


def run(report: Any, levels: list[int] | None = None, seconds: float = 8.0,
        controllers: int = 4, all_sites_from: int = 1000, lc_shards: int | None = None) -> None:
    rows = []
    procs_rows = []
    for n in levels or [1, 100, 1000, 2000]:
        shards = 1 if n <= 1000 else 2
        lcs = 0 if n < all_sites_from else (lc_shards or (1 if n <= 1000 else 2))
        lc_desc = f"{lcs} --all-sites" if lcs else f"{min(controllers, n)} single-site"
        print(f"load: {n} site(s) at 1 Hz for {seconds:g} s, {shards} peak-forecaster "
              f"process(es), {lc_desc} load-controller(s)...", flush=True)
        r = level(n, seconds, min(controllers, n), shards, lcs)
        rows.append(
            f"| {n} | {shards} | {lc_desc} | {r['offered_per_s']:.0f} | {r['peaks_per_s']:.0f} | "
            f"{r['lost_peaks']} | {r['peak_p50_ms']:.1f} | {r['peak_p99_ms']:.1f} | "
            f"{r['sets_per_s']:.0f} | {r['lost_sets']} | "
            f"{r['set_p50_ms']:.1f} | {r['set_p99_ms']:.1f} | {'yes' if r['alive'] else 'NO'} |")
        for name, (cpu, rss) in r["procs"].items():
            if name.startswith("load-controller[") and not name.endswith(f"[s{0:05d}]"):
                continue  # one single-site controller row per level is enough: they are alike
            procs_rows.append(f"| {n} | {name} | {cpu:.1f} | {rss:.0f} |")
        print(f"load: {n} sites: {r['peaks_per_s']:.0f} peaks/s, peak p99 "
              f"{r['peak_p99_ms']:.1f} ms, {r['sets_per_s']:.0f} sets/s, set p99 "
              f"{r['set_p99_ms']:.1f} ms", flush=True)
    md = (
        "Real Mosquitto, real processes; every site sends one reading a second, paced over "
        "the second. `peak` latency: reading published -> its `peak` received (matched by "
        "site and meter ts); `set` latency: reading -> the load-controller's heartbeat "
        "`set` for its site. Below "
        f"{all_sites_from} sites: {controllers} single-site load-controller processes "
        "(`--site S`, one per site, on the first sites; only those sites get `set`s); from "
        f"{all_sites_from} sites: `load-controller --all-sites` serving every site (every "
        "reading gets a `set`), "
        + (f"{lc_shards} shard(s) at every level" if lc_shards
           else "2 shards (`--shards 2 --shard K`) at 2000 sites")
        + ". 2000 sites also use 2 forecaster shards.\n\n"
        "| sites | forecaster shards | load-controllers | readings/s offered | peaks/s "
        "| peaks lost | peak p50 ms | peak p99 ms | sets/s | sets lost | set p50 ms "
        "| set p99 ms | all alive |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n" + "\n".join(rows) +
        "\n\nCPU (% of one core) and RSS per process during the measured seconds (the "
        "broker and this harness too: on a small machine they share the cores):\n\n"
        "| sites | process | CPU % | RSS MiB |\n|---|---|---|---|\n" + "\n".join(procs_rows) +
        "\n\nWhere it bends: each service's work grows with the sites (one Python thread "
        "handles every message of a process: see the CPU column; past ~100 % of a core the "
        "p99 grows and `--shards` (`PEAK_SHARDS`, `LOADCTL_SHARDS`) spreads the sites over "
        "processes, by the same CRC-32 of the site). Add the CPU column of a level up: when "
        "it nears the machine's cores (the broker and this harness count too), every "
        "process waits for a core and the latencies grow although no process is at 100 %. "
        "A `--all-sites` shard receives every site's readings and peaks and drops the other "
        "shards' (a few % of a core), so shards only help where they add cores. "
        "A single-site load-controller costs "
        "the RSS above per site; `--all-sites` serves a shard of sites from one process, "
        "each site adding only its controller state. `sets lost`: readings of a served site "
        "that got no `set` back in the run. Reproduce: `python -m bench.load` "
        "(or `make bench`)."
    )
    report.section("Load: sites at 1 Hz through Mosquitto (peak-forecaster, load-controller)", md)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--levels", type=int, nargs="+", default=[1, 100, 1000, 2000])
    ap.add_argument("--seconds", type=float, default=8.0, help="measured seconds per level")
    ap.add_argument("--controllers", type=int, default=4,
                    help="single-site load-controller processes (below --all-sites-from)")
    ap.add_argument("--all-sites-from", type=int, default=1000, metavar="N",
                    help="from N sites on, load-controller --all-sites serves every site")
    ap.add_argument("--lc-shards", type=int, metavar="N",
                    help="--all-sites load-controller shards (default 1 up to 1000 sites, 2 above)")
    args = ap.parse_args(argv)

    class _Print:
        def section(self, title: str, markdown: str) -> None:
            print(f"\n## {title}\n{markdown}", flush=True)

    run(_Print(), args.levels, args.seconds, args.controllers, args.all_sites_from,
        args.lc_shards)
    return 0


if __name__ == "__main__":
    sys.exit(main())
