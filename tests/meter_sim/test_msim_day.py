"""A whole simulated day: counters equal the integrated power, the house looks like a house."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).with_name("meter-sim")
VALUE = {k: re.compile(rb"\r\n" + re.escape(k.encode()) + rb"\((\d+\.\d+)\*") for k in (
    "1-0:1.8.1", "1-0:1.8.2", "1-0:2.8.1", "1-0:2.8.2", "1-0:1.7.0", "1-0:2.7.0")}


@pytest.mark.slow
@pytest.mark.parametrize("start", ["2026-01-15T00:00", "2026-06-20T00:00"])
def test_counter_deltas_equal_integrated_power_over_a_day(tmp_path: Path, start: str) -> None:
    out = tmp_path / "day.txt"
    done = subprocess.run([str(BIN), "--out", str(out), "--start", start, "--duration", "1d",
                           "--speed", "0", "--no-mqtt", "--seed", "4"],
                          capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr
    tgs = out.read_bytes().split(b"\r\n/")
    assert len(tgs) == 86400

    def val(tg: bytes, key: str) -> float:
        m = VALUE[key].search(tg)
        assert m, key
        return float(m.group(1))

    imp_w = exp_w = 0.0
    for tg in tgs[1:]:  # each telegram: the power of the second that ended at its time
        imp_w += val(tg, "1-0:1.7.0") * 1000
        exp_w += val(tg, "1-0:2.7.0") * 1000
    first, last = tgs[0], tgs[-1]
    d_imp = sum(val(last, k) - val(first, k) for k in ("1-0:1.8.1", "1-0:1.8.2")) * 1000
    d_exp = sum(val(last, k) - val(first, k) for k in ("1-0:2.8.1", "1-0:2.8.2")) * 1000
    imp_wh, exp_wh = imp_w / 3600, exp_w / 3600
    assert abs(d_imp - imp_wh) <= 0.001 * imp_wh
    assert abs(d_exp - exp_wh) <= max(0.001 * exp_wh, 2.0)
    # a plausible house: 5-25 kWh a day imported; PV export on a June day
    assert 5000 < imp_wh < 25000
    if start.startswith("2026-06"):
        assert exp_wh > 3000
