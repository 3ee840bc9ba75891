"""The pages in a real browser (Debian's Chromium driven by Playwright) with live data
flowing through the real broker: values change, forms publish retained configuration.
Screenshots at desktop and phone widths go to test-artifacts/web-*.png."""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import web_support as ws

from support import Subscriber, wait_for

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.browser
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def browser() -> Iterator:  # type: ignore[type-arg]
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; `make setup` installs it")
        pytest.skip("chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM,
                              args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield b
        b.close()


class Feeder:
    """Publishes contract payloads like the reader, forecaster and controller would."""

    def __init__(self, broker_port: int, site: str) -> None:
        self.site = site
        self.pub = Subscriber(broker_port, "nothing/#")
        self.stop = threading.Event()
        self.n = 0
        self.thread = threading.Thread(target=self.run, daemon=True)

    def start(self) -> Feeder:
        s = self.site
        for i, avg in enumerate([2100, 2600, 3900, 4400, 3000, 2200, 1800, 2500]):
            self.pub.publish(f"p1/{s}/peak/quarter", ws.quarter(s, 11 + i // 4, 15 * (i % 4), avg), qos=1)
        self.pub.publish(f"p1/{s}/peak/month", ws.month(s), qos=1, retain=True)
        self.pub.publish("p1/status/monitor-kitchen", "online", qos=1, retain=True)
        self.pub.publish("p1/status/switcher-boiler", "offline", qos=1, retain=True)
        self.thread.start()
        return self

    def run(self) -> None:
        s = self.site
        while not self.stop.is_set():
            n = self.n = self.n + 1
            imp = 1500 + 900 * math.sin(n / 3)
            exp = max(0.0, 800 * math.cos(n / 4))
            self.pub.publish(f"p1/{s}/reading", ws.reading(s, round(imp), round(exp), n=n), qos=0)
            fc = 3000 + 40 * n % 1500
            self.pub.publish(f"p1/{s}/peak", ws.peak(s, forecast_w=fc, level="warn" if fc > 3600 else "ok"), qos=0)
            pct = n * 7 % 100
            self.pub.publish(f"p1/{s}/control", ws.control(s, [
                {"id": "boiler", "mode": "proportional", "pct": pct, "reason": f"export {n % 9 * 100} W",
                 "delay_s": 30},
                {"id": "pump", "mode": "surplus", "on": n % 2 == 0, "reason": "on-delay running",
                 "on_delay_remaining_s": 60 - n % 60, "min_on_remaining_s": 0}]), qos=0)
            self.pub.publish(f"p1/{s}/output/boiler/state", ws.output_state(pct=pct), qos=1)
            time.sleep(0.4)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        for t in ("p1/status/monitor-kitchen", "p1/status/switcher-boiler"):
            self.pub.publish(t, b"", qos=1, retain=True)
        self.pub.close()


@pytest.fixture(scope="module")
def live_web(mosquitto, tmp_path_factory) -> Iterator[ws.WebProc]:  # type: ignore[no-untyped-def]
    site = f"browser{os.getpid()}"
    web = ws.WebProc(mosquitto.url, tmp_path_factory.mktemp("webstate"), site=site).start()
    web.http.put(web.api("/config/outputs"), headers=web.auth, json={"outputs": [
        {"id": "boiler", "kind": "dimmer", "rated_w": 1500, "mode": "proportional", "priority": 2},
        {"id": "pump", "kind": "relay", "rated_w": 800, "mode": "surplus", "threshold_w": 1000}]})
    web.http.put(web.api("/config/monitor/monitor-kitchen"), headers=web.auth,
                 json={"max_import_w": 4000, "max_export_w": 3000})
    feeder = Feeder(mosquitto.port, site).start()
    yield web
    feeder.close()
    web.close()


def open_page(browser, web, page: str, viewport: dict[str, int], token: bool = False):  # type: ignore[no-untyped-def]
    ctx = browser.new_context(viewport=viewport, is_mobile=viewport["width"] < 600,
                              has_touch=viewport["width"] < 600)
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    # the Content-Security-Policy refusing something: Chromium says so as a console error,
    # and the page gets a securitypolicyviolation event (both collected)
    console: list[str] = []
    pg.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
    pg.add_init_script("window.__csp = []; document.addEventListener('securitypolicyviolation',"
                       " (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));")
    outside: list[str] = []
    pg.on("request", lambda r: None if r.url.startswith(web.base) else outside.append(r.url))
    pg.goto(f"{web.base}/{page}?site={web.site}")
    if token:
        pg.fill("#token", web.token)
        pg.click("#login button")
        ws.wait_js(pg, "document.getElementById('auth-state').textContent.includes('can write')")
    pg.errors, pg.outside, pg.console = errors, outside, console  # type: ignore[attr-defined]
    return ctx, pg


def csp_problems(pg) -> list[str]:  # type: ignore[no-untyped-def]
    said = [t for t in pg.console if "Content Security Policy" in t]
    return said + pg.evaluate("window.__csp")


def changes(pg, selector: str, timeout_s: float = 10.0) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    first = pg.inner_text(selector)
    second = wait_for(lambda: (lambda t: t if t != first else None)(pg.inner_text(selector)), timeout_s)
    return first, second


def shoot(pg, artifacts: Path, name: str) -> Path:  # type: ignore[no-untyped-def]
    path = artifacts / f"web-{name}.png"
    pg.screenshot(path=str(path), full_page=True)
    return path


def check_clean(pg) -> None:  # type: ignore[no-untyped-def]
    assert pg.errors == [], pg.errors
    assert csp_problems(pg) == []  # no inline script or style the policy would block
    assert pg.outside == [], pg.outside  # every asset from the app itself: no CDN
    # nothing wider than the screen (usable on a phone)
    assert pg.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_live_page(browser, live_web, artifacts, viewport):
    ctx, pg = open_page(browser, live_web, "live", viewport)
    try:
        ws.wait_js(pg, "document.getElementById('l1_voltage_v').textContent === '234.7 V'")
        assert pg.inner_text("#import_t2_kwh") == "477.305 kWh"
        assert pg.inner_text("#gas_m3") == "453.722 m³"
        # a Belgian reading (tariff 1, tariff_low false): T1 is the day register, T2 night
        assert pg.inner_text("#tariff") == "normal · day"
        assert pg.inner_text("#t1_label") == "Normal · day (T1)"
        assert pg.inner_text("#t2_label") == "Low · night (T2)"
        before, after = changes(pg, "#net_w")
        assert before.endswith(" W") and after.endswith(" W")
        changes(pg, "#import_kwh")
        assert pg.locator(".gauge svg").count() == 2
        assert pg.get_attribute("#conn", "class") == "dot on"
        check_clean(pg)
        shoot(pg, artifacts, f"live-{'phone' if viewport is PHONE else 'desktop'}")
    finally:
        ctx.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_peak_page(browser, live_web, artifacts, viewport, subscriber_factory):
    ctx, pg = open_page(browser, live_web, "peak", viewport, token=True)
    try:
        ws.wait_js(pg, "document.getElementById('threshold_w').textContent === '4,000 W'")
        changes(pg, "#forecast_w")
        assert pg.inner_text("#month_peak_w") == "3,100 W"
        assert pg.inner_text("#billed_w") == ws.month(live_web.site)["billed_w"].__format__(",.0f") + " W"
        assert pg.locator("#chart_quarters rect").count() == 9  # 8 closed quarters + the running one
        assert pg.locator("#chart_quarters rect.over").count() == 1  # 4400 W over 4000 W
        assert pg.locator("#chart_months rect").count() == 12
        check_clean(pg)
        shoot(pg, artifacts, f"peak-{'phone' if viewport is PHONE else 'desktop'}")
        if viewport is DESKTOP:
            topic = f"p1/config/{live_web.site}/peak"
            sub = subscriber_factory(topic)
            pg.fill("[name=price_eur_per_kw_year]", "-1")
            pg.click("#peak_form button[type=submit]")
            pg.wait_for_selector("#peak_form .err")
            assert pg.inner_text("#peak_form .err") == "Input should be greater than or equal to 0"
            shoot(pg, artifacts, "peak-form-error")
            pg.fill("[name=price_eur_per_kw_year]", "49.5")
            pg.fill("[name=manual_threshold_w]", "4200")
            pg.click("#peak_form button[type=submit]")
            ws.wait_js(pg, "document.querySelector('#peak_form .msg').textContent === 'saved and published'")
            doc = wait_for(lambda: sub.on(topic) and sub.on(topic)[-1].json())
            assert doc == {"v": 1, "manual_threshold_w": 4200.0, "price_eur_per_kw_year": 49.5,
                           "algorithm": "default"}
            late = subscriber_factory(topic)  # a newcomer gets it as a retained message
            assert late.wait(topic)[0].retain
    finally:
        ctx.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_outputs_page(browser, live_web, artifacts, viewport, subscriber_factory):
    ctx, pg = open_page(browser, live_web, "outputs", viewport, token=True)
    try:
        pg.wait_for_selector("section.output[data-id=boiler] .reason:not(:text('–'))")
        boiler = "section.output[data-id=boiler]"
        changes(pg, f"{boiler} .state")
        assert pg.inner_text(f"{boiler} .mode") == "proportional"
        assert pg.inner_text(f"{boiler} .timers").startswith("delay: 30 s")
        assert "%" in pg.inner_text(f"{boiler} .device")
        pump = "section.output[data-id=pump]"
        assert pg.inner_text(f"{pump} .device") == "no state reported"
        check_clean(pg)
        shoot(pg, artifacts, f"outputs-{'phone' if viewport is PHONE else 'desktop'}")
        if viewport is DESKTOP:
            topic = f"p1/config/{live_web.site}/outputs"
            sub = subscriber_factory(topic)
            pg.fill(f"{pump} [name=threshold_w]", "1200")
            pg.fill(f"{pump} [name=on_delay_s]", "90")
            pg.check(f"{pump} [name=peak_guard]")
            pg.click(f"{pump} button[type=submit]")
            ws.wait_js(pg,
                "document.querySelector('section.output[data-id=pump] .msg').textContent === 'saved and published'")
            doc = wait_for(lambda: (lambda d: d if d["outputs"][1]["on_delay_s"] == 90 else None)(
                sub.wait(topic)[-1].json()))
            assert doc["outputs"][1] == {"id": "pump", "kind": "relay", "rated_w": 800.0, "mode": "surplus",
                                         "threshold_w": 1200.0, "on_delay_s": 90.0, "min_on_s": 300.0,
                                         "priority": 0, "peak_guard": True, "target_net_w": 0.0,
                                         # a relay keeps the ev fields at their defaults
                                         "min_current_a": 6.0, "max_current_a": 16.0, "phases": 1,
                                         "departure": None, "energy_kwh": None, "charger": "mqtt",
                                         "charger_ref": None}
            # a relay cannot be proportional: the form shows why
            pg.select_option(f"{pump} [name=mode]", "proportional")
            pg.click(f"{pump} button[type=submit]")
            pg.wait_for_selector(f"{pump} .err")
            assert pg.inner_text(f"{pump} .err") == "proportional mode needs kind 'dimmer' (a relay can only switch)"
    finally:
        ctx.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_devices_page(browser, live_web, artifacts, viewport, subscriber_factory):
    ctx, pg = open_page(browser, live_web, "devices", viewport, token=True)
    try:
        pg.wait_for_selector("tr[data-client=monitor-kitchen] .badge.online")
        pg.wait_for_selector("tr[data-client=switcher-boiler] .badge.offline")
        ws.wait_js(pg, "document.getElementById('dyn_threshold').value === '4,000'")
        assert pg.input_value("#month_peak") == "3,100"
        assert pg.input_value("[name=device_id]") == "monitor-kitchen"
        assert pg.input_value("#monitor_form [name=max_import_w]") == "4000"
        check_clean(pg)
        shoot(pg, artifacts, f"devices-{'phone' if viewport is PHONE else 'desktop'}")
        if viewport is DESKTOP:
            sub = subscriber_factory(f"p1/config/{live_web.site}/#")
            pub = subscriber_factory("nothing/#")
            pub.publish("p1/status/switcher-boiler", "online", qos=1, retain=True)
            pg.wait_for_selector("tr[data-client=switcher-boiler] .badge.online")
            pub.publish("p1/status/switcher-boiler", "offline", qos=1, retain=True)
            pg.wait_for_selector("tr[data-client=switcher-boiler] .badge.offline")
            pg.fill("#monitor_form [name=max_export_w]", "2500")
            pg.fill("#monitor_form [name=manual_threshold_w]", "3800")
            pg.click("#monitor_form button[type=submit]")
            mon = f"p1/config/{live_web.site}/monitor/monitor-kitchen"
            wait_for(lambda: sub.on(mon) and sub.on(mon)[-1].json() == {
                "v": 1, "max_import_w": 4000.0, "max_export_w": 2500.0})
            peak = f"p1/config/{live_web.site}/peak"
            wait_for(lambda: sub.on(peak) and sub.on(peak)[-1].json()["manual_threshold_w"] == 3800.0)
    finally:
        ctx.close()


def test_api_page_lists_the_operations(browser, live_web, artifacts):
    ctx, pg = open_page(browser, live_web, "docs", DESKTOP)
    try:
        pg.goto(f"{live_web.base}/docs")
        pg.get_by_text("/api/sites/{site}/config/outputs", exact=True).first.wait_for()
        assert pg.locator("#ops section").count() > 20
        check_clean(pg)
        shoot(pg, artifacts, "api-desktop")
    finally:
        ctx.close()


def test_no_page_breaks_the_content_security_policy(browser, live_web):
    """Every page, with the token, through its forms (rendered errors and results too): no
    console error about the Content-Security-Policy, no securitypolicyviolation event."""
    r = live_web.http.get("/live")
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    for page in ("live", "peak", "outputs", "devices", "docs"):
        ctx, pg = open_page(browser, live_web, page, DESKTOP, token=True)
        try:
            if page == "peak":
                ws.wait_js(pg, "document.getElementById('threshold_w').textContent !== '–'")
                pg.fill("[name=price_eur_per_kw_year]", "-1")
                pg.click("#peak_form button[type=submit]")
                pg.wait_for_selector("#peak_form .err")
            elif page == "outputs":
                pg.wait_for_selector("section.output[data-id=boiler] .timers .badge")
                pg.select_option("section.output[data-id=pump] [name=mode]", "proportional")
                pg.click("section.output[data-id=pump] button[type=submit]")
                pg.wait_for_selector("section.output[data-id=pump] .err")
            elif page == "devices":
                pg.wait_for_selector("tr[data-client=monitor-kitchen] .badge.online")
            elif page == "docs":
                pg.get_by_text("/api/sites/{site}/config/outputs", exact=True).first.wait_for()
                pg.locator("td.prose").first.wait_for()
            else:
                ws.wait_js(pg, "document.getElementById('conn').className === 'dot on'")
            assert csp_problems(pg) == [], page
            assert pg.errors == [], pg.errors
        finally:
            ctx.close()
    # and the check sees a violation when there is one: an inline style is refused
    ctx, pg = open_page(browser, live_web, "live", DESKTOP)
    try:
        pg.evaluate("document.body.insertAdjacentHTML('beforeend', '<b style=\"color:red\">x</b>')")
        wait_for(lambda: csp_problems(pg))
        assert any("Content Security Policy" in t for t in pg.console), pg.console
        assert pg.evaluate("window.__csp")[0].startswith("style-src")
    finally:
        ctx.close()
