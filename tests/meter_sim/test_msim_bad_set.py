"""A ``set`` meter-sim cannot apply is refused where it arrives: counted as a bad payload."""

from __future__ import annotations

import pytest

from meter_sim.loads import CommandError, ControllableLoad, LoadConfig


@pytest.mark.parametrize("payload", [
    {"on": "yes"}, {"pct": "50"}, {"pct": [50]}, {"pct": float("nan")}, {"pct": float("inf")},
    {"pct": 150}, {"on": True, "seq": -1}, {"on": True, "seq": "7"}, {"seq": 3},
])
def test_check_refuses_what_command_refuses(payload: dict) -> None:
    load = ControllableLoad(LoadConfig(id="d", kind="dimmer"), str)
    with pytest.raises(CommandError):
        load.check(payload)
    with pytest.raises(CommandError):
        load.command(0, payload)
    assert load.pending == [] and load.last_set_s is None


def test_check_gives_level_and_seq() -> None:
    load = ControllableLoad(LoadConfig(id="d", kind="dimmer"), str)
    assert load.check({"pct": 41.5, "seq": 9}) == (0.415, 9)
    relay = ControllableLoad(LoadConfig(id="r", kind="relay"), str)
    assert relay.check({"on": True}) == (1.0, None)
