"""The pure parts: live state bookkeeping, document checks, the store on disk, the token."""

from __future__ import annotations

import json
import os
import stat

import pytest
import web_support as ws

from p1common.mqtt import BadPayload
from p1common.payloads import OutputsConfig
from p1common.settings import SettingsError
from p1common.topics import Topics
from p1web.auth import bearer_ok, resolve_token
from p1web.deps import api_field_name
from p1web.live import LiveState
from p1web.models import SiteConfig, check_document
from p1web.settings import WebSettings
from p1web.store import ConfigStore

T = Topics()


def apply(live: LiveState, topic: str, payload, now: str = "2026-01-15T13:00:00+01:00"):  # type: ignore[no-untyped-def]
    parsed = T.parse(topic)
    assert parsed is not None
    return live.apply(parsed, payload, now)


def test_live_state_keeps_the_latest_values_per_site():
    live = LiveState(quarters_kept=3)
    ev = apply(live, "p1/home/reading", ws.reading("home", 800.0))
    assert (ev.site, ev.kind, ev.data["import_w"]) == ("home", "reading", 800.0)
    apply(live, "p1/flat/reading", ws.reading("flat", 90.0))
    for minute, avg in [(0, 1000.0), (15, 2000.0), (30, 3000.0), (45, 4000.0)]:
        apply(live, "p1/home/peak/quarter", ws.quarter("home", 13, minute, avg))
    apply(live, "p1/home/peak/quarter", ws.quarter("home", 13, 45, 4100.0))  # re-sent: replaces
    assert [q["avg_w"] for q in live.quarters("home")] == [2000.0, 3000.0, 4100.0]
    ev = apply(live, "p1/home/output/boiler/state", ws.output_state(pct=40.0))
    assert ev.data == {"id": "boiler", "state": ws.output_state(pct=40.0)}
    snap = live.snapshot("home")
    assert snap["reading"]["import_w"] == 800.0 and snap["states"]["boiler"]["pct"] == 40.0
    assert live.snapshot("flat")["reading"]["import_w"] == 90.0
    assert live.snapshot("none")["reading"] is None
    assert live.sites() == ["flat", "home"]


def test_status_since_changes_only_with_the_state():
    live = LiveState()
    apply(live, "p1/status/mon-1", "online", "2026-01-15T10:00:00+01:00")
    ev = apply(live, "p1/status/mon-1", "online", "2026-01-15T11:00:00+01:00")
    assert ev.site is None and ev.data == {"client_id": "mon-1", "state": "online",
                                           "since": "2026-01-15T10:00:00+01:00"}
    ev = apply(live, "p1/status/mon-1", "offline", "2026-01-15T12:00:00+01:00")
    assert ev.data["since"] == "2026-01-15T12:00:00+01:00"
    with pytest.raises(BadPayload, match="status must be 'online' or 'offline', got 'maybe'"):
        apply(live, "p1/status/mon-1", "maybe")


def test_bad_payloads_raise_and_keep_the_last_good_value():
    live = LiveState()
    apply(live, "p1/home/peak", ws.peak("home"))
    with pytest.raises(BadPayload, match="level: Input should be 'ok', 'warn' or 'alarm'"):
        apply(live, "p1/home/peak", {**ws.peak("home"), "level": "panic"})
    with pytest.raises(BadPayload, match="import_w: Input should be a valid number"):
        apply(live, "p1/home/reading", {**ws.reading("home", 1.0), "import_w": "lots"})
    with pytest.raises(BadPayload, match="net_w: Input should be a valid number"):
        apply(live, "p1/home/reading", {**ws.reading("home", 1.0), "net_w": "12"})  # strict
    apply(live, "p1/home/reading", {**ws.reading("home", 5.0), "future_field_w": 1})  # tolerated
    assert live.snapshot("home")["peak"]["level"] == "ok"
    assert live.snapshot("home")["reading"]["import_w"] == 5.0


