"""Payload models of the MQTT contract (v1), one place for every field name and unit.

These pydantic models are the contract's documentation and its validator: the JSON
Schemas in ``docs/schemas/`` are generated from them (``p1-schemas``), the tests
validate what services publish against them, and consumers use them to refuse a
bad payload with a message naming the field. Publishers build plain dicts on the
hot path (no model per telegram); ``None`` values are left out, never invented.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from . import CONTRACT_VERSION

Iso = str  # ISO 8601 with UTC offset, e.g. 2026-01-15T13:45:00+01:00

# -- physical ranges -------------------------------------------------------------------------
# Every number a meter can send, bounded by the format the DSMR 5.0.2 / eMUCS 1.7 P1
# specifications give it (so a real meter is never refused) and by physics (so a glitch
# or a forged payload cannot poison a consumer's state). A bool is no number (strict
# validation) and NaN/Infinity are refused (allow_inf_nan=False). Where a real fixture
# in tests/data/telegrams comes close to a bound, it is named.
# energy registers: F9(3) kWh, at most 999999.999 per tariff register
Kwh = Annotated[float, Field(ge=0, le=999_999.999)]
# totals: the sum of up to four registers (the RobThree fixture sums to 1111111.11)
KwhTotal = Annotated[float, Field(ge=0, le=4_000_000)]
Kvarh = Annotated[float, Field(ge=0, le=4_000_000)]
# power: F5(3) kW, at most 99.999 kW (the largest fixture value: 22.2 kW, Wassasin MCS5)
Watt = Annotated[float, Field(ge=0, le=100_000)]
NetW = Annotated[float, Field(ge=-100_000, le=100_000)]
Var = Annotated[float, Field(ge=0, le=100_000)]
# limiter thresholds: up to 999 kW / kVA (a fixture sends 999 kW; 999.9 kW means "no limit")
LimitVA = Annotated[float, Field(ge=0, le=1_000_000)]
# voltage F4(1) per phase: 230 V nominal; 500 V leaves room for any real reading
Volt = Annotated[float, Field(ge=0, le=500)]
# current F3: at most 999 A (fixtures: 333 A per phase, 200 A fuse supervision)
Amp = Annotated[float, Field(ge=0, le=999)]
Hertz = Annotated[float, Field(ge=40, le=70)]
# power factor "as sent": an E.ON (Hungary) meter sends 4.5 with no unit, so no [-1, 1]
PowerFactor = Annotated[float, Field(ge=-10, le=10)]
# gas / water counters F8(3) m3; heat in GJ
Cubic = Annotated[float, Field(ge=0, le=10_000_000)]
GigaJoule = Annotated[float, Field(ge=0, le=1_000_000)]
# event counters F5(0)
Count = Annotated[int, Field(ge=0, le=99_999)]
# 0-0:96.14.0 is four digits; meters use 1..4
TariffCode = Annotated[int, Field(ge=0, le=9)]
# breaker / valve states: 0 disconnected, 1 connected, 2 ready for reconnection
SwitchState = Annotated[int, Field(ge=0, le=2)]
# the capacity tariff's values: a quarter's average is at most the meter's 100 kW; the
# thresholds and forecasts of the largest connections stay well under 1 MW
PeakW = Annotated[float, Field(ge=0, le=1_000_000)]
SignedPeakW = Annotated[float, Field(ge=-1_000_000, le=1_000_000)]
# headroom: the constant extra power the rest of the quarter can take, (threshold energy -
# forecast) / remaining time with at least 1 s left: in the last second of a quarter it
# is up to the whole quarter's energy times 3600 (1 MW x 0.25 h -> 9e8 W)
HeadroomW = Annotated[float, Field(ge=-1e9, le=1e9)]
QuarterWh = Annotated[float, Field(ge=0, le=250_000)]  # 1 MW for 15 minutes
QuarterSeconds = Annotated[float, Field(ge=0, le=4 * 3600)]  # a quarter, a DST hour and gaps
Euro = Annotated[float, Field(ge=0, le=100_000_000)]
# EV charging (kind "ev"): current per phase, phases in use, charging power, session energy
ChargeAmp = Annotated[float, Field(ge=0, le=80)]
Phases = Literal[1, 3]
ChargeW = Annotated[float, Field(ge=0, le=60_000)]
SessionWh = Annotated[float, Field(ge=0, le=250_000)]
HHMM_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
# what an output is, and how the load-controller drives it
OutputKind = Literal["relay", "dimmer", "ev"]
OutputMode = Literal["off", "on", "tariff", "surplus", "proportional", "ev"]



def scalar_type(model: type[BaseModel], name: str) -> type | None:
    """The plain type of a field (int, float, bool, str ...) once Optional and the range
    annotations are taken off; None for lists, models and unions of several types."""
    kinds = set()
    for arg in get_args(model.model_fields[name].annotation) or (model.model_fields[name].annotation,):
        if arg is type(None):
            continue
        if get_origin(arg) is Annotated:
            arg = get_args(arg)[0]
        kinds.add(arg)
    if len(kinds) != 1:
        return None
    kind = kinds.pop()
    return kind if isinstance(kind, type) and get_origin(kind) is None else None


class Refused(ValueError):
    """A payload breaks the contract; ``field`` names where (``payload`` for the whole)."""

    def __init__(self, field: str, why: str) -> None:
        super().__init__(f"{field}: {why}")
        self.field = field
        self.why = why


def check(model: type[BaseModel], obj: Any, tolerate_extra: bool = False) -> None:
    """Validate a received payload strictly: the right JSON type for every field (a
    number sent as a string, or a bool for a number, is refused), finite, within the
    field's range. ``tolerate_extra`` lets a newer publisher add fields. Raises
    :class:`Refused` naming the first bad field."""
    try:
        model.model_validate(obj, strict=True)
    except ValidationError as exc:
        errors = [e for e in exc.errors() if not (tolerate_extra and e["type"] == "extra_forbidden")]
        if errors:
            first = errors[0]
            raise Refused(field_name(first["loc"]), first["msg"]) from None


def built(model: type[BaseModel], doc: dict[str, Any]) -> dict[str, Any]:
    """A payload a service publishes, built as its contract model (strict: a wrong type or
    an out-of-range value is a bug of the publisher, raised here, never sent) and returned
    as the JSON-ready dict with exactly the fields given."""
    return model.model_validate(doc, strict=True).model_dump(mode="json", exclude_unset=True)


def field_name(loc: tuple[int | str, ...] | list[Any], whole: str = "payload") -> str:
    """A pydantic error location as a field path: ``outputs[0].mode`` (``whole`` when empty)."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or whole


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class MonthMax(_Model):
    """One entry of the eMUCS 0-0:98.1.0 history: a month's highest quarter."""

    month: str = Field(description="YYYY-MM of the month the peak belongs to")
    ts: Iso | None = Field(None, description="when that quarter ended (meter clock)")
    peak_w: Watt


