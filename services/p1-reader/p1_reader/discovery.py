"""Home Assistant MQTT discovery for the fields a meter actually sends, as a table.

One entry per reading field: the entity name, device class, state class and unit
the way Home Assistant expects them (energy kWh ``total_increasing``, power W
``measurement``, gas m³ ``gas``, reactive power var, reactive energy kvarh,
frequency Hz, power factor without unit...); the meter's limiter and fuse thresholds
are diagnostic entities. Every entity reads its value from the retained
``reading`` topic with a ``value_template`` and is available while p1-reader's
status topic says ``online``. Pure: returns (topic, payload) pairs to publish.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from p1common.topics import Topics, ha_config_topic

# field: (name, device_class, state_class, unit, icon)
Entity = tuple[str, str | None, str | None, str | None, str | None]
_E = "energy"
_P = "power"
_Q = "reactive_power"
_QE = "reactive_energy"  # Home Assistant 2025.6 or later
_PF = "power_factor"
_TI = "total_increasing"
_M = "measurement"

ENTITIES: dict[str, Entity] = {
    "import_kwh": ("Energy import", _E, _TI, "kWh", None),
    "import_t1_kwh": ("Energy import tariff 1", _E, _TI, "kWh", None),
    "import_t2_kwh": ("Energy import tariff 2", _E, _TI, "kWh", None),
    "export_kwh": ("Energy export", _E, _TI, "kWh", None),
    "export_t1_kwh": ("Energy export tariff 1", _E, _TI, "kWh", None),
    "export_t2_kwh": ("Energy export tariff 2", _E, _TI, "kWh", None),
    "import_t3_kwh": ("Energy import tariff 3", _E, _TI, "kWh", None),
    "import_t4_kwh": ("Energy import tariff 4", _E, _TI, "kWh", None),
    "export_t3_kwh": ("Energy export tariff 3", _E, _TI, "kWh", None),
    "export_t4_kwh": ("Energy export tariff 4", _E, _TI, "kWh", None),
    "reactive_import_kvarh": ("Reactive energy import", _QE, _TI, "kvarh", None),
    "reactive_export_kvarh": ("Reactive energy export", _QE, _TI, "kvarh", None),
    "reactive_import_t1_kvarh": ("Reactive energy import tariff 1", _QE, _TI, "kvarh", None),
    "reactive_import_t2_kvarh": ("Reactive energy import tariff 2", _QE, _TI, "kvarh", None),
    "reactive_export_t1_kvarh": ("Reactive energy export tariff 1", _QE, _TI, "kvarh", None),
    "reactive_export_t2_kvarh": ("Reactive energy export tariff 2", _QE, _TI, "kvarh", None),
    "import_w": ("Power import", _P, _M, "W", None),
    "export_w": ("Power export", _P, _M, "W", None),
    "net_w": ("Power net", _P, _M, "W", None),
    "l1_import_w": ("Power import L1", _P, _M, "W", None),
    "l2_import_w": ("Power import L2", _P, _M, "W", None),
    "l3_import_w": ("Power import L3", _P, _M, "W", None),
    "l1_export_w": ("Power export L1", _P, _M, "W", None),
    "l2_export_w": ("Power export L2", _P, _M, "W", None),
    "l3_export_w": ("Power export L3", _P, _M, "W", None),
    "reactive_import_var": ("Reactive power import", _Q, _M, "var", None),
    "reactive_export_var": ("Reactive power export", _Q, _M, "var", None),
    "l1_reactive_import_var": ("Reactive power import L1", _Q, _M, "var", None),
    "l2_reactive_import_var": ("Reactive power import L2", _Q, _M, "var", None),
    "l3_reactive_import_var": ("Reactive power import L3", _Q, _M, "var", None),
    "l1_reactive_export_var": ("Reactive power export L1", _Q, _M, "var", None),
    "l2_reactive_export_var": ("Reactive power export L2", _Q, _M, "var", None),
    "l3_reactive_export_var": ("Reactive power export L3", _Q, _M, "var", None),
    "frequency_hz": ("Frequency", "frequency", _M, "Hz", None),
    "power_factor": ("Power factor", _PF, _M, None, None),
    "l1_power_factor": ("Power factor L1", _PF, _M, None, None),
    "l2_power_factor": ("Power factor L2", _PF, _M, None, None),
    "l3_power_factor": ("Power factor L3", _PF, _M, None, None),
    "l1_voltage_v": ("Voltage L1", "voltage", _M, "V", None),
    "l2_voltage_v": ("Voltage L2", "voltage", _M, "V", None),
    "l3_voltage_v": ("Voltage L3", "voltage", _M, "V", None),
    "l1_current_a": ("Current L1", "current", _M, "A", None),
    "l2_current_a": ("Current L2", "current", _M, "A", None),
    "l3_current_a": ("Current L3", "current", _M, "A", None),
    "avg_demand_w": ("Quarter-hour average demand", _P, _M, "W", None),
    "month_max_w": ("Month peak demand", _P, _M, "W", None),
    "tariff": ("Tariff", None, None, None, "mdi:clock-time-eight"),
    "breaker": ("Breaker state", None, None, None, "mdi:electric-switch"),
    "limiter_w": ("Power limiter threshold", _P, None, "W", None),
    "limiter_a": ("Current limiter threshold", "current", None, "A", None),
    "limiter_va": ("Apparent power limiter threshold", "apparent_power", None, "VA", None),
    "fuse_limit_a": ("Fuse supervision threshold L1", "current", None, "A", None),
    "l2_fuse_limit_a": ("Fuse supervision threshold L2", "current", None, "A", None),
    "l3_fuse_limit_a": ("Fuse supervision threshold L3", "current", None, "A", None),
    "power_failures": ("Power failures", None, _TI, None, "mdi:flash-off"),
    "long_power_failures": ("Long power failures", None, _TI, None, "mdi:flash-off"),
    "gas_m3": ("Gas", "gas", _TI, "m³", None),
    "water_m3": ("Water", "water", _TI, "m³", None),
    "heat_gj": ("Heat", _E, _TI, "GJ", None),
    "message": ("Meter message", None, None, None, "mdi:message-text"),
}

# settings of the meter rather than measurements: shown under "Diagnostic"
DIAGNOSTIC = frozenset(
    {"limiter_w", "limiter_a", "limiter_va", "fuse_limit_a", "l2_fuse_limit_a", "l3_fuse_limit_a"}
)


def node_id(site: str) -> str:
    return f"p1_reader_{site}"


def discovery_messages(
    fields: Iterable[str],
    *,
    topics: Topics,
    site: str,
    status_topic: str,
    reading: dict[str, Any] | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """(config topic, payload) for every field in ``fields`` that has an entity."""
    node = node_id(site)
    device: dict[str, Any] = {
        "identifiers": [node],
        "name": f"P1 meter {site}",
        "manufacturer": "p1-energy-stack",
        "model": "P1 smart meter",
    }
    if reading:
        if reading.get("header"):
            device["model"] = reading["header"]
        if reading.get("meter_id"):
            device["serial_number"] = reading["meter_id"]
        if reading.get("dsmr_version"):
            device["sw_version"] = reading["dsmr_version"]
    state_topic = topics.reading(site)
    out = []
    for field in sorted(set(fields) & ENTITIES.keys()):
        name, device_class, state_class, unit, icon = ENTITIES[field]
        payload: dict[str, Any] = {
            "name": name,
            "unique_id": f"{node}_{field}",
            "object_id": f"p1_{site}_{field}",
            "state_topic": state_topic,
            "value_template": f"{{{{ value_json.{field} }}}}",
            "availability_topic": status_topic,
            "payload_available": "online",
            "payload_not_available": "offline",
            "device": device,
        }
        if device_class:
            payload["device_class"] = device_class
        if state_class:
            payload["state_class"] = state_class
        if unit:
            payload["unit_of_measurement"] = unit
        if icon:
            payload["icon"] = icon
        if field in DIAGNOSTIC:
            payload["entity_category"] = "diagnostic"
        out.append((ha_config_topic("sensor", node, field), payload))
    return out
