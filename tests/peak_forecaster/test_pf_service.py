"""The service through the real Mosquitto: readings in, peak / quarter / month out.

Also the kill test: SIGKILL at any moment, restart, identical numbers.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pf_support import Meter, feed, months, quarters
from test_pf_engine import day_of_readings

from p1common.topics import shard_of
from support import Mosquitto, Subscriber, wait_for


class Service:
    def __init__(self, broker: Mosquitto, state: Path, *args: str, client_id: str = "pf-test",
                 **env: str) -> None:
        self.client_id = client_id
        self.log = state / f"{client_id}.log"
        self.cmd = [sys.executable, "-m", "peak_forecaster.cli", "run", *args]
        self.env = {**os.environ, "MQTT_URL": broker.url, "P1_STATE_DIR": str(state),
                    "MQTT_CLIENT_ID": client_id, "LOG_LEVEL": "INFO", "PEAK_PERSIST_S": "0.5",
                    **env}
        self.proc: subprocess.Popen[bytes] | None = None
        self.broker = broker

    def start(self) -> None:
        watch = Subscriber(self.broker.port, f"p1/status/{self.client_id}")
        watch.clear()
        with self.log.open("ab") as fh:
            self.proc = subprocess.Popen(self.cmd, env=self.env, stdout=fh, stderr=subprocess.STDOUT)
        try:
            # "online" follows its SUBSCRIBEs on the same connection (p1common.mqtt): seen,
            # the service receives its topics; no pause needed
            wait_for(lambda: any(m.payload == b"online" and not m.retain for m in watch.messages),
                     15)
        finally:
            watch.close()

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            return self.proc.wait(15)
        return self.proc.returncode if self.proc else 0

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture()
def service(mosquitto: Mosquitto, tmp_path: Path) -> Iterator[Service]:
    svc = Service(mosquitto, tmp_path, "--persist-s", "0.5")
    svc.start()
    yield svc
    svc.stop()


def publish_all(pub: Subscriber, readings: list[dict], retain: bool = False) -> None:
    """Readings as p1-reader sends them (not retained here: tests share the broker)."""
    for r in readings:
        pub.client.publish(f"p1/{r['site']}/reading", json.dumps(r), qos=0, retain=retain)


def test_readings_in_peak_quarter_month_out(service: Service, mosquitto: Mosquitto) -> None:
    sub = Subscriber(mosquitto.port, "p1/pfsvc/peak/#")
    m = Meter("2026-01-15T10:00:00+01:00", site="pfsvc")
    m.extra = {"month_max_w": 3000.0, "month_max_ts": "2026-01-10T18:15:00+01:00"}
    rs = [m.reading(3600), *m.run(1800, 10, 10, 3600)]
    publish_all(sub, rs)
    qs = sub.wait("p1/pfsvc/peak/quarter", 2)
    wait_for(lambda: any(x.json()["ts"] == rs[-1]["ts"] for x in sub.on("p1/pfsvc/peak")))
    got = [x.json() for x in qs]
    assert [(q["start"], q["energy_wh"], q["avg_w"], q["complete"], q["threshold_w"]) for q in got] == [
        ("2026-01-15T10:00:00+01:00", 900.0, 3600.0, True, 3000.0),
        ("2026-01-15T10:15:00+01:00", 900.0, 3600.0, True, 3000.0),
    ]
    assert all(x.qos == 1 for x in qs)
    _, ref = feed(rs)
    assert got == quarters(ref)
    assert len(sub.on("p1/pfsvc/peak")) == len(rs)
    month = sub.on("p1/pfsvc/peak/month")[-1].json()
    assert month == months(ref)[-1]
    assert (month["peak_w"], month["our_peak_w"], month["meter_diff_w"]) == (3000.0, 3600.0, 600.0)
    sub.close()
    # retained: a newcomer gets the latest peak and month at once
    late = Subscriber(mosquitto.port, "p1/pfsvc/peak/#", "homeassistant/sensor/p1_pfsvc/+/config")
    wait_for(lambda: len(late.on("p1/pfsvc/peak")) == 1 and len(late.on("p1/pfsvc/peak/month")) == 1)
    peak = late.on("p1/pfsvc/peak")[0]
    assert peak.retain and peak.json()["ts"] == "2026-01-15T10:30:00+01:00"
    assert late.on("p1/pfsvc/peak/month")[0].retain
    assert late.on("p1/pfsvc/peak/quarter") == []
    ha = late.wait("homeassistant/sensor/p1_pfsvc/+/config", 8)
    cfg = {x.topic.split("/")[3]: x.json() for x in ha}
    assert cfg["quarter_headroom"]["state_topic"] == "p1/pfsvc/peak"
    assert cfg["quarter_headroom"]["value_template"] == (
        "{{ value_json.headroom_w if value_json.headroom_w is defined else None }}")
    assert cfg["quarter_headroom"]["default_entity_id"] == "sensor.p1_pfsvc_quarter_headroom"
    # the site's one device; no model: p1-reader's (from the meter) is kept
    assert cfg["quarter_headroom"]["device"] == {
        "identifiers": ["p1_pfsvc"], "name": "P1 meter pfsvc", "manufacturer": "P1 energy stack"}
    assert cfg["billed_peak"]["state_topic"] == "p1/pfsvc/peak/month"
    assert cfg["peak_level"]["availability_topic"] == "p1/status/pf-test"
    late.close()


def test_config_applies_and_an_invalid_one_keeps_the_last_good(
    service: Service, mosquitto: Mosquitto
) -> None:
    sub = Subscriber(mosquitto.port, "p1/pfcfg/peak")
    sub.publish("p1/config/pfcfg/peak", {"v": 1, "manual_threshold_w": 5000,
                                        "price_eur_per_kw_year": 60, "algorithm": "baseline"},
                retain=True)
    m = Meter("2026-01-15T10:00:00+01:00", site="pfcfg")
    publish_all(sub, [m.reading(100)])
    p = sub.wait("p1/pfcfg/peak")[-1].json()
    assert (p["threshold_w"], p["algorithm"]) == (5000.0, "baseline")
    sub.publish("p1/config/pfcfg/peak", {"v": 1, "manual_threshold_w": -5}, retain=True)
    sub.publish("p1/config/pfcfg/peak", b"not json", retain=True)
    publish_all(sub, m.run(10, 10, 1, 360))
    p = sub.wait("p1/pfcfg/peak", 2)[-1].json()
    assert (p["threshold_w"], p["algorithm"]) == (5000.0, "baseline")
    wait_for(lambda: "keeping the last good one: manual_threshold_w" in service.output())
    sub.publish("p1/config/pfcfg/peak", b"", retain=True)
    sub.close()


def test_shards_split_the_sites(mosquitto: Mosquitto, tmp_path: Path) -> None:
    sites = [f"pfshard{i}" for i in range(12)]
    mine = [s for s in sites if shard_of(s, 2) == 1]
    assert 0 < len(mine) < len(sites)
    svc = Service(mosquitto, tmp_path, "--shards", "2", "--shard", "1", "--no-ha-discovery",
                  client_id="pf-shard1")
    svc.start()
    try:
        sub = Subscriber(mosquitto.port, "p1/+/peak")
        for s in sites:
            publish_all(sub, [Meter("2026-01-15T10:00:00+01:00", site=s).reading(100)])
        # the barrier: one more reading of a site of this shard, sent after all the others;
        # the service handles its readings in order, so when this one's peak is out, a peak
        # of any other site would have come before it
        marker = Meter("2026-01-15T10:00:10+01:00", site=mine[0]).reading(100)
        publish_all(sub, [marker])
        wait_for(lambda: any(x.json()["ts"] == marker["ts"] for x in sub.on(f"p1/{mine[0]}/peak")))
        assert {x.topic.split("/")[1] for x in sub.on("p1/+/peak")} & set(sites) == set(mine)
        sub.close()
    finally:
        assert svc.stop() == 0


def test_bad_settings_exit_with_a_message_naming_the_variable(tmp_path: Path) -> None:
    env = {**os.environ, "PEAK_SHARDS": "two", "P1_STATE_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "peak_forecaster.cli"], env=env,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "PEAK_SHARDS" in out.stderr


def test_sigkill_at_any_moment_and_restart_continues_with_the_same_numbers(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    rs = day_of_readings(seed=7, seconds=3600, step_s=2)
    for r in rs:
        r["site"] = "pfkill"
    _, ref = feed(rs)
    ref_q = quarters(ref)
    assert len(ref_q) == 4
    svc = Service(mosquitto, tmp_path, client_id="pf-kill")
    sub = Subscriber(mosquitto.port, "p1/pfkill/peak/#")
    svc.start()
    try:
        publish_all(sub, rs[:1000])
        wait_for(lambda: any(x.json()["ts"] == rs[999]["ts"] for x in sub.on("p1/pfkill/peak")))
        publish_all(sub, rs[1000:1300])
        time.sleep(0.05)
        svc.kill()  # somewhere in the middle of those 300
        first_run = [x.json() for x in sub.on("p1/pfkill/peak/quarter")]
        assert (tmp_path / "peak-forecaster" / "pfkill.json").exists()
        svc.start()
        publish_all(sub, rs)  # everything again: what it already has is skipped
        wait_for(lambda: any(x.json()["ts"] == rs[-1]["ts"] for x in sub.on("p1/pfkill/peak")), 30)
        got = [x.json() for x in sub.on("p1/pfkill/peak/quarter")]
        assert len(got) >= len(ref_q) and len(first_run) >= 1
        by_start: dict[str, dict] = {}
        for q in got:  # a quarter closed just before the kill may come again, identical
            assert by_start.setdefault(q["start"], q) == q
        assert list(by_start.values()) == ref_q
        assert sub.on("p1/pfkill/peak/month")[-1].json() == months(ref)[-1]
    finally:
        svc.stop()
        sub.close()
