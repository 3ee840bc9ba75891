"""The per-site learner: scripted days with a step of known duration, probability by hand.

The house: 360 W (1 Wh per 10 s reading), read from 15:00 to 20:00. On 4 weekdays in
January, at 16:03:00 and at 18:03:00 a load brings it to 3600 W (10 Wh per reading): 6
times for 25 min (an oven), 2 times for 10 min. At minute 10 of those quarters (16:10:00,
18:10:00: the learner's sample) the quarter has 18 + 42 x 10 = 438 Wh, the power is 3600 W, so the
naive forecast f = 438 x 4 + 3600 x 300 / 900 = 2952 W; the quarter ends at
(18 + 72 x 10) x 4 = 2952 W (25 min days: z = 0, bin [0, 250)) or (18 + 60 x 10 + 12) x 4
= 2520 W (10 min days: z = (2520 - 2952) x 900 / 300 = -1296 W, bin [-1500, -1250)).

On Monday 2 February (another month: the threshold is the manual 2800 W, January's peak
of 2952 W does not count) the same step at 18:03: at 18:09:00 (minute 9, where the
learner decides) E = 18 + 36 x 10 = 378 Wh, f = 378 x 4 + 3600 x 360 / 900 = 2952 W, the
quarter ends above 2800 W iff z > (2800 - 2952) x 900 / 360 = -380 W: bin [0, 250) is
above, bin [-1500, -1250) below. The cell (weekdays 16-20 h, >= 2.5 kW, on for 3-8 min)
holds 6 + 2 samples; the pooled cell (all hours) the same 8, weighing 4 pseudo-samples
(3 + 1); the power class (>= 2.5 kW, any age) also has the 6 quarters after a 25 min step
(minute 10 of the :15 quarter, the load on since :03: f = 600 x 4 + 3600 x 300 / 900 =
3600 W, ends at (3600 x 780 + 360 x 120) / 900 = 3168 W, z = -1296 W): 6 above, 8 below,
weighing 4 (24/14 + 32/14). P = (6 + 3 + 24/14) / (8 + 4 + 4) = 10.714 / 16 = 0.670, above
the cut-off 0.6 (``PEAK_LEARNED_CUT``, opt-in): alarm at 18:09:00, 6 min before the end.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from peak_forecaster import learner
from peak_forecaster.engine import PeakSettings, SiteEngine
from peak_forecaster.forecast import ForecastParams

LEARNED = ForecastParams(learned_cut=0.6)  # opt-in: the learner decides the alarm

TZ = dt.timezone(dt.timedelta(hours=1))
STEPS = {  # day -> ((hour of the step at :03, minutes on), ...): always 3.6 kW in all
    "2026-01-26": ((16, 25), (18, 25)), "2026-01-27": ((16, 10), (18, 25)),
    "2026-01-28": ((16, 25), (18, 25)), "2026-01-29": ((16, 25), (18, 10)),
    "2026-02-02": ((18, 25),),
}
_CACHE: dict[str, list[dict[str, Any]]] = {}


def scripted(until_local: str) -> list[dict[str, Any]]:
    """Readings every 10 s from 15:00 to 20:00 (+01:00) of each day of ``STEPS`` up to
    ``until_local``; each carries the power of the 10 s it closes (the counter also runs at
    360 W between the days)."""
    if until_local not in _CACHE:
        wh, out = 5_000_000, []
        last: dt.datetime | None = None
        for day, steps in STEPS.items():
            d = dt.date.fromisoformat(day)
            t = dt.datetime(d.year, d.month, d.day, 15, tzinfo=TZ)
            if last is not None:
                wh += int((t - last).total_seconds()) // 10  # 360 W overnight: 1 Wh per 10 s
            out.append(reading(t.isoformat(), wh, 360))
            for _ in range(5 * 360):
                on = any(0 <= (t - t.replace(hour=h, minute=3)).total_seconds() < m * 60 for h, m in steps)
                t += dt.timedelta(seconds=10)
                wh += 10 if on else 1
                out.append(reading(t.isoformat(), wh, 3600 if on else 360))
                if out[-1]["ts"] >= until_local:
                    break
            last = t
            if out[-1]["ts"] >= until_local:
                break
        _CACHE[until_local] = out
    return [dict(r) for r in _CACHE[until_local]]


def reading(ts: str, wh: int, power_w: int) -> dict[str, Any]:
    return {"v": 1, "site": "learn", "source": "sim", "ts": ts, "import_kwh": wh / 1000, "import_w": power_w}


def run(readings: list[dict[str, Any]], engine: SiteEngine | None = None) -> tuple[SiteEngine, dict[str, Any]]:
    eng = engine or SiteEngine("learn", PeakSettings(manual_threshold_w=2800.0), LEARNED)
    peaks: dict[str, Any] = {}
    for r in readings:
        res = eng.process(r)
        peaks[r["ts"]] = res.peak
        for q in res.quarters:
            peaks["quarter " + q["start"]] = q
    return eng, peaks


def test_learns_a_step_of_known_duration_and_warns_with_the_probability_by_hand() -> None:
    rs = scripted("2026-02-02T18:15:00+01:00")
    eng, peaks = run(rs[:-1])
    c = eng.learner.counts
    # the 16-20 h cell of weekdays: 6 samples at z = 0 (bin 13), 2 at z = -1296 W (bin 7)
    cell = learner.N_POWER * learner.N_AGE * 4 + 2 * learner.N_AGE + 1
    assert c[cell][13] == 6 and c[cell][7] == 2 and sum(c[cell]) == 8
    assert c[learner.N_DETAIL + 2 * learner.N_AGE + 1] == c[cell]
    power = c[learner.N_DETAIL + learner.N_POOLED + 2]
    assert power[13] == 6 and power[7] == 8 and sum(power) == 14
    before, at = peaks["2026-02-02T18:08:50+01:00"], peaks["2026-02-02T18:09:00+01:00"]
    assert before["level"] != "alarm"
    assert at["probability"] == 0.67
    assert at["level"] == "alarm" and at["warned_at"] == "2026-02-02T18:09:00+01:00"
    assert at["threshold_w"] == 2800.0
    assert at["days_learned"] == 4  # 26 .. 29 January are over
    assert at["reason"] == ("3.2 kW step at 18:03, 3.6 kW now; on weekdays 16-20 h the power held "
                            "or rose in 6 of 8 similar quarters")
    # without the opt-in (the shipped default) the same probability is stated on the rule's level
    _, stated = run(rs[:-1], SiteEngine("learn", PeakSettings(manual_threshold_w=2800.0)))
    assert stated["2026-02-02T18:09:00+01:00"]["probability"] == 0.67
    assert stated["2026-02-02T18:09:00+01:00"]["level"] != "alarm"  # the rule's: 140 % before minute 10
    q = eng.process(rs[-1]).quarters[0]
    assert q["avg_w"] == 2952.0 and q["warned_at"] == "2026-02-02T18:09:00+01:00"


def test_what_the_load_controller_can_shed_is_not_the_uncertain_part() -> None:
    rs = scripted("2026-02-02T18:09:00+01:00")
    eng, _ = run(rs[:-1])
    # 3240 W of the 3600 W are outputs the load-controller can switch off: the rest is 360 W,
    # f = 378 x 4 + 360 x 360 / 900 = 1656 W: ending above 2800 W needs z > 2860 W: none
    eng.set_controlled(eng.tracker.last_t, 3240.0)
    peak = eng.process(rs[-1]).peak
    assert peak is not None and peak["probability"] == 0.0 and peak["level"] != "alarm"


def test_cold_start_is_todays_rule() -> None:
    """Until the learner has 2 days, the default's levels are exactly the rule's."""
    rs = scripted("2026-01-27T20:00:00+01:00")
    eng = SiteEngine("learn", PeakSettings(manual_threshold_w=2500.0), LEARNED)
    alarms = 0
    for r in rs:
        res = eng.process(r)
        assert res.peak is not None and "probability" not in res.peak
        assert eng.default.level == eng.rule.level, r["ts"]
        for q in res.quarters:
            assert q["warned_at_default"] == q["warned_at_rule"]
            alarms += q["warned_at_rule"] is not None
    # the rule did alarm (first of all in 26 January's 16:00 and 16:15 quarters: 2952 W and
    # 3168 W, each above the month peak so far), and the default with it
    assert alarms >= 2
    assert eng.learner.days_learned == 1  # 26 January is over, 27 January not yet


def test_state_is_bounded_and_round_trips() -> None:
    full = learner.Learner(counts={cell: [10] * 11 + [1] * 9 + [0] * 6 for cell in range(learner.N_CELLS)},
                           last_w=123456.7, step_t=1.7e9, step_w=-12345.6, pending=[311.0, 320.0, 2952.1, 300.0],
                           days_learned=99999, last_day="2026-01-01", samples=9_999_999)
    text = json.dumps(full.to_dict())
    assert len(text) <= learner.MAX_STATE_BYTES
    assert learner.Learner.from_dict(json.loads(text)) == full
    eng, _ = run(scripted("2026-01-28T18:05:00+01:00"))
    again = SiteEngine.from_state(json.loads(json.dumps(eng.to_state())))
    assert again.learner == eng.learner


@pytest.mark.slow
def test_what_it_learned_survives_sigkill(mosquitto: Any, tmp_path: Any) -> None:
    """The real service: the January days through the broker, the learned state written,
    SIGKILL, a restart, 2 February: the probability by hand as above; then the
    load-controller's control takes the sheddable part out of it."""
    from test_pf_service import Service, publish_all

    from support import Subscriber, wait_for

    january = scripted("2026-01-29T20:00:00+01:00")
    february = [r for r in scripted("2026-02-02T18:09:00+01:00") if r["ts"] > january[-1]["ts"]]
    ref, _ = run(january)
    svc = Service(mosquitto, tmp_path, "--threshold-w", "2800", "--learned-cut", "0.6",
                  client_id="pf-learn-kill")
    sub = Subscriber(mosquitto.port, "p1/learn/peak")
    state = tmp_path / "peak-forecaster" / "learn.json"

    def written() -> bool:
        try:
            return json.loads(state.read_text())["learner"] == ref.learner.to_dict()
        except (OSError, ValueError, KeyError):
            return False

    svc.start()
    try:
        publish_all(sub, january)
        wait_for(lambda: any(m.json()["ts"] == january[-1]["ts"] for m in sub.messages), 30)
        wait_for(written, 15)
        svc.kill()
        svc.start()
        publish_all(sub, february[:-1])
        wait_for(lambda: any(m.json()["ts"] == february[-2]["ts"] for m in sub.messages), 30)
        # 18:08:50: E = 368 Wh, f = 368 x 4 + 3600 x 370 / 900 = 2952 W, z* = -369.7 W: the
        # same bins as at 18:09:00 above, 10.714 of 16
        before = [m.json() for m in sub.messages if m.json()["ts"] == "2026-02-02T18:08:50+01:00"][-1]
        assert before["probability"] == 0.67 and before["days_learned"] == 4
        assert before["level"] != "alarm"  # minute 9 is where the learner may raise it
        # the load-controller says 3240 W of it is a guarded output it can shed: P = 0 (above)
        control = {"v": 1, "site": "learn", "ts": "2026-02-02T18:08:55+01:00", "watchdog": False, "outputs": [
            {"id": "boiler", "kind": "relay", "mode": "on", "priority": 1, "decision": "on", "on": True,
             "level_w": 3240.0, "reason": "on", "on_delay_remaining_s": None, "min_on_remaining_s": None,
             "following": True, "device": "on", "seq": 1, "peak_guard": "active"}]}
        sub.client.publish("p1/learn/control", json.dumps(control), qos=0)
        publish_all(sub, february[-1:])
        wait_for(lambda: any(m.json()["ts"] == february[-1]["ts"] for m in sub.messages), 30)
        at = [m.json() for m in sub.messages if m.json()["ts"] == "2026-02-02T18:09:00+01:00"][-1]
        assert at["probability"] == 0.0 and at["days_learned"] == 4 and at["level"] != "alarm"
    finally:
        svc.stop()
        sub.close()


def test_a_bad_cut_off_is_refused_naming_the_variable(tmp_path: Any) -> None:
    import os
    import subprocess
    import sys

    for env, args, want in ((
        {"PEAK_LEARNED_CUT": "1.5"}, [], "PEAK_LEARNED_CUT: 1.5 is above the maximum 1.0"), (
        {}, ["--learned-cut", "0.01"], "--learned-cut: 0.01 must be in 0.05..1")):
        out = subprocess.run([sys.executable, "-m", "peak_forecaster.cli", "run", *args],
                             env={**os.environ, "P1_STATE_DIR": str(tmp_path), **env},
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 2 and want in out.stderr, out.stderr
