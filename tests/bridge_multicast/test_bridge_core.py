"""Pure tests: layouts as data (built-in, file, errors) and the loop/duplicate guards."""

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bridge_multicast import core, layouts
from bridge_multicast.config import BridgeSettings
from bridge_multicast.core import BridgeCore, RecentSet
from bridge_multicast.layouts import SEED_7
from p1common.plausibility import ReadingGuard
from p1common.settings import SettingsError

HOST = datetime.fromisoformat("2026-01-15T15:10:59+01:00").astimezone(ZoneInfo("Europe/Brussels"))
LEGACY_IF = ("192.168.178.74", 53586)
OWN = ("192.168.178.10", 40000)
FRAME = b'{"dsmr":{83125000,27689000,0,0,1,11,2]}'
P1_READING = {
    "v": 1, "site": "home", "source": "p1", "ts": "2026-01-15T15:11:03+01:00",
    "tariff": 1, "import_kwh": 83125.0, "export_kwh": 27689.0, "import_w": 668.0, "export_w": 0.0,
}


# -- layouts -------------------------------------------------------------------------------
def test_seed_layout_is_the_default():
    assert layouts.resolve(None) is SEED_7
    assert [f.name for f in SEED_7.fields] == [
        "import_kwh", "export_kwh", "import_w", "export_w", "tariff", "minute", "second",
    ]
    assert [f.scale for f in SEED_7.fields] == [0.001, 0.001, 1, 1, 1, 1, 1]


def test_layouts_file_json_and_yaml(tmp_path):
    doc = {
        "default": "fw-x",
        "layouts": {
            "fw-x": {
                "description": "made up for the test",
                "fields": [
                    {"name": "import_t1_kwh", "scale": 0.001, "unit": "Wh"},
                    {"name": "import_t2_kwh", "scale": 0.001, "unit": "Wh"},
                    "tariff", None, {"name": "import_w", "scale": 1000, "unit": "kW", "decimals": 3},
                    "minute", "second",
                ],
            },
            "seed-7": ["import_w", "export_w"],  # overrides the built-in
        },
    }
    path = tmp_path / "layouts.json"
    path.write_text(json.dumps(doc))
    extra, default = layouts.load_layouts_file(path)
    assert default == "fw-x" and set(extra) == {"fw-x", "seed-7"}
    assert layouts.resolve(None, extra, default).fields[4] == layouts.FieldSpec("import_w", 1000.0, "kW", 3)
    assert layouts.resolve("seed-7", extra, default).names() == ["import_w", "export_w"]

    ypath = tmp_path / "layouts.yaml"
    ypath.write_text("layouts:\n  mine:\n    key: p1\n    fields: [import_w, export_w, tariff]\n")
    settings = BridgeSettings.from_env({"BRIDGE_LAYOUTS_FILE": str(ypath), "BRIDGE_LAYOUT": "mine"})
    assert settings.layout.key == "p1" and settings.layout.names() == ["import_w", "export_w", "tariff"]


