"""EV mode with exact values: the planner on scripted nights, the headroom rule second by second
and across quarters, evcc-like hysteresis, the watchdog, a restart in the middle of a charge.

Every expected value is worked out by hand in the comments (230 V; one phase 6-16 A = 1380-3680
W in 230 W steps; three phases from 6 A = 4140 W in 690 W steps; margin 150 W)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from load_controller.control import Controller, Params
from load_controller.ev import Charger, EvParams, Hysteresis, plan, slots_until, to_current
from load_controller.evmode import EvMode
from p1common.payloads import Control, OutputConfig, OutputSet, built

TZ = ZoneInfo("Europe/Brussels")
P = EvParams()
CH = Charger(6, 16, 3, 230.0)


def at(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=TZ).timestamp())


def flat(base_w: float):  # type: ignore[no-untyped-def]
    return lambda t: base_w


def test_charger_steps_and_phases() -> None:
    assert CH.cap(3450) == 3450  # 15 A on one phase
    assert CH.cap(3700) == 3680  # one phase at most 16 A
    assert CH.cap(4139) == 3680  # below 3 x 6 A: still one phase
    assert CH.cap(4830) == 4830  # 7 A x 3
    assert CH.cap(1379) == 0  # below 6 A on one phase: pause
    assert to_current(3450, CH) == (15.0, 1)
    assert to_current(4830, CH) == (7.0, 3)
    assert to_current(1200, CH) == (0.0, 3)


def test_a_night_that_fits_is_spread_at_the_lowest_level_without_a_raise() -> None:
    now = at("2026-01-14T22:00")  # a Wednesday
    slots = slots_until(now, at("2026-01-15T07:30"), flat(400))
    assert len(slots) == 38
    pl = plan(now, slots, 10_000, 4000, CH, P, TZ)
    # the night tariff ends at 07:00: 36 night quarters; 10 kWh is 1111 W each, and the least
    # the charger draws is 6 A (1380 W, 345 Wh a quarter, 12420 Wh in all): every night
    # quarter at 1380 W, far under the threshold; 07:00-07:30 (day tariff) not needed
    assert [s.power_w for s in pl.slots] == [1380.0] * 36 + [0.0, 0.0]
    assert pl.raise_w == 0
    assert pl.planned_wh == pytest.approx(36 * 345)
    # done after 10000 / 345 = 28.99 quarters: 28 full, then 340 Wh at 1380 W = 887 s
    assert pl.eta(now) == at("2026-01-15T05:00") + int(340 * 3600 / 1380)


def test_thirty_kwh_take_15_a_on_one_phase() -> None:
    now = at("2026-01-14T22:00")
    slots = slots_until(now, at("2026-01-15T07:00"), flat(400))  # 36 quarters
    pl = plan(now, slots, 30_000, 4000, CH, P, TZ)
    # 14 A (3220 W) gives 36 x 805 = 28980 Wh, short; 15 A (3450 W): 31050 Wh
    assert {s.power_w for s in pl.slots} == {3450.0}
    assert pl.raise_w == 0


def test_a_night_that_does_not_fit_raises_the_threshold_by_the_least_amount() -> None:
    now = at("2026-01-14T22:00")
    slots = slots_until(now, at("2026-01-15T07:30"), flat(400))
    pl = plan(now, slots, 40_000, 4000, CH, P, TZ)
    # 38 quarters: at 3680 W (16 A, one phase) 34960 Wh, at 4140 W (6 A x 3) 39330 Wh: short;
    # 7 A x 3 = 4830 W gives 45885 Wh: the room must be 4830 W, 1380 W more than 3450
    assert pl.raise_w == 1380
    assert [s.power_w for s in pl.slots] == [4830.0] * 38
    mode = EvMode()
    assert mode.raise_cost(1380) == round(1.38 * 53 / 12, 2)


def test_night_quarters_go_first_then_the_day_ones() -> None:
    now = at("2026-01-14T18:00")  # day tariff until 22:00
    slots = slots_until(now, at("2026-01-15T07:30"), flat(400))
    pl = plan(now, slots, 5_000, 4000, CH, P, TZ)
    powers = {dt.datetime.fromtimestamp(s.start, TZ).strftime("%H:%M"): s.power_w
              for s in pl.slots}
    # 5 kWh fit in the 36 night quarters (22:00-07:00) at the 6 A minimum: the evening and
    # 07:00-07:30 stay free
    assert {k: v for k, v in powers.items() if v} == {
        k: 1380.0 for k in powers if k >= "22:00" or k < "07:00"}
    assert all(v == 0 for k, v in powers.items() if "18:00" <= k < "22:00")
    # 40 kWh: the night at the threshold (36 x 862.5 = 31050 Wh), the 8950 Wh left in the 18
    # day quarters (16 in the evening, 2 after 07:00) at the lowest level: 8 A gives 18 x 460
    # = 8280 Wh, short; 9 A (2070 W) 9315 Wh
    pl = plan(now, slots, 40_000, 4000, CH, P, TZ)
    assert pl.raise_w == 0
    day = [s.power_w for s in pl.slots if not 0 <= (s.start - at("2026-01-14T22:00")) < 9 * 3600]
    assert day == [2070.0] * 18


def test_hysteresis_like_evcc_enable_and_disable_delays() -> None:
    h = Hysteresis()
    assert h.step(0, 2000, 1380, 60, 180) == (False, 60)
    assert h.step(59, 2000, 1380, 60, 180) == (False, 1)
    assert h.step(60, 2000, 1380, 60, 180) == (True, 0)
    assert h.step(100, 1000, 1380, 60, 180) == (True, 180)
    assert h.step(279, 1000, 1380, 60, 180) == (True, 1)
    assert h.step(200, 1500, 1380, 60, 180) == (True, 0)  # room again: the delay restarts
    assert h.step(201, 0, 1380, 60, 180) == (True, 180)
    assert h.step(381, 0, 1380, 60, 180) == (False, 0)


# -- the controller, reading by reading -------------------------------------------------------------

# 29 kWh, planned with the 2 % + 100 Wh reserve as 29680 Wh: 36 night quarters to 07:00 at
# 14 A give 28980 Wh, at 15 A (3450 W, the most under 4000 - 150 - 400) 31050 Wh: 15 A
EV = OutputConfig(id="car", kind="ev", rated_w=11040, mode="ev", min_current_a=6,
                  max_current_a=16, phases=3, departure="07:30", energy_kwh=29)


class Harness:
    """A controller fed readings (1 s apart, meter time ``wall``), peaks and charger states."""

    def __init__(self, start: str, outputs: list[OutputConfig] | None = None) -> None:
        self.ctl = Controller("t", outputs or [EV], Params())
        self.wall = at(start)
        self.t = 1000.0
        for slot in range(96):  # a base load of 400 W learnt in every quarter
            self.ctl.evmode.base.history[slot] = [400.0]

    def state(self, **kw: Any) -> None:
        self.ctl.on_state(self.t, "car", {"v": 1, "ts": "x", "connected": True, **kw})

    def second(self, net: float, head: float, threshold: float = 4000.0) -> dict[str, Any]:
        self.ctl.on_peak(self.t, {"headroom_w": head, "threshold_w": threshold, "forecast_w": 0.0})
        ts = dt.datetime.fromtimestamp(self.wall, TZ).isoformat()
        step = self.ctl.on_reading(self.t, {"ts": ts, "net_w": net, "tariff": 2, "tariff_low": True})
        self.t += 1
        self.wall += 1
        cmd = next(c.payload for c in step.commands if c.output_id == "car")
        built(OutputSet, {**cmd, "ts": ts})
        assert step.control is not None
        built(Control, {**step.control, "ts": ts})
        return cmd


def test_the_headroom_rule_second_by_second_and_across_a_quarter() -> None:
    h = Harness("2026-01-14T22:00")
    h.state(power_w=0.0, current_a=0.0, session_wh=0.0)
    # the plan: 15 A on one phase (3450 W) this quarter; the first start waits 60 s (evcc)
    cmds = [h.second(net=400, head=3600) for _ in range(61)]
    assert {c["current_a"] for c in cmds[:60]} == {0.0}
    assert (cmds[60]["current_a"], cmds[60]["phases"]) == (15.0, 1)
    h.state(power_w=3450.0, current_a=15.0, session_wh=60.0)
    # allowed = what the car draws + headroom - 100 W x 900 / left (an energy margin), a negative
    # one x left / (left - 5 s) (the charger's lag): 61 s into the quarter, 839 s left:
    # 3450 - (100 x 900 / 839) x 839 / 834 = 3342 W -> 14 A
    assert h.second(net=3850, head=0)["current_a"] == 14.0
    # the kettle: headroom -1000 W, 838 s left: 3450 - (1000 + 107.4) x 838 / 833 = 2336 W -> 10 A
    assert h.second(net=5850, head=-1000)["current_a"] == 10.0
    # headroom -2200 W: 3450 - (2200 + 107.5) x 837 / 832 = 1129 W, below 6 A: pause at once
    assert h.second(net=5850, head=-2200)["current_a"] == 0.0
    h.state(power_w=0.0, current_a=0.0, session_wh=62.0)
    # room again: not before the 60 s enable delay
    resumed = [h.second(net=400, head=3600)["current_a"] for _ in range(61)]
    assert resumed[:60] == [0.0] * 60 and resumed[60] == 15.0
    h.state(power_w=3450.0, current_a=15.0, session_wh=100.0)
    # the rest of the quarter with a forecaster that sees the car, the house at 800 W: 4250 W
    # would end the quarter at about 3965 W; the 25 Wh margin (100 W) trims the car near the end
    energy = (2 * 60 + 3) * 400 / 3600 + 3450 * 63 / 3600  # Wh so far (roughly: as if exact)
    ends = []
    while dt.datetime.fromtimestamp(h.wall, TZ).minute != 15:
        net = 800 + h.ctl.outputs["car"].level_w
        left = 900 - h.wall % 900
        head = (4000 * 0.25 - energy - net * left / 3600) * 3600 / left
        ends.append(h.second(net=net, head=head)["current_a"])
        energy += net / 3600
    assert min(ends) < 15.0 and ends[-1] == 15.0
    assert 3850 <= energy * 4 <= 3900  # under the threshold by the margin
    # a new quarter: plan remade for what is still needed; the charge starts again at once
    # (the end of the quarter paused it, not the household: no 60 s delay)
    rt = h.ctl.outputs["car"]
    cmd = h.second(net=400, head=3600)
    assert cmd["current_a"] == 15.0
    assert h.ctl.evmode.states["car"].plan_quarter == at("2026-01-14T22:15") // 900
    assert "15 A x 1: plan 3450 W this quarter" in rt.reason


def test_an_announced_raise_widens_the_headroom_for_the_rest_of_the_quarter() -> None:
    car = EV.model_copy(update={"energy_kwh": 40})
    h = Harness("2026-01-14T22:00", [car])
    h.state(power_w=0.0, current_a=0.0, session_wh=0.0)
    for _ in range(61):
        cmd = h.second(net=400, head=3600)
    st = h.ctl.evmode.states["car"]
    assert st.plan is not None and st.plan.raise_w > 0
    raise_w = st.plan.raise_w
    h.state(power_w=4830.0, current_a=7.0, session_wh=80.0)
    # 61 s into the quarter: 839 s left; the raise adds raise_w x 900 / 839 to the headroom
    cmd = h.second(net=5230, head=-1000)
    allowed = 4830 - 1000 + raise_w * 900 / 839 - 150
    assert (cmd["current_a"], cmd["phases"]) == to_current(CH.cap(min(allowed, 4830)), CH, 3)
    assert "threshold raised by" in h.ctl.outputs["car"].reason


def test_pv_surplus_by_day_with_enable_and_disable_delays() -> None:
    car = EV.model_copy(update={"departure": None, "energy_kwh": None})
    h = Harness("2026-01-14T12:00", [car])  # a Wednesday noon: day tariff, no plan
    h.state(power_w=0.0, current_a=0.0, session_wh=0.0)
    first = [h.second(net=-2000, head=9000)["current_a"] for _ in range(61)]
    assert first[:60] == [0.0] * 60 and first[60] == 8.0  # 2000 W -> 8 A on one phase
    h.state(power_w=1840.0, current_a=8.0, session_wh=10.0)
    # a cloud: 1000 W export without the car (net +840 with it): the minimum for 180 s
    during = [h.second(net=840, head=9000)["current_a"] for _ in range(181)]
    assert during[:180] == [6.0] * 180 and during[180] == 0.0


def test_watchdog_pauses_the_charger_and_unplugged_pauses() -> None:
    h = Harness("2026-01-14T22:00")
    h.state(power_w=0.0, current_a=0.0, session_wh=0.0, charging=False)
    for _ in range(61):
        h.second(net=400, head=3600)
    assert h.ctl.outputs["car"].ev_current_a == 15.0
    step = h.ctl.tick(h.t + 10)
    assert step is not None
    assert [c.payload["current_a"] for c in step.commands if c.output_id == "car"] == [0.0]
    h.t += 11
    h.ctl.on_state(h.t, "car", {"v": 1, "ts": "x", "connected": False})
    cmd = h.second(net=400, head=3600)
    assert cmd["current_a"] == 0.0
    assert h.ctl.outputs["car"].reason == "paused: no car plugged in"


def test_a_restart_in_the_middle_of_a_charge_continues_the_plan() -> None:
    h = Harness("2026-01-14T22:00", [EV.model_copy(update={"energy_kwh": 40})])
    h.state(power_w=0.0, current_a=0.0, session_wh=0.0)
    for _ in range(61):
        h.second(net=400, head=3600)
    h.state(power_w=4830.0, current_a=7.0, session_wh=80.0)
    before = h.second(net=5230, head=0)
    saved = h.ctl.evmode.to_dict()
    plan_before = h.ctl.evmode.states["car"].plan
    # a new process: the state file's content, the same meter time a few seconds later
    h2 = Harness("2026-01-14T22:01:10", [EV.model_copy(update={"energy_kwh": 40})])
    h2.ctl.evmode.load(saved)
    h2.state(power_w=4830.0, current_a=7.0, session_wh=85.0)
    after = h2.second(net=5230, head=0)
    assert (after["current_a"], after["phases"]) == (before["current_a"], before["phases"])
    assert h2.ctl.evmode.states["car"].plan == plan_before  # same quarter: the same plan


def test_a_pause_at_a_quarters_end_restarts_at_once_one_in_the_middle_waits() -> None:
    from load_controller.evmode import EvInputs

    def run(pause_at: str) -> tuple[float, float]:
        mode = EvMode()
        for slot in range(96):
            mode.base.history[slot] = [400.0]
        state = {"connected": True, "session_wh": 0.0, "power_w": 0.0}
        t0 = at("2026-01-14T22:00")

        def decide(wall: float, head: float, draw: float) -> float:
            return mode.decide(EV, EvInputs(now=wall, wall=wall, net_w=400 + draw, draw_w=draw,
                                            head_w=head, threshold_w=4000.0, state=state)).current_a

        for k in range(61):  # the first start: 60 s (evcc's enable delay)
            cur = decide(t0 + k, 3600, 0.0)
        assert cur == 15.0
        assert decide(at(f"2026-01-14T{pause_at}"), -3000, 3450) == 0.0  # the cap: pause
        return (decide(at("2026-01-14T22:15:00"), 3600, 0.0),
                decide(at("2026-01-14T22:16:00"), 3600, 0.0))

    # 22:13 is in the last 3 minutes of its quarter: the next quarter starts at once
    assert run("22:13:00") == (15.0, 15.0)
    # 22:05: the household paused it; the next start waits the 60 s again
    assert run("22:05:00") == (0.0, 15.0)


def _mode(base: dict[int, float] | None = None) -> EvMode:
    mode = EvMode()
    for slot in range(96):
        mode.base.history[slot] = [(base or {}).get(slot, 400.0)]
    return mode


def _decide(mode: EvMode, cfg: OutputConfig, wall: float, head: float, draw: float,
            state: dict[str, Any]) -> tuple[float, str]:
    from load_controller.evmode import EvInputs

    out = mode.decide(cfg, EvInputs(now=wall, wall=wall, net_w=400 + draw, draw_w=draw,
                                    head_w=head, threshold_w=4000.0, state=state))
    return out.current_a, out.reason


def test_no_start_in_a_quarters_last_ten_seconds_it_would_show_in_the_next() -> None:
    # the enable delay (60 s from 22:13:52) ends at 22:14:52, 8 s before the quarter's end: a
    # set sent then applies after the charger's delay and ramp, in the next quarter, whose
    # room nobody checked: the car waits, and starts at 22:15:00 (the delay already served).
    # The headroom of a quarter with 1 kWh left in its last minute: 50 kW (the 25 Wh margin
    # takes 100 x 900 / 8 = 11250 W of it 8 s before the end)
    mode = _mode()
    state = {"connected": True, "session_wh": 0.0, "power_w": 0.0}
    t0 = at("2026-01-14T22:13:52")
    got = [_decide(mode, EV, t0 + k, 50_000, 0.0, state) for k in range(69)]
    assert [c for c, _ in got] == [0.0] * 68 + [15.0]
    assert got[60][1] == ("paused: plan 3450 W this quarter; the quarter ends in 8 s, "
                          "next quarter 3450 W")


def test_a_planned_drop_is_sent_ten_seconds_before_the_quarter_ends() -> None:
    # the quarter 22:15-22:30 has a base of 3800 W forecast: the plan gives it 0 W (3850 - 3800
    # is below the minimum); the others 15 A (29680 Wh in 35 quarters: 14 A gives 35 x 805 =
    # 28175 Wh, short; 15 A 30187 Wh). The car charges at 15 A until 22:14:49 (11 s left) and
    # is paused at 22:14:50 (10 s left), so its delay and ramp end inside this quarter
    mode = _mode({22 * 4 + 1: 3800.0})
    state = {"connected": True, "session_wh": 0.0, "power_w": 0.0}
    t0 = at("2026-01-14T22:00")
    for k in range(61):
        cur, _ = _decide(mode, EV, t0 + k, 3600, 0.0, state)
    assert cur == 15.0
    pl = mode.states["car"].plan
    assert pl is not None and [s.power_w for s in pl.slots[:3]] == [3450.0, 0.0, 3450.0]
    # (the headroom near the end of a quarter with 1 kWh left: 50 kW, as above)
    assert _decide(mode, EV, at("2026-01-14T22:14:49"), 50_000, 3450.0, state)[0] == 15.0
    cur, why = _decide(mode, EV, at("2026-01-14T22:14:50"), 50_000, 3450.0, state)
    assert cur == 0.0
    assert "the quarter ends in 10 s, next quarter 0 W" in why


def test_a_tapering_car_is_planned_at_what_it_takes_and_a_planned_pause_restarts_at_once() -> None:
    # Thursday 06:00, 1000 Wh still needed (29 kWh, 28000 Wh charged): planned with the
    # reserve as 1000 x 1.02 + 100 = 1120 Wh until 07:07:30 (a quarter of the 90 min left
    # before departure kept free). The quarter 06:45 has a base of 3000 W (the morning):
    # 06:00-06:45 take it, the least of them that does it is 7 A (3 x 402.5 = 1207.5 Wh; 6 A
    # gives 1035), 06:45 cannot (its minimum needs a level of 4380 W, over 3850)
    mode = _mode({27: 3000.0})
    state = {"connected": True, "session_wh": 28000.0, "power_w": 0.0}
    t0 = at("2026-01-15T06:00")
    for k in range(61):
        cur, _ = _decide(mode, EV, t0 + k, 50_000, 0.0, state)
    st = mode.states["car"]
    assert cur == 7.0 and st.plan is not None
    assert [s.power_w for s in st.plan.slots] == [1610.0, 1610.0, 1610.0, 0.0, 0.0]
    # the car takes 1380 W (6 A) instead of 1610: after 30 s it counts as its taper
    for k in range(61, 91):
        _decide(mode, EV, t0 + k, 50_000, 1380.0, state)
    assert st.accept_w is None
    _decide(mode, EV, t0 + 91, 50_000, 1380.0, state)
    assert st.accept_w == 1380.0
    # 06:15, 655 Wh still needed, planned 655 x 1.02 + 100 = 768.1 Wh at 1380 W at most:
    # 06:15 and 06:30 give 690 Wh, 06:45 none, so the day quarter 07:00-07:07:30 too
    # (172.5 Wh); without the taper 8 A in two quarters (920 Wh) would have been the plan
    state["session_wh"] = 28345.0
    _decide(mode, EV, at("2026-01-15T06:15"), 50_000, 1380.0, state)
    assert [s.power_w for s in st.plan.slots] == [1380.0, 1380.0, 0.0, 1380.0]
    # 06:45, 165 Wh still needed (268.3 with the reserve), now until 07:18:45 (45 min left,
    # a quarter of them kept free; the last hour: every quarter at the top): 06:45 would take
    # a raise, the day quarters 07:00 and 07:15-07:18:45 take the 6 A the car takes. The
    # plan pauses the car
    # in 06:45 and, that pause being no household's, 07:00 starts at once (no 60 s delay)
    state["session_wh"] = 28835.0
    assert _decide(mode, EV, at("2026-01-15T06:45"), 50_000, 1380.0, state)[0] == 0.0
    assert [s.power_w for s in st.plan.slots] == [0.0, 1380.0, 1380.0] and st.plan.raise_w == 0
    assert _decide(mode, EV, at("2026-01-15T07:00"), 50_000, 0.0, state)[0] == 6.0


def test_a_peak_this_charge_already_raised_is_reused_without_a_new_raise() -> None:
    now = at("2026-01-14T22:00")
    slots = slots_until(now, at("2026-01-15T07:00"), flat(430))  # 36 quarters
    # 31 kWh: 14 A (3220 W) gives 36 x 805 = 28980 Wh, short; 15 A (3450 W) needs a level of
    # 430 + 3450 = 3880 W, 30 W over 4000 - 150: a raise of 30 W
    assert plan(now, slots, 31_000, 4000, CH, P, TZ).raise_w == 30
    # the same night when this charge's raise already took the month peak to 4000 W: the
    # quarters may go up to it less the real-time margin (3900 W), no new raise
    pl = plan(now, slots, 31_000, 4000, CH, P, TZ, paid_w=3900)
    assert pl.raise_w == 0 and {s.power_w for s in pl.slots} == {3450.0}


def test_the_last_hour_fills_every_quarter_up_to_the_top() -> None:
    now = at("2026-01-15T06:30")  # a Thursday: night until 07:00
    slots = slots_until(now, at("2026-01-15T07:30"), flat(400))
    # 600 Wh: at the least level two night quarters at 6 A (2 x 345 Wh); in the last hour
    # every quarter at the top (3850 - 400 = 3450 W, 15 A), the car stopping when full
    assert [s.power_w for s in plan(now, slots, 600, 4000, CH, P, TZ).slots] == [
        1380.0, 1380.0, 0.0, 0.0]
    assert [s.power_w for s in plan(now, slots, 600, 4000, CH, P, TZ, asap=True).slots] == [
        3450.0] * 4
    # a need that does not fit under the top is planned as before: the least raise
    assert plan(now, slots, 20_000, 4000, CH, P, TZ, asap=True).raise_w == plan(
        now, slots, 20_000, 4000, CH, P, TZ).raise_w


def test_the_controller_remembers_the_threshold_its_raise_announced() -> None:
    mode = _mode({slot: 430.0 for slot in range(96)})
    car = EV.model_copy(update={"energy_kwh": 30})
    state = {"connected": True, "session_wh": 0.0, "power_w": 0.0}
    _decide(mode, car, at("2026-01-14T22:00"), 50_000, 0.0, state)
    st = mode.states["car"]
    # 30 kWh and its reserve: 30700 Wh in the 36 quarters to 07:00: 14 A gives 28980 Wh, 15 A
    # (31050 Wh) needs 3880 W, a raise of 30 W: the threshold announced is 4030 W
    assert st.plan is not None and st.plan.raise_w == 30 and st.paid_w == 4030
    # 22:15, the month peak still 4000 W, 862.5 Wh charged: 29137.5 x 1.02 + 100 = 29820.25 Wh
    # in 35 quarters, 15 A (30187.5 Wh) at 3880 W, under min(4030, 4000) - 100 = 3900 W: no
    # new raise (without it: 14 A gives 28175 Wh under 3850 W, and 30 W more again)
    state["session_wh"] = 862.5
    _decide(mode, car, at("2026-01-14T22:15"), 50_000, 3450.0, state)
    assert st.plan.raise_w == 0 and st.plan.slots[0].power_w == 3450.0
    _decide(mode, car, at("2026-01-14T22:16"), 50_000, 3450.0, {"connected": False})
    assert st.paid_w == 0


def test_a_ramp_after_a_new_command_or_a_car_drawing_nothing_is_no_taper() -> None:
    mode = _mode()
    state = {"connected": True, "session_wh": 0.0, "power_w": 0.0}
    t0 = at("2026-01-14T22:00")
    for k in range(61):
        _decide(mode, EV, t0 + k, 50_000, 0.0, state)
    st = mode.states["car"]
    assert st.current_a == 15.0
    # told 15 A, the car draws nothing for 40 s (suspended, or its report is late): no taper
    for k in range(61, 101):
        _decide(mode, EV, t0 + k, 50_000, 0.0, state)
    assert st.accept_w is None
    # 3220 W (14 A) for 29 s, then the headroom cuts it to 12 A: the 30 s start over
    for k in range(101, 130):
        _decide(mode, EV, t0 + k, 50_000, 3220.0, state)
    # (770 s left: 3220 + (-303 - 100 x 900 / 770) x 770 / 765 = 2797 W -> 12 A)
    _decide(mode, EV, t0 + 130, -303, 3220.0, state)
    assert st.current_a == 12.0 and st.accept_w is None
    # 12 A told, 2500 W drawn (a headroom of 400 W less the margin keeps it at 12 A): 30 s of
    # the same command from 22:02:11, and only then it counts as the car's taper
    for k in range(131, 161):
        _decide(mode, EV, t0 + k, 400, 2500.0, state)
    assert st.current_a == 12.0 and st.accept_w is None
    _decide(mode, EV, t0 + 161, 400, 2500.0, state)
    assert st.accept_w == 2500.0
