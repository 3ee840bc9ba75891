# Bootstrap of the host runner (MicroPython unix port): mount the firmware's ROMFS
# image, kept outside the 32 KB heap as frozen modules are in the board's flash,
# then run hostmain from it. Kept tiny: this file is compiled on the heap.
import os
import sys

import ffi
import uctypes
import vfs


def _mount(path):
    n = os.stat(path)[6]
    buf = uctypes.bytearray_at(ffi.open("libc.so.6").func("p", "malloc", "L")(n), n)
    mv = memoryview(buf)
    i = 0
    with open(path, "rb") as f:
        while i < n:
            i += f.readinto(mv[i:i + 256])
    vfs.mount(vfs.VfsRom(buf), "/rom")


_mount(os.getenv("P1_HOST_ROM"))
del _mount
sys.path[:] = ["/rom/stubs", "/rom", "/rom/lib"]
import hostmain  # noqa: E402,F401
