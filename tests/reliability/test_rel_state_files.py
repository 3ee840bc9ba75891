"""Corrupt or half-written state and configuration files: a clear error, the last good
version (``.bak`` from p1common.persist) used, nothing silently reset."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
from rel_support import BIN, Proc, good_reading, last_json

from support import Mosquitto, Subscriber, free_port, wait_for


def _half(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # a write cut by a power failure


def test_peak_forecaster_state_half_written_uses_the_backup(
        private_mosquitto: Mosquitto, tmp_path: Path) -> None:
    site = "relstate"
    sub = Subscriber(private_mosquitto.port, f"p1/{site}/peak/#", f"p1/{site}/peak")
    pf = Proc("peak-forecaster", ["run", "--no-ha-discovery"], private_mosquitto, tmp_path,
              PEAK_PERSIST_S="0.2")
    pf.start()
    state = tmp_path / "peak-forecaster" / f"{site}.json"
    try:
        # 40 minutes at 6 kW: two closed quarters, a month peak well above the 2.5 kW floor
        for n in range(0, 2400, 10):
            sub.client.publish(f"p1/{site}/reading",
                               json.dumps(good_reading(site, n, net_w=6000.0)))
        wait_for(lambda: len(sub.on(f"p1/{site}/peak/quarter")) >= 2, 20)
        # written twice at least (every 0.2 s): the backup is the version before the last
        wait_for(lambda: state.with_name(state.name + ".bak").exists(), 10)
        assert pf.stop() == 0
        peak_before = json.loads(state.read_text())["month"]
        assert state.with_name(state.name + ".bak").exists()
        _half(state)
        pf.start()
        sub.clear()
        sub.client.publish(f"p1/{site}/reading", json.dumps(good_reading(site, 2410, 6000.0)))
        wait_for(lambda: sub.on(f"p1/{site}/peak"))
        out = pf.output()
        assert "is unreadable" in out and "using the last good version" in out
        assert last_json(sub, f"p1/{site}/peak")["month_peak_w"] >= 5900  # not reset
        # backup one step older than the main file, still this month's peak
        assert json.loads(state.with_name(state.name + ".bak").read_text())["month"]
        assert peak_before
    finally:
        pf.stop()
        sub.close()


def test_peak_forecaster_state_and_backup_corrupt_is_a_loud_error(
        private_mosquitto: Mosquitto, tmp_path: Path) -> None:
    site = "relstate2"
    folder = tmp_path / "peak-forecaster"
    folder.mkdir()
    (folder / f"{site}.json").write_text('{"v": 1, "site": ')
    (folder / f"{site}.json.bak").write_text("\x00\x00")
    sub = Subscriber(private_mosquitto.port, f"p1/{site}/peak")
    pf = Proc("peak-forecaster", ["run", "--no-ha-discovery"], private_mosquitto, tmp_path)
    pf.start()
    try:
        sub.client.publish(f"p1/{site}/reading", json.dumps(good_reading(site, 1)))
        wait_for(lambda: sub.on(f"p1/{site}/peak"))
        out = pf.output()
        assert "ERROR" in out and "its backup too" in out and "afresh" in out
        # nothing destroyed: both unreadable files kept aside for a person to look at
        kept = sorted(p.name.split(".corrupt-")[0] for p in folder.glob("*.corrupt-*"))
        assert kept == [f"{site}.json", f"{site}.json.bak"]
        assert [p.read_text() for p in folder.glob(f"{site}.json.corrupt-*")] == ['{"v": 1, "site": ']
    finally:
        pf.stop()
        sub.close()


def test_load_controller_corrupt_config_file_refuses_to_start(tmp_path: Path) -> None:
    cfg = tmp_path / "outputs.json"
    cfg.write_text('{"v": 1, "outputs": [{"id": "boiler", "kind": "dimm')
    r = subprocess.run([str(BIN / "load-controller"), "--config", str(cfg)], capture_output=True,
                       text=True, timeout=30, env={"MQTT_URL": "mqtt://127.0.0.1:1",
                                                   "PATH": "/usr/bin:/bin"})
    assert r.returncode == 2
    assert "LOADCTL_CONFIG" in r.stderr and "outputs.json" in r.stderr and "not JSON" in r.stderr


def test_web_config_store_half_written_uses_the_backup(private_mosquitto: Mosquitto,
                                                      tmp_path: Path) -> None:
    site = "relweb"
    token = "rel-token-0123456789"
    port = free_port()
    auth = {"Authorization": f"Bearer {token}"}
    web = Proc("p1-web", ["--host", "127.0.0.1", "--port", str(port)], private_mosquitto,
               tmp_path, P1_SITE=site, P1_WEB_TOKEN=token)
    web.start()
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
    url = f"/api/sites/{site}/config/peak"
    try:
        assert http.put(url, json={"v": 1, "manual_threshold_w": 4000}, headers=auth).is_success
        assert http.put(url, json={"v": 1, "manual_threshold_w": 5000}, headers=auth).is_success
        web.stop()
        path = tmp_path / "config" / site / "peak.json"
        if not path.exists():
            path = next(tmp_path.rglob("peak.json"))
        _half(path)
        web.start()
        doc = http.get(url).json()
        assert doc["manual_threshold_w"] == 4000  # the last good version, not the default
        assert "is unreadable" in web.output() and "last good version" in web.output()
    finally:
        web.stop()
        http.close()
