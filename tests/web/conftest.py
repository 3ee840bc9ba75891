from __future__ import annotations

import copy
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


@pytest.fixture(scope="module")
def web_proc(mosquitto, tmp_path_factory) -> Iterator[WebProc]:  # type: ignore[no-untyped-def]
    """One p1-web process per test module (default site ``home``)."""
    proc = WebProc(mosquitto.url, tmp_path_factory.mktemp("web"), site="home").start()
    yield proc
    proc.close()


@pytest.fixture()
def web(web_proc, site) -> WebProc:  # type: ignore[no-untyped-def]
    """The module's process, seen through a site of the test's own."""
    view = copy.copy(web_proc)
    view.site = site
    return view
