"""The Wi-Fi set-up access point and its page, served on 127.0.0.1 under CPython."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import machine
import monitor_app
import network
from device import Runtime
from devsupport import CLOCK, drive, write_settings

from support import free_port


def make(tmp_path: Path, **values: Any) -> tuple[Runtime, int]:
    port = free_port()
    path = write_settings(tmp_path / "settings.json", **values)
    rt = Runtime("monitor", monitor_app.MonitorApp, path=str(path),
                 portal_bind=("127.0.0.1", port), log=lambda *a: None)
    return rt, port


def request(rt: Runtime, method: str, url: str, **kw: Any) -> httpx.Response:
    """One HTTP request while the device's main loop keeps stepping."""
    with ThreadPoolExecutor(1) as pool:
        fut = pool.submit(httpx.request, method, url, timeout=5, **kw)
        drive(rt, fut.done, timeout_s=8)
        return fut.result()


def test_portal_opens_without_a_network_and_saves(tmp_path: Path) -> None:
    rt, port = make(tmp_path, ssid="", mqtt_host="")
    drive(rt, lambda: rt.portal is not None, timeout_s=2)
    ap = network.WLAN(network.AP_IF)
    assert ap.active() and ap.config("essid") == "P1-dev1"
    assert rt.app.m.leds(CLOCK.ticks_ms(), rt.wifi.up)[2] is True    # red: no Wi-Fi
    page = request(rt, "GET", f"http://127.0.0.1:{port}/")
    assert page.status_code == 200
    assert "<li>home-net</li>" in page.text and "<li>neighbours</li>" in page.text
    assert page.text.index("home-net") < page.text.index("neighbours")   # strongest first
    for field in ("ssid", "password", "mqtt_host", "mqtt_port", "mqtt_user", "mqtt_password",
                  "site", "device_id"):
        assert f"name={field} " in page.text
    bad = request(rt, "POST", f"http://127.0.0.1:{port}/save",
                  content=b"ssid=&password=short&mqtt_host=&mqtt_port=99999&site=a/b&device_id=")
    assert bad.status_code == 400
    for msg in ("ssid: 1-32", "password: empty or 8-63", "mqtt_host:", "mqtt_port: 1-65535",
                "site: 1-64", "device_id: 1-64"):
        assert msg in bad.text
    assert machine.RESETS[0] == 0
    assert request(rt, "GET", f"http://127.0.0.1:{port}/nope").status_code == 404
    broker_port = free_port()      # nothing listens there: no traffic leaves the machine
    ok = request(rt, "POST", f"http://127.0.0.1:{port}/save",
                 data={"ssid": "home-net", "password": "secret-pw", "mqtt_host": "127.0.0.1",
                       "mqtt_port": str(broker_port), "mqtt_user": "mon", "mqtt_password": "p&w=1",
                       "site": "flat-2", "device_id": "mon-kitchen"})
    assert ok.status_code == 200 and "home-net" in ok.text
    saved = json.loads((tmp_path / "settings.json").read_text())
    assert {k: saved[k] for k in ("ssid", "password", "mqtt_host", "mqtt_port", "mqtt_user",
                                  "mqtt_password", "site", "device_id")} == {
        "ssid": "home-net", "password": "secret-pw", "mqtt_host": "127.0.0.1",
        "mqtt_port": broker_port, "mqtt_user": "mon", "mqtt_password": "p&w=1",
        "site": "flat-2", "device_id": "mon-kitchen"}
    assert saved["max_import_w"] == 5000          # the rest of the settings kept
    assert machine.RESETS[0] == 1                 # restarts with the new settings
    if rt.portal is not None:
        rt.portal.close()


def test_portal_after_15_s_of_failing_and_closes_once_joined(tmp_path: Path) -> None:
    rt, port = make(tmp_path, ssid="home-net", password="wrong-password", mqtt_host="")
    CLOCK.freeze(1_000_000)
    rt.step()
    CLOCK.advance(14_000)
    rt.step()
    assert rt.portal is None
    CLOCK.advance(1_000)
    rt.step()
    assert rt.portal is not None
    page = request(rt, "GET", f"http://127.0.0.1:{port}/")
    assert 'value="home-net"' in page.text and "wrong-password" not in page.text
    # the network comes back with the stored password: retried with back-off
    network.WORLD["home-net"] = "wrong-password"
    for _ in range(30):
        CLOCK.advance(5_000)
        rt.step()
        if rt.wifi.up:
            break
    assert rt.wifi.up
    rt.step()
    assert rt.portal is None and not network.WLAN(network.AP_IF).active()
    # once it was up, losing Wi-Fi does not open the portal again
    network.DOWN[0] = True
    for _ in range(10):
        CLOCK.advance(5_000)
        rt.step()
    assert rt.portal is None and not rt.wifi.up
    network.DOWN[0] = False
    for _ in range(30):
        CLOCK.advance(5_000)
        rt.step()
        if rt.wifi.up:
            break
    assert rt.wifi.up
