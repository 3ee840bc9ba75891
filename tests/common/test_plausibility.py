"""The plausibility rules of every reading (p1common.plausibility), with exact verdicts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from p1common.plausibility import Implausible, ReadingGuard, check_reading

T0 = datetime.fromisoformat("2026-01-15T13:00:00+01:00").timestamp()


def reading(**kw: Any) -> dict[str, Any]:
    return {"v": 1, "site": "home", "source": "p1", "ts": "2026-01-15T13:00:00+01:00",
            "import_kwh": 1000.0, "import_w": 500.0, **kw}


def at(seconds: float, **kw: Any) -> dict[str, Any]:
    ts = datetime.fromtimestamp(T0 + seconds).astimezone().isoformat()
    return reading(ts=ts, **kw)


@pytest.mark.parametrize(("bad", "field", "why"), [
    ({"import_w": 1.7e308}, "import_w", "Input should be less than or equal to 100000"),
    ({"import_w": True}, "import_w", "Input should be a valid number"),
    ({"import_w": "500"}, "import_w", "Input should be a valid number"),
    ({"net_w": -100_001}, "net_w", "Input should be greater than or equal to -100000"),
    ({"l1_voltage_v": 501}, "l1_voltage_v", "Input should be less than or equal to 500"),
    ({"tariff": 1.0}, "tariff", "Input should be a valid integer"),
    ({"tariff_low": 1}, "tariff_low", "Input should be a valid boolean"),
    ({"import_kwh": -0.001}, "import_kwh", "Input should be greater than or equal to 0"),
    ({"ts": "yesterday at noon"}, "ts", "'yesterday at noon' is not an ISO 8601 time"),
    ({"ts": "0001-01-01T00:00:00+00:00"}, "ts", "'0001-01-01T00:00:00+00:00' is not between 2000 and 2099"),
    ({"ts": "9999-12-31T00:00:00+00:00"}, "ts", "'9999-12-31T00:00:00+00:00' is not between 2000 and 2099"),
    ({"ts": "2026-01-15T13:00:00"}, "ts", "'2026-01-15T13:00:00' has no UTC offset"),
    ({"surprise": 1}, "surprise", "Extra inputs are not permitted"),
])
def test_types_and_ranges(bad: dict[str, Any], field: str, why: str) -> None:
    with pytest.raises(Implausible) as err:
        check_reading(reading(**bad), tolerate_extra=False)
    assert (err.value.field, str(err.value)) == (field, f"{field}: {why}")


def test_real_limits_pass() -> None:
    # the largest values real meters send (fixtures): 999 kW limiter, 333 A, 22.2 kW export
    assert check_reading(reading(limiter_w=999_000.0, l3_current_a=333.0, export_w=22_222.0,
                                 import_kwh=1_111_111.11, power_factor=4.556)) == T0


def test_counters_never_backwards_nor_faster_than_100_kw() -> None:
    guard = ReadingGuard(max_drift_s=None)
    guard.check(at(0, import_kwh=1000.0), T0)
    guard.check(at(1, import_kwh=1000.0), T0 + 1)
    with pytest.raises(Implausible, match=r"^import_kwh: went backwards from 1000.0 to 999.998$"):
        guard.check(at(2, import_kwh=999.998), T0 + 2)
    # 100 kW for 36 s is exactly 1 kWh (+ one register step)
    guard.check(at(37, import_kwh=1001.001), T0 + 37)
    with pytest.raises(Implausible, match=r"^import_kwh: rose by 1.100 in 36 s: more than 100 per hour"):
        guard.check(at(73, import_kwh=1002.101), T0 + 73)
    guard.check(at(74, import_kwh=1001.002, gas_m3=10.0), T0 + 74)  # the first gas value: its base
    with pytest.raises(Implausible, match=r"^gas_m3: rose by 2.000 in 1 s: more than 1000 per hour"):
        guard.check(at(75, import_kwh=1001.002, gas_m3=12.0), T0 + 75)


def test_a_reset_meter_becomes_the_base_after_ten_agreeing_readings() -> None:
    guard = ReadingGuard(max_drift_s=None, rebase_after=10)
    guard.check(at(0, import_kwh=5000.0), T0)
    for i in range(1, 10):
        with pytest.raises(Implausible, match=r"went backwards from 5000\.0 to"):
            guard.check(at(i, import_kwh=0.001 * i), T0 + i)
    guard.check(at(10, import_kwh=0.010), T0 + 10)  # the tenth: taken as the new base
    guard.check(at(11, import_kwh=0.011), T0 + 11)
    with pytest.raises(Implausible, match=r"went backwards from 0\.011 to 0\.0$"):
        guard.check(at(12, import_kwh=0.0), T0 + 12)


def test_a_new_meter_id_starts_afresh() -> None:
    guard = ReadingGuard(max_drift_s=None)
    guard.check(at(0, import_kwh=5000.0, meter_id="A"), T0)
    guard.check(at(1, import_kwh=3.0, meter_id="B"), T0 + 1)


def test_meter_clock_drift_except_replay_and_simulation() -> None:
    guard = ReadingGuard(max_drift_s=3600)
    guard.check(at(0), T0 + 3600)
    with pytest.raises(Implausible, match=r"^ts: meter clock .* is -3601 s from this host's clock \(at most 3600 s\)$"):
        guard.check(at(1), T0 + 3602)
    far = reading(ts="2099-06-01T00:00:00+02:00")
    with pytest.raises(Implausible, match="from this host's clock"):
        guard.check(far, T0)
    guard.check({**far, "source": "replay", "site": "r"}, T0)
    guard.check({**far, "source": "sim", "site": "s"}, T0)
    ReadingGuard(max_drift_s=None).check(far, T0)
    # a reading stamped by the host (no meter clock) is not a meter clock to check
    guard.check({**far, "ts_source": "host", "site": "h"}, T0)


def test_a_consumer_tolerates_a_new_field_a_publisher_does_not() -> None:
    newer = reading(brand_new_field_w=1.0)
    assert check_reading(newer, tolerate_extra=True) == T0
    ReadingGuard(max_drift_s=None).check(newer, T0)
    with pytest.raises(Implausible, match=r"^brand_new_field_w: Extra inputs are not permitted$"):
        ReadingGuard(max_drift_s=None, tolerate_extra=False).check(newer, T0)
