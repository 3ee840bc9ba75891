"""The payload fuzzer: random types, values, depths and sizes on every topic the services
subscribe to, through their real processes (used by tests/reliability/test_rel_payload_fuzz.py;
`make soak` sends 100,000 and writes the counts into BENCHMARKS.md).

The same good readings go to two sets of services, one with the fuzz mixed in and one
without. The verdict:
- no process died and no log holds a traceback;
- nothing the services published breaks its topic's model (non-finite, out of range,
  wrong type), apart from the fuzzer's own payloads;
- every state file is still valid JSON, and the peak-forecaster's month record and state
  are the same as in the run without the fuzz.
"""

from __future__ import annotations

import json
import math
import random
import string
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from rel_support import Proc, metric_sum

from p1common.payloads import MODELS_BY_KIND, OutputsConfig, PeakConfig, Refused, check, check_kind
from p1common.topics import Topics
from support import Mosquitto, Subscriber, free_port, wait_for

BRUSSELS = ZoneInfo("Europe/Brussels")
T = Topics()
NUMBERS: list[Any] = [0, -1, 1, 2**31, 2**63, -(2**63), 10**400, 1e308, -1e308, 5e-324, 0.1, 1e-12, 999_999.999,
                      100_000.0, True, False]
STRINGS = ["", "0", "1e999", "NaN", "Infinity", "-0", "\x00", "\x1b[2J", "é" * 10, "../..", "2099-06-01T00:00:00+02:00",
           "0001-01-01T00:00:00+00:00", "yesterday at noon", "on", "off", "online"]


def random_value(rnd: random.Random, depth: int = 0) -> Any:
    pick = rnd.random()
    if depth > 12 or pick < 0.35:
        return rnd.choice(NUMBERS) if rnd.random() < 0.5 else rnd.uniform(-1e6, 1e6)
    if pick < 0.55:
        if rnd.random() < 0.5:
            return rnd.choice(STRINGS)
        return "".join(rnd.choice(string.printable) for _ in range(rnd.randint(0, 40)))
    if pick < 0.6:
        return None
    if pick < 0.8:
        return [random_value(rnd, depth + 1) for _ in range(rnd.randint(0, 4))]
    return {rnd.choice(["v", "site", "ts", "import_w", "headroom_w", "outputs", "on", "pct", "x"]):
            random_value(rnd, depth + 1) for _ in range(rnd.randint(0, 5))}


def mutate_document(rnd: random.Random, good: dict[str, Any]) -> Any:
    doc = json.loads(json.dumps(good))
    for _ in range(rnd.randint(1, 3)):
        key = rnd.choice([*doc, "extra_field"])
        if rnd.random() < 0.15:
            doc.pop(key, None)
        else:
            doc[key] = random_value(rnd)
    return doc


def hostile(rnd: random.Random, good: dict[str, Any]) -> tuple[str, bytes]:
    """(kind of fuzz, payload)."""
    pick = rnd.random()
    if pick < 0.45:
        return "mutated document", json.dumps(mutate_document(rnd, good), allow_nan=True).encode()
    if pick < 0.75:
        return "random JSON", json.dumps(random_value(rnd), allow_nan=True).encode()
    if pick < 0.85:
        depth = rnd.randint(9, 20_000)
        return "deep nesting", b"[" * depth + b"]" * depth
    if pick < 0.9:
        return "not JSON", bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 200)))
    if pick < 0.92:
        size = rnd.randint(200_000, 300_000)
        return "large", json.dumps({**good, "pad": "x" * size}).encode()
    if pick < 0.96:
        return "non-finite", json.dumps({**good, rnd.choice(list(good)): rnd.choice(
            [math.nan, math.inf, -math.inf])}, allow_nan=True).encode()
    return "empty", b""


@dataclass
class Run:
    """The services of one run (its own site and state folder)."""

    site: str
    state: Path
    procs: list[Proc] = field(default_factory=list)
    web_port: int = 0


def start_services(broker: Mosquitto, run: Run) -> None:
    run.state.mkdir(parents=True, exist_ok=True)
    outputs = run.state / "outputs.json"
    outputs.write_text(json.dumps({"v": 1, "outputs": [
        {"id": "boiler", "kind": "dimmer", "rated_w": 2400, "mode": "proportional", "peak_guard": True},
        {"id": "pump", "kind": "relay", "rated_w": 800, "mode": "surplus", "threshold_w": 500}]}))
    run.web_port = free_port()
    env = {"P1_SITE": run.site, "P1_MAX_CLOCK_DRIFT_S": "3600", "P1_WEB_TOKEN": "fuzz-token-0123456789"}
    run.procs = [
        Proc("peak-forecaster", [], broker, run.state, **env).start(),
        Proc("load-controller", ["--config", str(outputs)], broker, run.state, **env).start(),
        Proc("p1-web", ["--host", "127.0.0.1", "--port", str(run.web_port)], broker, run.state, **env).start(),
    ]


