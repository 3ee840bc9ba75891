from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest
from web_support import WebProc

_n = itertools.count()


@pytest.fixture()
def site() -> str:
    """A site of the test's own: the session broker keeps retained messages between tests."""
    return f"web{os.getpid()}-{next(_n)}"


@pytest.fixture()
def web(mosquitto, tmp_path, site) -> Iterator[WebProc]:  # type: ignore[no-untyped-def]
    proc = WebProc(mosquitto.url, tmp_path, site=site).start()
    yield proc
    proc.close()
