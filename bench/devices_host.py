"""The device firmware under the real MicroPython (devices/host/): heap, speed, reconnects.

Each device runs under the MicroPython unix port v1.28.0 with the board's 32 KB heap
(-X heapsize=32wk: 64,640 bytes on this 64-bit machine, the same number of words) and
the garbage collector on, against a private Mosquitto (tests/support.py). 10,000 messages
(monitor: live/peak; switches: set; dongle: simulated Fluvius telegrams through the UART
stub, unpaced) as fast as the device takes them. Figures: the live heap high-water
(after collection, stubs included), messages per second as a ratio to a real site's
rate (one live message / one set / one DSMR 5 telegram a second), the longest gap
between two watchdog feeds, and for the mini-switch the reconnect time after each of 5
broker SIGKILLs (link down -> CONNACK, the device's own clock). Also what the code costs
on the heap when its .mpy files are loaded from a file system (the board without frozen
modules) instead of run in place from the ROMFS image the host runner uses.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "tests" / "devices"))
sys.path.insert(0, str(REPO / "devices"))
sys.path.insert(0, str(REPO / "devices" / "host"))

from hostdev import HostDevice, Publisher  # noqa: E402

from support import Mosquitto  # noqa: E402

N = 10_000
BATCH = 500
HEAP = 64_640


def _blast(dev: HostDevice, port: int, msgs: list[tuple[str, str, int]]) -> float:
    pub = Publisher(port)
    t0 = time.monotonic()
    try:
        for i in range(0, len(msgs), BATCH):
            for topic, payload, qos in msgs[i:i + BATCH]:
                pub.pub(topic, payload, qos)
            pub.flush()
            want = min(i + BATCH, len(msgs))
            dev.wait_stat(lambda st, w=want: st["rx"] >= w, 60, f"rx >= {want}")
    finally:
        pub.close()
    return time.monotonic() - t0


def _set(seq: int, **v: Any) -> str:
    return json.dumps({"v": 1, "ts": "2026-01-15T12:00:00+01:00", "seq": seq, "ttl_s": 30, **v})


def _messages(device: str) -> list[tuple[str, str, int]]:
    if device == "monitor":
        return [("p1/home/peak", json.dumps({"level": "warn"}), 0) if i % 10 == 9 else
                ("p1/home/live", json.dumps({"ts": 1768480000 + i, "imp": i * 37 % 6000,
                                             "exp": 0, "tar": 1}), 0) for i in range(N)]
    key = {"mini-switch": "on", "switcher": "pct"}[device]
    return [("p1/home/output/boiler/set",
             _set(s, **{key: (s % 2 == 0) if key == "on" else s % 101}), 1)
            for s in range(1, N + 1)]


def _telegrams() -> bytes:
    from meter_sim.sim import SimConfig, Simulator

    sim = Simulator(SimConfig(start=1768478400, seed=3))
    out = bytearray()
    for _ in range(N):
        sim.step()
        out += sim.telegram()
    return bytes(out)


def _run_device(device: str, work: Path) -> dict[str, Any]:
    broker = Mosquitto()
    uart = work / "uart.bin"
    uart.write_bytes(b"")
    extra: dict[str, Any] = {}
    if device == "p1-dongle":
        extra = {"uart": uart, "env": {"P1_HOST_UART_BAUD": "0"}}
    dev = HostDevice(device, broker.port, work / "w", "output_id=boiler", **extra)
    try:
        dev.wait_stat(lambda s: s.get("mqtt") == "up", 30, "up")
        if device == "p1-dongle":
            data = _telegrams()
            t0 = time.monotonic()
            with uart.open("ab") as f:
                f.write(data)
            dev.wait_stat(lambda s: s["sent"] == N, 300, "telegrams")
            secs = time.monotonic() - t0
        else:
            secs = _blast(dev, broker.port, _messages(device))
        kills: list[float] = []
        if device == "mini-switch":
            for k in range(1, 6):
                t0 = time.monotonic()
                broker.stop(kill=True)
                broker.start()
                dev.wait_stat(lambda s, k=k: s["connects"] == 1 + k and s["mqtt"] == "up", 30)
                kills.append(dev.find("mqtt up")[-1][0] - t0)
        st = dev.stat()
    finally:
        dev.stop()
        broker.close()
    return {"secs": secs, "hw": dev.high_water(), "st": st, "kills": kills,
            "raw": int(dev.last("heap high-water:").split()[7])}  # type: ignore[union-attr]


CODE_PROBE = """
import gc, sys
sys.path[:] = {path!r}
import hostrt, machine, network
gc.collect(); a = gc.mem_alloc()
for m in {mods!r}:
    __import__(m)
