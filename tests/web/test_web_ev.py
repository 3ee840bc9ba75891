"""The EV card of the Outputs page in a real headless Chromium: a ``control`` payload built
with the contract's models (p1common.payloads.EvDecision) goes over the real broker to a
real p1-web; the card shows current, power, energy against the target, ETA, the raise, the
reason and tonight's plan, values exact. And the form takes an ev output and its fields."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import web_support as ws
from test_web_browser import DESKTOP, PHONE, browser, check_clean, open_page, shoot  # noqa: F401

from p1common.payloads import Control, EvDecision, EvPlanSlot, OutputDecision
from support import Mosquitto, Subscriber, wait_for

pytestmark = pytest.mark.browser
REASON = ("ev: 16 A x 3 from the plan (quarter 22:45, threshold 2,500 W); ready 05:15 for "
          "departure 07:30")
BASE = [1800, 1500, 1200, 900, 800, 800, 700, 700]
CAR = [0, 0, 1000, 1300, 1600, 1700, 1700, 1800]
THRESHOLD = [2500, 2500, 2500, 2500, 2500, 2500, 2900, 2900]
TIMES = ["22:00", "22:15", "22:30", "22:45", "23:00", "23:15", "23:30", "23:45"]


def ev_control(site: str) -> dict:  # type: ignore[type-arg]
    plan = [EvPlanSlot(start=f"2026-01-15T{t}:00+01:00", power_w=p, base_w=b, threshold_w=th)
            for t, p, b, th in zip(TIMES, CAR, BASE, THRESHOLD, strict=True)]
    ev = EvDecision(current_a=16, phases=3, power_w=11040, connected=True, session_wh=12345,
                    target_wh=30000, departure="2026-01-16T07:30:00+01:00",
                    eta="2026-01-16T05:15:00+01:00", raise_w=400, raise_cost_eur_year=18.52,
                    plan=plan)
    out = OutputDecision(id="car", kind="ev", mode="ev", priority=5, decision="current", on=True,
                         level_w=11040, reason=REASON, on_delay_remaining_s=None,
                         min_on_remaining_s=None, following=True, device="16 A, 11,040 W",
                         seq=42, ev=ev)
    doc = Control(site=site, ts="2026-01-15T22:47:03+01:00", watchdog=False, outputs=[out])
    return doc.model_dump(mode="json")


@pytest.fixture(scope="module")
def ev_web(mosquitto: Mosquitto, tmp_path_factory) -> Iterator[ws.WebProc]:  # type: ignore[no-untyped-def]
    site = f"evweb{os.getpid()}"
    web = ws.WebProc(mosquitto.url, tmp_path_factory.mktemp("evweb"), site=site).start()
    r = web.http.put(web.api("/config/outputs"), headers=web.auth, json={"outputs": [
        {"id": "car", "kind": "ev", "mode": "ev", "rated_w": 11040, "phases": 3,
         "max_current_a": 16, "departure": "07:30", "energy_kwh": 30, "priority": 5},
        {"id": "pump", "kind": "relay", "rated_w": 800, "mode": "surplus"}]})
    assert r.status_code == 200, r.text
    pub = Subscriber(mosquitto.port)
    pub.publish(f"p1/{site}/control", ev_control(site), retain=True)
    yield web
    pub.publish(f"p1/{site}/control", b"", retain=True)
    pub.publish(f"p1/config/{site}/outputs", b"", retain=True)
    pub.close()
    web.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_ev_card(browser, ev_web, artifacts, viewport):  # type: ignore[no-untyped-def]  # noqa: F811
    ctx, pg = open_page(browser, ev_web, "outputs", viewport)
    car = "section.output[data-id=car]"
    try:
        pg.wait_for_selector(f"{car} .ev:not([hidden]) .ev-current:text('16 A')")
        assert pg.inner_text(f"{car} .ev-current") == "16 A × 3 phases"
        assert pg.inner_text(f"{car} .ev-power") == "11,040 W"
        assert pg.inner_text(f"{car} .ev-energy") == "12.3 / 30.0 kWh"
        assert pg.inner_text(f"{car} .ev-eta") == "05:15 (departure 07:30)"
        assert pg.inner_text(f"{car} .ev-raise") == "+400 W · 18.52 EUR/year"
        assert pg.inner_text(f"{car} .reason") == REASON
        assert pg.inner_text(f"{car} .mode") == "ev"
        width = pg.evaluate(f"document.querySelector('{car} .ev-bar > span').style.width")
        assert float(width.rstrip("%")) == pytest.approx(100 * 12345 / 30000)
        # the plan: the house (every quarter), the car on top where it charges, the threshold
        titles = pg.eval_on_selector_all(f"{car} .ev-plan rect title", "ts => ts.map(t => t.textContent)")
        want = []
        for t, b, p in zip(TIMES, BASE, CAR, strict=True):
            want.append(f"{t} house {b:,} W")
            if p:
                want.append(f"{t} car {p:,} W")
        assert titles == want
        # stacked: each car bar starts where its house bar ends
        tops = pg.eval_on_selector_all(f"{car} .ev-plan rect.base",
                                       "rs => rs.map(r => +r.getAttribute('y'))")
        bottoms = pg.eval_on_selector_all(f"{car} .ev-plan rect.ev",
                                          "rs => rs.map(r => +r.getAttribute('y') + +r.getAttribute('height'))")
        assert bottoms == pytest.approx([y for y, p in zip(tops, CAR, strict=True) if p])
        assert pg.inner_text(f"{car} .ev-plan path.thr title") == "threshold 2,500 W, 2,900 W"
        # a relay has no EV card and no EV fields in its form
        pump = "section.output[data-id=pump]"
        assert pg.is_hidden(f"{pump} .ev")
        assert pg.is_hidden(f"{pump} [name=charger]")
        assert pg.is_visible(f"{car} [name=charger]")
        # and a charger's form has none of the switching fields the EV mode does not use
        for name in ("threshold_w", "on_delay_s", "min_on_s", "target_net_w", "peak_guard"):
            assert pg.is_hidden(f"{car} [name={name}]"), name
            assert pg.is_visible(f"{pump} [name={name}]"), name
        check_clean(pg)
        shoot(pg, artifacts, f"outputs-ev-{'phone' if viewport is PHONE else 'desktop'}")
    finally:
        ctx.close()


def test_ev_form(browser, ev_web, subscriber_factory):  # type: ignore[no-untyped-def]  # noqa: F811
    ctx, pg = open_page(browser, ev_web, "outputs", DESKTOP, token=True)
    car = "section.output[data-id=car]"
    topic = f"p1/config/{ev_web.site}/outputs"
    try:
        pg.wait_for_selector(f"{car} .ev:not([hidden])")
        ws.wait_js(pg, f"document.querySelector('{car} [name=departure]').value === '07:30'")
        sub = subscriber_factory(topic)
        pg.select_option(f"{car} [name=charger]", "ocpp")
        pg.fill(f"{car} [name=charger_ref]", "CP_1")
        pg.fill(f"{car} [name=min_current_a]", "8")
        pg.fill(f"{car} [name=energy_kwh]", "")  # until full
        pg.click(f"{car} button[type=submit]")
        ws.wait_js(pg, f"document.querySelector('{car} .msg').textContent === 'saved and published'")
        doc = wait_for(lambda: (lambda d: d if d["outputs"][0]["charger"] == "ocpp" else None)(
            sub.wait(topic)[-1].json()))
        assert doc["outputs"][0] == {
            "id": "car", "kind": "ev", "rated_w": 11040.0, "mode": "ev", "threshold_w": 0.0,
            "on_delay_s": 60.0, "min_on_s": 300.0, "priority": 5, "peak_guard": False,
            "target_net_w": 0.0, "min_current_a": 8.0, "max_current_a": 16.0, "phases": 3,
            "departure": "07:30", "energy_kwh": None, "charger": "ocpp", "charger_ref": "CP_1"}
        # refused, by field: a departure that is no HH:MM, an ocpp charger without its id
        pg.fill(f"{car} [name=departure]", "7:30")
        pg.click(f"{car} button[type=submit]")
        pg.wait_for_selector(f"{car} label:has([name=departure]) .err")
        assert "should match pattern" in pg.inner_text(f"{car} label:has([name=departure]) .err")
        pg.fill(f"{car} [name=departure]", "07:30")
        pg.fill(f"{car} [name=charger_ref]", "")
        pg.click(f"{car} button[type=submit]")
        pg.wait_for_selector(f"{car} label:has([name=charger_ref]) .err")
        assert pg.inner_text(f"{car} label:has([name=charger_ref]) .err") == (
            "charger 'ocpp' needs charger_ref (the OCPP charge point id or the evcc loadpoint)")
        # a new output of kind ev, from the add form
        pg.fill("#new_output [name=id]", "car2")
        pg.select_option("#new_output [name=kind]", "ev")
        pg.fill("#new_output [name=rated_w]", "7360")
        pg.click("#new_output button[type=submit]")
        pg.wait_for_selector("section.output[data-id=car2]")
        assert pg.is_visible("section.output[data-id=car2] [name=max_current_a]")
        check_clean(pg)
    finally:
        ctx.close()
