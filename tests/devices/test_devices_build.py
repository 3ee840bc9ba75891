"""Every device file compiles for the ESP8266 (mpy-cross -march=xtensa); .mpy sizes."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from devsupport import DEVICES

# RAM is the limit on the board (~32 KB heap at idle, .mpy bytecode loads into it)
BUDGET_BYTES = {"monitor": 20000, "mini-switch": 20000, "switcher": 22000, "p1-dongle": 20000}


def _build_module() -> object:
    spec = importlib.util.spec_from_file_location("devices_build", DEVICES / "build.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_every_device_file_compiles_for_xtensa(tmp_path: Path, artifacts: Path) -> None:
    build = _build_module()
    sizes = build.build(str(tmp_path))  # type: ignore[attr-defined]
    sources = {p.stem for p in (DEVICES / "lib").glob("*.py")}
    shipped = {Path(k).stem for k in sizes if "/lib/" in k}
    assert shipped == sources, "a lib module is in no device's build list"
    for dev in build.DEVICES:  # type: ignore[attr-defined]
        assert (tmp_path / dev / "main.py").read_text() == (DEVICES / dev / "main.py").read_text()
        for app in (DEVICES / dev).glob("*_app.py"):
            assert (tmp_path / dev / (app.stem + ".mpy")).stat().st_size > 0
    lines = ["| file | .mpy bytes |", "|---|---:|"]
    totals = {}
    for dev in build.DEVICES:  # type: ignore[attr-defined]
        totals[dev] = sum(v for k, v in sizes.items() if k.startswith(dev + "/"))
        lines += [f"| {k} | {v} |" for k, v in sorted(sizes.items()) if k.startswith(dev + "/")]
        lines.append(f"| **{dev} total** | **{totals[dev]}** |")
    report = "\n".join(lines) + "\n"
    (artifacts / "devices-mpy-sizes.md").write_text(report)
    print(report)
    for dev, total in totals.items():
        assert total < BUDGET_BYTES[dev], f"{dev}: {total} bytes of .mpy"
    # what the xtensa .mpy says about itself: MicroPython's mpy magic 'M', version 6
    head = (tmp_path / "monitor" / "lib" / "tick.mpy").read_bytes()[:4]
    assert head[0] == ord("M") and head[1] == 6


def test_build_script_cli(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, str(DEVICES / "build.py"), "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=120, check=True)
    assert "monitor: " in run.stdout and "switcher/lib/firing.mpy" in run.stdout


@pytest.mark.parametrize("bad", ["def f(:\n    pass\n"])
def test_mpy_cross_rejects_broken_source(tmp_path: Path, bad: str) -> None:
    src = tmp_path / "broken.py"
    src.write_text(bad)
    run = subprocess.run([sys.executable, "-m", "mpy_cross", "-march=xtensa", str(src)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode != 0 and "SyntaxError" in run.stderr
