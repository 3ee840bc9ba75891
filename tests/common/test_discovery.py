"""p1common.discovery: one builder, one device per site, stable entity ids, absent-safe templates.

Home Assistant's own acceptance of these configs is tested in tests/ha/ (a real Home
Assistant); here the configs themselves, value by value.
"""

from __future__ import annotations

import json
from importlib import metadata

import pytest

from p1common.discovery import (
    READING_BY_FIELD,
    READING_ENTITIES,
    EntityDescription,
    TelegramInterval,
    discovery_messages,
    expire_after_s,
    reading_discovery,
    telegram_interval_s,
    value_template,
)

FLUVIUS_READING = {
    "v": 1, "site": "home", "source": "p1", "ts": "2020-05-12T13:54:09+02:00",
    "header": "FLU5\\253769484_A", "dsmr_version": "50217", "meter_id": "1SAG3101021605",
    "import_kwh": 15.792, "gas_m3": 112.384, "month_max_w": 2589.0,
    "month_max_ts": "2020-05-09T13:45:58+02:00", "tariff_low": False, "message": "x",
    "mbus": [],
}


def test_reading_entities_one_device_stable_ids() -> None:
    msgs = reading_discovery(FLUVIUS_READING, site="home", state_topic="p1/home/reading",
                             status_topic="p1/status/p1-reader-home-h", reading=FLUVIUS_READING)
    by_topic = dict(msgs)
    assert sorted(by_topic) == [
        "homeassistant/binary_sensor/p1_reader_home/tariff_low/config",
        "homeassistant/sensor/p1_reader_home/gas_m3/config",
        "homeassistant/sensor/p1_reader_home/import_kwh/config",
        "homeassistant/sensor/p1_reader_home/message/config",
        "homeassistant/sensor/p1_reader_home/month_max_ts/config",
        "homeassistant/sensor/p1_reader_home/month_max_w/config",
    ]
    imp = by_topic["homeassistant/sensor/p1_reader_home/import_kwh/config"]
    assert imp == {
        "name": "Energy import",
        "unique_id": "p1_reader_home_import_kwh",
        "default_entity_id": "sensor.p1_home_import_kwh",
        "object_id": "p1_home_import_kwh",
        "state_topic": "p1/home/reading",
        "value_template": "{{ value_json.import_kwh if value_json.import_kwh is defined else None }}",
        "device": {"identifiers": ["p1_home"], "name": "P1 meter home",
                   "manufacturer": "P1 energy stack", "model": "FLU5\\253769484_A",
                   "serial_number": "1SAG3101021605", "sw_version": "50217"},
        "origin": imp["origin"],
        "availability_topic": "p1/status/p1-reader-home-h",
        "payload_available": "online",
        "payload_not_available": "offline",
        "device_class": "energy",
        "state_class": "total_increasing",
        "unit_of_measurement": "kWh",
        "expire_after": 10,
    }
    assert imp["origin"]["name"] == "p1-energy-stack"
    assert imp["origin"]["sw_version"] == metadata.version("p1-energy-stack")
    low = by_topic["homeassistant/binary_sensor/p1_reader_home/tariff_low/config"]
    assert (low["name"], low["default_entity_id"], low["expire_after"]) == (
        "Low tariff", "binary_sensor.p1_home_tariff_low", 10)
    assert low["value_template"] == (
        "{{ ('ON' if value_json.tariff_low else 'OFF') if value_json.tariff_low is defined "
        "else None }}")
    ts = by_topic["homeassistant/sensor/p1_reader_home/month_max_ts/config"]
    assert ts["device_class"] == "timestamp"
    assert "state_class" not in ts and "unit_of_measurement" not in ts
    mx = by_topic["homeassistant/sensor/p1_reader_home/month_max_w/config"]
    assert mx["json_attributes_topic"] == "p1/home/reading"
    assert "'month_max_history'" in mx["json_attributes_template"]
    msg = by_topic["homeassistant/sensor/p1_reader_home/message/config"]
    assert msg["value_template"] == (
        "{{ value_json.message[:255] if value_json.message is defined and value_json.message "
        "else None }}")
    assert all(json.dumps(c) for c in by_topic.values())


def test_forecaster_device_leaves_the_meter_details_alone() -> None:
    """Home Assistant merges device info per field: without model/serial/firmware the
    forecaster's configs keep p1-reader's, and both land on device p1_<site>."""
    peak = EntityDescription("quarter_avg", "Quarter average so far", field="avg_w",
                             device_class="power", state_class="measurement", unit="W")
    ((topic, cfg),) = discovery_messages([peak], site="home", node="p1_home",
                                         state_topics="p1/home/peak", status_topic="p1/status/pf")
    assert topic == "homeassistant/sensor/p1_home/quarter_avg/config"
    assert cfg["device"] == {"identifiers": ["p1_home"], "name": "P1 meter home",
                             "manufacturer": "P1 energy stack"}
    assert (cfg["unique_id"], cfg["default_entity_id"], cfg["object_id"]) == (
        "p1_home_quarter_avg", "sensor.p1_home_quarter_avg", "p1_home_quarter_avg")
    assert cfg["value_template"] == "{{ value_json.avg_w if value_json.avg_w is defined else None }}"
    assert "expire_after" not in cfg