class MbusDevice(_Model):
    channel: int = Field(ge=1, le=4)
    device_type: int | None = Field(None, description="M-Bus device type: 3 gas, 7 water, 4/12 heat")
    kind: Literal["gas", "water", "heat", "cold", "other"] = "other"
    equipment_id: str | None = None
    ean: str | None = Field(None, description="0-n:96.1.2 EAN code of the connection (eMUCS 2.x)")
    value: float | None = None
    unit: str | None = None
    ts: Iso | None = None
    valve: int | None = None
    breaker: int | None = Field(None, description="0-n:96.3.10 breaker/switch state of the channel")


class PowerFailure(_Model):
    end_ts: Iso
    duration_s: int


class Reading(_Model):
    """``p1/<site>/reading``: everything the meter said, flat, units in the names."""

    model_config = ConfigDict(extra="forbid")
    v: int = CONTRACT_VERSION
    site: str
    source: Literal["p1", "legacy", "sim", "replay"] = Field(
        description="p1 = p1-reader on a port, legacy = bridge-multicast, replay = capture file"
    )
    ts: Iso = Field(description="meter clock with the offset from its S/W flag; host clock if the meter sends none")
    ts_source: Literal["meter", "host"] | None = None
    meter_id: str | None = Field(None, description="equipment id 0-0:96.1.1 (hex decoded when printable)")
    header: str | None = Field(None, description="identification line without the '/'")
    dsmr_version: str | None = Field(None, description="1-3:0.2.8 or Fluvius 0-0:96.1.4")
    ean: str | None = Field(None, description="0-0:96.1.2 EAN code of the connection (eMUCS 2.x)")
    tariff: TariffCode | None = Field(
        None, description="0-0:96.14.0 the meter's own tariff code, as sent (its meaning differs by country)")
    tariff_low: bool | None = Field(
        None, description="true while the low/night tariff is in force (NL DSMR: code 1; BE eMUCS: code 2)")
    import_t1_kwh: Kwh | None = None
    import_t2_kwh: Kwh | None = None
    export_t1_kwh: Kwh | None = None
    export_t2_kwh: Kwh | None = None
    import_t3_kwh: Kwh | None = Field(None, description="1-0:1.8.3 (four-rate meters)")
    import_t4_kwh: Kwh | None = Field(None, description="1-0:1.8.4")
    export_t3_kwh: Kwh | None = Field(None, description="1-0:2.8.3")
    export_t4_kwh: Kwh | None = Field(None, description="1-0:2.8.4")
    import_kwh: KwhTotal | None = Field(
        None, description="1-0:1.8.0, else the sum of the tariff registers T1 + T2 (+ T3 + T4)")
    export_kwh: KwhTotal | None = None
    import_w: Watt | None = None
    export_w: Watt | None = None
    net_w: NetW | None = Field(None, description="import_w - export_w (positive = import)")
    l1_import_w: Watt | None = None
    l2_import_w: Watt | None = None
    l3_import_w: Watt | None = None
    l1_export_w: Watt | None = None
    l2_export_w: Watt | None = None
    l3_export_w: Watt | None = None
    l1_voltage_v: Volt | None = None
    l2_voltage_v: Volt | None = None
    l3_voltage_v: Volt | None = None
    l1_current_a: Amp | None = None
    l2_current_a: Amp | None = None
    l3_current_a: Amp | None = None
    reactive_import_var: Var | None = Field(None, description="1-0:3.7.0 reactive power Q+ (var)")
    reactive_export_var: Var | None = Field(None, description="1-0:4.7.0 reactive power Q- (var)")
    l1_reactive_import_var: Var | None = Field(None, description="1-0:23.7.0")
    l2_reactive_import_var: Var | None = Field(None, description="1-0:43.7.0")
    l3_reactive_import_var: Var | None = Field(None, description="1-0:63.7.0")
    l1_reactive_export_var: Var | None = Field(None, description="1-0:24.7.0")
    l2_reactive_export_var: Var | None = Field(None, description="1-0:44.7.0")
    l3_reactive_export_var: Var | None = Field(None, description="1-0:64.7.0")
    reactive_import_kvarh: Kvarh | None = Field(None, description="1-0:3.8.0 reactive energy Q+ (kvarh)")
    reactive_export_kvarh: Kvarh | None = Field(None, description="1-0:4.8.0 reactive energy Q- (kvarh)")
    reactive_import_t1_kvarh: Kvarh | None = Field(None, description="1-0:3.8.1")
    reactive_import_t2_kvarh: Kvarh | None = Field(None, description="1-0:3.8.2")
    reactive_export_t1_kvarh: Kvarh | None = Field(None, description="1-0:4.8.1")
    reactive_export_t2_kvarh: Kvarh | None = Field(None, description="1-0:4.8.2")
    frequency_hz: Hertz | None = Field(None, description="1-0:14.7.0 grid frequency")
    power_factor: PowerFactor | None = Field(None, description="1-0:13.7.0 power factor, as sent (no unit)")
    l1_power_factor: PowerFactor | None = Field(None, description="1-0:33.7.0")
    l2_power_factor: PowerFactor | None = Field(None, description="1-0:53.7.0")
    l3_power_factor: PowerFactor | None = Field(None, description="1-0:73.7.0")
    avg_demand_w: Watt | None = Field(None, description="eMUCS 1-0:1.4.0 current quarter average demand")
    month_max_w: Watt | None = Field(None, description="eMUCS 1-0:1.6.0 this month's highest quarter")
    month_max_ts: Iso | None = None
    month_max_history: list[MonthMax] | None = Field(None, description="eMUCS 0-0:98.1.0, oldest first")
    breaker: SwitchState | None = Field(None, description="0-0:96.3.10 breaker state (1 = closed)")
    limiter_w: LimitVA | None = Field(None, description="0-0:17.0.0 power limiter threshold, sent in kW/W")
    limiter_a: Amp | None = Field(None, description="0-0:17.0.0 limiter threshold sent in A (DSMR 2.2/3)")
    limiter_va: LimitVA | None = Field(None, description="0-0:17.0.0 limiter threshold sent in kVA/VA (Luxembourg)")
    fuse_limit_a: Amp | None = Field(None, description="1-0:31.4.0 fuse supervision threshold (L1)")
    l2_fuse_limit_a: Amp | None = Field(None, description="1-0:51.4.0 fuse supervision threshold L2")
    l3_fuse_limit_a: Amp | None = Field(None, description="1-0:71.4.0 fuse supervision threshold L3")
    message: str | None = Field(None, description="0-0:96.13.0 text message (decoded)")
    message_code: str | None = Field(None, description="0-0:96.13.1 numeric message")
    power_failures: Count | None = None
    long_power_failures: Count | None = None
    power_failure_log: list[PowerFailure] | None = None
    l1_voltage_sags: Count | None = None
    l2_voltage_sags: Count | None = None
    l3_voltage_sags: Count | None = None
    l1_voltage_swells: Count | None = None
    l2_voltage_swells: Count | None = None
    l3_voltage_swells: Count | None = None
    gas_m3: Cubic | None = None
    gas_ts: Iso | None = None
    gas_id: str | None = None
    gas_valve: SwitchState | None = None
    water_m3: Cubic | None = None
    water_ts: Iso | None = None
    water_id: str | None = None
    heat_gj: GigaJoule | None = None
    heat_ts: Iso | None = None
    heat_id: str | None = Field(None, description="equipment id of the heat meter's M-Bus channel")
    mbus: list[MbusDevice] | None = Field(None, description="every M-Bus channel as sent")
    extra: dict[str, str] | None = Field(None, description="OBIS codes we do not know, raw value text")


