"""Scenario files: times, overrides, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from meter_sim.clock import parse_local
from meter_sim.scenario import ScenarioError, build, load_file

START = "2026-01-15T11:45"


def test_yaml_file_events_and_load_defaults(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "start: 2026-01-15T11:45:00\n"
        "pv: off\n"
        "watchdog_s: 5\n"
        "loads:\n  - {id: a, watchdog_s: 3}\n  - {id: b, kind: dimmer, rated_w: 2000}\n"
        "events:\n"
        "  - {at: \"12:03\", cloud: 0.3}\n"
        "  - {after: 15m, load: {id: oven, w: 2000, phase: 0}}\n"
        "  - {at: \"2026-10-25T02:30+01:00\", pv: on}\n"
        "  - {at: \"12:00\", set: {id: b, pct: 40}}\n"
    )
    cfg = build(load_file(path), seed=9)
    assert cfg.start == parse_local(START) and cfg.seed == 9 and cfg.pv is None
    assert [(ld.id, ld.watchdog_s) for ld in cfg.loads] == [("a", 3), ("b", 5.0)]
    ats = sorted(e.at - cfg.start for e in cfg.events)
    assert ats[:3] == [900, 900, 18 * 60]
    autumn = next(e for e in cfg.events if e.kind == "pv")
    assert autumn.at == parse_local("2026-10-25T01:30:00+00:00")
    # CLI flags win over the file
    assert {ld.watchdog_s for ld in build(load_file(path), watchdog_s=0).loads} == {0}


@pytest.mark.parametrize(("data", "message"), [
    ({"events": [{"at": 723, "pv": "off"}]}, "events[0].at"),
    ({"events": [{"after": "soon", "pv": "off"}]}, "events[0].after"),
    ({"events": [{"after": 1, "pv": "off", "house": "off"}]}, "events[0]"),
    ({"events": [{"after": 1, "set": {"id": "nope", "on": True}}]}, "events[0].set"),
    ({"loads": [{"id": "a", "kind": "triac"}]}, "loads[0]"),
    ({"house": {"persons": 4, "pool": True}}, "house: unknown key(s) pool"),
    ({"meter": {"peak_ts": "middle"}}, "meter"),
    ({"format": "dsmr2"}, "format"),
    ({"colour": "red"}, "scenario: unknown key(s) colour"),
])
def test_errors_name_the_key(data: dict, message: str) -> None:
    with pytest.raises(ScenarioError, match=message.replace("[", r"\[").replace("]", r"\]")
                       .replace("(", r"\(").replace(")", r"\)")):
        build({"start": START, **data})


def test_synthetic_meter_state_is_plausible_and_seeded() -> None:
    a = build({"start": START, "seed": 3})
    b = build({"start": START, "seed": 3})
    assert a.meter == b.meter
    assert len(a.meter.history) == 13
    assert a.meter.history[-1].month_start == parse_local("2026-01-01T00:00")
    assert 2400 <= a.meter.month_max_w <= 4200
    assert a.meter.month_max_ts is not None and a.meter.month_max_ts < a.start
    zero = build({"start": START, "meter": {"synthetic": False}})
    assert zero.meter.history == () and zero.meter.import_t1_kwh == 0
