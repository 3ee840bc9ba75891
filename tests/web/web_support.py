"""Helpers of the web tests: run ``p1-web`` as a real process, and build contract payloads."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from p1common.payloads import Control, MonthRecord, OutputState, Peak, QuarterRecord, Reading, check
from support import free_port, wait_for

TOKEN = "test-token-0123456789"
P1_WEB = str(Path(sys.executable).parent / "p1-web")


class WebProc:
    """``p1-web`` on 127.0.0.1:<free port>, with its own state directory."""

    def __init__(self, broker_url: str, state: Path, site: str = "home", token: str | None = TOKEN,
                 env: dict[str, str] | None = None, args: list[str] | None = None,
                 prefix: list[str] | None = None) -> None:
        """``args``: more flags; ``prefix``: a command it runs under (e.g. ``unshare -m ...``
        ending in ``exec "$@"``), which must exec p1-web in the same process."""
        self.broker_url = broker_url
        self.state = state
        self.site = site
        self.token = token
        self.extra_env = env or {}
        self.args = args or []
        self.prefix = prefix or []
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = state / "web.log"
        self.http = httpx.Client(base_url=self.base, timeout=10)

    def start(self, wait_mqtt: bool = True) -> WebProc:
        env = {k: v for k, v in os.environ.items() if not k.startswith("P1_WEB_")}
        env.update(MQTT_URL=self.broker_url, P1_STATE_DIR=str(self.state), P1_SITE=self.site,
                   MQTT_CLIENT_ID=f"web-test-{self.port}", PYTHONUNBUFFERED="1")
        if self.token:
            env["P1_WEB_TOKEN"] = self.token
        env.update(self.extra_env)
        self.log = open(self.log_path, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen([*self.prefix, P1_WEB, "--host", "127.0.0.1", "--port",
                                      str(self.port), *self.args],
                                     env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("p1-web exited: " + self.log_path.read_text())
            try:
                r = self.http.get("/healthz")
                if r.status_code == 200 or (not wait_mqtt and r.status_code == 503):
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError("p1-web did not answer: " + self.log_path.read_text())

    def stop(self) -> int | None:
        rc = None
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            rc = self.proc.wait(15)
        self.proc = None
        return rc

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def api(self, path: str) -> str:
        return f"/api/sites/{self.site}{path}"

    def close(self) -> None:
        self.stop()
        self.http.close()


def wait_js(page: Any, expression: str, arg: Any = None, timeout_s: float = 10.0) -> Any:
    """Wait until a JavaScript expression (or ``(arg) => ...`` function) is truthy in a
    Playwright page. Not ``page.wait_for_function``: that polls with ``eval`` inside the page,
    which the pages' Content-Security-Policy (no 'unsafe-eval') rightly refuses;
    ``page.evaluate`` runs through the DevTools protocol, outside the page's policy."""
    return wait_for(lambda: page.evaluate(expression, arg), timeout_s)


# -- contract payloads (checked against p1common.payloads) ---------------------------------
def reading(site: str, import_w: float, export_w: float = 0.0, n: int = 0, **extra: Any) -> dict[str, Any]:
    doc = {
        "v": 1, "site": site, "source": "sim", "ts": f"2026-01-15T13:{n // 60 % 60:02d}:{n % 60:02d}+01:00",
        "meter_id": "1SAG1234567890", "tariff": 1, "tariff_low": False,
        "import_t1_kwh": 559.373 + n / 1000, "import_t2_kwh": 477.305,
        "export_t1_kwh": 549.778, "export_t2_kwh": 254.235,
        "import_kwh": 1036.678 + n / 1000, "export_kwh": 804.013,
        "import_w": import_w, "export_w": export_w, "net_w": import_w - export_w,
        "l1_import_w": 210.0, "l2_import_w": 0.0, "l3_import_w": 457.0,
        "l1_export_w": 0.0, "l2_export_w": 0.0, "l3_export_w": 0.0,
        "l1_voltage_v": 234.7, "l2_voltage_v": 234.1, "l3_voltage_v": 235.1,
        "l1_current_a": 1.22, "l2_current_a": 0.74, "l3_current_a": 2.48,
        "gas_m3": 453.722, "gas_ts": "2026-01-15T13:00:00+01:00",
        "water_m3": 12.5, "water_ts": "2026-01-15T13:00:00+01:00",
    }
    doc.update(extra)
    Reading.model_validate(doc)
    return doc


