"""The whole stack (``make run``: broker, meter-sim on a pty, p1-reader, peak-forecaster,
load-controller, web) with the web in a browser: live values from the simulated meter;
the Outputs page lists the simulated boiler and relay1 (seeded from
deploy/demo/outputs.json, the one document the load-controller also drives them from)
with their live state; an edit on the page reaches the load-controller; Ctrl-C stops it
all without an ERROR."""

from __future__ import annotations

import os
import re

import httpx
import pytest
import web_support as ws

from support import Stack, running_stack, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.browser]
MODULES = ("meter_sim.cli", "p1_reader.cli", "peak_forecaster.cli", "load_controller.cli")


def test_stack_with_the_browser(tmp_path, artifacts):
    for name in MODULES:
        pytest.importorskip(name)
    if not os.path.exists("/usr/bin/chromium"):
        pytest.skip("chromium is not installed")
    from playwright.sync_api import sync_playwright

    with running_stack(tmp_path) as stack:
        _drive(stack, tmp_path, artifacts, sync_playwright)
    out = stack.output
    assert stack.proc.returncode == 0, out
    assert "Traceback" not in out
    assert not re.search(r"\bERROR\b", out), [ln for ln in out.splitlines() if "ERROR" in ln]


def _control_output(stack: Stack, output_id: str) -> list[dict]:
    return [o for m in stack.sub.on("p1/home/control") for o in m.json().get("outputs", [])
            if o.get("id") == output_id]


def _drive(stack: Stack, tmp_path, artifacts, sync_playwright) -> None:
    sub = stack.sub
    base = f"http://127.0.0.1:{stack.web_port}"
    http = httpx.Client(base_url=base, timeout=10)
    try:  # meter-sim -> pty -> p1-reader -> broker -> web
        wait_for(lambda: _get(http, "/api/sites/home/reading"), timeout_s=60, interval_s=0.5)
    except AssertionError:
        pytest.fail("no reading reached the web within 60 s (see the stack's output below)")
    # the simulated devices report their state (meter-sim, driven by the load-controller)
    wait_for(lambda: sub.on("p1/home/output/boiler/state") and sub.on("p1/home/output/relay1/state"),
             timeout_s=30)
    token = (tmp_path / "web" / "token").read_text().strip()  # generated at first start
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        pg = browser.new_page(viewport={"width": 1280, "height": 900})
        pg.goto(f"{base}/live")
        ws.wait_js(pg, "document.getElementById('import_kwh').textContent.endsWith('kWh')")
        first = pg.inner_text("#ts")
        wait_for(lambda: pg.inner_text("#ts") != first, timeout_s=10)  # a new telegram shown
        pg.screenshot(path=str(artifacts / "web-stack-live.png"), full_page=True)

        # the Outputs page: the demo's two outputs, nothing to add first
        pg.goto(f"{base}/outputs")
        boiler, relay = "section.output[data-id=boiler]", "section.output[data-id=relay1]"
        pg.wait_for_selector(boiler)
        pg.wait_for_selector(relay)
        assert pg.eval_on_selector_all("section.output", "cs => cs.map(c => c.dataset.id)") == [
            "boiler", "relay1"]
        assert pg.input_value(f"{boiler} [name=mode]") == "proportional"
        assert pg.input_value(f"{boiler} [name=rated_w]") == "2400"
        assert pg.input_value(f"{relay} [name=mode]") == "surplus"
        assert pg.input_value(f"{relay} [name=threshold_w]") == "1500"
        for card in (boiler, relay):  # live: the controller's decision and the device's state
            ws.wait_js(pg, f"document.querySelector('{card} .decision').textContent "
                                 "!== 'no control data'")
            ws.wait_js(pg, f"document.querySelector('{card} .device').textContent "
                                 "!== 'no state reported'")
        assert re.fullmatch(r"\d+ %", pg.inner_text(f"{boiler} .state"))  # a dimmer: percent
        assert pg.inner_text(f"{relay} .state") in ("on", "off")
        assert re.fullmatch(r"(on|off) · \d\d:\d\d:\d\d", pg.inner_text(f"{relay} .device"))
        pg.screenshot(path=str(artifacts / "web-stack-outputs.png"), full_page=True)

        # an edit: relay1 from surplus to on
        pg.fill("#token", token)
        pg.click("#login button")
        ws.wait_js(pg, "document.getElementById('auth-state').textContent === '✓ can write'")
        pg.select_option(f"{relay} [name=mode]", "on")
        pg.click(f"{relay} button[type=submit]")
        ws.wait_js(pg, f"document.querySelector('{relay} .msg').textContent "
                             "=== 'saved and published'")
        # the retained document on the broker ...
        wait_for(lambda: any(m.payload and [o["mode"] for o in m.json()["outputs"]] == [
            "proportional", "on"] for m in sub.on("p1/config/home/outputs")), timeout_s=10)
        # ... the load-controller acting on it: relay1 is on in `control` and commanded on
        wait_for(lambda: any(o.get("mode") == "on" and o.get("on") is True
                             for o in _control_output(stack, "relay1")), timeout_s=20)
        wait_for(lambda: any(m.json().get("on") is True
                             for m in sub.on("p1/home/output/relay1/set")), timeout_s=20)
        # ... and the page showing it
        ws.wait_js(pg, f"document.querySelector('{relay} .mode').textContent === 'on'")
        ws.wait_js(pg, f"document.querySelector('{relay} .state').textContent === 'on'")
        # ... and the simulated relay switched: its state report says on
        ws.wait_js(pg, f"document.querySelector('{relay} .device').textContent"
                             ".startsWith('on · ')", timeout_s=20)
        pg.screenshot(path=str(artifacts / "web-stack-outputs-edited.png"), full_page=True)
        browser.close()


def _get(http: httpx.Client, path: str) -> dict | None:
    try:
        r = http.get(path)
    except httpx.TransportError:
        return None
    return r.json() if r.status_code == 200 else None
