"""Malformed MQTT payloads on every subscribed topic of every service.

Each service runs as its real process against a broker of the test's own. On each
topic it subscribes, the test sends: bad JSON, binary, a list / string / number / null
instead of an object, a 1 MB document, an empty payload, and documents with wrong
types (strings for numbers, lists for objects, NaN, 1e999). Every one must be
ignored and counted (``p1_mqtt_bad_payloads_total``, read from ``/metrics``), never
raise in a handler (``p1_mqtt_handler_errors_total`` stays 0), the process keeps
running, and a good message afterwards is processed as usual.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from rel_support import Proc, good_reading, last_json, metric_sum

from support import TELEGRAMS, Mosquitto, Subscriber, free_port, wait_for

HUGE = b'{"v":1,"pad":"' + b"x" * (1 << 20) + b'"}'
GENERIC: list[bytes] = [
    b"{not json", b"\x00\xff\xfe\x80\x81binary\x00", b"[1, 2, 3]", b'"a string"', b"null",
    b"42", b"true", HUGE,
]


def _j(obj: dict) -> bytes:
    return json.dumps(obj).encode()


def _reading_variants(site: str, finite: bool = False) -> list[bytes]:
    """Wrong-typed readings; ``finite``: leave out NaN / inf (see the load-controller test)."""
    r = good_reading(site, 5000)
    strings = {k: str(v) if isinstance(v, (int, float)) else v for k, v in r.items()}
    return [
        _j({**r, "ts": 1768478400}),
        _j({**r, "ts": ["2026-01-15T13:00:00+01:00"]}),
        _j({**r, "ts": "yesterday at noon"}),
        _j(strings),  # every number as a string
        _j({**r, "net_w": [1500], "import_w": {"w": 1500}, "export_w": "0"}),
        _j({**r, "import_kwh": {"kwh": 1}, "import_t1_kwh": [1], "import_t2_kwh": "2"}),
    ] + ([] if finite else _non_finite_readings(site))


def _non_finite_readings(site: str) -> list[bytes]:
    r = good_reading(site, 5000)
    return [
        json.dumps({**r, "net_w": float("nan"), "import_w": float("inf")}).encode(),
        _j(r).replace(b'"net_w": 1500.0', b'"net_w": 1e999').replace(b'"import_w": 1500.0',
                                                              b'"import_w": 1e999'),
    ]


def _peak_variants(site: str) -> list[bytes]:
    p = {"v": 1, "site": site, "ts": "2026-01-15T13:07:30+01:00",
         "quarter_start": "2026-01-15T13:00:00+01:00", "energy_wh": 400.0, "avg_w": 3200.0,
         "forecast_w": 3200.0, "threshold_w": 4000.0, "headroom_w": 800.0, "level": "ok",
         "month_peak_w": 3100.0}
    return [
        _j({**p, "headroom_w": "800"}),
        _j({**p, "headroom_w": [800], "forecast_w": {"w": 1}}),
        json.dumps({**p, "headroom_w": float("nan")}).encode(),
        _j({**p, "level": 3, "ts": 5}),
    ]


def _outputs_variants() -> list[bytes]:
    """Bad outputs documents (each keeps the test's two outputs, so one that a lax parser
    takes, e.g. "2000" as 2000, changes nothing)."""
    o = {"id": "heater", "kind": "dimmer", "rated_w": 2000, "mode": "proportional"}
    lamp = {"id": "lamp", "kind": "relay", "rated_w": 100, "mode": "on"}
    return [
        _j({"v": 1, "outputs": "heater"}),
        _j({"v": 1, "outputs": [1, 2]}),
        _j({"v": 1, "outputs": [{**o, "id": 5}, lamp]}),
        _j({"v": 1, "outputs": [{**o, "mode": "sometimes"}, lamp]}),
        _j({"v": 1, "outputs": [{**o, "rated_w": [2000]}, lamp]}),
        json.dumps({"v": 1, "outputs": [{**o, "rated_w": float("nan")}, lamp]}).encode(),
        _j({"v": "one", "outputs": {"heater": o}}),
    ]


def _state_variants() -> list[bytes]:
    s = {"v": 1, "ts": "2026-01-15T13:00:01+01:00", "on": True, "override": False, "seq": 7}
    return [
        _j({**s, "on": "yes"}),
        _j({**s, "pct": "50"}),
        _j({**s, "seq": "seven"}),
        json.dumps({**s, "pct": float("nan")}).encode(),
        _j({**s, "override": [True]}),
    ]


def _set_variants() -> list[bytes]:
    s = {"v": 1, "ts": "2026-01-15T13:00:01+01:00", "seq": 3, "ttl_s": 10}
    return [
        _j({**s, "on": "yes"}),
        _j({**s, "pct": "50"}),
        _j({**s, "pct": [50]}),
        json.dumps({**s, "pct": float("nan")}).encode(),
        _j(s).replace(b'"ttl_s": 10', b'"ttl_s": 10, "pct": 1e999'),
        _j({**s, "pct": 150}),
        _j({**s, "on": True, "seq": -1}),
        _j(s),  # neither on nor pct
    ]


def _peak_config_variants() -> list[bytes]:
    return [
        _j({"v": 1, "manual_threshold_w": "4000"}),
        _j({"v": 1, "manual_threshold_w": [4000], "algorithm": "magic"}),
        json.dumps({"v": 1, "manual_threshold_w": float("nan")}).encode(),
        _j({"v": 1, "price_eur_per_kw_year": {"eur": 1}}),
    ]


@dataclass
class Case:
    proc: Proc
    topics: dict[str, list[bytes]]  # topic -> the typed bad payloads for it
    good: Callable[[], None]  # sends good input and waits for the normal result
    counted: bool = True  # JSON topic: every non-empty bad payload (wrong types too) is counted
    own_counters: tuple[tuple[str, dict[str, str]], ...] = ()  # the service's own refusals


def _send_and_check(case: Case, pub: Subscriber) -> list[str]:
    """Every bad payload on every topic; returns the problems found."""
    p = case.proc
    cid = p.client_id
    problems: list[str] = []
    for topic, typed in case.topics.items():
        # an empty retained config document means "removed" (the contract): not bad input
        empty = [] if topic.startswith("p1/config/") else [b""]
        for payload in [*GENERIC, *empty, *typed]:
            text = p.metrics_text()
            done0 = metric_sum(text, "p1_mqtt_messages_handled_total", client_id=cid)
            bad0 = metric_sum(text, "p1_mqtt_bad_payloads_total", client_id=cid) + sum(
                metric_sum(text, name, **labels) for name, labels in case.own_counters)
            err0 = metric_sum(text, "p1_mqtt_handler_errors_total", client_id=cid)
            pub.publish(topic, payload, qos=1)
            # the barrier: every handler of the message has returned (or raised) and counted
            wait_for(lambda done0=done0: p.metric("p1_mqtt_messages_handled_total",
                                                  client_id=cid) >= done0 + 1, 10)
            text = p.metrics_text()
            bad = metric_sum(text, "p1_mqtt_bad_payloads_total", client_id=cid) + sum(
                metric_sum(text, name, **labels) for name, labels in case.own_counters) - bad0
            err = metric_sum(text, "p1_mqtt_handler_errors_total", client_id=cid) - err0
            what = f"{p.name} {topic} {payload[:60]!r}...{payload[-300:]!r}"
            if err:
                problems.append(f"{what}: handler error")
            if case.counted and payload and payload not in typed and bad < 1:
                problems.append(f"{what}: not counted")
            if case.counted and payload in typed and bad < 1:
                problems.append(f"{what}: wrong types taken without a count")
            if not p.alive():
                problems.append(f"{what}: process died")
                return problems
    return problems


@pytest.fixture()
def broker(private_mosquitto: Mosquitto) -> Mosquitto:
    return private_mosquitto


@pytest.fixture()
def pub(broker: Mosquitto) -> Iterator[Subscriber]:
    s = Subscriber(broker.port, "#")
    yield s
    s.close()


def _finish(case: Case, pub: Subscriber) -> None:
    try:
        problems = _send_and_check(case, pub)
        assert case.proc.alive(), case.proc.output()[-3000:]
        try:
            case.good()
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the log ends:\n{case.proc.output()[-3000:]}") from exc
        assert problems == [], "\n".join(problems)
        assert "Traceback" not in case.proc.output(), case.proc.output()[-4000:]
    finally:
        case.proc.stop()


def test_peak_forecaster(broker: Mosquitto, pub: Subscriber, tmp_path: Path) -> None:
    site = "relbad"
    proc = Proc("peak-forecaster", ["run"], broker, tmp_path).start()
    n = iter(range(1, 10_000))

    def good() -> None:
        last = None
        for _ in range(3):
            last = good_reading(site, next(n))
            pub.publish(f"p1/{site}/reading", last, qos=0)
        wait_for(lambda: (last_json(pub, f"p1/{site}/peak") or {}).get("ts") == last["ts"])
        pub.publish(f"p1/config/{site}/peak", {"v": 1, "manual_threshold_w": 6000}, qos=1)
        nxt = good_reading(site, next(n))
        pub.publish(f"p1/{site}/reading", nxt, qos=0)
        wait_for(lambda: (last_json(pub, f"p1/{site}/peak") or {}).get("ts") == nxt["ts"])
        assert last_json(pub, f"p1/{site}/peak")["threshold_w"] == 6000

    good()  # the site exists before the bad input
    n = iter(range(6000, 10_000))  # after the bad readings' clock (n=5000)
    case = Case(proc, {
        f"p1/{site}/reading": _reading_variants(site),
        f"p1/config/{site}/peak": _peak_config_variants(),
    }, good)
    _finish(case, pub)


def _heater_config(path: Path) -> Path:
    doc = {"v": 1, "outputs": [
        {"id": "heater", "kind": "dimmer", "rated_w": 2000, "mode": "proportional"},
        {"id": "lamp", "kind": "relay", "rated_w": 100, "mode": "on"},
    ]}
    path.write_text(json.dumps(doc))
    return path


def test_load_controller(broker: Mosquitto, pub: Subscriber, tmp_path: Path) -> None:
    site = "relbad"
    cfg = _heater_config(tmp_path / "outputs.json")
    proc = Proc("load-controller", ["--site", site, "--config", str(cfg)], broker,
                tmp_path).start()
    n = iter(range(1, 10_000))

    def good() -> None:
        before = len(pub.on(f"p1/{site}/output/+/set"))
        for _ in range(3):
            pub.publish(f"p1/{site}/reading", good_reading(site, next(n), net_w=-800.0), qos=0)
            time.sleep(0.05)
        wait_for(lambda: len(pub.on(f"p1/{site}/output/lamp/set")) and
                 len(pub.on(f"p1/{site}/output/+/set")) >= before + 2)
        assert pub.on(f"p1/{site}/output/lamp/set")[-1].json()["on"] is True
        heater = pub.on(f"p1/{site}/output/heater/set")[-1].json()
        assert 0 < heater["pct"] <= 100  # 800 W exported: the heater takes some of it

    good()
    n = iter(range(6000, 10_000))  # after the bad readings' clock (n=5000)
    case = Case(proc, {
        f"p1/{site}/reading": _reading_variants(site, finite=True),
        f"p1/{site}/peak": _peak_variants(site),
        f"p1/{site}/output/heater/state": _state_variants(),
        f"p1/config/{site}/outputs": _outputs_variants(),
    }, good)
    _finish(case, pub)
    # the file's configuration is still the one in force
    ctl = last_json(pub, f"p1/{site}/control")
    assert sorted(o["id"] for o in ctl["outputs"]) == ["heater", "lamp"]


def test_load_controller_non_finite_net_w(broker: Mosquitto, pub: Subscriber,
                                          tmp_path: Path) -> None:
    site = "relnan"
    cfg = _heater_config(tmp_path / "outputs.json")
    proc = Proc("load-controller", ["--site", site, "--config", str(cfg)], broker,
                tmp_path).start()
    n = iter(range(1, 10_000))

    def good() -> None:
        before = len(pub.on(f"p1/{site}/output/heater/set"))
        for _ in range(4):
            pub.publish(f"p1/{site}/reading", good_reading(site, next(n), net_w=-800.0), qos=0)
            time.sleep(0.3)
        wait_for(lambda: len(pub.on(f"p1/{site}/output/heater/set")) >= before + 3)
        ctl = last_json(pub, f"p1/{site}/control")
        heater = next(o for o in ctl["outputs"] if o["id"] == "heater")
        # a finite decision from finite numbers: no NaN reached the control law
        assert re.search(r"absorbing the surplus \d+ W towards net 0 W", heater["reason"]), heater
        pct = last_json(pub, f"p1/{site}/output/heater/set")["pct"]
        assert 0 <= pct <= 100, pct

    good()
    n = iter(range(6000, 10_000))
    case = Case(proc, {f"p1/{site}/reading": _non_finite_readings(site)}, good,
                )
    _finish(case, pub)


def test_meter_sim(broker: Mosquitto, pub: Subscriber, tmp_path: Path) -> None:
    site = "relbad"
    proc = Proc("meter-sim", ["--tcp", "0", "--speed", "1", "--site", site,
                              "--mqtt", broker.url, "--command-delay-s", "0"], broker,
                tmp_path).start()
    seq = iter(range(100, 10_000))

    def good() -> None:
        s = next(seq)
        pub.publish(f"p1/{site}/output/relay1/set",
                    {"v": 1, "ts": "2026-01-15T13:00:00+01:00", "seq": s, "ttl_s": 10,
                     "on": True}, qos=1)
        wait_for(lambda: (last_json(pub, f"p1/{site}/output/relay1/state") or {}).get("seq") == s)
        assert last_json(pub, f"p1/{site}/output/relay1/state")["on"] is True

    case = Case(proc, {
        f"p1/{site}/output/relay1/set": _set_variants(),
        f"p1/{site}/output/boiler/set": _set_variants(),
    }, good)
    _finish(case, pub)


def test_p1_reader(broker: Mosquitto, pub: Subscriber, tmp_path: Path) -> None:
    site = "relbad"
    telegram = (TELEGRAMS / "dsmr_parser__fluvius_v171.txt").read_bytes()
    server = socket.create_server(("127.0.0.1", 0))
    conns: list[socket.socket] = []

    def serve() -> None:  # a ser2net-like meter: a telegram every 0.5 s
        try:
            conn, _ = server.accept()
        except OSError:
            return
        conns.append(conn)
        try:
            while True:
                conn.sendall(telegram)
                time.sleep(0.5)
        except OSError:
            return

    threading.Thread(target=serve, daemon=True).start()
    proc = Proc("p1-reader", ["--serial", f"socket://127.0.0.1:{server.getsockname()[1]}",
                              "--site", site], broker, tmp_path)
    try:
        proc.start()
        pub.wait(f"homeassistant/sensor/p1_reader_{site}/+/config")

        def good() -> None:
            pub.clear()
            pub.publish("homeassistant/status", b"online", qos=1)
            wait_for(lambda: pub.on(f"homeassistant/sensor/p1_reader_{site}/+/config"))

        # homeassistant/status is plain text: anything but "online" is ignored, not counted
        case = Case(proc, {"homeassistant/status": [b"offline", b"online\x00\xff"]}, good,
                    counted=False)
        _finish(case, pub)
    finally:
        server.close()
        for c in conns:
            c.close()


def test_bridge_multicast(broker: Mosquitto, pub: Subscriber, tmp_path: Path) -> None:
    site = "relbad"
    proc = Proc("bridge-multicast", ["--site", site, "--interface", "127.0.0.1",
                                     "--port", str(free_port()), "--direction", "to-legacy"],
                broker, tmp_path).start()
    n = iter(range(1, 10_000))

    def good() -> None:
        sent0 = proc.metric("p1_bridge_frames_sent_total", site=site)
        pub.publish(f"p1/{site}/reading", good_reading(site, next(n) * 60), qos=0)
        wait_for(lambda: proc.metric("p1_bridge_frames_sent_total", site=site) >= sent0 + 1)

    good()
    n = iter(range(6000, 10_000))  # after the bad readings' clock (n=5000)
    case = Case(proc, {f"p1/{site}/reading": _reading_variants(site)}, good,
                own_counters=(("p1_bridge_readings_skipped_total", {"site": site}),))
    _finish(case, pub)


def test_web(broker: Mosquitto, pub: Subscriber, tmp_path: Path) -> None:
    site = "relbad"
    port = free_port()
    proc = Proc("p1-web", ["--host", "127.0.0.1", "--port", str(port)], broker, tmp_path,
                P1_SITE=site, P1_WEB_TOKEN="rel-token-0123456789")
    proc.start()
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
    n = iter(range(1, 10_000))

    def good() -> None:
        r = good_reading(site, next(n))
        pub.publish(f"p1/{site}/reading", r, qos=0)
        wait_for(lambda: http.get(f"/api/sites/{site}/reading").status_code == 200 and
                 http.get(f"/api/sites/{site}/reading").json().get("ts") == r["ts"])

    try:
        good()
        typed_status = [b"maybe", b"\xff\xfe"]
        n = iter(range(6000, 10_000))  # after the bad readings' clock (n=5000)
        case = Case(proc, {
            f"p1/{site}/reading": _reading_variants(site),
            f"p1/{site}/peak": _peak_variants(site),
            f"p1/{site}/peak/quarter": [_j({"v": 1, "site": site, "start": 5, "end": [],
                                            "energy_wh": "x", "avg_w": None,
                                            "complete": "yes"})],
            f"p1/{site}/peak/month": [_j({"v": 1, "site": site, "month": "2026-13",
                                          "peak_w": "3000", "history": {"a": 1}})],
            f"p1/{site}/control": [_j({"v": 1, "site": site, "ts": 5, "outputs": "none"})],
            f"p1/{site}/output/heater/state": _state_variants(),
            "p1/status/some-device": typed_status,
        }, good)
        _finish(case, pub)
    finally:
        http.close()


def test_recorder(broker: Mosquitto, pub: Subscriber, tmp_path: Path, vm) -> None:  # type: ignore[no-untyped-def]
    site = "relbad"
    proc = Proc("p1-recorder", [], broker, tmp_path, INFLUX_URL=vm.url, INFLUX_TOKEN="t",
                INFLUX_ORG="p1", INFLUX_BUCKET="p1", RECORDER_FLUSH_S="0.1")
    proc.start()
    n = iter(range(1, 10_000))

    def good() -> None:
        r = good_reading(site, next(n))
        pub.publish(f"p1/{site}/reading", r, qos=1)
        want = 1000 * int(__import__("datetime").datetime.fromisoformat(r["ts"]).timestamp())
        wait_for(lambda: any(t == want for t, _ in
                             vm.export().get(f"reading_net_w{{site={site}}}", [])), 15)

    good()
    n = iter(range(6000, 10_000))  # after the bad readings' clock (n=5000)
    case = Case(proc, {
        f"p1/{site}/reading": _reading_variants(site),
        f"p1/{site}/peak": _peak_variants(site),
        f"p1/{site}/output/heater/state": _state_variants(),
    }, good)
    _finish(case, pub)