def good_documents(site: str, start: datetime, n: int) -> dict[str, dict[str, Any]]:
    ts = (start + timedelta(seconds=n)).isoformat()
    return {
        T.reading(site): {"v": 1, "site": site, "source": "p1", "ts": ts, "import_kwh": 1000.0 + n * 0.0004,
                          "export_kwh": 5.0, "import_w": 1440.0, "export_w": 0.0, "net_w": 1440.0,
                          "tariff": 1, "tariff_low": False},
        T.peak(site): {"v": 1, "site": site, "ts": ts, "quarter_start": ts, "energy_wh": 10.0, "avg_w": 40.0,
                       "forecast_w": 1440.0, "threshold_w": 2500.0, "headroom_w": 1060.0, "level": "ok",
                       "month_peak_w": 2500.0},
        T.output_state(site, "boiler"): {"v": 1, "ts": ts, "pct": 10.0, "override": False, "seq": 1},
        T.config(site, "outputs"): {"v": 1, "outputs": [{"id": "boiler", "kind": "dimmer", "rated_w": 2400,
                                                          "mode": "proportional"}]},
        T.config(site, "peak"): {"v": 1, "manual_threshold_w": 2500, "price_eur_per_kw_year": 53.0},
        T.peak_quarter(site): {"v": 1, "site": site, "start": ts, "end": ts, "energy_wh": 100.0, "avg_w": 400.0,
                               "complete": True, "threshold_w": 2500.0, "warned_at": None},
        T.control(site): {"v": 1, "site": site, "ts": ts, "outputs": []},
        T.status("fuzz-device"): {"x": 1},
    }


@dataclass
class Outcome:
    sent: Counter[str] = field(default_factory=Counter)  # topic kind -> messages
    kinds: Counter[str] = field(default_factory=Counter)  # kind of fuzz -> messages
    refused: dict[str, float] = field(default_factory=dict)  # service -> bad payloads counted
    handler_errors: float = 0.0
    crashes: list[str] = field(default_factory=list)
    tracebacks: list[str] = field(default_factory=list)
    bad_publications: list[str] = field(default_factory=list)
    bad_state_files: list[str] = field(default_factory=list)
    month_same: bool = False
    state_same: bool = False
    seconds: float = 0.0


def run_payload_fuzz(broker: Mosquitto, tmp: Path, count: int, seed: int,
                     progress: Callable[[str], None] | None = None) -> Outcome:
    """The run without the fuzz first, then the same readings with it (one after the
    other: the peak-forecaster serves every site, each run must see only its own)."""
    rnd = random.Random(seed)
    out = Outcome()
    start = datetime.now(BRUSSELS).replace(microsecond=0) - timedelta(seconds=120)
    clean, fuzzed = Run("fuzzclean", tmp / "clean"), Run("fuzzed", tmp / "fuzzed")
    sent_payloads: set[bytes] = set()
    watch = Subscriber(broker.port, "p1/#")
    t0 = time.monotonic()
    readings = 60
    try:
        for run, fuzz in ((clean, 0), (fuzzed, count)):
            start_services(broker, run)
            per_reading = fuzz // readings
            for n in range(readings):
                docs = good_documents(run.site, start, n)
                watch.publish(T.reading(run.site), docs[T.reading(run.site)], qos=1)
                for _ in range(per_reading):
                    topic = rnd.choice(list(docs))
                    kind, payload = _invalid(rnd, topic, docs[topic])
                    sent_payloads.add(payload)
                    parsed = T.parse(topic)
                    out.sent[parsed.kind if parsed else "other"] += 1
                    out.kinds[kind] += 1
                    watch.publish(topic, payload, qos=0)
                if progress and fuzz and n % 10 == 9:
                    progress(f"{(n + 1) * per_reading} of {readings * per_reading} fuzz messages")
            # barrier: the forecaster has decided on the last good reading
            last = (start + timedelta(seconds=readings - 1)).isoformat()
            wait_for(lambda run=run, last=last: _peak_at(watch, T.peak(run.site), last, sent_payloads), 120)
            for p in run.procs:
                if not p.alive():
                    out.crashes.append(f"{run.site}: {p.name} exited")
                    continue
                text = p.metrics_text()
                if fuzz:
                    out.refused[p.name] = metric_sum(text, "p1_mqtt_bad_payloads_total", client_id=p.client_id)
                out.handler_errors += metric_sum(text, "p1_mqtt_handler_errors_total", client_id=p.client_id)
            for p in run.procs:
                p.stop()
    finally:
        for run in (clean, fuzzed):
            for p in run.procs:
                p.stop()
        watch.close()
    out.seconds = time.monotonic() - t0
    for run in (clean, fuzzed):
        for p in run.procs:
            if "Traceback" in p.output():
                out.tracebacks.append(f"{run.site}: {p.name}")
    services = ("peak", "peak/quarter", "peak/month", "control", "output/set")
    for m in watch.messages:
        parsed = T.parse(m.topic)
        if parsed is None or parsed.kind not in services or m.payload in sent_payloads or not m.payload:
            continue
        try:  # strict, and no field the contract does not name: these are our own services
            check(MODELS_BY_KIND[parsed.kind], json.loads(m.payload, parse_constant=_refuse_constant))
        except (ValueError, Refused, RecursionError) as exc:
            out.bad_publications.append(f"{m.topic}: {exc}")
    for run in (clean, fuzzed):
        for path in run.state.rglob("*.json"):
            try:
                json.loads(path.read_text())
            except ValueError as exc:
                out.bad_state_files.append(f"{path}: {exc}")
    month = {r.site: _last(watch, T.peak_month(r.site), sent_payloads) for r in (clean, fuzzed)}
    out.month_same = _without_site(month["fuzzed"]) == _without_site(month["fuzzclean"])
    states = {r.site: json.loads((r.state / "peak-forecaster" / f"{r.site}.json").read_text())
              for r in (clean, fuzzed)}
    out.state_same = _without_site(states["fuzzed"]) == _without_site(states["fuzzclean"])
    return out