gc.collect(); print(gc.mem_alloc() - a)
"""


def _code_heap(device: str, work: Path) -> tuple[int, int]:
    """Bytes of heap the device's modules take once imported: from .mpy files, from ROMFS."""
    import build
    import run as host_run

    rom = host_run.rom_image(str(work), device)
    mods = [m for m in build.NEEDS[device] if m not in ("form", "portal")]
    mods += [p.stem for p in (REPO / "devices" / device).glob("*_app.py")]
    out = []
    dev = work / "build" / device
    stubs = work / "stubs"
    stubs.mkdir(exist_ok=True)
    for name in ("hostrt", "machine", "network"):
        build.compile_one(build.find_mpy_cross(), str(REPO / "devices/host/stubs" / f"{name}.py"),
                          str(stubs / f"{name}.mpy"), None)
    for path in ([str(stubs), str(dev), str(dev / "lib")], ["/rom/stubs", "/rom", "/rom/lib"]):
        code = CODE_PROBE.format(path=path, mods=mods)
        if path[0] == "/rom/stubs":
            boot = (REPO / "devices/host/boot.py").read_text().split("_mount(os.getenv")[0]
            code = boot + f"_mount({rom!r})\n" + code
        run = subprocess.run([str(REPO / "devices/host/micropython"), "-X", "heapsize=1m", "-c",
                              code], capture_output=True, text=True, timeout=60,
                             env={"P1_DEVICE": device, "PATH": "/usr/bin:/bin"})
        if run.returncode != 0:
            raise RuntimeError(run.stdout + run.stderr)
        out.append(int(run.stdout.split()[-1]))
    return out[0], out[1]


def run(report: Any) -> None:
    rows = []
    kills: list[float] = []
    reconnect_ms = ""
    code_rows = []
    for device in ("monitor", "mini-switch", "switcher", "p1-dongle"):
        print(f"  {device}: 10,000 messages ...", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            r = _run_device(device, Path(tmp))
            fs, rom = _code_heap(device, Path(tmp))
        rate = N / r["secs"]
        st = r["st"]
        rows.append(f"| {device} | {r['secs']:.1f} | {rate:,.0f} | {rate:,.0f}x | "
                    f"{r['hw']:,} ({100 * r['hw'] / HEAP:.0f} %) | {r['raw']:,} | "
                    f"{st['feed_gap_max']} | {st['connects']} |")
        code_rows.append(f"| {device} | {fs:,} | {rom:,} |")
        if r["kills"]:
            kills = r["kills"]
            reconnect_ms = str(st["reconnect_ms"]).replace(",", ", ")
        print(f"  {device}: {rate:,.0f} messages/s, heap high-water {r['hw']:,} B", flush=True)
    report.section("Devices under MicroPython 1.28 (unix port), 32 KB board heap", "\n".join([
        "10,000 messages per device, GC on, `-X heapsize=32wk` (64,640 bytes here: the "
        "board's 32 KB in words). Rate: as fast as the device took them; ratio: to a real "
        "site's one message (live / set / telegram) a second. Heap: live high-water after "
        "collection, and the highest before a collection, stubs and runner included.",
        "",
        "| device | s | messages/s | x real site | heap live high-water (B) | before collection (B)"
        " | longest feed gap (ms) | connects |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        "Broker SIGKILLed and restarted 5 times (mini-switch): back after "
        + ", ".join(f"{k:.2f}" for k in kills)
        + f" s (kill to CONNACK, wall clock); the device's own link-down to CONNACK: {reconnect_ms} ms"
        " (the first retry of the back-off is due 1 s after the drop).",
        "",
        "Code on the heap (bytes after import, 64-bit objects; portal/form not imported): "
        ".mpy files from a file system (what a board with our .mpy files in flash pays) vs "
        "run in place from the ROMFS image (frozen-like, what the host runner does):",
        "",
        "| device | .mpy from files | ROMFS in place |",
        "|---|---|---|",
        *code_rows,
    ]))