class Live(_Model):
    """``p1/<site>/live``: compact, for ESP8266 devices (small heap)."""

    ts: int = Field(description="Unix time (s)")
    imp: int = Field(description="import W")
    exp: int = Field(description="export W")
    tar: int | None = Field(None, description="tariff")


AvgSource = Literal["counters", "meter", "partial"]
_AVG_SOURCE = (
    "where the quarter's energy comes from: counters = our import counters from the quarter's "
    "start; meter = joined mid-way, the energy before the first reading from the meter's "
    "1-0:1.4.0 (average so far x elapsed), the rest from the counters; partial = joined mid-way "
    "and the meter sends no 1-0:1.4.0: energy, averages and forecast count only the part seen "
    "since observed_from (lower bounds; headroom_w an upper bound). Absent from publishers "
    "older than this field"
)
QuarterFlag = Literal["partial", "gap", "meter_replaced", "clock_jump"]


class Peak(_Model):
    """``p1/<site>/peak``: the running quarter, at every reading."""

    v: int = CONTRACT_VERSION
    site: str
    ts: Iso
    quarter_start: Iso
    energy_wh: QuarterWh = Field(description="energy of the quarter so far (see avg_source)")
    avg_w: PeakW = Field(description="energy_wh x 4: the quarter's average if nothing more were drawn")
    forecast_w: PeakW
    threshold_w: PeakW
    headroom_w: HeadroomW
    level: Literal["ok", "warn", "alarm"]
    month_peak_w: PeakW = Field(description="this month's peak as billed (never below 2500 W)")
    meter_avg_demand_w: PeakW | None = Field(
        None, description="the meter's 1-0:1.4.0 in this reading: energy since the quarter's start / time elapsed")
    avg_source: AvgSource | None = Field(None, description=_AVG_SOURCE)
    observed_from: Iso | None = Field(
        None, description="the first reading of a quarter joined mid-way (avg_source meter or partial)")
    complete: bool | None = Field(
        None, description="false while data is missing: a gap over 60 s, a meter swap, or avg_source partial")
    month_peak_is_floor: bool | None = Field(
        None, description="month_peak_w is the 2.5 kW minimum, not a quarter of this month")
    quarter_end: Iso | None = None
    elapsed_s: QuarterSeconds | None = Field(None, description="seconds since quarter_start")
    algorithm: Literal["default", "baseline"] | None = None
    power_w: PeakW | None = Field(None, description="smoothed import power (30 s)")
    meter_diff_w: SignedPeakW | None = Field(
        None, description="our energy so far / elapsed minus meter_avg_demand_w (like for like)")
    warned_at: Iso | None = Field(None, description="first alarm of this quarter")
    probability: float | None = Field(
        None, ge=0, le=1,
        description="the site's learner: probability that the quarter ends above threshold_w "
                    "(absent while it is still learning the house)")
    reason: str | None = Field(
        None, max_length=300, description="the learner's view in words: the load, its hour, what it usually does")
    days_learned: int | None = Field(
        None, ge=0, le=100_000, description="days of quarters the site's learner has learned from")


