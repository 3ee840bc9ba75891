"""Home Assistant MQTT discovery for every service: entity descriptions in, configs out.

Each service describes its entities with :class:`EntityDescription` (what it reads,
how Home Assistant should show it) and hands them to :func:`discovery_messages`,
the one builder. Every entity of a site attaches to the same Home Assistant device
(``identifiers: ["p1_<site>"]``, name ``P1 meter <site>``); only p1-reader knows the
meter and adds its model, serial number and firmware. Home Assistant merges the
device information of every discovery message field by field (a field that is
absent leaves the stored one alone), so the other services send only the identifiers,
the name and the manufacturer, which are the same everywhere.

Entity ids are fixed with ``default_entity_id`` (Home Assistant 2025.10 and later)
and the older ``object_id`` beside it (Home Assistant before 2025.10; from 2025.10
``default_entity_id`` wins and no deprecation warning is logged when both are set,
from 2026.4 ``object_id`` is ignored). See docs/home-assistant.md.

Templates never warn or invent a value when a field is absent from a payload:
``{{ value_json.x if value_json.x is defined else None }}`` renders ``None``, which
Home Assistant shows as *unknown*; text is cut to Home Assistant's 255 characters.
Pure: returns (topic, payload) pairs to publish.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib import metadata
from typing import Any, Literal

from .topics import ha_config_topic, segment

MANUFACTURER = "P1 energy stack"
ORIGIN_NAME = "p1-energy-stack"
STATE_MAX = 255  # Home Assistant refuses a state longer than this
_FIELD = re.compile(r"^[a-z][a-z0-9_]*$")

Component = Literal["sensor", "binary_sensor"]


@dataclass(frozen=True)
class EntityDescription:
    """One Home Assistant entity, declared by the service that publishes its data.

    ``key`` makes the entity id (``<component>.p1_<site>_<key>``), the discovery topic
    and the unique id. The state comes from payload field ``field`` (default: ``key``)
    of the topic the service names, or from ``value_template`` when given.
    ``attributes`` are payload fields shown as the entity's attributes (those present).
    ``text`` cuts the state to 255 characters; ``expires`` marks values that follow the
    meter (they get the builder's ``expire_after``).
    """

    key: str
    name: str
    component: Component = "sensor"
    device_class: str | None = None
    state_class: str | None = None
    unit: str | None = None
    icon: str | None = None
    entity_category: Literal["diagnostic", "config"] | None = None
    field: str | None = None
    value_template: str | None = None
    attributes: tuple[str, ...] = ()
    options: tuple[str, ...] = ()
    text: bool = False
    expires: bool = False

    def __post_init__(self) -> None:
        for f in (self.key, self.source_field, *self.attributes):
            if not _FIELD.match(f):
                raise ValueError(f"entity {self.key!r}: {f!r} is not a payload field name")

    @property
    def source_field(self) -> str:
        return self.field or self.key


# -- the meter reading (p1-reader publishes these, for the fields the meter sends) ---------------
def _sensor(key: str, name: str, device_class: str | None = None, unit: str | None = None,
            state_class: str | None = None, **kw: Any) -> EntityDescription:
    """A sensor for a reading field; it expires when the readings stop."""
    return EntityDescription(key, name, device_class=device_class, state_class=state_class,
                             unit=unit, expires=True, **kw)


def _counter(key: str, name: str, device_class: str | None, unit: str | None = None,
             **kw: Any) -> EntityDescription:
    """A meter counter: it only goes up (long-term statistics as a running total)."""
    return _sensor(key, name, device_class, unit, "total_increasing", **kw)


def _measurement(key: str, name: str, device_class: str,
                 unit: str | None = None) -> EntityDescription:
    """A value at an instant (long-term statistics as mean, min and max)."""
    return _sensor(key, name, device_class, unit, "measurement")


def _diag(key: str, name: str, device_class: str, unit: str) -> EntityDescription:
    # settings of the meter, not measurements: no state class (no long-term statistics)
    return _sensor(key, name, device_class, unit, entity_category="diagnostic")


_PHASES = (1, 2, 3)

READING_ENTITIES: tuple[EntityDescription, ...] = (
    _counter("import_kwh", "Energy import", "energy", "kWh"),
    _counter("import_t1_kwh", "Energy import tariff 1", "energy", "kWh"),
    _counter("import_t2_kwh", "Energy import tariff 2", "energy", "kWh"),
    _counter("import_t3_kwh", "Energy import tariff 3", "energy", "kWh"),
    _counter("import_t4_kwh", "Energy import tariff 4", "energy", "kWh"),
    _counter("export_kwh", "Energy export", "energy", "kWh"),
    _counter("export_t1_kwh", "Energy export tariff 1", "energy", "kWh"),
    _counter("export_t2_kwh", "Energy export tariff 2", "energy", "kWh"),
    _counter("export_t3_kwh", "Energy export tariff 3", "energy", "kWh"),
    _counter("export_t4_kwh", "Energy export tariff 4", "energy", "kWh"),
    # the reactive_energy device class exists since Home Assistant 2025.6
    _counter("reactive_import_kvarh", "Reactive energy import", "reactive_energy", "kvarh"),
    _counter("reactive_export_kvarh", "Reactive energy export", "reactive_energy", "kvarh"),
    _counter("reactive_import_t1_kvarh", "Reactive energy import tariff 1", "reactive_energy",
             "kvarh"),
    _counter("reactive_import_t2_kvarh", "Reactive energy import tariff 2", "reactive_energy",
             "kvarh"),
    _counter("reactive_export_t1_kvarh", "Reactive energy export tariff 1", "reactive_energy",
             "kvarh"),
    _counter("reactive_export_t2_kvarh", "Reactive energy export tariff 2", "reactive_energy",
             "kvarh"),
    _measurement("import_w", "Power import", "power", "W"),
    _measurement("export_w", "Power export", "power", "W"),
    _measurement("net_w", "Power net", "power", "W"),
    *(_measurement(f"l{n}_import_w", f"Power import L{n}", "power", "W") for n in _PHASES),
    *(_measurement(f"l{n}_export_w", f"Power export L{n}", "power", "W") for n in _PHASES),
    _measurement("reactive_import_var", "Reactive power import", "reactive_power", "var"),
    _measurement("reactive_export_var", "Reactive power export", "reactive_power", "var"),
    *(_measurement(f"l{n}_reactive_import_var", f"Reactive power import L{n}", "reactive_power",
                   "var") for n in _PHASES),
    *(_measurement(f"l{n}_reactive_export_var", f"Reactive power export L{n}", "reactive_power",
                   "var") for n in _PHASES),
    _measurement("frequency_hz", "Frequency", "frequency", "Hz"),
    _measurement("power_factor", "Power factor", "power_factor"),
    *(_measurement(f"l{n}_power_factor", f"Power factor L{n}", "power_factor") for n in _PHASES),
    *(_measurement(f"l{n}_voltage_v", f"Voltage L{n}", "voltage", "V") for n in _PHASES),
    *(_measurement(f"l{n}_current_a", f"Current L{n}", "current", "A") for n in _PHASES),
    _measurement("avg_demand_w", "Quarter-hour average demand", "power", "W"),
    _sensor("month_max_w", "Month peak demand", "power", "W", "measurement",
            attributes=("month_max_history",)),
    _sensor("month_max_ts", "Month peak demand time", "timestamp"),
    _sensor("tariff", "Tariff", icon="mdi:clock-time-eight"),
    EntityDescription("tariff_low", "Low tariff", "binary_sensor", icon="mdi:weather-night",
                      expires=True),
    _sensor("breaker", "Breaker state", icon="mdi:electric-switch"),
    _diag("limiter_w", "Power limiter threshold", "power", "W"),
    _diag("limiter_a", "Current limiter threshold", "current", "A"),
    _diag("limiter_va", "Apparent power limiter threshold", "apparent_power", "VA"),
    _diag("fuse_limit_a", "Fuse supervision threshold L1", "current", "A"),
    _diag("l2_fuse_limit_a", "Fuse supervision threshold L2", "current", "A"),
    _diag("l3_fuse_limit_a", "Fuse supervision threshold L3", "current", "A"),
    _counter("power_failures", "Power failures", None, icon="mdi:flash-off"),
    _counter("long_power_failures", "Long power failures", None, icon="mdi:flash-off"),
    _counter("gas_m3", "Gas", "gas", "m³"),
    _counter("water_m3", "Water", "water", "m³"),
    _counter("heat_gj", "Heat", "energy", "GJ"),
    _sensor("message", "Meter message", icon="mdi:message-text", text=True),
)
READING_BY_FIELD: dict[str, EntityDescription] = {d.source_field: d for d in READING_ENTITIES}


def value_template(d: EntityDescription) -> str:
    """The state template: the field when present, else ``None`` (unknown), no warning."""
    if d.value_template:
        return d.value_template
    f = f"value_json.{d.source_field}"
    if d.component == "binary_sensor":
        value = f"('ON' if {f} else 'OFF')"
    elif d.text:
        # an empty text is no state: unknown rather than the previous message kept
        return f"{{{{ {f}[:{STATE_MAX}] if {f} is defined and {f} else None }}}}"
    else:
        value = f
    return f"{{{{ {value} if {f} is defined else None }}}}"


def attributes_template(fields: Iterable[str]) -> str:
    """A JSON object of those ``fields`` the payload carries (``{}`` when none)."""
    names = ", ".join(f"'{f}'" for f in fields)
    return (f"{{{{ dict(value_json.items() | selectattr(0, 'in', [{names}])) | tojson "
            "if value_json is mapping else '{}' }}")


@cache
def origin() -> dict[str, str]:
    """Who publishes the configs: shown by Home Assistant in its logs and MQTT info."""
    out = {"name": ORIGIN_NAME}
    try:
        meta = metadata.metadata(ORIGIN_NAME)
    except metadata.PackageNotFoundError:
        return out
    out["sw_version"] = meta["Version"]
    for entry in meta.get_all("Project-URL") or []:
        label, _, url = entry.partition(",")
        if label.strip().lower() in ("documentation", "homepage", "source") and url.strip():
            out["support_url"] = url.strip()
            break
    return out


def device_id(site: str) -> str:
    return f"p1_{segment(site, 'site')}"


def device(site: str, reading: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The site's device. Only a reading adds meter details (p1-reader): without one,
    model, serial and firmware are left out so that Home Assistant keeps the meter's."""
    dev: dict[str, Any] = {
        "identifiers": [device_id(site)],
        "name": f"P1 meter {site}",
        "manufacturer": MANUFACTURER,
    }
    if reading:
        for key, src in (("model", "header"), ("serial_number", "meter_id"),
                         ("sw_version", "dsmr_version")):
            if reading.get(src):
                dev[key] = str(reading[src])
    return dev


def telegram_interval_s(dsmr_version: str | None) -> int:
    """Seconds between telegrams: DSMR 5 and Fluvius eMUCS (version 5x) every second,
    DSMR 4 and older (version 4x or none sent) every 10 s."""
    return 1 if dsmr_version and str(dsmr_version).startswith("5") else 10


class TelegramInterval:
    """The meter's telegram interval as seen: the shortest meter-clock gap between the
    last ``window`` accepted telegrams (a lost telegram makes one gap longer, not all)."""

    def __init__(self, window: int = 3) -> None:
        self.window = window
        self._last: float | None = None
        self._gaps: list[float] = []

    def observe(self, ts: str | None) -> float | None:
        """Feed a reading's ``ts``; the interval in seconds once ``window`` gaps are known."""
        if not ts:
            return self.interval_s
        try:
            t = datetime.fromisoformat(ts).timestamp()
        except ValueError:
            return self.interval_s
        if self._last is not None and 0 < t - self._last <= 3600:
            self._gaps = [*self._gaps, t - self._last][-self.window:]
        self._last = t
        return self.interval_s

    @property
    def interval_s(self) -> float | None:
        return min(self._gaps) if len(self._gaps) >= self.window else None


def expire_after_s(interval_s: float, publish_every: int = 1) -> int:
    """How long a meter value stays valid in Home Assistant without a new reading:
    10 telegrams of a 1-second meter, 6 of a 10-second one (at least 10 s, at most
    one hour), so a few lost telegrams or a broker reconnect do not blink the
    sensors, while an unplugged cable shows *unavailable* within 10 s or a minute."""
    gap = interval_s * max(1, publish_every)
    return int(min(3600, max(10, math.ceil(gap * (10 if interval_s <= 1 else 6)))))


def discovery_messages(
    entities: Iterable[EntityDescription],
    *,
    site: str,
    node: str,
    state_topics: Mapping[str, str] | str,
    status_topic: str | None,
    reading: Mapping[str, Any] | None = None,
    expire_after: int | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """(config topic, payload) for every entity.

    ``node``: discovery node id and unique-id prefix of the service (kept as they were
    so that existing Home Assistant entities keep their ids and history).
    ``state_topics``: the topic of every entity, or a map from the entity ``key`` to its
    topic. ``status_topic``: the service's ``online``/``offline`` topic (availability).
    ``reading``: the meter reading (p1-reader only: model, serial, firmware).
    ``expire_after``: seconds, for the entities marked ``expires``."""
    segment(node, "node id")
    dev = device(site, reading)
    out: list[tuple[str, dict[str, Any]]] = []
    for d in entities:
        topic = state_topics if isinstance(state_topics, str) else state_topics[d.key]
        object_id = f"{device_id(site)}_{d.key}"
        cfg: dict[str, Any] = {
            "name": d.name,
            "unique_id": f"{node}_{d.key}",
            "default_entity_id": f"{d.component}.{object_id}",
            "object_id": object_id,
            "state_topic": topic,
            "value_template": value_template(d),
            "device": dev,
            "origin": origin(),
        }
        if status_topic:
            cfg.update(availability_topic=status_topic, payload_available="online",
                       payload_not_available="offline")
        for key, value in (("device_class", d.device_class), ("state_class", d.state_class),
                           ("unit_of_measurement", d.unit), ("icon", d.icon),
                           ("entity_category", d.entity_category)):
            if value:
                cfg[key] = value
        if d.options:
            cfg["options"] = list(d.options)
        if d.attributes:
            cfg["json_attributes_topic"] = topic
            cfg["json_attributes_template"] = attributes_template(d.attributes)
        if d.expires and expire_after:
            cfg["expire_after"] = int(expire_after)
        out.append((ha_config_topic(d.component, node, d.key), cfg))
    return out


def reading_discovery(
    fields: Iterable[str],
    *,
    site: str,
    state_topic: str,
    status_topic: str | None,
    reading: Mapping[str, Any] | None,
    publish_every: int = 1,
    on_change: bool = False,
    interval_s: float | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """p1-reader's configs: one entity per reading field in ``fields`` that has one.

    ``expire_after`` follows the meter's telegram interval (``interval_s`` as measured,
    else guessed from the version) times ``publish_every``; with publish-on-change there
    is none (a quiet meter legitimately sends nothing new)."""
    entities = [READING_BY_FIELD[f] for f in sorted(set(fields) & READING_BY_FIELD.keys())]
    expire = None
    if not on_change:
        if interval_s is None:
            interval_s = telegram_interval_s(reading.get("dsmr_version") if reading else None)
        expire = expire_after_s(interval_s, publish_every)
    return discovery_messages(
        entities, site=site, node=f"p1_reader_{site}", state_topics=state_topic,
        status_topic=status_topic, reading=reading, expire_after=expire)


# -- EV chargers (load-controller, kind "ev"): from its retained ``control`` -------------------------
def ev_key(output_id: str) -> str:
    """The entity key part of an output id (ids may hold '-', '.' and capitals)."""
    return "ev_" + re.sub(r"[^a-z0-9_]", "_", output_id.lower())


def _ev_template(output_id: str, expr: str) -> str:
    """The value of ``expr`` (on ``o``, the output's decision in ``control``), else None."""
    quoted = output_id.replace("'", "")  # ids are [A-Za-z0-9_.-]: nothing to escape
    return ("{% set m = (value_json.outputs if value_json is mapping and value_json.outputs "
            f"is defined else []) | selectattr('id', 'eq', '{quoted}') | list %}}"
            f"{{% set o = m[0] if m else None %}}{{{{ {expr} }}}}")


def ev_entities(output_id: str) -> tuple[EntityDescription, ...]:
    """A charger's entities: current, power, energy charged and its target, the ETA, the raise
    of the threshold the plan needs, and the reason in words."""
    k = ev_key(output_id)

    def ev_field(name: str) -> str:
        return _ev_template(output_id, f"o.ev.{name} if o and o.ev is defined and o.ev "
                            f"and o.ev.{name} is defined and o.ev.{name} is not none else None")

    return (
        EntityDescription(f"{k}_current", f"EV {output_id} charging current", device_class="current",
                          state_class="measurement", unit="A", icon="mdi:ev-station",
                          value_template=ev_field("current_a")),
        EntityDescription(f"{k}_power", f"EV {output_id} charging power", device_class="power",
                          state_class="measurement", unit="W", value_template=ev_field("power_w")),
        EntityDescription(f"{k}_session", f"EV {output_id} energy charged", device_class="energy",
                          unit="Wh", value_template=ev_field("session_wh")),
        EntityDescription(f"{k}_target", f"EV {output_id} energy target", device_class="energy",
                          unit="Wh", icon="mdi:battery-charging-high",
                          value_template=ev_field("target_wh")),
        EntityDescription(f"{k}_eta", f"EV {output_id} ready at", device_class="timestamp",
                          value_template=ev_field("eta")),
        EntityDescription(f"{k}_raise", f"EV {output_id} threshold raise", device_class="power",
                          unit="W", icon="mdi:arrow-up-bold", value_template=ev_field("raise_w")),
        EntityDescription(f"{k}_reason", f"EV {output_id} reason", icon="mdi:text",
                          value_template=_ev_template(
                              output_id, f"o.reason[:{STATE_MAX}] if o and o.reason is defined "
                              "else None")),
    )
