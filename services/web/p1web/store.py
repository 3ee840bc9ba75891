"""The configuration store: one JSON file per document, written atomically.

Layout under the state directory::

    config/<site>/<scope>.json              site, outputs, peak
    config/<site>/<scope>/<device-id>.json  monitor, switcher

Files are read once at start (each checked against its model: a bad one is
reported and left out, never half-used) and kept in memory; every change is
written with :func:`p1common.persist.atomic_write_json` before it is published.
No sockets here: the service decides when to publish.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from p1common.persist import StateFileError, atomic_write_json, load_json
from p1common.topics import is_site

from .models import DEVICE_PATTERN, SCOPES, check_document

log = logging.getLogger("web.store")
Key = tuple[str, str, str | None]  # (site, scope, device id)
_DEVICE = re.compile(DEVICE_PATTERN)


class ConfigStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root) / "config"
        self.root.mkdir(parents=True, exist_ok=True)
        self._docs: dict[Key, dict[str, Any]] = {}
        self.lock = threading.RLock()  # held by the service across write + publish
        self._load()

    # -- disk -------------------------------------------------------------------
    def path(self, site: str, scope: str, ident: str | None) -> Path:
        if ident is None:
            return self.root / site / f"{scope}.json"
        return self.root / site / scope / f"{ident}.json"

    def _load(self) -> None:
        for site_dir in sorted(p for p in self.root.iterdir() if p.is_dir()):
            site = site_dir.name
            if not is_site(site):
                continue
            for scope, spec in SCOPES.items():
                if spec.per_device:
                    folder = site_dir / scope
                    files = sorted(folder.glob("*.json")) if folder.is_dir() else []
                    for f in files:
                        if _DEVICE.fullmatch(f.stem):
                            self._load_one((site, scope, f.stem), f)
                else:
                    f = site_dir / f"{scope}.json"
                    if f.exists():
                        self._load_one((site, scope, None), f)
        log.info("loaded %d configuration documents from %s", len(self._docs), self.root)

    def _load_one(self, key: Key, path: Path) -> None:
        try:
            raw = load_json(path)
            doc = SCOPES[key[1]].model.model_validate(raw)
        except (StateFileError, ValidationError) as exc:
            log.error("configuration file %s is not valid, left out: %s", path, exc)
            return
        problems = check_document(key[1], doc)
        if problems:
            log.error("configuration file %s is not valid, left out: %s", path, problems)
            return
        self._docs[key] = doc.model_dump(mode="json")

    # -- documents ----------------------------------------------------------------
    def get(self, site: str, scope: str, ident: str | None = None) -> dict[str, Any] | None:
        with self.lock:
            doc = self._docs.get((site, scope, ident))
            return dict(doc) if doc is not None else None

    def put(self, site: str, scope: str, ident: str | None, doc: dict[str, Any]) -> None:
        with self.lock:
            atomic_write_json(self.path(site, scope, ident), doc)
            self._docs[(site, scope, ident)] = doc

    def seed(self, site: str, scope: str, doc: dict[str, Any]) -> str:
        """Store ``doc`` if the site has no such document: neither loaded nor as a file
        (a file that was not valid is left for a person to look at, never overwritten;
        one deleted by hand is seeded again). Answers ``"seeded"``, ``"stored"`` (a
        document exists) or ``"invalid file"``."""
        with self.lock:
            if (site, scope, None) in self._docs:
                return "stored"
            if self.path(site, scope, None).exists():
                return "invalid file"
            self.put(site, scope, None, doc)
            return "seeded"

    def delete(self, site: str, scope: str, ident: str | None) -> bool:
        with self.lock:
            if (site, scope, ident) not in self._docs:
                return False
            path = self.path(site, scope, ident)
            for p in (path, path.with_name(path.name + ".bak")):
                p.unlink(missing_ok=True)
            del self._docs[(site, scope, ident)]
            return True

    def devices(self, site: str, scope: str) -> dict[str, dict[str, Any]]:
        with self.lock:
            return {
                ident: dict(doc)
                for (s, sc, ident), doc in sorted(self._docs.items(), key=lambda kv: str(kv[0]))
                if s == site and sc == scope and ident is not None
            }

    def items(self) -> Iterator[tuple[Key, dict[str, Any]]]:
        with self.lock:
            return iter(sorted(self._docs.items(), key=lambda kv: str(kv[0])))

    def sites(self) -> list[str]:
        with self.lock:
            return sorted({k[0] for k in self._docs})