class QuarterRecord(_Model):
    """``p1/<site>/peak/quarter``: one closed quarter."""

    v: int = CONTRACT_VERSION
    site: str
    start: Iso
    end: Iso
    energy_wh: QuarterWh
    avg_w: PeakW
    meter_avg_w: PeakW | None = Field(None, description="the meter's 1-0:1.4.0 in the quarter's last reading")
    complete: bool = Field(description="false when data was missing (gap, meter swap, avg_source partial)")
    threshold_w: PeakW
    warned_at: Iso | None
    avg_source: AvgSource | None = Field(None, description=_AVG_SOURCE)
    flags: list[QuarterFlag] | None = None
    algorithm: Literal["default", "baseline"] | None = None
    warned_at_default: Iso | None = None
    warned_at_baseline: Iso | None = None
    warned_at_rule: Iso | None = Field(
        None, description="first alarm of the default's rule alone (without the site's learner)")


class MonthPeakEntry(_Model):
    month: str
    peak_w: PeakW


class MonthRecord(_Model):
    """``p1/<site>/peak/month``: month peak, 12-month history, billed average, cost."""

    v: int = CONTRACT_VERSION
    site: str
    month: str = Field(pattern=r"^\d{4}-\d{2}$")
    peak_w: PeakW = Field(description="billed for this month: the meter's 1-0:1.6.0 or ours, never below 2500 W")
    peak_start: Iso | None = Field(description="when peak_w was reached; null while peak_is_floor")
    history: list[MonthPeakEntry] = Field(max_length=12)
    billed_w: PeakW
    cost_eur_year: Euro
    peak_is_floor: bool | None = Field(
        None, description="peak_w is the 2.5 kW minimum: the month's highest quarter (our_peak_w or "
        "meter_peak_w, per source) is below it. Absent from publishers older than this field")
    source: Literal["meter", "ours"] | None = None
    our_peak_w: PeakW | None = Field(None, description="our highest closed quarter this month, not floored")
    our_peak_start: Iso | None = None
    meter_peak_w: PeakW | None = Field(None, description="the meter's 1-0:1.6.0 for this month, not floored")
    meter_peak_ts: Iso | None = Field(None, description="the timestamp the meter sent with 1-0:1.6.0")
    meter_diff_w: SignedPeakW | None = Field(None, description="our_peak_w - meter_peak_w")
    price_eur_per_kw_year: Euro | None = None


