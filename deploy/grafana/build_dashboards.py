#!/usr/bin/env python3
"""Writes the Grafana dashboards (JSON) in deploy/grafana/dashboards/ from one table.

Every panel is a Flux query on the measurements and fields the recorder writes
(``recorder.mapping.MEASUREMENTS``); ``tests/deploy`` checks that the committed
JSON is what this script makes and that every query names real fields.

    python3 deploy/grafana/build_dashboards.py        # rewrite the JSON files
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "dashboards"
K3S_COPY = Path(__file__).resolve().parent.parent / "k3s" / "base" / "grafana" / "dashboards"
DS = {"type": "influxdb", "uid": "p1-influxdb"}
TZ = 'import "timezone"\noption location = timezone.location(name: "${tz}")\n'


def flux(measurement: str, fields: list[str], agg: str | None = "mean", every: str = "v.windowPeriod",
         tail: str = "", tag: str | None = None) -> str:
    cond = " or ".join(f'r._field == "{f}"' for f in fields)
    query = (
        f"{TZ}from(bucket: v.defaultBucket)\n"
        "  |> range(start: v.timeRangeStart, stop: v.timeRangeStop)\n"
        f'  |> filter(fn: (r) => r._measurement == "{measurement}" and r.site == "${{site}}")\n'
        f"  |> filter(fn: (r) => {cond})\n"
    )
    if tag:
        query += f'  |> keep(columns: ["_time", "_value", "_field", "{tag}"])\n'
    if agg:
        query += f"  |> aggregateWindow(every: {every}, fn: {agg}, createEmpty: false)\n"
    return query + tail


def panel(title: str, query: str, unit: str, kind: str = "timeseries", w: int = 12, h: int = 8,
          description: str = "", custom: dict[str, Any] | None = None,
          options: dict[str, Any] | None = None) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": unit}
    if custom:
        defaults["custom"] = custom
    return {
        "type": kind, "title": title, "description": description, "datasource": DS,
        "gridPos": {"w": w, "h": h},
        "targets": [{"refId": "A", "datasource": DS, "query": query}],
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options or {},
    }


BARS = {"drawStyle": "bars", "fillOpacity": 60, "lineWidth": 1}
DAILY = '  |> aggregateWindow(every: 1d, fn: spread, createEmpty: false, timeSrc: "_start")\n'

DASHBOARDS: dict[str, dict[str, Any]] = {
    "p1-live": {
        "title": "P1 live power", "refresh": "5s", "from": "now-1h",
        "panels": [
            panel("Import, export and net power", flux("reading", ["import_w", "export_w", "net_w"]),
                  "watt", w=24, description="net_w > 0: import from the grid"),
            panel("Import per phase", flux("reading", ["l1_import_w", "l2_import_w", "l3_import_w"]),
                  "watt"),
            panel("Export per phase", flux("reading", ["l1_export_w", "l2_export_w", "l3_export_w"]),
                  "watt"),
            panel("Voltage per phase", flux("reading", ["l1_voltage_v", "l2_voltage_v", "l3_voltage_v"]),
                  "volt"),
            panel("Current per phase", flux("reading", ["l1_current_a", "l2_current_a", "l3_current_a"]),
                  "amp"),
            panel("Now", flux("reading", ["net_w"], agg=None, tail="  |> last()\n"), "watt",
                  kind="stat", w=6, h=5),
            panel("Tariff (1 day, 2 night)", flux("reading", ["tariff"], agg="last"), "none", w=18,
                  h=5),
        ],
    },
    "p1-energy": {
        "title": "P1 energy per day, gas and water", "refresh": "1m", "from": "now-30d",
        "panels": [
            panel("Electricity per day", flux("reading", ["import_t1_kwh", "import_t2_kwh",
                                                          "export_t1_kwh", "export_t2_kwh"],
                                              agg=None, tail=DAILY),
                  "kwatth", w=24, custom=BARS,
                  description="counter increase per local day, per tariff (t1 day, t2 night)"),
            panel("Gas per day", flux("gas", ["gas_m3"], agg=None, tail=DAILY), "m3", custom=BARS),
            panel("Water per day", flux("water", ["water_m3"], agg=None, tail=DAILY), "m3",
                  custom=BARS),
            panel("Gas meter", flux("gas", ["gas_m3"], agg="last"), "m3"),
            panel("Water meter", flux("water", ["water_m3"], agg="last"), "m3"),
        ],
    },
    "p1-capacity": {
        "title": "P1 capacity tariff (quarter and month peaks)", "refresh": "30s", "from": "now-7d",
        "panels": [
            panel("Running quarter: average, forecast, threshold",
                  flux("peak", ["avg_w", "forecast_w", "threshold_w", "meter_avg_demand_w"]),
                  "watt", w=24, description="from peak-forecaster, every reading"),
            panel("Quarter peaks against the threshold",
                  flux("quarter", ["avg_w", "threshold_w"], agg=None), "watt", w=24,
                  custom={"drawStyle": "points", "pointSize": 6},
                  description="one point per closed quarter (at its start)"),
            panel("Warning level (0 ok, 1 warn, 2 alarm)", flux("peak", ["level_code"], agg="max"),
                  "none", w=12),
            panel("Quarters warned about", flux("quarter", ["warned"], agg="sum", every="1d"),
                  "none", w=12, custom=BARS),
            panel("Month peaks and billed average", flux("month", ["peak_w", "billed_w"], agg=None),
                  "watt", w=16, custom=BARS,
                  description="billed_w = average of the last 12 month peaks (at least 2.5 kW each)"),
            panel("Capacity cost per year", flux("month", ["cost_eur_year"], agg=None,
                                                 tail="  |> last()\n"),
                  "currencyEUR", kind="stat", w=8),
        ],
    },
    "p1-outputs": {
        "title": "P1 outputs (loads and boiler)", "refresh": "10s", "from": "now-24h",
        "panels": [
            panel("Boiler and dimmer outputs (%)", flux("output", ["pct"], tag="output"), "percent",
                  w=24, description="what each device reports on output/<id>/state"),
            panel("Relay outputs on/off", flux("output", ["on"], agg="max", tag="output"), "bool_on_off",
                  w=12, custom={"drawStyle": "line", "lineInterpolation": "stepAfter"}),
            panel("Manual overrides", flux("output", ["override"], agg="max", tag="output"),
                  "bool_on_off", w=12, custom={"lineInterpolation": "stepAfter"}),
            panel("Net power the controller sees", flux("reading", ["net_w"]), "watt", w=24),
        ],
    },
}


def template() -> dict[str, Any]:
    return {"list": [
        {"name": "tz", "type": "constant", "query": "Europe/Brussels", "hide": 2,
         "current": {"text": "Europe/Brussels", "value": "Europe/Brussels"}},
        {"name": "site", "type": "query", "label": "Site", "datasource": DS, "refresh": 1,
         "query": 'import "influxdata/influxdb/schema"\n'
                  'schema.tagValues(bucket: v.defaultBucket, tag: "site")',
         "current": {"text": "home", "value": "home"}},
    ]}


def build(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    panels, x, y, row_h = [], 0, 0, 0
    for i, p in enumerate(spec["panels"], start=1):
        p = json.loads(json.dumps(p))
        w, h = p["gridPos"]["w"], p["gridPos"]["h"]
        if x + w > 24:
            x, y, row_h = 0, y + row_h, 0
        p["gridPos"] = {"x": x, "y": y, "w": w, "h": h}
        p["id"] = i
        x, row_h = x + w, max(row_h, h)
        panels.append(p)
    return {
        "uid": name, "title": spec["title"], "tags": ["p1"], "timezone": "browser",
        "editable": True, "schemaVersion": 39, "version": 1, "refresh": spec["refresh"],
        "time": {"from": spec["from"], "to": "now"}, "templating": template(),
        "annotations": {"list": []}, "panels": panels,
    }


def render(name: str) -> str:
    return json.dumps(build(name, DASHBOARDS[name]), indent=2, sort_keys=True) + "\n"


def main() -> int:
    for folder in (OUT, K3S_COPY):  # kustomize reads files below its own folder only
        folder.mkdir(parents=True, exist_ok=True)
        for name in DASHBOARDS:
            (folder / f"{name}.json").write_text(render(name))
            print(f"wrote {folder / (name + '.json')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