@pytest.mark.parametrize(
    ("doc", "needle"),
    [
        ({"layouts": {"x": {"fields": ["watts"]}}}, "'watts' is not a numeric reading field"),
        ({"layouts": {"x": {"fields": [{"name": "import_w", "scale": 0}]}}}, "scale must be"),
        ({"layouts": {"x": {"fields": ["minute"]}}}, "minute and second go together"),
        ({"layouts": {"x": {"fields": ["import_w", "import_w"]}}}, "appear twice"),
        ({"layouts": {"x": {"fields": []}}}, "non-empty list"),
        ({"layouts": {"x": {"fields": ["import_w"], "colour": 1}}}, "unknown key(s) colour"),
        ({"layouts": {"bad name!": ["import_w"]}}, "layout name"),
    ],
)
def test_layouts_file_errors_name_the_variable(tmp_path, doc, needle):
    path = tmp_path / "l.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(SettingsError) as err:
        BridgeSettings.from_env({"BRIDGE_LAYOUTS_FILE": str(path)})
    assert str(err.value).startswith("BRIDGE_LAYOUTS_FILE: ")
    assert needle in str(err.value)


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"BRIDGE_LAYOUT": "nope"}, "BRIDGE_LAYOUT: unknown layout 'nope'; known: seed-7"),
        ({"BRIDGE_GROUP": "192.168.1.1"}, "BRIDGE_GROUP: 192.168.1.1 is not a multicast address"),
        ({"BRIDGE_INTERFACE": "eth0"}, "BRIDGE_INTERFACE: 'eth0' must be the IPv4 address"),
        ({"BRIDGE_TTL": "300"}, "BRIDGE_TTL: 300 is above the maximum 255"),
        ({"BRIDGE_DIRECTION": "up"}, "BRIDGE_DIRECTION: 'up' is not one of both"),
        ({"BRIDGE_TZ": "Mars/Olympus"}, "BRIDGE_TZ: 'Mars/Olympus' is not a known time zone"),
        ({"BRIDGE_LAYOUTS_FILE": "/nonexistent.json"}, "BRIDGE_LAYOUTS_FILE: /nonexistent.json: no such file"),
    ],
)
def test_settings_errors(env, needle):
    with pytest.raises(SettingsError) as err:
        BridgeSettings.from_env(env)
    assert needle in str(err.value)


def test_settings_defaults_and_overrides():
    s = BridgeSettings.from_env({})
    assert (s.group, s.port, s.interface, s.ttl, s.direction, s.tz_name) == (
        "224.0.1.3", 8266, "0.0.0.0", 1, "both", "Europe/Brussels",
    )
    s = BridgeSettings.from_env({"BRIDGE_PORT": "9000", "BRIDGE_DIRECTION": "to-mqtt"},
                                overrides={"port": 9100, "direction": None})
    assert (s.port, s.direction, s.to_mqtt, s.to_legacy) == (9100, "to-mqtt", True, False)
    with pytest.raises(SettingsError, match=r"--dedup-s: -1\.0 is not a window of 0-3000 s"):
        BridgeSettings.from_env({}, overrides={"dedup_s": -1.0})
    with pytest.raises(SettingsError, match="--port: 70000 is not a port number"):
        BridgeSettings.from_env({}, overrides={"port": 70000})


# -- RecentSet -------------------------------------------------------------------------------
def test_recent_set_window():
    r = RecentSet(10.0)
    assert r.check_and_add("a", 0.0) is False
    assert r.check_and_add("a", 9.9) is True
    assert r.check_and_add("a", 10.5) is False  # the first sighting has expired
    small = RecentSet(100.0, max_items=2)
    for i, key in enumerate("abc"):
        small.add(key, float(i))
    assert "a" not in small and "b" in small and "c" in small


# -- the core: both directions, loops, duplicates -------------------------------------------------
def test_legacy_frame_published_once():
    c = BridgeCore(SEED_7, "home", own_address=OWN)
    v = c.on_datagram(FRAME, LEGACY_IF, 0.0, HOST)
    assert v.action == "publish" and v.reading is not None
    assert v.reading["ts"] == "2026-01-15T15:11:02+01:00" and v.reading["source"] == "legacy"
    assert v.live == {"ts": 1768486262, "imp": 0, "exp": 0, "tar": 1}
    again = c.on_datagram(FRAME, LEGACY_IF, 0.2, HOST)
    assert (again.action, again.reason) == ("drop", core.DUPLICATE)
    # the same content much later is a new frame (an hour later the same mm:ss can recur)
    assert c.on_datagram(FRAME, LEGACY_IF, 31.0, HOST).action == "publish"


def test_bad_frames_have_reasons():
    c = BridgeCore(SEED_7, "home")
    got = [c.on_datagram(d, LEGACY_IF, 0.0, HOST) for d in (
        b"nonsense", b'{"dsmr":[1,2,3]}', b'{"dsmr":[1,2,3,4,"x",6,7]}', b"{" * 2000,
    )]
    assert [(v.action, v.reason) for v in got] == [
        ("bad", "not_json"), ("bad", "wrong_length"), ("bad", "not_number"), ("bad", "too_big"),
    ]


