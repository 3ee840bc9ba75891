"""`load-controller --all-sites`: one process, every site, through the real Mosquitto.

Each test uses its own topic prefix, so the wildcard subscriptions see only its sites."""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from load_controller.config import LoadControllerSettings
from p1common.payloads import Control, OutputSet
from p1common.settings import SettingsError
from p1common.topics import Topics, shard_of
from support import Subscriber, wait_for

_n = itertools.count()
_ts = itertools.count()


def stamp(n: int) -> str:
    """The meter clock of the n-th test reading: one second apart, like a DSMR 5 meter."""
    return (datetime(2026, 1, 15, 12, 0, tzinfo=UTC) + timedelta(seconds=n)).isoformat()

CONFIGS: dict[str, dict[str, Any]] = {
    "a": {"v": 1, "outputs": [{"id": "heater", "kind": "relay", "rated_w": 2000, "mode": "on"}]},
    "b": {"v": 1, "outputs": [
        {"id": "boiler", "kind": "dimmer", "rated_w": 2400, "mode": "tariff"},
        {"id": "pump", "kind": "relay", "rated_w": 800, "mode": "off"}]},
    "c": {"v": 1, "outputs": [
        {"id": "boiler", "kind": "dimmer", "rated_w": 2000, "mode": "proportional"}]},
}


