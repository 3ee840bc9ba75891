"""Pure tests: frame parsing/encoding, frame time (hour wrap, DST), readings from frames."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bridge_multicast import frames
from bridge_multicast.frames import FrameError
from bridge_multicast.layouts import SEED_7, parse_layout
from p1common.payloads import Live, Reading

BXL = ZoneInfo("Europe/Brussels")
SEED_CAPTURE = b'{"dsmr":{83125000,27689000,0,0,1,11,2]}'


# -- lenient parse -------------------------------------------------------------------
@pytest.mark.parametrize(
    "data",
    [
        SEED_CAPTURE,  # the guide's stray brace
        b'{"dsmr":[83125000,27689000,0,0,1,11,2]}',
        b'  {"dsmr" : [ 83125000 , 27689000,0,0,1,11,2 ] }\r\n\x00',
        b'{"dsmr":{83125000,27689000,0,0,1,11,2}}',
        b'{"dsmr":[83125000,27689000,0,0,1,11,2,]}',  # trailing comma
        b'{"dsmr":{83125000,27689000,0,0,1,11,2],"fw":"1.4.0"}',  # extra key, broken JSON
    ],
)
def test_parse_is_lenient(data):
    assert frames.parse_frame(data) == [83125000, 27689000, 0, 0, 1, 11, 2]


def test_parse_keeps_extra_values_and_floats():
    assert frames.parse_frame(b'{"dsmr":[1,2.5,3],"ver":"x"}') == [1, 2.5, 3]
    assert frames.parse_frame(b'{"dsmr":{1,2.5,-3e2]}') == [1, 2.5, -300.0]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"hello", frames.NOT_JSON),
        (b"", frames.NOT_JSON),
        (b"\xff\xfe{", frames.NOT_TEXT),
        (b"[1,2,3]", frames.NOT_JSON),
        (b'{"other":[1,2]}', frames.NO_ARRAY),
        (b'{"dsmr":5}', frames.NO_ARRAY),
        (b'{"dsmr":{1,2]', frames.NOT_JSON),
        (b'{"dsmr":[1,"2",3]}', frames.NOT_NUMBER),
        (b'{"dsmr":[1,true,3]}', frames.NOT_NUMBER),
        (b'{"dsmr":{1,abc,3]}', frames.NOT_NUMBER),
        (b'{"dsmr":{1,,3]}', frames.NOT_NUMBER),
        (b'{"dsmr":{1,NaN,3]}', frames.NOT_NUMBER),
        (b'{"dsmr":[' + b"1," * 800 + b"1]}", frames.TOO_BIG),
    ],
)
def test_parse_refuses_with_reason(data, reason):
    with pytest.raises(FrameError) as err:
        frames.parse_frame(data)
    assert err.value.reason == reason


def test_encode_is_strict_json():
    assert frames.encode_frame([83125000, 27689000, 0, 0, 1, 11, 2]) == (
        b'{"dsmr":[83125000,27689000,0,0,1,11,2]}'
    )
    with pytest.raises(FrameError):
        frames.encode_frame([1, float("nan")])


# -- time -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("host", "minute", "second", "expected"),
    [
        ("2026-01-15T15:10:59+01:00", 11, 2, "2026-01-15T15:11:02+01:00"),
        # the frame is a little behind across the hour: previous hour
        ("2026-01-15T15:00:01+01:00", 59, 58, "2026-01-15T14:59:58+01:00"),
        # the frame is a little ahead across the hour: next hour
        ("2026-01-15T14:59:59+01:00", 0, 1, "2026-01-15T15:00:01+01:00"),
        # ... and across midnight (date from the nearest instant too)
        ("2026-01-15T23:59:59+01:00", 0, 3, "2026-01-16T00:00:03+01:00"),
        # 29 min away still the current hour, 31 min away the neighbour
        ("2026-01-15T15:30:00+01:00", 59, 0, "2026-01-15T15:59:00+01:00"),
        ("2026-01-15T15:30:00+01:00", 0, 0, "2026-01-15T15:00:00+01:00"),
        ("2026-01-15T15:20:00+01:00", 51, 0, "2026-01-15T14:51:00+01:00"),
    ],
)
def test_frame_time_hour_wrap(host, minute, second, expected):
    now = datetime.fromisoformat(host).astimezone(BXL)
    assert frames.frame_time(minute, second, now).isoformat() == expected


def test_frame_time_across_dst_changes():
    # autumn: 02:59:59+02:00 is followed by 02:00:00+01:00 (the hour repeats)
    now = datetime.fromisoformat("2026-10-25T02:59:59+02:00").astimezone(BXL)
    assert frames.frame_time(0, 1, now).isoformat() == "2026-10-25T02:00:01+01:00"
    now = datetime.fromisoformat("2026-10-25T02:00:01+01:00").astimezone(BXL)
    assert frames.frame_time(59, 58, now).isoformat() == "2026-10-25T02:59:58+02:00"
    # spring: 01:59:59+01:00 is followed by 03:00:00+02:00
    now = datetime.fromisoformat("2026-03-29T01:59:59+01:00").astimezone(BXL)
    assert frames.frame_time(0, 2, now).isoformat() == "2026-03-29T03:00:02+02:00"


def test_frame_time_half_hour_zone():
    kolkata = ZoneInfo("Asia/Kolkata")  # +05:30: local minute != UTC minute
    now = datetime.fromisoformat("2026-01-15T10:59:59+05:30").astimezone(kolkata)
    assert frames.frame_time(0, 1, now).isoformat() == "2026-01-15T11:00:01+05:30"


# -- readings ---------------------------------------------------------------------------
HOST = datetime.fromisoformat("2026-01-15T15:10:59+01:00").astimezone(BXL)


def test_reading_from_seed_capture_exact():
    values = frames.parse_frame(SEED_CAPTURE)
    reading = frames.reading_from_values(values, SEED_7, "home", HOST)
    assert reading == {
        "v": 1,
        "site": "home",
        "source": "legacy",
        "ts": "2026-01-15T15:11:02+01:00",
        "ts_source": "meter",
        "import_kwh": 83125.0,
        "export_kwh": 27689.0,
        "import_w": 0,
        "export_w": 0,
        "tariff": 1,
        "net_w": 0,
        "tariff_low": False,  # the modules read Belgian meters: 1 is the day tariff
    }
    Reading.model_validate(reading)
    live = frames.live_from_reading(reading)
    assert live == {"ts": 1768486262, "imp": 0, "exp": 0, "tar": 1}
    Live.model_validate(live)


def test_reading_scales_without_float_noise():
    values = frames.parse_frame(b'{"dsmr":[83125123,27689007,1532,0,2,11,2]}')
    reading = frames.reading_from_values(values, SEED_7, "home", HOST)
    assert (reading["import_kwh"], reading["export_kwh"]) == (83125.123, 27689.007)
    assert (reading["import_w"], reading["net_w"], reading["tariff"]) == (1532, 1532, 2)
    assert reading["tariff_low"] is True  # Belgian night
    dutch = frames.reading_from_values(values, SEED_7, "home", HOST, tariff_low_code=1)
    assert (dutch["tariff"], dutch["tariff_low"]) == (2, False)  # Dutch 2 = normal
    unknown = frames.reading_from_values(values, SEED_7, "home", HOST, tariff_low_code=None)
    assert unknown["tariff"] == 2 and "tariff_low" not in unknown


def test_wrong_length_and_bad_time():
    with pytest.raises(FrameError) as err:
        frames.reading_from_values([1, 2, 3, 4, 5, 6], SEED_7, "home", HOST)
    assert err.value.reason == frames.WRONG_LENGTH
    with pytest.raises(FrameError) as err:
        frames.reading_from_values([1, 2, 3, 4, 1, 60, 0], SEED_7, "home", HOST)
    assert err.value.reason == frames.BAD_TIME
    # extra trailing values are ignored
    reading = frames.reading_from_values([1000, 2000, 3, 4, 1, 11, 2, 99], SEED_7, "home", HOST)
    assert reading["import_kwh"] == 1.0 and "99" not in str(reading)


def test_only_carried_fields_and_host_time_without_minute():
    layout = parse_layout("powers", ["import_w", "export_w", None], "test")
    reading = frames.reading_from_values([250, 0, 7], layout, "flat", HOST)
    assert reading == {
        "v": 1, "site": "flat", "source": "legacy", "ts": "2026-01-15T15:10:59+01:00",
        "ts_source": "host", "import_w": 250, "export_w": 0, "net_w": 250,
    }
    Reading.model_validate(reading)


def test_tariff_totals_derived_from_t1_t2():
    layout = parse_layout(
        "t12",
        [{"name": "import_t1_kwh", "scale": 0.001}, {"name": "import_t2_kwh", "scale": 0.001}],
        "test",
    )
    reading = frames.reading_from_values([559373, 477305], layout, "home", HOST)
    assert reading["import_kwh"] == 1036.678


# -- reading -> frame ----------------------------------------------------------------------
P1_READING = {
    "v": 1, "site": "home", "source": "p1", "ts": "2026-01-15T15:11:02+01:00",
    "tariff": 1, "import_kwh": 1036.678, "export_kwh": 804.013,
    "import_t1_kwh": 559.373, "import_t2_kwh": 477.305,
    "import_w": 668.0, "export_w": 0.0, "net_w": 668.0,
}


def test_frame_from_reading_exact():
    assert frames.frame_from_reading(P1_READING, SEED_7) == (
        b'{"dsmr":[1036678,804013,668,0,1,11,2]}'
    )


def test_frame_from_reading_derives_parts():
    reading = {
        "ts": "2026-01-15T15:11:02+01:00", "tariff": 2, "net_w": -1200.4,
        "import_t1_kwh": 1.0, "import_t2_kwh": 2.5, "export_t1_kwh": 0.25, "export_t2_kwh": 0,
    }
    assert frames.values_from_reading(reading, SEED_7) == [3500, 250, 0, 1200, 2, 11, 2]


def test_frame_from_reading_incomplete_or_bad():
    with pytest.raises(FrameError) as err:
        frames.values_from_reading({"ts": "2026-01-15T15:11:02+01:00", "import_w": 5}, SEED_7)
    assert err.value.reason == frames.INCOMPLETE
    with pytest.raises(FrameError) as err:
        frames.values_from_reading({**P1_READING, "import_w": "5"}, SEED_7)
    assert err.value.reason == frames.BAD_READING
    with pytest.raises(FrameError) as err:
        frames.values_from_reading({**P1_READING, "ts": "yesterday"}, SEED_7)
    assert err.value.reason == frames.BAD_READING


def test_round_trip_frame_reading_frame():
    frame = b'{"dsmr":[83125123,27689007,1532,0,2,11,2]}'
    reading = frames.reading_from_values(frames.parse_frame(frame), SEED_7, "home", HOST)
    assert frames.frame_from_reading(reading, SEED_7) == frame


def test_tariff_low_setting():
    from bridge_multicast.config import BridgeSettings
    from p1common.settings import SettingsError

    assert BridgeSettings.from_env({}).tariff_low_code == 2
    assert BridgeSettings.from_env({"BRIDGE_TARIFF_LOW": "1"}).tariff_low_code == 1
    assert BridgeSettings.from_env({"BRIDGE_TARIFF_LOW": "none"}).tariff_low_code is None
    assert BridgeSettings.from_env({}, overrides={"tariff_low": "1"}).tariff_low_code == 1
    with pytest.raises(SettingsError, match="BRIDGE_TARIFF_LOW: '3' is not one of 1, 2, none"):
        BridgeSettings.from_env({"BRIDGE_TARIFF_LOW": "3"})
