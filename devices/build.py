"""Compile the device firmware for the ESP8266 and lay out what goes on each board.

    python devices/build.py [--out devices/build] [--mpy-cross PATH]

Output, per device (monitor, mini-switch, switcher, p1-dongle): <out>/<device>/ holding
main.py (kept as source: MicroPython runs main.py at boot), the app module as
.mpy, and lib/*.mpy (the common modules). Copy a device's folder to the board's
file system root with mpremote (see README.md). Prints the size of every .mpy.
Runs under CPython on the PC (not on the board).
"""
import argparse
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEVICES = ("monitor", "mini-switch", "switcher", "p1-dongle")
# the common modules each device needs (a board only gets what it uses: RAM)
COMMON = ("tick", "clock", "settings", "boards", "hw", "topics", "mq", "wifi", "form",
          "portal", "device")
NEEDS = {
    "monitor": COMMON + ("ledbar",),
    "mini-switch": COMMON + ("relay", "outapp"),
    "switcher": COMMON + ("relay", "outapp", "firing"),
    "p1-dongle": COMMON + ("p1frame", "legacy"),
}


def find_mpy_cross():
    exe = shutil.which("mpy-cross")
    if exe:
        return [exe]
    cand = os.path.join(os.path.dirname(sys.executable), "mpy-cross")
    if os.path.exists(cand):
        return [cand]
    return [sys.executable, "-m", "mpy_cross"]


def compile_one(mpy_cross, src, dst, march="xtensa"):
    # march None: bytecode only (the host runner's MicroPython on this machine)
    cmd = list(mpy_cross) + (["-march=" + march] if march else []) + ["-o", dst, src]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return os.path.getsize(dst)


def build(out, mpy_cross=None, march="xtensa", devices=DEVICES):
    """Compile everything; return {relative path in out: .mpy size in bytes}."""
    mpy_cross = mpy_cross or find_mpy_cross()
    sizes = {}
    for dev in devices:
        root = os.path.join(out, dev)
        lib = os.path.join(root, "lib")
        os.makedirs(lib, exist_ok=True)
        for name in NEEDS[dev]:
            rel = dev + "/lib/" + name + ".mpy"
            sizes[rel] = compile_one(mpy_cross, os.path.join(HERE, "lib", name + ".py"),
                                     os.path.join(out, rel), march)
        for fn in sorted(os.listdir(os.path.join(HERE, dev))):
            src = os.path.join(HERE, dev, fn)
            if not fn.endswith(".py"):
                continue
            if fn in ("main.py", "boot.py"):
                # compiled only to check it, shipped as source
                compile_one(mpy_cross, src, os.path.join(root, fn[:-3] + ".check.mpy"), march)
                os.remove(os.path.join(root, fn[:-3] + ".check.mpy"))
                shutil.copy(src, os.path.join(root, fn))
                continue
            rel = dev + "/" + fn[:-3] + ".mpy"
            sizes[rel] = compile_one(mpy_cross, src, os.path.join(out, rel), march)
    return sizes


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(HERE, "build"), help="output folder")
    ap.add_argument("--mpy-cross", default=None, help="mpy-cross executable")
    args = ap.parse_args(argv)
    sizes = build(args.out, [args.mpy_cross] if args.mpy_cross else None)
    for dev in DEVICES:
        total = sum(v for k, v in sizes.items() if k.startswith(dev + "/"))
        print("%s: %d bytes of .mpy" % (dev, total))
        for k in sorted(sizes):
            if k.startswith(dev + "/"):
                print("  %-34s %6d" % (k, sizes[k]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