@contextmanager
def all_sites(mosquitto: Any, prefix: str, *args: str) -> Iterator[list[str]]:
    """A ``load-controller --all-sites`` process (via LOADCTL_ALL_SITES); yields a list
    that holds its output once it has ended (cleanly: exit code 0)."""
    env = {"MQTT_URL": mosquitto.url, "P1_TOPIC_PREFIX": prefix, "PATH": "/usr/bin",
           "MQTT_CLIENT_ID": f"lc-multi-{next(_n)}", "LOADCTL_ALL_SITES": "true"}
    proc = subprocess.Popen([sys.executable, "-m", "load_controller.cli", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output: list[str] = []
    try:
        yield output
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
        output.append(out)
        assert proc.returncode == 0, out


def send(sub: Subscriber, t: Topics, site: str, net: float, tariff: int = 2) -> None:
    sub.publish(t.reading(site), {"v": 1, "site": site, "source": "sim", "ts": stamp(next(_ts)),
                                  "net_w": net, "tariff": tariff, "tariff_low": tariff == 2}, qos=0)


def until_answered(sub: Subscriber, t: Topics, site: str, output: str) -> None:
    """Send readings to ``site`` until the process answers with a ``set``: it is
    subscribed, and has applied the retained configs (sent to it before any live reading).
    Returns once every answer to them has arrived."""
    def answered() -> bool:
        send(sub, t, site, 100)
        return bool(sub.on(t.output_set(site, output)))

    wait_for(answered, timeout_s=20, interval_s=0.2)  # a reading every 0.2 s
    # the answers to the other readings sent meanwhile may still be on their way: one more
    # reading with a net power of its own; once its control is here, so are they
    # (``sub`` must hold the control topic)
    send(sub, t, site, 100.5)
    wait_for(lambda: any(m.json()["net_w"] == 100.5 for m in sub.on(t.control(site))))


def test_three_sites_each_with_its_own_config_and_watchdog(mosquitto: Any) -> None:
    t = Topics(f"ms{next(_n)}")
    sites = {k: f"{k}site" for k in CONFIGS}
    sub = Subscriber(mosquitto.port, t.output_sets(), t.all_sites("control"))
    for k, site in sites.items():
        sub.publish(t.config(site, "outputs"), CONFIGS[k], retain=True)
    # a retained reading of a site never configured creates nothing
    sub.publish(t.reading("ghost"), {"v": 1, "site": "ghost", "ts": "t", "net_w": 5}, retain=True)
    try:
        with all_sites(mosquitto, t.prefix, "--watchdog", "2") as proc:
            until_answered(sub, t, sites["a"], "heater")
            sub.clear()
            a_last_sent = time.monotonic()  # a's last reading before it goes quiet
            send(sub, t, sites["a"], 300)
            send(sub, t, sites["b"], 300, tariff=2)
            send(sub, t, sites["c"], -1000)
            a = sub.wait(t.output_set(sites["a"], "heater"))[-1].json()
            b = sub.wait(t.output_set(sites["b"], "boiler"))[-1].json()
            p = sub.wait(t.output_set(sites["b"], "pump"))[-1].json()
            c = sub.wait(t.output_set(sites["c"], "boiler"))[-1].json()
            for doc in (a, b, p, c):
                OutputSet.model_validate(doc)
            assert (a["on"], b["pct"], p["on"], c["pct"]) == (True, 100.0, False, 45.0)
            assert "pct" not in a and "on" not in b and "on" not in c

            def control(key: str) -> dict[str, Any]:
                doc = sub.wait(t.control(sites[key]))[-1].json()
                Control.model_validate(doc)
                return doc

            assert [(o["id"], o["decision"], o["reason"]) for o in control("a")["outputs"]] == [
                ("heater", "on", "on: mode on")]
            assert [(o["id"], o["decision"], o["reason"]) for o in control("b")["outputs"]] == [
                ("boiler", "on", "on: low tariff (night)"), ("pump", "off", "off: mode off")]
            assert control("c")["net_w"] == -1000.0
            assert control("c")["outputs"][0]["level_w"] == 900.0
            assert not sub.on(t.output_sets("ghost")) and not sub.on(t.control("ghost"))

            # site a goes quiet; b and c keep sending (every 0.25 s, pacing the meters):
            # only a's watchdog trips, and not before its 2 s
            sub.clear()

            def a_tripped() -> bool:
                send(sub, t, sites["b"], 300, tariff=2)
                send(sub, t, sites["c"], 0)
                return any(m.json()["watchdog"] for m in sub.on(t.control(sites["a"])))

            wait_for(a_tripped, timeout_s=20, interval_s=0.25)
            assert time.monotonic() - a_last_sent >= 2.0
            ca = next(m.json() for m in sub.on(t.control(sites["a"])) if m.json()["watchdog"])
            for key in ("b", "c"):  # their readings kept coming: no trip
                assert not any(m.json()["watchdog"] for m in sub.on(t.control(sites[key])))
            assert ca["outputs"][0]["reason"] == "watchdog: no meter data for 2 s"
            wait_for(lambda: [m.json()["on"] for m in sub.on(t.output_set(sites["a"], "heater"))]
                     [-1:] == [False])
            # a marker reading of b and c each, after the trip: the controls answering them
            # are the latest word on b and c
            sub.clear()
            send(sub, t, sites["b"], 300, tariff=2)
            send(sub, t, sites["c"], 0)
            assert control("b")["watchdog"] is False and control("c")["watchdog"] is False
            assert sub.wait(t.output_set(sites["b"], "boiler"))[-1].json()["pct"] == 100.0
            # a's meter comes back: a resumes by itself
            sub.clear()
            send(sub, t, sites["a"], 300)
            wait_for(lambda: any(m.json()["on"] for m in sub.on(t.output_set(sites["a"], "heater"))))
            assert control("a")["watchdog"] is False
        assert "serving every site; 0 default output(s)" in proc[0]
        assert f"site {sites['a']}: watchdog: no meter data for 2 s: every output off" in proc[0]
    finally:
        for site in sites.values():
            sub.publish(t.config(site, "outputs"), b"", retain=True)
        sub.publish(t.reading("ghost"), b"", retain=True)
        sub.close()


def test_config_file_is_every_sites_default(mosquitto: Any, tmp_path: Any) -> None:
    t = Topics(f"ms{next(_n)}")
    cfg = tmp_path / "outputs.json"
    cfg.write_text('{"v": 1, "outputs": [{"id": "pump", "rated_w": 800, "mode": "tariff"}]}')
    sub = Subscriber(mosquitto.port, t.output_sets())
    try:
        with all_sites(mosquitto, t.prefix, "--config", str(cfg)):
            def answered(site: str, tariff: int) -> bool:
                send(sub, t, site, 0, tariff)
                return bool(sub.on(t.output_set(site, "pump")))

            # until it has subscribed: a reading every 0.2 s
            wait_for(lambda: answered("x1", 2), timeout_s=20, interval_s=0.2)
            assert sub.on(t.output_set("x1", "pump"))[-1].json()["on"] is True
            send(sub, t, "x2", 0, 1)  # a site never seen: created by its first reading
            assert [m.json()["on"] for m in sub.wait(t.output_set("x2", "pump"))] == [False]
    finally:
        sub.close()


def test_shards_split_the_sites(mosquitto: Any) -> None:
    t = Topics(f"ms{next(_n)}")
    sites = [f"h{i}" for i in range(8)]
    by_shard = {k: [s for s in sites if shard_of(s, 2) == k] for k in (0, 1)}
    assert by_shard[0] and by_shard[1]
    sub = Subscriber(mosquitto.port, t.output_sets(), t.all_sites("control"))
    for s in sites:
        sub.publish(t.config(s, "outputs"), CONFIGS["a"], retain=True)

    def one_round(*markers: str) -> dict[str, int]:
        """``set``s per site for one reading to every site. The barrier: one more reading
        to each marker site (one per running process, sent after the others); a process
        handles its readings in order and publishes its answers in order, so when a
        marker's second set is here, the answers to the readings before it are too."""
        sub.clear()
        for s in sites:
            send(sub, t, s, 100)
        for m in markers:
            send(sub, t, m, 100)
        wait_for(lambda: all(len(sub.on(t.output_set(m, "heater"))) >= 2 for m in markers), 20)
        return {s: len(sub.on(t.output_set(s, "heater"))) - (s in markers) for s in sites}

    # a long watchdog: the only sets are the answers to the readings, none from a tick
    with_wd = ("--watchdog", "600")
    try:
        with all_sites(mosquitto, t.prefix, "--shards", "2", "--shard", "0", *with_wd):
            until_answered(sub, t, by_shard[0][0], "heater")
            got = one_round(by_shard[0][0])
            assert got == {s: int(s in by_shard[0]) for s in sites}
            assert not any(sub.on(t.control(s)) for s in by_shard[1])
            with all_sites(mosquitto, t.prefix, "--shards", "2", "--shard", "1", *with_wd):
                until_answered(sub, t, by_shard[1][0], "heater")
                # every site exactly once
                assert one_round(by_shard[0][0], by_shard[1][0]) == {s: 1 for s in sites}
    finally:
        for s in sites:
            sub.publish(t.config(s, "outputs"), b"", retain=True)
        sub.close()


def test_shard_function_is_crc32_of_the_site() -> None:
    # the one shard function (p1common.topics) both many-site services use
    for i in range(500):
        site = f"site-{i}"
        assert shard_of(site, 7) == zlib.crc32(site.encode()) % 7
    assert [shard_of(s, 4) for s in ("home", "site-1", "a")] == [
        zlib.crc32(b"home") % 4, zlib.crc32(b"site-1") % 4, zlib.crc32(b"a") % 4]


def test_multisite_settings() -> None:
    s = LoadControllerSettings.from_env({"LOADCTL_ALL_SITES": "true", "LOADCTL_SHARDS": "3",
                                         "LOADCTL_SHARD": "2"})
    assert (s.all_sites, s.shards, s.shard) == (True, 3, 2)
    s = LoadControllerSettings.from_env({}, {"all_sites": True, "shards": 2, "shard": 1})
    assert (s.all_sites, s.shards, s.shard) == (True, 2, 1)
    assert LoadControllerSettings.from_env({}).all_sites is False
    with pytest.raises(SettingsError, match=re.escape("LOADCTL_SHARD/--shard: 3 must be in 0..2")):
        LoadControllerSettings.from_env({"LOADCTL_ALL_SITES": "1", "LOADCTL_SHARDS": "3",
                                         "LOADCTL_SHARD": "3"})
    with pytest.raises(SettingsError, match="needs LOADCTL_ALL_SITES"):
        LoadControllerSettings.from_env({"LOADCTL_SHARDS": "2"})
    with pytest.raises(SettingsError, match="LOADCTL_SHARDS"):
        LoadControllerSettings.from_env({"LOADCTL_ALL_SITES": "1", "LOADCTL_SHARDS": "0"})