class OutputSet(_Model):
    v: int = CONTRACT_VERSION
    ts: Iso
    seq: int = Field(ge=0, le=2**63 - 1)
    ttl_s: float = Field(gt=0, le=3600)
    on: bool | None = None
    pct: float | None = Field(None, ge=0, le=100)
    current_a: ChargeAmp | None = Field(
        None, description="ev: charging current per phase (A); 0 = pause (below the charger's minimum "
        "it pauses too)")
    phases: Phases | None = Field(None, description="ev: phases to charge on (1 or 3)")


class OutputState(_Model):
    v: int = CONTRACT_VERSION
    ts: Iso
    on: bool | None = None
    pct: float | None = Field(None, ge=0, le=100)
    override: bool = False
    seq: int | None = Field(None, ge=0, le=2**63 - 1)
    current_a: ChargeAmp | None = Field(None, description="ev: the current limit the charger applies (A)")
    phases: Phases | None = Field(None, description="ev: phases in use")
    power_w: ChargeW | None = Field(None, description="ev: charging power measured by the charger (W)")
    connected: bool | None = Field(None, description="ev: a car is plugged in")
    charging: bool | None = Field(None, description="ev: the car draws current")
    session_wh: SessionWh | None = Field(None, description="ev: energy charged since the car was plugged in")


