# Entry of the host runner under the MicroPython unix port: the device's own
# main.py, with the stubs of this folder for the hardware. Started by
# devices/host/run.py (which compiles the firmware and writes settings.json);
# Ctrl-C (SIGINT) stops it and prints the heap high-water mark.
import sys

import hostrt

DEVICE = hostrt.env("P1_DEVICE", "monitor")


def _bits(pins):
    return "".join(str(p.v) for p in pins)


def _make_view(rt):
    import boards
    b = boards.profile(rt.s.get("board"), DEVICE)
    P = hostrt.PINS
    if DEVICE == "monitor":
        exp = [P[g] for g in b["exp"]]
        imp = [P[g] for g in b["imp"]]
        red, blue = P[b["red"]], P[b["blue"]]
        return lambda: "leds exp=%s imp=%s red=%d blue=%d" % (_bits(exp), _bits(imp), red.v, blue.v)
    app = rt.app
    if DEVICE == "mini-switch":
        return lambda: "relay %s override=%d" % ("on" if app.relay.state else "off",
                                                 1 if app.out.override else 0)
    if DEVICE == "switcher":
        return lambda: "triac pct=%d.%d override=%d" % (app.burst.level // 10, app.burst.level % 10,
                                                        1 if app.out.override else 0)
    return None


def _install():
    import device
    base = device.Runtime

    class HostRuntime(base):
        def __init__(self, *a, **kw):
            base.__init__(self, *a, **kw)
            hostrt.rt[0] = self
            hostrt.view[0] = _make_view(self)

    device.Runtime = HostRuntime


def main():
    _install()
    code = 0
    try:
        import main     # noqa: F401  the device's main.py, as at boot
    except KeyboardInterrupt:
        hostrt.say("stopped (Ctrl-C)")
    except MemoryError as e:
        hostrt.say("MemoryError:", e)
        code = 70
    except SystemExit:
        raise
    except Exception as e:
        sys.print_exception(e)
        code = 1
    r = hostrt.rt[0]
    if r is not None:
        r.link.close()
    hostrt.summary()
    sys.exit(code)


main()