def _invalid(rnd: random.Random, topic: str, good: dict[str, Any]) -> tuple[str, bytes]:
    """Fuzz that is not a valid document for the topic: a valid one is configuration or
    data, not an attack, and would rightly change what the services do."""
    parsed = T.parse(topic)
    while True:
        kind, payload = hostile(rnd, good)
        if not payload or parsed is None or parsed.kind == "status":
            return kind, payload
        try:
            doc = json.loads(payload, parse_constant=_refuse_constant)
            if parsed.kind.startswith("config/"):
                model = {"config/outputs": OutputsConfig, "config/peak": PeakConfig}[parsed.kind]
                model.model_validate(doc, strict=True)
            else:
                check_kind(parsed.kind, doc)
        except (ValueError, Refused, RecursionError, KeyError):
            return kind, payload
        # valid: draw again


def _peak_at(sub: Subscriber, topic: str, ts: str, sent: set[bytes]) -> bool:
    """Whether the forecaster has published its peak for the reading at ``ts`` (the fuzzer
    publishes on the peak topic too, for the load-controller: its payloads are not it)."""
    for m in sub.on(topic):
        if m.payload in sent or not _json_ok(m.payload):
            continue
        doc = json.loads(m.payload)
        if isinstance(doc, dict) and doc.get("ts") == ts:
            return True
    return False


def _json_ok(payload: bytes) -> bool:
    try:
        json.loads(payload)
    except (ValueError, RecursionError):
        return False
    return True


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _last(sub: Subscriber, topic: str, sent: set[bytes]) -> Any:
    msgs = [m for m in sub.on(topic) if m.payload and m.payload not in sent and _json_ok(m.payload)]
    return json.loads(msgs[-1].payload) if msgs else None


def _without_site(doc: Any) -> Any:
    """A document with its site name replaced (the two runs differ in nothing else)."""
    return json.loads(json.dumps(doc).replace('"fuzzclean', '"SITE').replace('"fuzzed', '"SITE'))


def markdown(out: Outcome, count: int) -> str:
    rows = "\n".join(f"| {kind} | {n} |" for kind, n in sorted(out.sent.items()))
    fuzz = ", ".join(f"{kind} {n}" for kind, n in out.kinds.most_common())
    refused = ", ".join(f"{name} {n:.0f}" for name, n in out.refused.items())
    return "\n".join([
        f"{sum(out.sent.values())} fuzz messages (asked: {count}) through the real peak-forecaster, "
        f"load-controller and web, mixed among 60 good readings, in {out.seconds:.0f} s; the same "
        "good readings to a second set of the same services without the fuzz.",
        "",
        f"Kinds of fuzz: {fuzz}.",
        "",
        "| topic kind | messages |",
        "|---|---|",
        rows,
        "",
        "| check | result |",
        "|---|---|",
        f"| bad payloads counted (per service) | {refused} |",
        f"| handler errors | {out.handler_errors:.0f} |",
        f"| crashes | {len(out.crashes)} |",
        f"| tracebacks in any log | {len(out.tracebacks)} |",
        f"| non-finite / out-of-range / wrong-typed values published | {len(out.bad_publications)} |",
        f"| state files not valid | {len(out.bad_state_files)} |",
        f"| month record and forecaster state as without the fuzz | {'yes' if out.month_same and out.state_same else 'NO'} |",
    ])
