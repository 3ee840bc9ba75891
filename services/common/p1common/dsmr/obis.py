"""The OBIS objects we understand, as data: reference -> field, converter, fast path.

In the style of dsmr_parser's ``telegram_specifications`` and Home Assistant's DSMR
``SENSORS``: adding an object is one :class:`Spec` here. A converter takes the values
between the brackets and the OBIS reference and returns the field's value, ``None``
for an empty value (nothing stored), or :data:`EXTRA` when the value is of a kind it
does not know (the line then lands, raw, in the reading's ``extra`` map). Field names
are those of ``p1common.payloads.Reading``. ``fast`` names the one fast path
(``values.fast_*``) for the lines of every telegram.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import values as conv

EXTRA: Any = object()  # "keep this line raw in extra"
Converter = Callable[[list[str], str], Any]


@dataclass(frozen=True, slots=True)
class Spec:
    field: str | None  # None: the converter returns a dict of fields (two from one object)
    convert: Converter
    fast: Callable[[str, int], Any] | None = None  # the fast path for this kind (values.fast_*)
    first_wins: bool = False  # a second object for the same field does not overwrite it


def _or_extra(x: Any) -> Any:
    return EXTRA if x is None else x


def power(values: list[str], ref: str) -> Any:  # kW -> W (W as sent)
    return _or_extra(conv.power_w(values[0], ref)) if values[0] else None


def energy(values: list[str], ref: str) -> Any:  # kWh (Wh -> kWh)
    return _or_extra(conv.energy_kwh(values[0], ref)) if values[0] else None


def reactive_power(values: list[str], ref: str) -> Any:  # kvar -> var
    return _or_extra(conv.power_w(values[0], ref, "kvar", "var")) if values[0] else None


def reactive_energy(values: list[str], ref: str) -> Any:  # varh -> kvarh
    return _or_extra(conv.energy_kwh(values[0], ref, "kvarh", "varh")) if values[0] else None


def hertz(values: list[str], ref: str) -> Any:
    return _or_extra(conv.number_in(values[0], ref, "hz")) if values[0] else None


def ratio(values: list[str], ref: str) -> Any:  # a number without unit
    return _or_extra(conv.number_in(values[0], ref, "")) if values[0] else None


def number(values: list[str], ref: str) -> Any:  # V, A: the unit is the field's
    return conv.number(conv.split_unit(values[0])[0], ref) if values[0] else None


def integer(values: list[str], ref: str) -> Any:
    return conv.integer(conv.split_unit(values[0])[0], ref) if values[0] else None


def timestamp(values: list[str], ref: str) -> Any:  # an invalid stamp is left out
    return conv.parse_timestamp(values[0])


def hex_text(values: list[str], ref: str) -> Any:
    return conv.hex_text(values[0]) if values[0] else None


def text(values: list[str], ref: str) -> Any:
    return values[0] or None


def max_demand(values: list[str], ref: str) -> Any:
    """1-0:1.6.0 (timestamp)(value*kW) -> month_max_ts, month_max_w."""
    if len(values) != 2:
        return EXTRA
    out: dict[str, Any] = {}
    ts = conv.parse_timestamp(values[0])
    if ts is not None:
        out["month_max_ts"] = ts
    if values[1]:
        w = conv.power_w(values[1], ref)
        if w is not None:
            out["month_max_w"] = w
    return out


def month_history(values: list[str], ref: str) -> Any:
    return _or_extra(conv.history(")(".join(values), values, ref))


def failure_log(values: list[str], ref: str) -> Any:
    return _or_extra(conv.failure_log(values, ref))


def limiter(values: list[str], ref: str) -> Any:
    """0-0:17.0.0 in kW/W (limiter_w), kVA/VA (Luxembourg: limiter_va) or A (DSMR 2.2/3)."""
    num, unit = conv.split_unit(values[0])
    if unit in ("kw", "w"):
        return {"limiter_w": conv.power_w(values[0], ref)}
    if unit in ("kva", "va"):
        return {"limiter_va": conv.power_w(values[0], ref, "kva", "va")}
    if unit == "a":
        return {"limiter_a": conv.number(num, ref)}
    return EXTRA if values[0] else None


# the spec of each kind of object, with its fast path
KWH = Spec(None, energy, conv.fast_kwh)
W = Spec(None, power, conv.fast_kw3)
VOLT = AMP = Spec(None, number, conv.fast_number)
INT = Spec(None, integer, conv.fast_int)
TS = Spec(None, timestamp, conv.fast_ts)
HEXTEXT = Spec(None, hex_text, first_wins=True)
STR = Spec(None, text)
VAR = Spec(None, reactive_power)
KVARH = Spec(None, reactive_energy)
HZ = Spec(None, hertz)
RATIO = Spec(None, ratio)
MAX_DEMAND = Spec(None, max_demand)
HISTORY = Spec(None, month_history)
FAILURE_LOG = Spec(None, failure_log)
LIMITER = Spec(None, limiter)


def _table(rows: dict[str, tuple[str, Spec]]) -> dict[str, Spec]:
    """Each row's kind, named for its field (multi-field kinds keep None)."""
    multi = (MAX_DEMAND, LIMITER)
    return {ref: kind if kind in multi else Spec(field, kind.convert, kind.fast, kind.first_wins)
            for ref, (field, kind) in rows.items()}


