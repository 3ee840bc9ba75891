"""Persistence across restarts (of the web and of the broker), and the write token."""

from __future__ import annotations

import os
import stat
import subprocess
import time

import web_support as ws

from support import Subscriber, wait_for

DOCS = {
    "/config/outputs": {"outputs": [{"id": "boiler", "kind": "dimmer", "rated_w": 1500, "mode": "proportional"}]},
    "/config/peak": {"manual_threshold_w": 3500},
    "/config/monitor/mon-1": {"max_import_w": 9000, "max_export_w": 3000},
}


def _retained(broker, site, count, timeout_s=10.0):
    """What a new subscriber gets as retained; asks again until ``count`` are there."""

    def look():
        sub = Subscriber(broker.port, f"p1/config/{site}/#")
        try:
            time.sleep(0.3)
            got = {m.topic: m.json() for m in sub.on(f"p1/config/{site}/#") if m.retain}
            return got if len(got) >= count else None
        finally:
            sub.close()

    try:
        return wait_for(look, timeout_s)
    except AssertionError:
        return {}


def test_configuration_survives_restarts_and_is_published_again(private_mosquitto, tmp_path, site):
    web = ws.WebProc(private_mosquitto.url, tmp_path, site=site).start()
    try:
        for path, body in DOCS.items():
            assert web.http.put(web.api(path), json=body, headers=web.auth).status_code == 200
        assert len(_retained(private_mosquitto, site, 3)) == 3
        assert web.stop() == 0
        # a broker without persistence forgets every retained message
        private_mosquitto.restart()
        empty = Subscriber(private_mosquitto.port, f"p1/config/{site}/#")
        time.sleep(0.5)
        assert empty.messages == []
        empty.close()
        # the web restores its documents from disk and publishes them again
        web.start()
        got = _retained(private_mosquitto, site, 3)
        assert got == {
            f"p1/config/{site}/outputs": {"v": 1, "outputs": [{
                "id": "boiler", "kind": "dimmer", "rated_w": 1500.0, "mode": "proportional",
                "threshold_w": 0.0, "on_delay_s": 60.0, "min_on_s": 300.0, "priority": 0,
                "peak_guard": False, "target_net_w": 0.0, **ws.EV_DEFAULTS}]},
            f"p1/config/{site}/peak": {"v": 1, "manual_threshold_w": 3500.0,
                                       "price_eur_per_kw_year": 53.0, "algorithm": "default"},
            f"p1/config/{site}/monitor/mon-1": {"v": 1, "max_import_w": 9000.0, "max_export_w": 3000.0},
        }
        assert web.http.get(web.api("/config/peak")).json()["manual_threshold_w"] == 3500.0
        # the broker restarts under a running web: it reconnects and publishes again
        private_mosquitto.restart()
        assert len(_retained(private_mosquitto, site, 3, timeout_s=20)) == 3
        wait_for(lambda: web.http.get("/healthz").status_code == 200, 20)
    finally:
        web.close()


def test_a_corrupt_document_file_falls_back_to_its_backup(mosquitto, tmp_path, site):
    web = ws.WebProc(mosquitto.url, tmp_path, site=site).start()
    try:
        web.http.put(web.api("/config/peak"), json={"manual_threshold_w": 3000}, headers=web.auth)
        web.http.put(web.api("/config/peak"), json={"manual_threshold_w": 3100}, headers=web.auth)
        web.stop()
        path = tmp_path / "web" / "config" / site / "peak.json"
        path.write_text('{"v": 1, "manual_thr')
        web.start()
        assert web.http.get(web.api("/config/peak")).json()["manual_threshold_w"] == 3000.0
        assert "unreadable" in web.logs()
    finally:
        web.close()


def test_generated_token_is_stored_0600_and_logged_once(mosquitto, tmp_path, site):
    web = ws.WebProc(mosquitto.url, tmp_path, site=site, token=None).start()
    try:
        token_file = tmp_path / "web" / "token"
        token = token_file.read_text().strip()
        assert len(token) >= 32
        assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
        assert web.logs().count(token) == 1
        web.token = token
        assert web.http.put(web.api("/config/peak"), json={}, headers=web.auth).status_code == 200
        web.stop()
        web.start()
        assert token_file.read_text().strip() == token
        assert web.logs().count(token) == 1  # not printed again
        assert web.http.put(web.api("/config/peak"), json={}, headers=web.auth).status_code == 200
    finally:
        web.close()


def test_token_from_a_secret_file(mosquitto, tmp_path, site):
    secret = tmp_path / "secret"
    secret.write_text("from-the-k8s-secret-42\n")
    web = ws.WebProc(mosquitto.url, tmp_path, site=site, token=None,
                     env={"P1_WEB_TOKEN_FILE": str(secret)}).start()
    try:
        web.token = "from-the-k8s-secret-42"
        assert web.http.put(web.api("/config/peak"), json={}, headers=web.auth).status_code == 200
        assert not (tmp_path / "web" / "token").exists()
    finally:
        web.close()


def test_bad_settings_stop_the_service_with_a_clear_message(tmp_path):
    env = {**os.environ, "P1_STATE_DIR": str(tmp_path)}
    for var, value, message in [
        ("P1_WEB_PROTECT_READS", "maybe", "p1-web: P1_WEB_PROTECT_READS: 'maybe' is not a boolean (use true/false)"),
        ("P1_WEB_PORT", "http", "p1-web: P1_WEB_PORT: 'http' is not an integer"),
        ("P1_WEB_TOKEN", "short", "p1-web: P1_WEB_TOKEN: use at least 8 characters"),
        ("P1_WEB_TOKEN_FILE", str(tmp_path / "missing"), "p1-web: P1_WEB_TOKEN_FILE: cannot read"),
    ]:
        r = subprocess.run([ws.P1_WEB], env={**env, var: value}, capture_output=True, text=True, timeout=30)
        assert r.returncode == 2, (var, r.stderr)
        assert r.stderr.startswith(message), r.stderr
    r = subprocess.run([ws.P1_WEB, "--help"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "P1_WEB_TOKEN_FILE" in r.stdout