def peak(site: str, forecast_w: float = 3200.0, threshold_w: float = 4000.0, level: str = "ok",
         month_peak_w: float = 3100.0) -> dict[str, Any]:
    doc = {"v": 1, "site": site, "ts": "2026-01-15T13:37:30+01:00",
           "quarter_start": "2026-01-15T13:30:00+01:00", "energy_wh": 400.0, "avg_w": 3200.0,
           "forecast_w": forecast_w, "threshold_w": threshold_w, "headroom_w": threshold_w - forecast_w,
           "level": level, "month_peak_w": month_peak_w}
    Peak.model_validate(doc)
    return doc


def month(site: str, peak_w: float = 3100.0) -> dict[str, Any]:
    hist = [{"month": f"2025-{m:02d}", "peak_w": 2500.0 + 100 * m} for m in range(2, 13)]
    hist.append({"month": "2026-01", "peak_w": peak_w})
    billed = sum(h["peak_w"] for h in hist) / 12
    doc = {"v": 1, "site": site, "month": "2026-01", "peak_w": peak_w,
           "peak_start": "2026-01-12T18:15:00+01:00", "history": hist,
           "billed_w": billed, "cost_eur_year": round(billed / 1000 * 53.0, 2)}
    MonthRecord.model_validate(doc)
    return doc


def quarter(site: str, hour: int, minute: int, avg_w: float, threshold_w: float = 4000.0) -> dict[str, Any]:
    end_min = minute + 15
    end = f"2026-01-15T{hour + end_min // 60:02d}:{end_min % 60:02d}:00+01:00"
    doc = {"v": 1, "site": site, "start": f"2026-01-15T{hour:02d}:{minute:02d}:00+01:00", "end": end,
           "energy_wh": avg_w / 4, "avg_w": avg_w, "complete": True, "threshold_w": threshold_w,
           "warned_at": None}
    QuarterRecord.model_validate(doc)
    return doc


# the ev fields of an output at their defaults (p1common.payloads.OutputConfig), as the API
# answers and the web publishes every output (a relay or dimmer too)
EV_DEFAULTS = {"min_current_a": 6.0, "max_current_a": 16.0, "phases": 1, "departure": None,
               "energy_kwh": None, "charger": "mqtt", "charger_ref": None}


# what the load-controller says of an output, where a test does not care (p1common.payloads.
# OutputDecision); the test's own fields come first (the Outputs page lists the others in order)
DECISION = {"kind": "relay", "mode": "off", "priority": 0, "decision": "off", "on": False,
            "level_w": 0.0, "reason": "", "on_delay_remaining_s": None, "min_on_remaining_s": None,
            "following": None, "device": "no state reported", "seq": 0}


def control(site: str, outputs: list[dict[str, Any]]) -> dict[str, Any]:
    doc = {"v": 1, "site": site, "ts": "2026-01-15T13:37:31+01:00", "watchdog": False,
           "outputs": [{**o, **{k: v for k, v in DECISION.items() if k not in o}} for o in outputs]}
    check(Control, doc)  # as the web takes it (p1web.live)
    return doc


def output_state(on: bool | None = None, pct: float | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"v": 1, "ts": "2026-01-15T13:37:31+01:00", "override": False, "seq": 7}
    if on is not None:
        doc["on"] = on
    if pct is not None:
        doc["pct"] = pct
    OutputState.model_validate(doc)
    return doc