def test_p1_reading_becomes_one_frame_and_legacy_reading_never():
    c = BridgeCore(SEED_7, "home", own_address=OWN)
    v = c.on_reading(P1_READING, 0.0)
    assert (v.action, v.frame) == ("send", b'{"dsmr":[83125000,27689000,668,0,1,11,3]}')
    assert c.on_reading(P1_READING, 0.5).reason == core.DUPLICATE
    legacy = {**P1_READING, "source": "legacy", "ts": "2026-01-15T15:11:04+01:00"}
    assert (c.on_reading(legacy, 1.0).action, c.on_reading(legacy, 1.0).reason) == ("drop", "legacy")
    assert c.on_reading({**P1_READING, "import_kwh": None}, 1.0).reason == "incomplete"


def test_own_and_echoed_frames_never_published():
    c = BridgeCore(SEED_7, "home", own_address=OWN)
    sent = c.on_reading(P1_READING, 0.0)
    assert sent.frame is not None
    # our socket's frame coming back on the multicast loop
    assert c.on_datagram(sent.frame, OWN, 0.01, HOST).reason == core.OWN
    # the same content from elsewhere (another path, a reflector): echo
    assert c.on_datagram(sent.frame, ("10.0.0.9", 5555), 0.02, HOST).reason == core.ECHO
    # whitespace or a stray brace do not hide an echo: values are compared
    sloppy = b' {"dsmr":{83125000,27689000,668,0,1,11,3]}\n'
    assert c.on_datagram(sloppy, ("10.0.0.9", 5555), 0.03, HOST).reason == core.ECHO
    # a real legacy frame still goes through
    assert c.on_datagram(FRAME, LEGACY_IF, 0.04, HOST).action == "publish"


def test_frame_without_time_only_short_dedup():
    layout = layouts.parse_layout("p", ["import_w", "export_w"], "t")
    c = BridgeCore(layout, "home", dedup_s=30)
    assert c.on_datagram(b'{"dsmr":[5,0]}', LEGACY_IF, 0.0, HOST).action == "publish"
    assert c.on_datagram(b'{"dsmr":[5,0]}', LEGACY_IF, 0.1, HOST).reason == core.DUPLICATE
    assert c.on_datagram(b'{"dsmr":[5,0]}', LEGACY_IF, 1.0, HOST).action == "publish"


def test_own_check_with_a_wildcard_sending_address():
    c = BridgeCore(SEED_7, "home", own_address=("0.0.0.0", 40000))
    sent = c.on_reading(P1_READING, 0.0)
    assert sent.frame is not None
    assert c.on_datagram(sent.frame, ("192.168.178.10", 40000), 0.01, HOST).reason == core.OWN
    # another host that happens to use the same source port is not taken for us
    assert c.on_datagram(FRAME, ("192.168.178.74", 40000), 0.02, HOST).action == "publish"


def test_a_frame_that_decodes_to_an_impossible_reading_is_refused():
    """A legacy frame is lenient JSON: 1.7e308 W decodes; it must not become a reading."""
    bridge = BridgeCore(SEED_7, "home", guard=ReadingGuard(max_drift_s=3600, tolerate_extra=False))
    ok = bridge.on_datagram(b'{"dsmr":[83125000,27689000,668,0,1,11,2]}', LEGACY_IF, 0.0, HOST)
    assert ok.action == "publish"
    huge = bridge.on_datagram(b'{"dsmr":[83125000,27689000,1.7e308,0,1,11,3]}', LEGACY_IF, 1.0, HOST)
    assert (huge.action, huge.reason, huge.message) == (
        "bad", core.IMPLAUSIBLE, "import_w: Input should be less than or equal to 100000")
    back = bridge.on_datagram(b'{"dsmr":[83124000,27689000,668,0,1,11,4]}', LEGACY_IF, 2.0, HOST)
    assert (back.action, back.message) == ("bad", "import_kwh: went backwards from 83125.0 to 83124.0")
