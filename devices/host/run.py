"""Run a device's firmware on this machine under the MicroPython unix port.

    python devices/host/run.py DEVICE [--heap 32k] [--mqtt-url mqtt://127.0.0.1:1883]
        [--site home] [--device-id ID] [--set KEY=VALUE ...] [--uart PATH|-]
        [--workdir DIR] [--wifi-file FILE]

DEVICE: monitor, mini-switch, switcher or p1-dongle. The firmware and the stubs of
devices/host/stubs/ are compiled with mpy-cross to bytecode (on the board it is
-march=xtensa) and packed in a ROMFS image (WORKDIR/firmware.rom) that runs in place,
outside the heap, like frozen modules; settings.json is written into WORKDIR; then
devices/host/micropython (v1.28.0, see MICROPYTHON-BUILD.md) runs the device's own
main.py with the board's heap (HEAP=32k: -X heapsize=32wk, see heap_arg) and the
garbage collector on. Output pins, LED bars and the OLED are printed as text lines,
UART RX comes from a file, a pty or stdin, Wi-Fi is up ("down" in --wifi-file takes
it down). Ctrl-C stops it and prints the heap high-water mark. See README.md here.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from urllib.parse import urlparse

HERE = os.path.dirname(os.path.abspath(__file__))
DEVICES_DIR = os.path.dirname(HERE)
sys.path.insert(0, DEVICES_DIR)

import build  # noqa: E402  devices/build.py

MICROPYTHON = os.path.join(HERE, "micropython")
STUBS = os.path.join(HERE, "stubs")
BOARDS = {"monitor": "nodemcu", "mini-switch": "sonoff", "switcher": "dimmer",
          "p1-dongle": "p1dongle"}


def heap_arg(heap: str) -> str:
    """-X heapsize for the board's heap ("32k": bytes of the 32-bit ESP8266).

    The unix port's `w` suffix scales the size by the word size over 4 bytes
    (ports/unix/main.c), so -X heapsize=32wk gives this 64-bit machine the heap a
    32-bit board with 32 KB has: the same number of words for the same objects.
    """
    h = heap.strip().lower()
    unit = h[-1:] if h[-1:] in ("k", "m") else ""
    num = h[:-1] if unit else h
    if not num.isdigit() or int(num) == 0:
        raise SystemExit(f"--heap {heap!r}: expected a size such as 32k")
    return f"heapsize={num}w{unit}"     # e.g. 32wk


def settings_from(args: argparse.Namespace) -> dict[str, object]:
    u = urlparse(args.mqtt_url)
    if u.scheme not in ("mqtt", "tcp", ""):
        raise SystemExit(f"--mqtt-url: plain mqtt:// only (got {u.scheme!r})")
    s: dict[str, object] = {
        "ssid": "host-net", "password": "", "mqtt_host": u.hostname or "127.0.0.1",
        "mqtt_port": u.port or 1883, "mqtt_user": u.username or "",
        "mqtt_password": u.password or "", "site": args.site,
        "device_id": args.device_id or f"{args.device}-host", "board": BOARDS[args.device],
    }
    for kv in args.set:
        if "=" not in kv:
            raise SystemExit(f"--set {kv!r}: expected KEY=VALUE")
        k, v = kv.split("=", 1)
        try:
            s[k] = json.loads(v)
        except ValueError:
            s[k] = v
    return s


def romfs(files: dict[str, bytes]) -> bytes:
    """A ROMFS image (MicroPython's vfs.VfsRom) of {"dir/name": data}, one level of folders.

    The format is the one of mpremote's romfs.py (MicroPython, MIT): records of
    (kind, length, payload) with lengths as big-endian 7-bit groups.
    """
    def uint(v: int) -> bytes:
        out = [v & 0x7F]
        v >>= 7
        while v:
            out.insert(0, 0x80 | (v & 0x7F))
            v >>= 7
        return bytes(out)

    def rec(kind: int, payload: bytes) -> bytes:
        return uint(kind) + uint(len(payload)) + payload

    def file(name: str, data: bytes) -> bytes:
        return rec(5, uint(len(name)) + name.encode() + rec(2, data))

    top = bytearray()
    dirs: dict[str, bytearray] = {}
    for path in sorted(files):
        if "/" in path:
            d, name = path.split("/", 1)
            dirs.setdefault(d, bytearray()).extend(file(name, files[path]))
        else:
            top.extend(file(path, files[path]))
    for d in sorted(dirs):
        top.extend(rec(4, uint(len(d)) + d.encode() + bytes(dirs[d])))
    head = b"\xd2\xcd\x31"
    n = uint(len(top))
    if (len(head) + len(n) + len(top)) % 2:
        n = b"\x80" + n
    return head + n + bytes(top)


def rom_image(work: str, device: str) -> str:
    """Compile the device (bytecode) and the stubs; write WORKDIR/firmware.rom."""
    out = os.path.join(work, "build")
    build.build(out, march=None, devices=(device,))
    files: dict[str, bytes] = {}
    dev = os.path.join(out, device)
    for root, _, names in os.walk(dev):
        for name in names:
            full = os.path.join(root, name)
            rel = os.path.relpath(full, dev)
            if name.endswith(".py"):      # main.py: as bytecode too
                mpy = full[:-3] + ".mpy"
                build.compile_one(build.find_mpy_cross(), full, mpy, None)
                full, rel = mpy, rel[:-3] + ".mpy"
            files[rel] = open(full, "rb").read()
    for name in os.listdir(STUBS):
        if name.endswith(".py"):
            mpy = os.path.join(out, "stub-" + name[:-3] + ".mpy")
            build.compile_one(build.find_mpy_cross(), os.path.join(STUBS, name), mpy, None)
            files["stubs/" + name[:-3] + ".mpy"] = open(mpy, "rb").read()
    path = os.path.join(work, "firmware.rom")
    with open(path, "wb") as f:
        f.write(romfs(files))
    return path


def prepare(args: argparse.Namespace) -> tuple[list[str], dict[str, str], str]:
    """Compile, write settings.json; -> (argv, environment, working folder)."""
    work = args.workdir or tempfile.mkdtemp(prefix=f"device-host-{args.device}-")
    os.makedirs(work, exist_ok=True)
    rom = rom_image(work, args.device)
    with open(os.path.join(work, "settings.json"), "w") as f:
        json.dump(settings_from(args), f)
    env = dict(os.environ)
    env["P1_HOST_ROM"] = rom
    env["P1_DEVICE"] = args.device
    if args.uart:
        env["P1_HOST_UART"] = args.uart
    if args.wifi_file:
        env["P1_HOST_WIFI_FILE"] = os.path.abspath(args.wifi_file)
    argv = [MICROPYTHON, "-X", heap_arg(args.heap), os.path.join(HERE, "boot.py")]
    return argv, env, work


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("device", choices=sorted(BOARDS), help="which firmware")
    ap.add_argument("--heap", default=os.environ.get("HEAP") or "32k",
                    help="the board's heap (32-bit words), default 32k: run as -X heapsize=32wk "
                    "(HEAP)")
    ap.add_argument("--mqtt-url", default=os.environ.get("MQTT_URL") or "mqtt://127.0.0.1:1883",
                    help="broker, mqtt://[user:password@]host:port (MQTT_URL)")
    ap.add_argument("--site", default=os.environ.get("SITE") or "home", help="site slug (SITE)")
    ap.add_argument("--device-id", default=os.environ.get("DEVICE_ID") or "",
                    help="device id, default <device>-host (DEVICE_ID)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="any other setting of settings.json (JSON value or text), repeatable")
    ap.add_argument("--uart", default=os.environ.get("UART") or "",
                    help="UART RX source for the p1-dongle: a file, a pty or - (stdin) (UART)")
    ap.add_argument("--wifi-file", default=os.environ.get("WIFI_FILE") or "",
                    help="control file: 'down' in it takes the stubbed Wi-Fi down (WIFI_FILE)")
    ap.add_argument("--workdir", default="", help="folder for build/ and settings.json "
                    "(default: a new temporary folder)")
    args = ap.parse_args(argv)
    cmd, env, work = prepare(args)
    print(f"device-host: {args.device} in {work}, heap {args.heap}, broker {args.mqtt_url}",
          flush=True)
    os.chdir(work)
    os.execve(cmd[0], cmd, env)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