# An output id names a topic segment and, on the web, a path segment: '.', '..' and
# anything starting with a dot are refused (the web's path parameter uses this constant).
OUTPUT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
# Outputs per document: the largest document possible stays far below the 256 KiB a
# consumer takes (p1common.mqtt.MAX_JSON_BYTES; a test checks the worst case).
MAX_OUTPUTS = 64


class OutputConfig(_Model):
    ID_PATTERN: ClassVar[str] = OUTPUT_ID_PATTERN  # the one output-id rule (path and body)
    id: str = Field(pattern=OUTPUT_ID_PATTERN,
                    description="1-64 letters, digits, '.', '-', '_', starting with a letter or digit")
    kind: OutputKind = "relay"
    rated_w: float = Field(gt=0, le=50000, description="rated power of the load (ev: at max_current_a "
                           "on all its phases)")
    mode: OutputMode = "off"
    threshold_w: float = Field(0, ge=0, le=50000, description="surplus: export needed to switch on")
    on_delay_s: float = Field(60, ge=0, le=86400)
    min_on_s: float = Field(300, ge=0, le=86400)
    priority: int = Field(0, ge=0, le=1000, description="higher runs first")
    peak_guard: bool = False
    target_net_w: float = Field(0, ge=-5000, le=5000, description="proportional: net power to aim for")
    # kind "ev" (mode "ev"): the charger and what the car needs
    min_current_a: float = Field(6, ge=6, le=32, description="ev: the charger's minimum current (A); "
                                 "below it the charger pauses")
    max_current_a: float = Field(16, ge=6, le=80, description="ev: the most the charger, cable and "
                                 "supply allow (A)")
    phases: Phases = Field(1, description="ev: phases the charger uses (1 or 3)")
    departure: str | None = Field(None, pattern=HHMM_PATTERN, description="ev: local time the car "
                                  "leaves (HH:MM); null: charge as soon as cheap/allowed, no deadline")
    energy_kwh: float | None = Field(None, gt=0, le=200, description="ev: energy to charge by departure "
                                     "(kWh); null: until the car is full")
    charger: Literal["mqtt", "ocpp", "evcc"] = Field(
        "mqtt", description="ev: how the charger is reached: mqtt (it follows output/<id>/set), "
        "ocpp (a wallbox connected to the OCPP 1.6J central system), evcc (an evcc loadpoint)")
    charger_ref: str | None = Field(None, pattern=r"^[A-Za-z0-9_.:-]{1,64}$", description="ev: the OCPP "
                                    "charge point id, or the evcc loadpoint number")


