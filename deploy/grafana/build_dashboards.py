#!/usr/bin/env python3
"""Writes the Grafana dashboards (JSON) in deploy/grafana/dashboards/ from one table.

Every panel is a Flux query on the measurements and fields the recorder writes
(``recorder.mapping.MEASUREMENTS``); ``tests/deploy`` checks that the committed
JSON is what this script makes, that every query names real fields and reads the
right bucket, and type-checks every query with InfluxData's Flux front end.

    python3 deploy/grafana/build_dashboards.py        # rewrite the JSON files

Buckets (see docs/deployment.md): the raw bucket (the data source's default bucket,
``INFLUX_BUCKET``) keeps ``RAW_RETENTION_DAYS`` days of everything the recorder
writes; ``<raw bucket>_long`` keeps 1-minute aggregates of it (an InfluxDB task),
and the quarter and month records, for years. Each query picks its bucket from its
own time range with a Flux ``if``: raw when the range starts within the raw
retention (one day of margin), long-term otherwise. A Grafana variable could not do
this: it is computed from the dashboard's range, not from a panel's own (the month
panels show 13 months whatever the dashboard range is).

Days are local days of the dashboard's time zone (Grafana's ``${__timezone}``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "dashboards"
K3S_COPY = Path(__file__).resolve().parent.parent / "k3s" / "base" / "grafana" / "dashboards"
DS = {"type": "influxdb", "uid": "p1-influxdb"}

RAW_RETENTION_DAYS = 30  # INFLUX_RETENTION of compose and k3s (tests/deploy checks they agree)
LONG_SUFFIX = "_long"  # the long-term bucket is <raw bucket>_long (the recorder's default too)
LONG_ONLY = ("quarter", "month")  # measurements the recorder writes to the long-term bucket only
MONTH_RANGE = "13M"  # month panels: the last 13 months, whatever the dashboard shows

RAW = "v.timeRangeStart"
DAY_BEFORE = "date.sub(d: 1d, from: v.timeRangeStart)"  # daily panels: the day before the range too

TZ = ('tz = if "${__timezone}" == "utc" or "${__timezone}" == "" then "UTC" else "${__timezone}"\n'
      "loc = timezone.location(name: tz)\n")


def source(measurement: str, start: str = RAW, local_days: bool = False) -> str:
    """Imports, ``start``, ``src`` (the bucket) and, for daily panels, ``loc``."""
    long_only = measurement in LONG_ONLY
    imports = ([] if long_only and start == RAW else ['import "date"']) + (
        ['import "timezone"'] if local_days else [])
    head = "".join(f"{line}\n" for line in imports) + f"\nstart = {start}\n"
    if long_only:
        head += f'src = v.defaultBucket + "{LONG_SUFFIX}"\n'
    else:
        head += (f"src = if start >= date.sub(d: {RAW_RETENTION_DAYS - 1}d, from: now()) "
                 f'then v.defaultBucket else v.defaultBucket + "{LONG_SUFFIX}"\n')
    if local_days:
        head += TZ
    return head


def select(measurement: str, fields: list[str]) -> str:
    cond = " or ".join(f'r._field == "{f}"' for f in fields)
    return (
        "from(bucket: src)\n"
        "  |> range(start: start, stop: v.timeRangeStop)\n"
        f'  |> filter(fn: (r) => r._measurement == "{measurement}" and r.site == "${{site}}")\n'
        f"  |> filter(fn: (r) => {cond})\n"
    )


def flux(measurement: str, fields: list[str], agg: str | None = "mean", every: str = "v.windowPeriod",
         tail: str = "", tag: str | None = None) -> str:
    """A time series: ``agg`` per window (pushed down to storage), one series per field
    (and per ``tag`` value)."""
    local = every == "1d"
    query = source(measurement, local_days=local) + select(measurement, fields)
    if agg:
        where = ", location: loc, timeSrc: \"_start\"" if local else ""
        query += f"  |> aggregateWindow(every: {every}, fn: {agg}{where}, createEmpty: false)\n"
    columns = ["_time", "_value", "_field", *([tag] if tag else [])]
    return query + tail + f"  |> keep(columns: {json.dumps(columns)})\n"


def daily(measurement: str, fields: list[str]) -> str:
    """Counter increase per local day: the counter's last value of each day minus the day
    before's. The 15-minute ``last`` runs in storage (a window with a location is not pushed
    down: InfluxDB issue 24293), the daily one on at most 96 rows a day. The query starts a
    day before the range, so the range's first day has its base: ``difference`` drops that
    extra day."""
    return (
        source(measurement, DAY_BEFORE, local_days=True) + select(measurement, fields)
        + '  |> aggregateWindow(every: 15m, fn: last, timeSrc: "_start", createEmpty: false)\n'
        + '  |> aggregateWindow(every: 1d, fn: last, location: loc, timeSrc: "_start", createEmpty: false)\n'
        + "  |> difference(nonNegative: true)\n"
        + '  |> keep(columns: ["_time", "_value", "_field"])\n'
    )


def daily_by_tariff() -> str:
    """Import and export per local day, split by ``tariff_low`` (the reader's flag, never a
    guess from the register numbers): each quarter-hour's increase of import_kwh/export_kwh
    goes to the tariff in force at the quarter-hour's end (tariffs switch on the hour)."""
    parts, names = [], []
    for direction in ("import", "export"):
        for short, label, cond in (("low", "low tariff", "exists r.tariff_low and r.tariff_low > 0.5"),
                                   ("normal", "normal tariff", "exists r.tariff_low and r.tariff_low < 0.5"),
                                   ("unknown", "tariff unknown", "not exists r.tariff_low")):
            name = f"{direction[:3]}_{short}"
            names.append(name)
            parts.append(
                f"{name} = quarters |> map(fn: (r) => ({{r with _field: \"{direction}, {label}\", "
                f"_value: if {cond} then r.{direction}_kwh else 0.0}}))\n")
    return (
        source("reading", DAY_BEFORE, local_days=True)
        + "quarters = " + select("reading", ["import_kwh", "export_kwh", "tariff_low"]).replace("\n  ", "\n    ")
        + '    |> aggregateWindow(every: 15m, fn: last, timeSrc: "_start", createEmpty: false)\n'
        + '    |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")\n'
        + '    |> difference(columns: ["import_kwh", "export_kwh"], nonNegative: true)\n'
        + "".join(parts)
        + f"union(tables: [{', '.join(names)}])\n"
        + '  |> group(columns: ["_field"])\n'
        + '  |> aggregateWindow(every: 1d, fn: sum, location: loc, timeSrc: "_start", createEmpty: false)\n'
        + "  |> filter(fn: (r) => r._time > start and r._value > 0.0)\n"
        + '  |> keep(columns: ["_time", "_value", "_field"])\n'
    )


