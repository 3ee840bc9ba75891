"""REST API against a real p1-web process and the real Mosquitto: every endpoint,
bad values with their exact 422 messages, auth, retained publication."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
import web_support as ws

from support import wait_for


def problems(r: httpx.Response) -> list[tuple[str, str]]:
    assert r.status_code == 422, r.text
    return [(d["field"], d["msg"]) for d in r.json()["detail"]]


# -- defaults and good writes ------------------------------------------------------------
def test_get_defaults_when_nothing_stored(web):
    assert web.http.get(web.api("/config/outputs")).json() == {"v": 1, "outputs": []}
    assert web.http.get(web.api("/config/peak")).json() == {
        "v": 1, "manual_threshold_w": 2500.0, "price_eur_per_kw_year": 53.0, "algorithm": "default"}
    assert web.http.get(web.api("/config/site")).json() == {
        "v": 1, "name": "Home", "timezone": "Europe/Brussels"}
    assert web.http.get(web.api("/config/monitor/mon-1")).json() == {
        "v": 1, "max_import_w": 5000.0, "max_export_w": 5000.0}
    assert web.http.get(web.api("/config/monitor")).json() == {}
    assert web.http.get(web.api("/config/switcher")).json() == {}
    r = web.http.get(web.api("/config/switcher/sw-1"))
    assert r.status_code == 404
    assert r.json() == {"detail": f"no switcher configuration for 'sw-1' on site '{web.site}'"}
    sites = web.http.get("/api/sites").json()
    assert sites["default"] == "home" and "home" in sites["sites"] and web.site not in sites["sites"]


def test_put_every_document_is_stored_and_published_retained(web, subscriber_factory):
    sub = subscriber_factory(f"p1/config/{web.site}/#")
    outputs = {"v": 1, "outputs": [
        {"id": "boiler", "kind": "dimmer", "rated_w": 1500, "mode": "proportional", "priority": 2},
        {"id": "pump", "rated_w": 800, "mode": "surplus", "threshold_w": 1000, "on_delay_s": 60,
         "min_on_s": 600, "peak_guard": True},
    ]}
    r = web.http.put(web.api("/config/outputs"), json=outputs, headers=web.auth)
    assert r.status_code == 200
    assert r.json()["outputs"][1] == {
        "id": "pump", "kind": "relay", "rated_w": 800.0, "mode": "surplus", "threshold_w": 1000.0,
        "on_delay_s": 60.0, "min_on_s": 600.0, "priority": 0, "peak_guard": True, "target_net_w": 0.0,
        "min_current_a": 6.0, "max_current_a": 16.0, "phases": 1, "departure": None,
        "energy_kwh": None, "charger": "mqtt", "charger_ref": None}
    peak = {"manual_threshold_w": 4000, "price_eur_per_kw_year": 48.5, "algorithm": "baseline"}
    assert web.http.put(web.api("/config/peak"), json=peak, headers=web.auth).status_code == 200
    mon = {"max_import_w": 9000, "max_export_w": 3000}
    assert web.http.put(web.api("/config/monitor/mon-1"), json=mon, headers=web.auth).status_code == 200
    sw = {"output_id": "boiler", "firing": "burst"}
    assert web.http.put(web.api("/config/switcher/sw-1"), json=sw, headers=web.auth).status_code == 200
    site = {"name": "Gent", "timezone": "Europe/Brussels"}
    assert web.http.put(web.api("/config/site"), json=site, headers=web.auth).status_code == 200

    base = f"p1/config/{web.site}"
    msgs = {m.topic: m for m in sub.wait(f"{base}/#", count=5)}
    assert set(msgs) == {f"{base}/outputs", f"{base}/peak", f"{base}/monitor/mon-1",
                         f"{base}/switcher/sw-1", f"{base}/site"}
    assert all(m.qos == 1 for m in msgs.values())
    assert msgs[f"{base}/peak"].json() == {"v": 1, "manual_threshold_w": 4000.0,
                                            "price_eur_per_kw_year": 48.5, "algorithm": "baseline"}
    assert msgs[f"{base}/monitor/mon-1"].json() == {"v": 1, "max_import_w": 9000.0, "max_export_w": 3000.0}
    assert msgs[f"{base}/switcher/sw-1"].json() == {"v": 1, "output_id": "boiler", "firing": "burst", "oled": True}
    assert msgs[f"{base}/outputs"].json()["outputs"][0]["id"] == "boiler"
    # retained: a new subscriber gets them all
    late = subscriber_factory(f"{base}/#")
    got = late.wait(f"{base}/#", count=5)
    assert all(m.retain for m in got)
    # and GET answers what was stored
    assert web.http.get(web.api("/config/monitor")).json() == {
        "mon-1": {"v": 1, "max_import_w": 9000.0, "max_export_w": 3000.0}}
    assert web.http.get(web.api("/config/switcher/sw-1")).json()["firing"] == "burst"
    whole = web.http.get(web.api("/config")).json()
    assert whole["site"]["name"] == "Gent" and whole["peak"]["algorithm"] == "baseline"
    assert list(whole["monitor"]) == ["mon-1"] and list(whole["switcher"]) == ["sw-1"]


def test_per_output_put_get_delete(web, subscriber_factory):
    base = f"p1/config/{web.site}/outputs"
    r = web.http.put(web.api("/outputs/boiler"), json={"kind": "dimmer", "rated_w": 2000, "mode": "proportional"},
                     headers=web.auth)
    assert r.status_code == 200 and [o["id"] for o in r.json()["outputs"]] == ["boiler"]
    r = web.http.put(web.api("/outputs/pump"), json={"id": "pump", "rated_w": 700}, headers=web.auth)
    assert [o["id"] for o in r.json()["outputs"]] == ["boiler", "pump"]
    # replacing keeps the position
    r = web.http.put(web.api("/outputs/boiler"), json={"kind": "dimmer", "rated_w": 2400, "mode": "off"},
                     headers=web.auth)
    assert [(o["id"], o["rated_w"]) for o in r.json()["outputs"]] == [("boiler", 2400.0), ("pump", 700.0)]
    assert web.http.get(web.api("/outputs/pump")).json()["rated_w"] == 700.0
    sub = subscriber_factory(base)
    assert sub.wait(base)[-1].json()["outputs"][0]["rated_w"] == 2400.0
    r = web.http.delete(web.api("/outputs/boiler"), headers=web.auth)
    assert r.status_code == 200 and [o["id"] for o in r.json()["outputs"]] == ["pump"]
    wait_for(lambda: [o["id"] for o in sub.on(base)[-1].json()["outputs"]] == ["pump"])
    r = web.http.delete(web.api("/outputs/boiler"), headers=web.auth)
    assert r.status_code == 404 and r.json() == {"detail": f"no output 'boiler' on site '{web.site}'"}
    assert web.http.get(web.api("/outputs/boiler")).status_code == 404


def test_delete_device_document_clears_the_retained_message(web, subscriber_factory):
    topic = f"p1/config/{web.site}/monitor/mon-2"
    web.http.put(web.api("/config/monitor/mon-2"), json={"max_import_w": 4000}, headers=web.auth)
    sub = subscriber_factory(topic)
    sub.wait(topic)
    r = web.http.delete(web.api("/config/monitor/mon-2"), headers=web.auth)
    assert r.status_code == 204
    wait_for(lambda: sub.on(topic)[-1].payload == b"")
    late = subscriber_factory(topic)
    time.sleep(0.3)
    assert late.on(topic) == []  # nothing retained any more
    assert web.http.delete(web.api("/config/monitor/mon-2"), headers=web.auth).status_code == 404
    web.http.put(web.api("/config/switcher/sw-9"), json={"output_id": "boiler"}, headers=web.auth)
    assert web.http.delete(web.api("/config/switcher/sw-9"), headers=web.auth).status_code == 204
    assert web.http.get(web.api("/config/switcher/sw-9")).status_code == 404


# -- refused values: the exact messages ----------------------------------------------------
BAD = [
    ("/config/outputs", {"outputs": [{"id": "boiler", "rated_w": 0}]},
     [("outputs[0].rated_w", "Input should be greater than 0")]),
    ("/config/outputs", {"outputs": [{"id": "a b", "rated_w": 100}]},
     [("outputs[0].id", "String should match pattern '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'")]),
    ("/config/outputs", {"outputs": [{"id": "x", "rated_w": 100, "mode": "auto"}]},
     [("outputs[0].mode", "Input should be 'off', 'on', 'tariff', 'surplus', 'proportional' or 'ev'")]),
    ("/config/outputs", {"outputs": [{"id": "x", "rated_w": 100, "mode": "proportional"}]},
     [("outputs[0].mode", "proportional mode needs kind 'dimmer' (a relay can only switch)")]),
    ("/config/outputs", {"outputs": [{"id": "x", "rated_w": 100}, {"id": "x", "rated_w": 200}]},
     [("outputs[1].id", "duplicate output id 'x'")]),
    ("/config/outputs", {"outputs": [{"id": "x", "rated_w": 100, "min_on_s": -1, "colour": "red"}]},
     [("outputs[0].min_on_s", "Input should be greater than or equal to 0"),
      ("outputs[0].colour", "Extra inputs are not permitted")]),
    ("/config/outputs", {"v": 2, "outputs": []},
     [("v", "only contract version 1 is supported, got 2")]),
    ("/config/outputs", {"outputs": [{"rated_w": 100}]}, [("outputs[0].id", "Field required")]),
    ("/config/peak", {"manual_threshold_w": -5},
     [("manual_threshold_w", "Input should be greater than or equal to 0")]),
    ("/config/peak", {"price_eur_per_kw_year": "cheap"},
     [("price_eur_per_kw_year", "Input should be a valid number, unable to parse string as a number")]),
    ("/config/peak", {"algorithm": "magic"}, [("algorithm", "Input should be 'default' or 'baseline'")]),
    ("/config/monitor/mon-1", {"max_import_w": 0, "max_export_w": 200000},
     [("max_import_w", "Input should be greater than 0"),
      ("max_export_w", "Input should be less than or equal to 100000")]),
    ("/config/switcher/sw-1", {"firing": "phase"}, [("output_id", "Field required")]),
    ("/config/switcher/sw-1", {"output_id": "boiler", "firing": "zero"},
     [("firing", "Input should be 'phase' or 'burst'")]),
    ("/config/site", {"timezone": "Mars/Base"},
     [("timezone", "'Mars/Base' is not an IANA time zone (e.g. Europe/Brussels)")]),
    ("/config/site", {"name": ""}, [("name", "String should have at least 1 character")]),
    ("/outputs/boiler", {"id": "pump", "rated_w": 100},
     [("id", "'pump' is not the output id of the path ('boiler')")]),
    ("/outputs/boiler", {"rated_w": 100, "mode": "proportional"},
     [("mode", "proportional mode needs kind 'dimmer' (a relay can only switch)")]),
    ("/outputs/boiler", {"rated_w": 60000}, [("rated_w", "Input should be less than or equal to 50000")]),
]


@pytest.mark.parametrize(("path", "body", "expected"), BAD, ids=[f"{p}-{i}" for i, (p, _, _) in enumerate(BAD)])
def test_bad_values_are_refused_with_field_and_reason(web, path, body, expected):
    r = web.http.put(web.api(path), json=body, headers=web.auth)
    assert problems(r) == expected
    assert r.json()["message"] == "; ".join(f"{f}: {m}" for f, m in expected)


def test_bad_paths_and_bodies(web):
    r = web.http.put("/api/sites/Bad Site/config/peak", json={}, headers=web.auth)
    assert problems(r) == [("site", "String should match pattern '^[a-z0-9][a-z0-9_-]{0,62}$'")]
    r = web.http.put(web.api("/config/monitor/.."), json={}, headers=web.auth)
    assert r.status_code in (404, 405, 422)  # '..' never names a file (the client folds it)
    r = web.http.put(web.api("/config/monitor/.hidden"), json={}, headers=web.auth)
    assert problems(r) == [("device_id", "String should match pattern '^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$'")]
    r = web.http.put(web.api("/config/peak"), content=b"{not json", headers={**web.auth, "Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"][0]["type"] == "json_invalid"
    r = web.http.put(web.api("/config/peak"), json=[1, 2], headers=web.auth)
    assert problems(r) == [("body", "Input should be a valid dictionary or object to extract fields from")]
    # nothing was stored by any refused write
    assert web.http.get(web.api("/config/peak")).json()["manual_threshold_w"] == 2500.0


# -- auth -------------------------------------------------------------------------------------
WRITES = [
    ("PUT", "/config/outputs", {"outputs": []}), ("PUT", "/config/peak", {}), ("PUT", "/config/site", {}),
    ("PUT", "/config/monitor/m1", {}), ("PUT", "/config/switcher/s1", {"output_id": "x"}),
    ("PUT", "/outputs/x", {"rated_w": 10}), ("DELETE", "/outputs/x", None),
    ("DELETE", "/config/monitor/m1", None), ("DELETE", "/config/switcher/s1", None),
]


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
def test_writes_need_the_token(web, method, path, body):
    r = web.http.request(method, web.api(path), json=body)
    assert r.status_code == 401
    assert r.json() == {"detail": "writing needs the token: send 'Authorization: Bearer <token>'"}
    assert r.headers["www-authenticate"] == "Bearer"
    r = web.http.request(method, web.api(path), json=body, headers={"Authorization": "Bearer nope-nope-nope"})
    assert r.status_code == 401 and r.json() == {"detail": "wrong token"}
    # even a bad body is refused for the token first
    r = web.http.request(method, web.api(path), json={"junk": 1})
    assert r.status_code == 401


def test_auth_endpoint(web):
    assert web.http.get("/api/auth").json() == {"write": False, "protect_reads": False}
    assert web.http.get("/api/auth", headers=web.auth).json() == {"write": True, "protect_reads": False}


def test_protected_reads(mosquitto, tmp_path, site):
    web = ws.WebProc(mosquitto.url, tmp_path, site=site, env={"P1_WEB_PROTECT_READS": "true"}).start()
    try:
        r = web.http.get(web.api("/config/peak"))
        assert r.status_code == 401
        assert r.json() == {"detail": "reading is protected (P1_WEB_PROTECT_READS): send the token"}
        assert web.http.get("/api/sites").status_code == 401
        assert web.http.get(web.api("/events")).status_code == 401
        assert web.http.get(web.api("/config/peak"), headers=web.auth).status_code == 200
        # ?token= only where a browser cannot send a header: the event stream
        assert web.http.get(web.api("/config/peak"), params={"token": web.token}).status_code == 401
        with web.http.stream("GET", web.api("/events"), params={"token": web.token}) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        assert web.http.get("/api/auth").json() == {"write": False, "protect_reads": True}
        # the pages themselves hold no data and stay reachable (they ask for the token)
        assert web.http.get("/live").status_code == 200
    finally:
        web.close()


# -- live values -------------------------------------------------------------------------------
def test_latest_values_from_mqtt(web, subscriber_factory):
    s = web.site
    for path in ("/reading", "/peak", "/peak/month", "/control"):
        r = web.http.get(web.api(path))
        assert r.status_code == 404
    assert web.http.get(web.api("/reading")).json() == {"detail": f"no reading received yet for site '{s}'"}
    pub = subscriber_factory("nothing/#")
    pub.publish(f"p1/{s}/reading", ws.reading(s, 1234.0), qos=0, retain=True)
    pub.publish(f"p1/{s}/peak", ws.peak(s), qos=0)
    pub.publish(f"p1/{s}/peak/month", ws.month(s), qos=1)
    pub.publish(f"p1/{s}/peak/quarter", ws.quarter(s, 13, 0, 2800.0), qos=1)
    pub.publish(f"p1/{s}/peak/quarter", ws.quarter(s, 13, 15, 3300.0), qos=1)
    ctl = ws.control(s, [{"id": "boiler", "mode": "proportional", "pct": 41.5, "reason": "export 620 W"}])
    pub.publish(f"p1/{s}/control", ctl, qos=0)
    pub.publish(f"p1/{s}/output/boiler/state", ws.output_state(pct=41.5), qos=1)
    pub.publish("p1/status/monitor-kitchen", "online", qos=1)
    wait_for(lambda: web.http.get(web.api("/states")).json())
    assert web.http.get(web.api("/reading")).json()["import_w"] == 1234.0
    assert web.http.get(web.api("/peak")).json()["forecast_w"] == 3200.0
    assert web.http.get(web.api("/peak/month")).json()["billed_w"] == ws.month(s)["billed_w"]
    wait_for(lambda: len(web.http.get(web.api("/peak/quarters")).json()) == 2)
    assert [q["avg_w"] for q in web.http.get(web.api("/peak/quarters")).json()] == [2800.0, 3300.0]
    assert web.http.get(web.api("/control")).json() == ctl
    assert web.http.get(web.api("/states")).json() == {"boiler": ws.output_state(pct=41.5)}
    wait_for(lambda: any(x["client_id"] == "monitor-kitchen" for x in web.http.get("/api/status").json()))
    st = {x["client_id"]: x for x in web.http.get("/api/status").json()}
    assert st["monitor-kitchen"]["state"] == "online"
    live = web.http.get(web.api("/live")).json()
    assert live["reading"]["import_w"] == 1234.0 and live["peak"]["level"] == "ok"
    assert s in web.http.get("/api/sites").json()["sites"]


def test_bad_payloads_are_ignored_and_the_last_good_value_stays(web, subscriber_factory):
    s = web.site
    pub = subscriber_factory("nothing/#")
    pub.publish(f"p1/{s}/reading", ws.reading(s, 500.0), qos=0)
    wait_for(lambda: web.http.get(web.api("/reading")).status_code == 200)
    pub.publish(f"p1/{s}/reading", b"{broken", qos=0)
    pub.publish(f"p1/{s}/reading", {"site": s, "source": "sim", "ts": "x", "import_w": "lots"}, qos=0)
    pub.publish(f"p1/{s}/peak", {"v": 1, "site": s}, qos=0)
    pub.publish(f"p1/{s}/reading", {**ws.reading(s, 600.0), "brand_new_field_w": 1.0}, qos=0)
    wait_for(lambda: web.http.get(web.api("/reading")).json()["import_w"] == 600.0)
    assert web.http.get(web.api("/peak")).status_code == 404
    assert "ignored a bad payload" in web.logs()


def test_event_stream(web, subscriber_factory):
    s = web.site
    pub = subscriber_factory("nothing/#")
    pub.publish(f"p1/{s}/reading", ws.reading(s, 100.0), qos=0)
    wait_for(lambda: web.http.get(web.api("/reading")).status_code == 200)
    events: list[tuple[str, dict]] = []
    stop = threading.Event()

    def feed() -> None:
        n = 1
        while not stop.is_set():
            pub.publish(f"p1/{s}/reading", ws.reading(s, 100.0 + n, n=n), qos=0)
            n += 1
            time.sleep(0.1)

    t = threading.Thread(target=feed, daemon=True)
    with httpx.Client(base_url=web.base, timeout=10) as client, client.stream("GET", web.api("/events")) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        t.start()
        kind = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                events.append((kind or "", json.loads(line[6:])))
                if kind == "reading" and len([e for e in events if e[0] == "reading"]) >= 3:
                    break
        stop.set()
        t.join()
    assert events[0][0] == "snapshot"
    snap = events[0][1]
    assert snap["reading"]["import_w"] == 100.0 and snap["config"]["peak"]["manual_threshold_w"] == 2500.0
    values = [e[1]["import_w"] for e in events if e[0] == "reading"]
    assert values == sorted(values) and values[0] > 100.0


def test_pages_and_assets_are_served_without_any_cdn(web):
    for page in ("/live", "/peak", "/outputs", "/devices", "/docs"):
        r = web.http.get(page, params={"site": web.site})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert f'data-site="{web.site}"' in r.text
        assert "https://" not in r.text and "http://" not in r.text
    assert web.http.get("/").status_code == 307
    bad = web.http.get("/live", params={"site": "<script>"}).text  # not a slug: the default site
    assert 'data-site="home"' in bad and "<script>\"" not in bad
    for name in ("app.js", "live.js", "peak.js", "outputs.js", "devices.js", "api.js", "style.css"):
        r = web.http.get(f"/static/{name}")
        assert r.status_code == 200
        text = r.text.replace("http://www.w3.org/2000/svg", "")  # an XML namespace, not a fetch
        assert "http://" not in text and "https://" not in text and "@import" not in text, name
    assert web.http.get("/static/app.py").status_code == 404
    assert web.http.get("/static/..%2Fapp.py").status_code == 404
    spec = web.http.get("/openapi.json").json()
    assert spec["info"]["title"] == "P1 energy stack web"
    assert "/api/sites/{site}/config/outputs" in spec["paths"]
    assert web.http.get("/healthz").text == "ok\n"