class OutputsConfig(_Model):
    """``{"v": 1, "outputs": [...]}``: ``outputs`` is required (``[]`` means none), so an
    empty or truncated document (``{}``) never turns every output off."""

    v: int = CONTRACT_VERSION
    outputs: list[OutputConfig] = Field(
        max_length=MAX_OUTPUTS, description=f"every output of the site ([] = none; at most {MAX_OUTPUTS})")


# A problem of a configuration document beyond its fields' types: (location, message, kind),
# reported by the web like pydantic's own errors and by the load-controller in its log.
Problem = tuple[tuple[str | int, ...], str, str]


def output_problems(out: OutputConfig) -> list[Problem]:
    """What an output's fields cannot be together (one place for the web and the controller)."""
    if out.mode == "proportional" and out.kind != "dimmer":
        return [(("mode",), "proportional mode needs kind 'dimmer' (a relay can only switch)", "mode_kind")]
    if out.mode == "ev" and out.kind != "ev":
        return [(("mode",), "ev mode needs kind 'ev' (a charger)", "mode_kind")]
    if out.kind == "ev" and out.mode in ("tariff", "surplus", "proportional"):
        return [(("mode",), f"a charger (kind 'ev') takes mode off, on or ev, not {out.mode!r}", "mode_kind")]
    if out.kind == "ev" and out.min_current_a > out.max_current_a:
        return [(("min_current_a",), "min_current_a is above max_current_a", "current_range")]
    if out.charger != "mqtt" and out.charger_ref is None:
        return [(("charger_ref",), f"charger {out.charger!r} needs charger_ref (the OCPP charge point "
                 "id or the evcc loadpoint)", "charger_ref")]
    return []


def outputs_problems(doc: OutputsConfig) -> list[Problem]:
    """Every output's own problems, and ids used twice."""
    problems: list[Problem] = []
    seen: set[str] = set()
    for i, out in enumerate(doc.outputs):
        problems += [(("outputs", i, *loc), msg, kind) for loc, msg, kind in output_problems(out)]
        if out.id in seen:
            problems.append((("outputs", i, "id"), f"duplicate output id {out.id!r}", "duplicate"))
        seen.add(out.id)
    return problems


class PeakConfig(_Model):
    v: int = CONTRACT_VERSION
    manual_threshold_w: float = Field(2500, ge=0, le=100000)
    price_eur_per_kw_year: float = Field(53.0, ge=0, le=1000)
    algorithm: Literal["default", "baseline"] = "default"


class MonitorConfig(_Model):
    v: int = CONTRACT_VERSION
    max_import_w: float = Field(5000, gt=0, le=100000)
    max_export_w: float = Field(5000, gt=0, le=100000)


class DeviceState(_Model):
    """What the device last reported (its ``output/<id>/state``), echoed in ``control``."""

    on: bool | None = None
    pct: float | None = Field(None, ge=0, le=100)
    override: bool | None = None
    seq: int | None = Field(None, ge=0, le=2**63 - 1)


class EvPlanSlot(_Model):
    """One quarter of tonight's charging plan."""

    start: Iso
    power_w: ChargeW = Field(description="charging power planned for the quarter (W)")
    base_w: NetW = Field(description="the household's forecast average import without the car (W)")
    threshold_w: PeakW = Field(description="the quarter threshold the plan keeps to (W)")