def panel(title: str, query: str, unit: str, kind: str = "timeseries", w: int = 12, h: int = 8,
          description: str = "", custom: dict[str, Any] | None = None,
          options: dict[str, Any] | None = None, mappings: list[dict[str, Any]] | None = None,
          time_from: str | None = None) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": unit}
    if custom:
        defaults["custom"] = custom
    if mappings:
        defaults["mappings"] = mappings
    out: dict[str, Any] = {
        "type": kind, "title": title, "description": description, "datasource": DS,
        "gridPos": {"w": w, "h": h},
        "targets": [{"refId": "A", "datasource": DS, "query": query}],
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options or {},
    }
    if time_from:
        out["timeFrom"] = time_from  # panel-level relative time: its own range, shown in its header
        out["hideTimeOverride"] = False
    return out


BARS = {"drawStyle": "bars", "fillOpacity": 60, "lineWidth": 1}
TARIFF_LOW = [{"type": "value", "options": {
    "0": {"text": "normal", "color": "blue", "index": 0},
    "1": {"text": "low", "color": "green", "index": 1},
}}]

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
            panel("Tariff (low / normal)", flux("reading", ["tariff_low"], agg="last"), "none",
                  kind="state-timeline", w=18, h=5, mappings=TARIFF_LOW,
                  description="tariff_low from the reader: low = the meter counts in its low-rate "
                              "register now. The meter's own tariff code means different things per "
                              "country (NL code 1 = low, BE code 2 = low), so it is not shown"),
        ],
    },
    "p1-energy": {
        "title": "P1 energy per day, gas and water", "refresh": "1m", "from": "now-30d/d",
        "panels": [
            panel("Electricity per day", daily("reading", ["import_kwh", "export_kwh"]),
                  "kwatth", w=24, custom=BARS,
                  description="counter at the end of each local day minus the day before's "
                              "(import_kwh, export_kwh)"),
            panel("Electricity per day, low and normal tariff", daily_by_tariff(), "kwatth", w=24,
                  custom=BARS,
                  description="each quarter-hour's energy counted in the tariff the reader's "
                              "tariff_low flag gives at its end; 'tariff unknown' for data "
                              "recorded before the reader sent tariff_low"),
            panel("Gas per day", daily("gas", ["gas_m3"]), "m3", custom=BARS),
            panel("Water per day", daily("water", ["water_m3"]), "m3", custom=BARS),
            panel("Gas meter", flux("gas", ["gas_m3"], agg="last"), "m3"),
            panel("Water meter", flux("water", ["water_m3"], agg="last"), "m3"),
        ],
    },
    "p1-capacity": {
        "title": "P1 capacity tariff (quarter and month peaks)", "refresh": "30s", "from": "now-7d",
        "panels": [
            panel("Running quarter: average, forecast, threshold",
                  flux("peak", ["avg_w", "forecast_w", "threshold_w", "meter_avg_demand_w"]),
                  "watt", w=24, description="from peak-forecaster (recorded every 10 s, at every "
                                            "level change and at each quarter's end)"),
            panel("Quarter peaks against the threshold",
                  flux("quarter", ["avg_w", "threshold_w"], agg=None), "watt", w=24,
                  custom={"drawStyle": "points", "pointSize": 6},
                  description="one point per closed quarter (at its start)"),
            panel("Warning level (0 ok, 1 warn, 2 alarm)", flux("peak", ["level_code"], agg="max"),
                  "none", w=12),
            panel("Quarters warned about", flux("quarter", ["warned"], agg="sum", every="1d"),
                  "none", w=12, custom=BARS, description="per local day"),
            panel("Month peaks and billed average", flux("month", ["peak_w", "billed_w"], agg=None),
                  "watt", w=16, custom=BARS, time_from=MONTH_RANGE,
                  description="billed_w = average of the last 12 month peaks (at least 2.5 kW "
                              "each); each month at its first day"),
            panel("Capacity cost per year", flux("month", ["cost_eur_year"], agg=None,
                                                 tail="  |> last()\n"),
                  "currencyEUR", kind="stat", w=8, time_from=MONTH_RANGE),
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