def test_document_checks():
    doc = OutputsConfig.model_validate({"v": 3, "outputs": [
        {"id": "a", "rated_w": 10, "mode": "proportional"}, {"id": "a", "rated_w": 10, "kind": "dimmer"}]})
    assert check_document("outputs", doc) == [
        (("v",), "only contract version 1 is supported, got 3", "version"),
        (("outputs", 0, "mode"), "proportional mode needs kind 'dimmer' (a relay can only switch)", "mode_kind"),
        (("outputs", 1, "id"), "duplicate output id 'a'", "duplicate"),
    ]
    assert check_document("site", SiteConfig(timezone="Europe/Amsterdam")) == []
    assert check_document("site", SiteConfig(timezone="Europe/Gent"))[0][1] == (
        "'Europe/Gent' is not an IANA time zone (e.g. Europe/Brussels)")


def test_field_names():
    assert api_field_name(("body", "outputs", 0, "rated_w")) == "outputs[0].rated_w"
    assert api_field_name(("path", "site")) == "site"
    assert api_field_name(("body",)) == "body"


def test_store_round_trip_and_bad_files_left_out(tmp_path):
    store = ConfigStore(tmp_path)
    store.put("home", "peak", None, {"v": 1, "manual_threshold_w": 3000.0,
                                     "price_eur_per_kw_year": 53.0, "algorithm": "default"})
    store.put("home", "monitor", "mon-1", {"v": 1, "max_import_w": 100.0, "max_export_w": 200.0})
    bad = tmp_path / "config" / "home" / "monitor" / "mon-2.json"
    bad.write_text(json.dumps({"v": 1, "max_import_w": -1}))
    (tmp_path / "config" / "Not A Site").mkdir()
    again = ConfigStore(tmp_path)
    assert [k for k, _ in again.items()] == [("home", "monitor", "mon-1"), ("home", "peak", None)]
    assert again.devices("home", "monitor") == {"mon-1": {"v": 1, "max_import_w": 100.0, "max_export_w": 200.0}}
    assert again.delete("home", "monitor", "mon-1") is True
    assert not (tmp_path / "config" / "home" / "monitor" / "mon-1.json").exists()
    assert again.delete("home", "monitor", "mon-1") is False
    assert again.sites() == ["home"]


def test_token_sources(tmp_path):
    assert resolve_token("given-token", None, tmp_path) == ("given-token", "P1_WEB_TOKEN")
    secret = tmp_path / "secret"
    secret.write_text("from-file-token\nignored\n")
    assert resolve_token(None, str(secret), tmp_path)[0] == "from-file-token"
    secret.write_text("short\n")
    with pytest.raises(SettingsError, match="holds no token of 8"):
        resolve_token(None, str(secret), tmp_path)
    token, where = resolve_token(None, None, tmp_path)
    assert where.startswith("generated token") and len(token) == 32
    assert stat.S_IMODE(os.stat(tmp_path / "token").st_mode) == 0o600
    assert resolve_token(None, None, tmp_path) == (token, f"stored token {tmp_path / 'token'}")
    assert bearer_ok(f"Bearer {token}", token) and bearer_ok(f"bearer {token}", token)
    assert not bearer_ok(f"Basic {token}", token) and not bearer_ok(None, token)
    assert not bearer_ok("Bearer x", token)


def test_web_settings():
    assert WebSettings.from_env({}) == WebSettings()
    s = WebSettings.from_env({"P1_WEB_PORT": "9000", "P1_WEB_PROTECT_READS": "yes", "P1_WEB_TOKEN": " abcdefgh "})
    assert (s.port, s.protect_reads, s.token) == (9000, True, "abcdefgh")
    with pytest.raises(SettingsError, match="P1_WEB_PORT: 70000 is above the maximum 65535"):
        WebSettings.from_env({"P1_WEB_PORT": "70000"})