class EvDecision(_Model):
    """An ev output in ``control``: the charge, the target, the plan."""

    current_a: ChargeAmp = Field(description="the current commanded (A); 0 = paused")
    phases: Phases
    power_w: ChargeW | None = Field(None, description="charging power the charger reports (W)")
    connected: bool | None = None
    session_wh: SessionWh | None = Field(None, description="energy charged this session (Wh)")
    target_wh: SessionWh | None = Field(None, description="energy wanted by departure (Wh); null: until full")
    departure: Iso | None = Field(None, description="the next departure")
    eta: Iso | None = Field(None, description="when the target will be reached at the plan")
    raise_w: PeakW | None = Field(None, description="how far the plan raises the month threshold to be "
                                  "ready by departure (W); null or 0: no raise")
    raise_cost_eur_year: Euro | None = Field(None, description="what that raise costs per year in "
                                             "capacity tariff")
    plan: list[EvPlanSlot] = Field(default_factory=list, max_length=200,
                                   description="tonight's plan, quarter by quarter, until departure")


class OutputDecision(_Model):
    """One output in ``control``: what the load-controller decided for it, and why."""

    id: str
    kind: OutputKind
    mode: OutputMode
    priority: int = Field(ge=0, le=1000)
    decision: Literal["on", "off", "pct", "current"]
    on: bool
    level_w: float = Field(ge=0, le=50_000, description="power commanded (W)")
    reason: str = Field(max_length=500, description="the decision in words")
    on_delay_remaining_s: float | None = Field(ge=0, le=86_400)
    min_on_remaining_s: float | None = Field(ge=0, le=86_400)
    following: bool | None = Field(description="the device does what was commanded; null: no state yet")
    device: str = Field(max_length=500, description="what the device's state says, in words")
    seq: int = Field(ge=0, le=2**63 - 1, description="seq of the last set")
    pct: float | None = Field(None, ge=0, le=100, description="dimmers: the percentage commanded")
    drawing: bool | None = Field(None, description="proportional: whether the load draws (thermostat)")
    delay_s: float | None = Field(None, ge=0, le=3600, description="proportional: the device's learnt delay")
    peak_guard: str | None = Field(None, max_length=500, description="peak guard: active, or what it did")
    state: DeviceState | None = None
    ev: EvDecision | None = Field(None, description="ev outputs: the charge, the target and the plan")


class Control(_Model):
    """``p1/<site>/control``: every output's decision, at every reading and tick."""

    v: int = CONTRACT_VERSION
    site: str
    ts: Iso
    watchdog: bool = Field(description="no meter data for 10 s: every output off")
    outputs: list[OutputDecision]
    net_w: NetW | None = None
    tariff: TariffCode | None = None
    tariff_low: bool | None = None
    headroom_w: HeadroomW | None = Field(None, description="from the last peak: what the quarter can still take")
    config_error: str | None = Field(
        None, max_length=2000,
        description="the last outputs document refused and why; the controller keeps its last good one")


# the model of each kind of topic (p1common.topics.Parsed.kind) a service may receive
MODELS_BY_KIND: dict[str, type[BaseModel]] = {
    "reading": Reading,
    "live": Live,
    "peak": Peak,
    "peak/quarter": QuarterRecord,
    "peak/month": MonthRecord,
    "output/set": OutputSet,
    "output/state": OutputState,
    "control": Control,
}


def check_kind(kind: str, obj: Any) -> None:
    """:func:`check` a received payload against its topic's model, new fields tolerated
    (a consumer lets a newer publisher add some). Kinds without a model pass."""
    model = MODELS_BY_KIND.get(kind)
    if model is not None:
        check(model, obj, tolerate_extra=True)


SCHEMAS: dict[str, type[BaseModel]] = {
    "reading": Reading,
    "live": Live,
    "peak": Peak,
    "peak-quarter": QuarterRecord,
    "peak-month": MonthRecord,
    "output-set": OutputSet,
    "output-state": OutputState,
    "control": Control,
    "config-outputs": OutputsConfig,
    "config-peak": PeakConfig,
    "config-monitor": MonitorConfig,
}