@pytest.mark.parametrize(("version", "every", "on_change", "want"), [
    ("50217", 1, False, 10),   # Fluvius eMUCS: a telegram a second
    ("50", 1, False, 10),      # DSMR 5
    ("50", 3, False, 30),      # every third telegram published
    ("42", 1, False, 60),      # DSMR 4.2: every 10 s
    (None, 1, False, 60),      # DSMR 2.2/3 send no version: every 10 s
    ("50", 1, True, None),     # publish on change: gaps are legitimate, no expiry
])
def test_expire_after_follows_the_telegram_interval(
    version: str | None, every: int, on_change: bool, want: int | None
) -> None:
    reading = {"import_w": 1.0, **({"dsmr_version": version} if version else {})}
    ((_, cfg),) = reading_discovery(["import_w"], site="s", state_topic="t", status_topic=None,
                                    reading=reading, publish_every=every, on_change=on_change)
    assert cfg.get("expire_after") == want
    assert "availability_topic" not in cfg


def test_interval_and_expiry_rules() -> None:
    assert [telegram_interval_s(v) for v in ("50", "50221", "42", "40", None, "")] == [
        1, 1, 10, 10, 10, 10]
    assert [expire_after_s(1), expire_after_s(10), expire_after_s(1, 2), expire_after_s(10, 100)] == [
        10, 60, 20, 3600]


def test_no_placeholder_fields_and_every_reading_field_known() -> None:
    keys = [d.key for d in READING_ENTITIES]
    assert len(keys) == len(set(keys))
    assert set(READING_BY_FIELD) == set(keys)
    # every entity reads a field of the reading contract
    from p1common.payloads import Reading
    assert set(keys) <= set(Reading.model_fields)
    diag = {d.key for d in READING_ENTITIES if d.entity_category == "diagnostic"}
    assert diag == {"limiter_w", "limiter_a", "limiter_va", "fuse_limit_a", "l2_fuse_limit_a",
                    "l3_fuse_limit_a"}
    assert all(READING_BY_FIELD[k].state_class is None for k in diag)


def test_a_bad_field_name_is_refused() -> None:
    with pytest.raises(ValueError, match="'x}}' is not a payload field name"):
        EntityDescription("k", "K", field="x}}")
    d = EntityDescription("k", "K", value_template="{{ value_json.a * 2 }}")
    assert value_template(d) == "{{ value_json.a * 2 }}"


def test_telegram_interval_is_the_shortest_recent_gap() -> None:
    iv = TelegramInterval()
    got = [iv.observe(f"2026-01-15T12:00:{s:02d}+01:00") for s in (0, 1, 3, 4, 5, 15)]
    assert got == [None, None, None, 1.0, 1.0, 1.0]  # a lost telegram (1 -> 3) changes nothing
    assert [iv.observe(f"2026-01-15T12:00:{s:02d}+01:00") for s in (25, 35)] == [1.0, 10.0]
    assert iv.observe(None) == 10.0 and iv.observe("garbage") == 10.0


def test_ev_charger_entities_read_their_output_from_control() -> None:
    """The templates rendered by Home Assistant's Jinja (its venv): the charger's values from
    ``control``, unknown (None) when the output or the field is absent."""
    import subprocess

    from p1common.discovery import ev_entities
    from support import REPO

    msgs = discovery_messages(ev_entities("Car-1"), site="home", node="load_controller_home",
                              state_topics="p1/home/control", status_topic="p1/status/lc")
    by_topic = dict(msgs)
    assert sorted(by_topic) == [f"homeassistant/sensor/load_controller_home/ev_car_1_{k}/config"
                                for k in ("current", "eta", "power", "raise", "reason",
                                          "session", "target")]
    cur = by_topic["homeassistant/sensor/load_controller_home/ev_car_1_current/config"]
    assert (cur["default_entity_id"], cur["unit_of_measurement"], cur["device_class"],
            cur["state_topic"]) == ("sensor.p1_home_ev_car_1_current", "A", "current",
                                    "p1/home/control")
    python = REPO / ".venv-ha" / "bin" / "python"
    if not python.exists():
        pytest.skip("no .venv-ha (make ha-venv): Home Assistant's Jinja is not here")
    control = {"outputs": [
        {"id": "boiler", "reason": "on"},
        {"id": "Car-1", "reason": "8 A x 1: plan 1840 W this quarter" + "x" * 300,
         "ev": {"current_a": 8.0, "phases": 1, "power_w": 1840.0, "session_wh": 1234.5,
                "target_wh": 10000.0, "eta": "2026-01-15T03:10:00+01:00", "raise_w": 0.0}}]}
    docs = [control, {"outputs": [{"id": "Car-1", "reason": "paused", "ev": {"current_a": 0.0}}]},
            {"outputs": []}, {"v": 1}]
    templates = [cfg["value_template"] for _, cfg in msgs]
    script = ("import json, sys, jinja2\n"
              "t, docs = json.load(sys.stdin)\n"
              "env = jinja2.Environment()\n"
              "print(json.dumps([[env.from_string(x).render(value_json=d) for x in t] for d in docs]))")
    out = subprocess.run([str(python), "-c", script], input=json.dumps([templates, docs]),
                         capture_output=True, text=True, check=True, timeout=60)
    rendered = [dict(zip((t.split("/")[3] for t, _ in msgs), row, strict=True))
                for row in json.loads(out.stdout)]
    assert rendered[0] == {"ev_car_1_current": "8.0", "ev_car_1_power": "1840.0",
                           "ev_car_1_session": "1234.5", "ev_car_1_target": "10000.0",
                           "ev_car_1_eta": "2026-01-15T03:10:00+01:00", "ev_car_1_raise": "0.0",
                           "ev_car_1_reason": ("8 A x 1: plan 1840 W this quarter" + "x" * 300)[:255]}
    assert rendered[1]["ev_car_1_current"] == "0.0"
    assert rendered[1]["ev_car_1_eta"] == "None" and rendered[1]["ev_car_1_reason"] == "paused"
    assert set(rendered[2].values()) == {"None"} and set(rendered[3].values()) == {"None"}
