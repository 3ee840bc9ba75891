"""Every payload a service takes in: finite, bounded, the right JSON type, bounded depth
and size (p1common.payloads.check_kind and p1common.mqtt.decode_json)."""

from __future__ import annotations

from typing import Any

import pytest

from p1common.mqtt import MAX_JSON_BYTES, BadPayload, decode_json
from p1common.payloads import Refused, check_kind

PEAK = {"v": 1, "site": "home", "ts": "2026-01-15T13:05:00+01:00", "quarter_start": "2026-01-15T13:00:00+01:00",
        "energy_wh": 100.0, "avg_w": 400.0, "forecast_w": 1200.0, "threshold_w": 2500.0, "headroom_w": 1300.0,
        "level": "ok", "month_peak_w": 2500.0}


@pytest.mark.parametrize(("kind", "doc", "field", "why"), [
    ("peak", {**PEAK, "headroom_w": int("9" * 400)}, "headroom_w", "Input should be a valid number"),
    ("peak", {**PEAK, "headroom_w": True}, "headroom_w", "Input should be a valid number"),
    ("peak", {**PEAK, "headroom_w": "1300"}, "headroom_w", "Input should be a valid number"),
    ("peak", {**PEAK, "forecast_w": 1.7e308}, "forecast_w", "Input should be less than or equal to 1000000"),
    ("peak", {**PEAK, "energy_wh": -1}, "energy_wh", "Input should be greater than or equal to 0"),
    ("peak", {**PEAK, "level": "panic"}, "level", "Input should be 'ok', 'warn' or 'alarm'"),
    ("output/state", {"v": 1, "ts": "2026-01-15T13:05:00+01:00", "pct": 101}, "pct",
     "Input should be less than or equal to 100"),
    ("output/state", {"v": 1, "ts": "2026-01-15T13:05:00+01:00", "on": 1}, "on", "Input should be a valid boolean"),
    ("output/set", {"v": 1, "ts": "t", "seq": 1, "ttl_s": 86400}, "ttl_s", "Input should be less than or equal to 3600"),
    ("peak/month", {"v": 1, "site": "h", "month": "2099-13x", "peak_w": 2500.0, "peak_start": None, "history": [],
                    "billed_w": 2500.0, "cost_eur_year": 1.0}, "month", "String should match pattern '^\\d{4}-\\d{2}$'"),
])
def test_a_consumer_refuses(kind: str, doc: dict[str, Any], field: str, why: str) -> None:
    with pytest.raises(Refused) as err:
        check_kind(kind, doc)
    assert (err.value.field, err.value.why) == (field, why)


def test_a_newer_publisher_may_add_fields() -> None:
    check_kind("peak", {**PEAK, "brand_new_w": 1.0})


@pytest.mark.parametrize(("payload", "message"), [
    (b"[" * 100_000 + b"]" * 100_000, "nested deeper than 8 levels"),  # was a RecursionError traceback
    (b'{"a":' * 9 + b"1" + b"}" * 9, "nested deeper than 8 levels"),
    (b'{"x": NaN}', "NaN is not a JSON number"),
    (b'{"x": 1e999}', "number 1e999 is out of range"),
    (b" " * (MAX_JSON_BYTES + 1), f"payload of {MAX_JSON_BYTES + 1} bytes is over the {MAX_JSON_BYTES} byte limit"),
])
def test_decode_refuses(payload: bytes, message: str) -> None:
    with pytest.raises(BadPayload) as err:
        decode_json(payload)
    assert str(err.value) == message


def test_decode_takes_the_deepest_contract_payload() -> None:
    doc = decode_json(b'{"mbus": [{"channel": 1, "value": 1.5}], "a": {"b": {"c": [1]}}}')
    assert doc["mbus"][0]["value"] == 1.5


def test_the_largest_headroom_the_forecaster_computes_is_in_the_contract() -> None:
    """In the last second of a quarter the headroom is the quarter's whole energy per
    second: 1 MW x 0.25 h -> 9e8 W (a site joined just before a quarter's end saw it)."""
    from peak_forecaster.forecast import headroom_w

    for value in (headroom_w(1_000_000.0, 0.0, 0.0), headroom_w(0.0, 250_000.0, 0.0)):
        check_kind("peak", {**PEAK, "headroom_w": value})
    assert headroom_w(1_000_000.0, 0.0, 0.0) == 9e8
