"""The meter and response models of the proportional control, with exact values."""

from __future__ import annotations

import itertools

import pytest

from load_controller.control import Controller, Params, delay_grid
from load_controller.modes import LevelTrack, ResponseModel, ramp_w, trend
from load_controller.plant import Load, run_loop
from p1common.payloads import OutputConfig

# -- LevelTrack: what a reading shows of a command ----------------------------------------


def test_averaging_meter_shows_a_command_for_the_part_of_the_second_after_it() -> None:
    """Sent at 10.0, applied at 10.5; a reading received at r covers [r - 1.1, r - 0.1]."""
    track = LevelTrack(device_delay_s=0.5, meter_lag_s=0.1)
    track.command(10.0, 1000.0, 1)
    assert track.visible_w(10.6) == 0.0  # window ends at 10.5
    assert track.visible_w(11.0) == pytest.approx(400.0)  # 10.5..10.9 of 9.9..10.9
    assert track.visible_w(11.05) == pytest.approx(450.0)
    assert track.visible_w(11.5) == pytest.approx(900.0)
    assert track.visible_w(12.0) == 1000.0
    # under the hypothesis "1.5 s late" it shows from 11.5 on
    assert track.visible_w(12.0, 1.5) == pytest.approx(400.0)
    assert track.visible_w(11.5, 1.5) == 0.0


def test_averaging_meter_mixes_successive_commands() -> None:
    track = LevelTrack(device_delay_s=0.5, meter_lag_s=0.0)
    track.command(0.0, 2000.0, 1)  # applied 0.5
    track.command(1.0, 1000.0, 2)  # applied 1.5
    track.command(1.2, 1200.0, 3)  # applied 1.7
    # window 1..2: 2000 for 0.5 s, 1000 for 0.2 s, 1200 for 0.3 s
    assert track.visible_w(2.0) == pytest.approx(1000 + 200 + 360)
    assert track.visible_w(3.0) == 1200.0
    assert track.pending_w(2.0) == pytest.approx(1200 - 1560)


def test_a_confirmation_bounds_when_a_command_applied() -> None:
    """A state report says the command applied by the time it arrived: under a delay
    hypothesis, the command applies at the earlier of the two (meter-sim publishes
    states with the next telegram, after the command applied)."""
    track = LevelTrack(device_delay_s=0.5, meter_lag_s=0.1)
    track.command(10.0, 1000.0, 7)
    track.confirm(10.8, 7)
    assert track.visible_w(11.0, 0.5) == pytest.approx(400.0)  # 10.5 < 10.8
    assert track.visible_w(11.0, 1.5) == pytest.approx(100.0)  # the report: 10.8
    assert track.visible_w(11.0) == pytest.approx(100.0)  # switches: the report itself
    # a later command the device has not confirmed yet: confirm_timeout (2 s) for switches
    track.command(11.0, 400.0, 8)
    assert track.visible_w(12.5) == 1000.0
    assert track.visible_w(14.1) == 400.0
    assert track.visible_w(12.5, 0.5) == pytest.approx(0.1 * 1000 + 0.9 * 400)  # 11.4..12.4


def test_an_instant_meter_is_average_s_zero() -> None:
    track = LevelTrack(device_delay_s=0.5, meter_lag_s=0.1, average_s=0.0)
    track.command(10.0, 1000.0, 1)
    assert track.visible_w(10.55) == 0.0
    assert track.visible_w(10.65) == 1000.0


def test_delay_grid_starts_with_the_configured_delay() -> None:
    grid = delay_grid(0.5, 1.0)
    assert grid[:5] == (0.5, 0.4, 0.6, 0.3, 0.7)
    assert min(grid) == 0.0 and max(grid) == 2.5 and len(grid) == 26
    assert delay_grid(2.0, 1.0)[:3] == (2.0, 1.9, 2.1) and min(delay_grid(2.0, 1.0)) == 1.5


# -- trends --------------------------------------------------------------------------------


def test_trend_is_a_ramp_not_a_step() -> None:
    assert trend([10.0, 20.0, 30.0]) == 10.0
    assert trend([-5.0, -7.0, -3.0]) == -3.0
    assert trend([0.0, 500.0, 500.0]) == 0.0  # a step split over two readings
    assert trend([500.0, 500.0]) == 0.0  # too short
    assert ramp_w([0.0, 100.0, 210.0, 300.0]) == 90.0
    assert ramp_w([0.0, 0.0, 1000.0, 1000.0]) == 0.0


# -- ResponseModel: drawing or not -------------------------------------------------------------


