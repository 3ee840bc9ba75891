# Triac firing for the switcher, pure.
#
# Burst (default): whole mains cycles on or off, chosen by an integer
# accumulator at each full cycle, so over N cycles exactly round(N * pct / 100)
# conduct: power is exactly linear in pct and the ESP8266's interrupt latency
# does not matter (the gate fires right after the zero crossing).
#
# Phase angle (option): fire each half-cycle after a delay. A resistive load
# fired at angle a (0..pi) gets the fraction P(a) = 1 - a/pi + sin(2a)/(2 pi)
# of full power; angle_for() inverts it so that pct means percent of power.
import math

RES = 1000   # burst accumulator: 0.1 % steps


class Burst:
    def __init__(self):
        self.acc = 0
        self.level = 0      # pct in 0.1 % units
        self.half = 0       # half-cycle counter (0/1)
        self.on = False     # this full cycle conducts

    def set_pct(self, pct):
        lv = int(pct * 10 + 0.5)
        self.level = 0 if lv < 0 else (RES if lv > RES else lv)

    def cycle(self):
        # one full mains cycle: True = conduct it
        self.acc += self.level
        if self.acc >= RES:
            self.acc -= RES
            return True
        return False

    def zero_cross(self):
        # called at every zero crossing (ISR-safe: integers only): True = fire
        # the gate now. Decides once per full cycle so both halves match (no DC).
        if self.half == 0:
            self.on = self.cycle()
        self.half ^= 1
        return self.on


def power_fraction(a):
    # fraction of full power with firing angle a (radians, 0..pi)
    return 1 - a / math.pi + math.sin(2 * a) / (2 * math.pi)


def angle_for(fraction):
    # firing angle (radians) giving `fraction` (0..1) of full power: bisection on
    # the monotonic P(a); 40 steps leave an error below 3e-12 rad
    if fraction >= 1:
        return 0.0
    if fraction <= 0:
        return math.pi
    lo, hi = 0.0, math.pi
    for _ in range(40):
        mid = (lo + hi) / 2
        if power_fraction(mid) > fraction:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def delay_us(pct, mains_hz=50):
    # delay after the zero crossing for pct % of power; None = do not fire
    if pct <= 0:
        return None
    # the half-cycle in float: 500000 // 60 would cut 1/3 us off it (4166 for 50 % at 60 Hz,
    # where the exact delay is 4166.67 us)
    half_us = 500000 / mains_hz
    return int(angle_for(pct / 100) / math.pi * half_us + 0.5)


def delay_table(mains_hz=50, min_us=100, max_us=None):
    # delays for 0..100 % in 1 % steps, computed once so the ISR does no float
    # maths; clamped away from the zero crossings where the triac cannot latch
    half_us = 500000 // mains_hz
    if max_us is None:
        max_us = half_us - 400
    t = [-1]
    for p in range(1, 101):
        d = delay_us(p, mains_hz)
        t.append(min_us if d < min_us else (max_us if d > max_us else d))
    return t
