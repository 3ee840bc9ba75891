"""``P1_WEB_SEED_OUTPUTS`` / ``--seed-outputs``: the outputs document stored and published
for a site that has none (``make run``'s demo boiler and relay), never over a stored one."""

from __future__ import annotations

import json
import os
import subprocess

import web_support as ws

from support import REPO, Subscriber

DEMO = REPO / "deploy" / "demo" / "outputs.json"
# deploy/demo/outputs.json with every default filled in, as the API answers it
BOILER = {"id": "boiler", "kind": "dimmer", "rated_w": 2400.0, "mode": "proportional",
          "threshold_w": 0.0, "on_delay_s": 60.0, "min_on_s": 300.0, "priority": 10,
          "peak_guard": True, "target_net_w": 0.0, **ws.EV_DEFAULTS}
RELAY1 = {"id": "relay1", "kind": "relay", "rated_w": 1500.0, "mode": "surplus",
          "threshold_w": 1500.0, "on_delay_s": 60.0, "min_on_s": 300.0, "priority": 5,
          "peak_guard": False, "target_net_w": 0.0, **ws.EV_DEFAULTS}


def _retained_outputs(broker, site: str) -> dict:
    sub = Subscriber(broker.port, f"p1/config/{site}/outputs")
    try:
        msgs = sub.wait(f"p1/config/{site}/outputs", timeout_s=10)
        assert msgs[0].retain
        return msgs[0].json()
    finally:
        sub.close()


def test_an_empty_store_is_seeded_and_a_stored_document_wins(mosquitto, tmp_path):
    site = "seeded"
    env = {"P1_WEB_SEED_OUTPUTS": str(DEMO)}
    web = ws.WebProc(mosquitto.url, tmp_path, site=site, env=env).start()
    try:
        r = web.http.get(web.api("/config/outputs"))
        assert r.json() == {"v": 1, "outputs": [BOILER, RELAY1]}
        assert _retained_outputs(mosquitto, site) == {"v": 1, "outputs": [BOILER, RELAY1]}
        stored = tmp_path / "web" / "config" / site / "outputs.json"
        assert json.loads(stored.read_text()) == {"v": 1, "outputs": [BOILER, RELAY1]}
        assert f"outputs of site {site} seeded from {DEMO}: boiler, relay1" in web.logs()

        # a change on the page is the document from then on, also after a restart
        r = web.http.put(web.api("/outputs/relay1"), json={**RELAY1, "mode": "on"}, headers=web.auth)
        assert r.status_code == 200
        assert web.stop() == 0
        web.start()
        changed = {"v": 1, "outputs": [BOILER, {**RELAY1, "mode": "on"}]}
        assert web.http.get(web.api("/config/outputs")).json() == changed
        assert _retained_outputs(mosquitto, site) == changed
        assert (f"outputs of site {site}: the stored document (boiler, relay1); {DEMO} is only "
                "for a site without one") in web.logs()

        # the file deleted by hand (its .bak stays): the demo document comes back
        assert web.stop() == 0
        stored.unlink()
        assert stored.with_name("outputs.json.bak").exists()
        web.start()
        assert web.http.get(web.api("/config/outputs")).json() == {
            "v": 1, "outputs": [BOILER, RELAY1]}
    finally:
        web.close()
        cleaner = Subscriber(mosquitto.port)  # the session-wide broker: leave no retained doc
        cleaner.publish(f"p1/config/{site}/outputs", b"", retain=True)
        cleaner.close()


def test_a_stored_file_that_is_not_valid_is_not_overwritten(mosquitto, tmp_path):
    site = "seedbad"
    stored = tmp_path / "web" / "config" / site / "outputs.json"
    stored.parent.mkdir(parents=True)
    stored.write_text('{"v": 1, "outputs": [{"id": "x", "rated_w": -1}]}')
    web = ws.WebProc(mosquitto.url, tmp_path, site=site,
                     env={"P1_WEB_SEED_OUTPUTS": str(DEMO)}).start()
    try:
        assert web.http.get(web.api("/config/outputs")).json() == {"v": 1, "outputs": []}
        assert stored.read_text() == '{"v": 1, "outputs": [{"id": "x", "rated_w": -1}]}'
        assert (f"outputs of site {site}: the stored file is not valid (see above); not seeded "
                f"from {DEMO}") in web.logs()
    finally:
        web.close()


def test_a_bad_seed_file_stops_the_web_naming_the_field(tmp_path):
    bad = tmp_path / "outputs.json"
    bad.write_text('{"v": 1, "outputs": [{"id": "pump", "kind": "relay", "rated_w": 800, '
                   '"mode": "proportional"}]}')
    env = {k: v for k, v in os.environ.items() if not k.startswith("P1_WEB_")}
    env.update(P1_STATE_DIR=str(tmp_path / "state"), MQTT_URL="mqtt://127.0.0.1:1")
    r = subprocess.run([ws.P1_WEB, "--seed-outputs", str(bad)], env=env, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 2
    assert r.stderr.strip().endswith(
        f"p1-web: --seed-outputs / P1_WEB_SEED_OUTPUTS: {str(bad)!r}: outputs[0].mode: "
        "proportional mode needs kind 'dimmer' (a relay can only switch)")

    missing = tmp_path / "nope.json"
    r = subprocess.run([ws.P1_WEB, "--seed-outputs", str(missing)], env=env, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 2
    assert r.stderr.strip().endswith(
        f"p1-web: --seed-outputs / P1_WEB_SEED_OUTPUTS: cannot read {str(missing)!r}: "
        "No such file or directory")
