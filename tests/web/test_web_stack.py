"""The whole stack (``make run``: broker, meter-sim on a pty, p1-reader, peak-forecaster,
load-controller, web) with the web in a browser: live values from the simulated meter,
a form that configures the boiler, and the load-controller acting on it."""

from __future__ import annotations

import json
import os

import httpx
import pytest

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


def _drive(stack: Stack, tmp_path, artifacts, sync_playwright) -> None:
    """Live page, a form that sets the boiler on, the controller commanding it."""
    sub = stack.sub
    base = f"http://127.0.0.1:{stack.web_port}"
    http = httpx.Client(base_url=base, timeout=10)
    try:  # meter-sim -> pty -> p1-reader -> broker -> web
        wait_for(lambda: _get(http, "/api/sites/home/reading"), timeout_s=60, interval_s=0.5)
    except AssertionError:
        pytest.fail("no reading reached the web within 60 s (see the stack's output below)")
    token = (tmp_path / "web" / "token").read_text().strip()  # generated at first start
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        pg = browser.new_page(viewport={"width": 1280, "height": 900})
        pg.goto(f"{base}/live")
        pg.wait_for_function("document.getElementById('import_kwh').textContent.endsWith('kWh')")
        first = pg.inner_text("#ts")
        wait_for(lambda: pg.inner_text("#ts") != first, timeout_s=10)  # a new telegram shown
        pg.screenshot(path=str(artifacts / "web-stack-live.png"), full_page=True)
        pg.goto(f"{base}/outputs")
        pg.fill("#token", token)
        pg.click("#login button")
        pg.fill("#new_output [name=id]", "boiler")
        pg.select_option("#new_output [name=kind]", "dimmer")
        pg.fill("#new_output [name=rated_w]", "2400")
        pg.click("#new_output button[type=submit]")
        card = "section.output[data-id=boiler]"
        pg.wait_for_selector(card)
        pg.select_option(f"{card} [name=mode]", "on")
        pg.click(f"{card} button[type=submit]")
        # the retained configuration on the broker ...
        wait_for(lambda: any(m.json()["outputs"] and m.json()["outputs"][0]["mode"] == "on"
                             for m in sub.on("p1/config/home/outputs") if m.payload), timeout_s=10)
        # ... and the load-controller acting on it: the boiler is commanded on
        wait_for(lambda: any(o.get("id") == "boiler" and o.get("mode") == "on"
                             for m in sub.on("p1/home/control") for o in m.json().get("outputs", [])),
                 timeout_s=20)
        pg.wait_for_function(
            "document.querySelector('section.output[data-id=boiler] .decision').textContent !== 'no control data'")
        pg.screenshot(path=str(artifacts / "web-stack-outputs.png"), full_page=True)
        browser.close()
    sets = sub.wait("p1/home/output/boiler/set", timeout_s=20)
    last = json.loads(sets[-1].payload)
    assert last.get("on") is True or last.get("pct", 0) > 0


def _get(http: httpx.Client, path: str) -> dict | None:
    try:
        r = http.get(path)
    except httpx.TransportError:
        return None
    return r.json() if r.status_code == 200 else None