def test_a_pv_ramp_followed_by_the_load_is_no_cut_out() -> None:
    """The household ramps down 113 W per reading (a cloud edge leaving the PV) and the
    load follows it, one reading late: the net rises to 175 W and stays there. "Not
    drawing, household constant at 175 W" is then as flat as "drawing, household
    ramping" once the ramp is taken out, so the verdict stays (with the plain |change|
    score it flipped after four readings: 113 W per reading against nothing)."""
    model = ResponseModel(delays_s=(0.5,), margin_w=240.0)
    nets = [0.0] * 5 + [105.0, 169.0] + [175.0] * 30 + [60.0, 5.0] + [0.0] * 10
    household = -1700.0
    for i, net in enumerate(nets):
        if 5 <= i < 37:
            household += 113.0
        assert model.update(net, [net - household, 0.0]) is False
        assert model.drawing


def test_a_cut_out_is_found_and_the_closing_thermostat_too() -> None:
    model = ResponseModel(delays_s=(0.5,), margin_w=240.0)
    household = -2000.0
    for _ in range(5):
        model.update(household + 2000.0, [2000.0, 0.0])  # drawing 2000, net 0
    assert model.drawing
    # cut out mid-second: the net drops by 1600 then 400; the level rises unanswered
    assert model.update(household + 400.0, [2000.0, 0.0]) is False
    assert model.update(household, [2180.0, 0.0]) is False
    assert model.update(household, [2468.0, 0.0]) is True
    assert not model.drawing
    for _ in range(5):
        assert model.update(household, [2000.0, 0.0]) is False
    # the thermostat closes: the net rises by what the load was told to draw
    assert model.update(household + 1600.0, [2000.0, 0.0]) is True
    assert model.drawing


# -- the controller ------------------------------------------------------------------------------


def boiler() -> Controller:
    return Controller("home", [OutputConfig(id="boiler", kind="dimmer", rated_w=2500,
                                            mode="proportional")], Params())


def test_a_ramp_is_led_by_the_ramp_lead() -> None:
    """Surplus rising 100 W per second: after three readings on the ramp the command
    leads it by 1.5 s (150 W), so the net stays within 50 W; without the lead it lags
    about 1.5 ramp steps behind."""
    def ramp(t: float) -> float:
        return -1000.0 - 100.0 * max(0.0, t - 20.0)

    led = run_loop(boiler(), ramp, [Load("boiler", 2500)], 35)
    assert all(abs(s.net_w) <= 50 for s in led if 25 <= s.t < 35)
    ctl = Controller("home", [OutputConfig(id="boiler", kind="dimmer", rated_w=2500,
                                           mode="proportional")], Params(ramp_lead_s=0))
    lagging = run_loop(ctl, ramp, [Load("boiler", 2500)], 35)
    assert all(-180 <= s.net_w <= -120 for s in lagging if 25 <= s.t < 35)


def test_a_confirmed_cut_out_is_probed_less_and_less_often() -> None:
    """The tank is hot from 20.2 s on: probes at 30 s after the verdict, then 60 s,
    120 s, ... after each probe that finds the load still not drawing."""
    ctl = boiler()
    load = Load("boiler", 2500, thermostat=lambda t: t < 20.2)
    samples = run_loop(ctl, lambda t: -2000.0, [load], 400)
    starts = [s.t for a, s in itertools.pairwise(samples)
              if s.levels["boiler"] == 0.0 and a.levels["boiler"] > 0]
    assert starts == [54.0, 117.0, 240.0]  # the verdict at 24.05
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert gaps == [63.0, 123.0]  # 60 s and 120 s after each probe's end (3 readings)
    rt = ctl.outputs["boiler"]
    assert rt.drawing is False and rt.probe_wait_s == 240.0


def test_a_late_reading_is_placed_by_the_meter_timestamp() -> None:
    """A reading that comes 0.4 s late (busy machine) still shows the meter's second:
    its ``ts`` on our clock by the fastest reading's offset. Without ``ts`` (or a host
    timestamp in whole seconds) the arrival time counts."""
    def ts(k: int) -> str:
        return f"2026-06-17T12:00:{k:02d}+02:00"

    def visible(late_s: float, with_ts: bool = True) -> float:
        ctl = boiler()
        for k in range(1, 5):  # on time: 0.05 s after each second
            ctl.on_reading(k + 0.05, {"net_w": -1000.0, "ts": ts(k)} if with_ts else
                           {"net_w": -1000.0})
        reading = {"net_w": -1000.0 + 0.0, "ts": ts(5)} if with_ts else {"net_w": -1000.0}
        ctl.on_reading(5 + 0.05 + late_s, reading)
        return ctl.outputs["boiler"].visible_w

    on_time = visible(0.0)
    assert visible(0.4) == pytest.approx(on_time, abs=1)  # (the offset's 1 ms drift per reading)
    assert visible(0.4, with_ts=False) - visible(0.0, with_ts=False) > 100