# Electricity meter objects (channel 0) -------------------------------------------
OBJECTS: dict[str, Spec] = _table({
    # identification and clock
    "1-3:0.2.8": ("dsmr_version", STR),
    "0-0:96.1.4": ("dsmr_version", STR),  # Fluvius eMUCS version, e.g. 50217
    "0-0:96.1.2": ("ean", HEXTEXT),  # eMUCS 2.x: EAN of the connection
    "0-0:1.0.0": ("ts", TS),
    "0-0:96.1.1": ("meter_id", HEXTEXT),
    "0-0:42.0.0": ("meter_id", HEXTEXT),  # Luxembourg Smarty logical device name
    # energy counters
    "1-0:1.8.1": ("import_t1_kwh", KWH),
    "1-0:1.8.2": ("import_t2_kwh", KWH),
    "1-0:2.8.1": ("export_t1_kwh", KWH),
    "1-0:2.8.2": ("export_t2_kwh", KWH),
    "1-0:1.8.0": ("import_kwh", KWH),  # single-rate / total register
    "1-0:2.8.0": ("export_kwh", KWH),
    "1-0:1.8.3": ("import_t3_kwh", KWH),  # four-rate meters (E.ON Hungary)
    "1-0:1.8.4": ("import_t4_kwh", KWH),
    "1-0:2.8.3": ("export_t3_kwh", KWH),
    "1-0:2.8.4": ("export_t4_kwh", KWH),
    "0-0:96.14.0": ("tariff", INT),
    # power, total and per phase
    "1-0:1.7.0": ("import_w", W),
    "1-0:2.7.0": ("export_w", W),
    "1-0:21.7.0": ("l1_import_w", W),
    "1-0:41.7.0": ("l2_import_w", W),
    "1-0:61.7.0": ("l3_import_w", W),
    "1-0:22.7.0": ("l1_export_w", W),
    "1-0:42.7.0": ("l2_export_w", W),
    "1-0:62.7.0": ("l3_export_w", W),
    # voltage and current per phase
    "1-0:32.7.0": ("l1_voltage_v", VOLT),
    "1-0:52.7.0": ("l2_voltage_v", VOLT),
    "1-0:72.7.0": ("l3_voltage_v", VOLT),
    "1-0:31.7.0": ("l1_current_a", AMP),
    "1-0:51.7.0": ("l2_current_a", AMP),
    "1-0:71.7.0": ("l3_current_a", AMP),
    # reactive power and energy (Luxembourg, Sweden, Austria, Hungary)
    "1-0:3.7.0": ("reactive_import_var", VAR),
    "1-0:4.7.0": ("reactive_export_var", VAR),
    "1-0:23.7.0": ("l1_reactive_import_var", VAR),
    "1-0:43.7.0": ("l2_reactive_import_var", VAR),
    "1-0:63.7.0": ("l3_reactive_import_var", VAR),
    "1-0:24.7.0": ("l1_reactive_export_var", VAR),
    "1-0:44.7.0": ("l2_reactive_export_var", VAR),
    "1-0:64.7.0": ("l3_reactive_export_var", VAR),
    "1-0:3.8.0": ("reactive_import_kvarh", KVARH),
    "1-0:4.8.0": ("reactive_export_kvarh", KVARH),
    "1-0:3.8.1": ("reactive_import_t1_kvarh", KVARH),
    "1-0:3.8.2": ("reactive_import_t2_kvarh", KVARH),
    "1-0:4.8.1": ("reactive_export_t1_kvarh", KVARH),
    "1-0:4.8.2": ("reactive_export_t2_kvarh", KVARH),
    # grid frequency and power factor (E.ON Hungary)
    "1-0:14.7.0": ("frequency_hz", HZ),
    "1-0:13.7.0": ("power_factor", RATIO),
    "1-0:33.7.0": ("l1_power_factor", RATIO),
    "1-0:53.7.0": ("l2_power_factor", RATIO),
    "1-0:73.7.0": ("l3_power_factor", RATIO),
    # Fluvius eMUCS capacity tariff
    "1-0:1.4.0": ("avg_demand_w", W),
    "1-0:1.6.0": ("month_max", MAX_DEMAND),
    "0-0:98.1.0": ("month_max_history", HISTORY),
    # breaker, limiter, fuse supervision
    "0-0:96.3.10": ("breaker", INT),
    "0-0:17.0.0": ("limiter_w", LIMITER),
    "1-0:31.4.0": ("fuse_limit_a", AMP),  # L1 (the only one most meters send)
    "1-0:51.4.0": ("l2_fuse_limit_a", AMP),
    "1-0:71.4.0": ("l3_fuse_limit_a", AMP),
    # power quality
    "0-0:96.7.21": ("power_failures", INT),
    "0-0:96.7.9": ("long_power_failures", INT),
    "1-0:99.97.0": ("power_failure_log", FAILURE_LOG),
    "1-0:32.32.0": ("l1_voltage_sags", INT),
    "1-0:52.32.0": ("l2_voltage_sags", INT),
    "1-0:72.32.0": ("l3_voltage_sags", INT),
    "1-0:32.36.0": ("l1_voltage_swells", INT),
    "1-0:52.36.0": ("l2_voltage_swells", INT),
    "1-0:72.36.0": ("l3_voltage_swells", INT),
    # messages
    "0-0:96.13.0": ("message", HEXTEXT),
    "0-0:96.13.1": ("message_code", HEXTEXT),
})

