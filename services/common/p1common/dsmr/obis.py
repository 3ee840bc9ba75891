"""The OBIS objects p1-reader understands, as data: reference -> field name and value kind.

Adding an object is one entry here; ``parser.py`` holds the machinery that turns a
kind into a value (unit conversion, timestamp, hex decoding). Field names are the
ones of the reading payload (``p1common.payloads.Reading``). An OBIS reference that
is not listed lands in the reading's ``extra`` map with its raw text, never fatal.
"""

from __future__ import annotations

# Value kinds ------------------------------------------------------------------
KWH = "kwh"  # energy counter: float kWh (a value in Wh is divided by 1000)
W = "w"  # power: float W (a value in kW is multiplied by 1000)
VOLT = "v"  # float V
AMP = "a"  # float A
INT = "int"  # integer (tariff, counters, breaker state)
STR = "str"  # text as sent
HEXTEXT = "hex"  # octet string sent as hex: decoded when it is printable ASCII, else as sent
TS = "ts"  # YYMMDDhhmmssX timestamp -> ISO 8601 with the offset of its S/W flag
MAX_DEMAND = "max_demand"  # 1-0:1.6.0 (timestamp)(value*kW): month_max_ts + month_max_w
HISTORY = "history"  # 0-0:98.1.0 the 13-month history of month peaks
FAILURE_LOG = "failure_log"  # 1-0:99.97.0 power failure event log
LIMITER = "limiter"  # 0-0:17.0.0: limiter_w (kW/W), limiter_a (A) or limiter_va (kVA/VA)
VAR = "var"  # reactive power: float var (a value in kvar is multiplied by 1000)
KVARH = "kvarh"  # reactive energy counter: float kvarh (a value in varh is divided by 1000)
HZ = "hz"  # float Hz
RATIO = "ratio"  # a number without unit (power factor)

# Electricity meter objects (channel 0) -------------------------------------------
OBJECTS: dict[str, tuple[str, str]] = {
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
}

# M-Bus objects, on channels 0-1 .. 0-4, keyed without the "0-n:" prefix ------------
MBUS_DEVICE_TYPE = "device_type"
MBUS_EQUIPMENT_ID = "equipment_id"
MBUS_READING = "reading"  # (timestamp)(value*unit), DSMR 4/5 and eMUCS
MBUS_LEGACY_READING = "legacy_reading"  # DSMR 2.2/3 24.3.0, value on the next line
MBUS_VALVE = "valve"
MBUS_EAN = "ean"
MBUS_BREAKER = "breaker"
MBUS_OBJECTS: dict[str, str] = {
    "24.1.0": MBUS_DEVICE_TYPE,
    "96.1.0": MBUS_EQUIPMENT_ID,
    "96.1.1": MBUS_EQUIPMENT_ID,  # Belgium writes the M-Bus id on 96.1.1
    "96.1.2": MBUS_EAN,  # eMUCS 2.x: EAN of the gas/water connection
    "96.3.10": MBUS_BREAKER,  # eMUCS 2.x / Luxembourg: breaker (switch) state of the channel
    "24.2.1": MBUS_READING,
    "24.2.3": MBUS_READING,  # Belgium: not temperature corrected gas volume
    "24.3.0": MBUS_LEGACY_READING,
    "24.4.0": MBUS_VALVE,
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
