"""Atomic persistence of small JSON documents (state, settings).

A crash or power cut at any moment leaves either the old or the new file, never a
half-written one: write to a temporary file in the same folder, fsync, rename over
the target, fsync the folder. The previous good version is kept as ``.bak`` so a
file that is corrupt anyway (disk error, hand edit) falls back to it, loudly.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class StateFileError(RuntimeError):
    """Neither the file nor its backup could be read."""


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, keep_backup: bool = True) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if keep_backup and target.exists():
            bak = target.with_name(target.name + ".bak")
            # a hard link keeps the old version without a copy; replace any older backup
            try:
                if bak.exists():
                    bak.unlink()
                os.link(target, bak)
            except OSError:
                pass
        os.replace(tmp, target)
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_json(path: str | os.PathLike[str], obj: Any, keep_backup: bool = True) -> None:
    data = json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=False).encode() + b"\n"
    atomic_write_bytes(path, data, keep_backup=keep_backup)


def load_json(path: str | os.PathLike[str], default: Any = None) -> Any:
    """Read a JSON file written by :func:`atomic_write_json`.

    Missing file: ``default``. Corrupt file: log an error and use the ``.bak``
    copy; if that is unreadable too, raise :class:`StateFileError` rather than
    silently starting from nothing.
    """
    target = Path(path)
    if not target.exists():
        return default
    try:
        return json.loads(target.read_bytes())
    except (OSError, ValueError) as exc:
        bak = target.with_name(target.name + ".bak")
        log.error("state file %s is unreadable (%s); trying the backup %s", target, exc, bak)
        try:
            value = json.loads(bak.read_bytes())
        except FileNotFoundError:
            raise StateFileError(
                f"{target}: unreadable ({exc}) and no backup; fix or remove it to start afresh"
            ) from exc
        except (OSError, ValueError) as exc2:
            raise StateFileError(
                f"{target}: unreadable ({exc}) and its backup too ({exc2})"
            ) from exc2
        log.warning("using the last good version of %s from %s", target, bak)
        return value


def quarantine(path: str | os.PathLike[str]) -> list[Path]:
    """Move an unusable state file and its backup aside (``<name>.corrupt-<unix time>``).

    A service that must start afresh keeps the evidence: nothing is overwritten, a
    person can still inspect or repair the old file. Returns the new paths.
    """
    target = Path(path)
    stamp = int(time.time())
    moved = []
    for src in (target, target.with_name(target.name + ".bak")):
        if src.exists():
            dst = src.with_name(f"{src.name}.corrupt-{stamp}")
            os.replace(src, dst)
            moved.append(dst)
            log.error("moved the unusable %s aside to %s", src, dst)
    return moved