# M-Bus objects, on channels 0-1 .. 0-4, keyed without the "0-n:" prefix ------------
# Fields of the channel's entry in the reading's ``mbus`` list.
VALUE_FOLLOWS = "value_follows"  # a legacy reading: its value is on the next line


def mbus_reading(values: list[str], ref: str) -> Any:
    """(timestamp)(value*unit), DSMR 4/5 and eMUCS."""
    if len(values) != 2:
        return EXTRA
    out: dict[str, Any] = {}
    ts = conv.parse_timestamp(values[0])
    if ts is not None:
        out["ts"] = ts
    num, _, unit = values[1].partition("*")
    if num:
        out["value"] = conv.number(num, ref)
    if unit:
        out["unit"] = unit
    return out


def mbus_legacy_reading(values: list[str], ref: str) -> Any:
    """DSMR 2.2/3 24.3.0: (ts)(status)(period)(1)(0-n:24.2.1)(unit), the value on the next line."""
    if len(values) != 6:
        return EXTRA
    out: dict[str, Any] = {VALUE_FOLLOWS: True}
    ts = conv.parse_timestamp(values[0])
    if ts is not None:
        out["ts"] = ts
    if values[5]:
        out["unit"] = values[5]
    return out


MBUS_OBJECTS: dict[str, Spec] = {
    "24.1.0": Spec("device_type", integer),
    "96.1.0": Spec("equipment_id", hex_text, first_wins=True),
    "96.1.1": Spec("equipment_id", hex_text, first_wins=True),  # Belgium writes the M-Bus id on 96.1.1
    "96.1.2": Spec("ean", hex_text),  # eMUCS 2.x: EAN of the gas/water connection
    "96.3.10": Spec("breaker", integer),  # eMUCS 2.x / Luxembourg: breaker (switch) state
    "24.2.1": Spec(None, mbus_reading),
    "24.2.3": Spec(None, mbus_reading),  # Belgium: not temperature corrected gas volume
    "24.3.0": Spec(None, mbus_legacy_reading),
    "24.4.0": Spec("valve", integer),
}
MBUS_CHANNELS = ("1", "2", "3", "4")

# EN 13757-3 device types -> what the reading calls them
DEVICE_KINDS: dict[int, str] = {3: "gas", 7: "water", 4: "heat", 12: "heat", 10: "cold", 11: "cold"}

# Per kind: the top-level fields of the first channel of that kind with a reading,
# and the unit its value must have (lower case) with the factor to the field's unit.
MBUS_TOP_LEVEL: dict[str, tuple[str, str, str, str | None, dict[str, float]]] = {
    # kind: (value field, ts field, id field, valve field, {unit: factor})
    "gas": ("gas_m3", "gas_ts", "gas_id", "gas_valve", {"m3": 1.0}),
    "water": ("water_m3", "water_ts", "water_id", None, {"m3": 1.0}),
    "heat": ("heat_gj", "heat_ts", "heat_id", None, {"gj": 1.0, "mj": 0.001}),
}
