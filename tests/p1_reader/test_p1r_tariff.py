"""Which tariff is low, per meter family, on every real telegram that says its tariff.

Expected values written from the countries' specifications, not from the code:
Dutch DSMR: 0-0:96.14.0 = 1 is the low ("dal") tariff; Belgian eMUCS: 2 is night.
"""

from __future__ import annotations

import pytest
from p1r_support import BAD_CRC, NO_END_LINE, telegram_bytes

from p1_reader.service import ReaderSettings
from p1common.dsmr.parser import parse_telegram
from p1common.dsmr.tariff import is_low, low_code, meter_family
from p1common.settings import SettingsError

# file -> (family, tariff code in the telegram, tariff_low)
EXPECTED: dict[str, tuple[str, int | None, bool | None]] = {
    # Belgian eMUCS (0-0:96.1.4): 1 = day, 2 = night
    "dsmr_parser__fluvius_v171.txt": ("emucs", 1, False),
    "dsmr_parser__fluvius_v171_alt.txt": ("emucs", 1, False),
    "dsmrreader__fluvius.txt": ("emucs", 1, False),
    "dsmrreader__fluvius_polyphase.txt": ("emucs", 2, True),
    "dsmrreader__fluvius_without_gas.txt": ("emucs", 2, True),
    "dsmrreader__fluvius_with_peak_data.txt": ("emucs", 1, False),
    "dsmrreader__fluvius_multiple_gas_devices.txt": ("emucs", 1, False),
    "athombv__emucs-p1-v2.1.1-spec-example-1.txt": ("emucs", 1, False),
    # Dutch DSMR 4/5 (1-3:0.2.8): 1 = low, 2 = normal
    "dsmr_parser__v5.txt": ("dsmr-nl", 2, False),
    "dsmr_parser__v5_two_mbus.txt": ("dsmr-nl", 1, True),
    "dsmr_parser__v4_2.txt": ("dsmr-nl", 2, False),
    "nielsbasjes__ISK5_AM550T_real.txt": ("dsmr-nl", 1, True),
    "Wassasin__dsmr5_t211.txt": ("dsmr-nl", 2, False),
    "dsmrreader__landisgyr350_dsmr40.txt": ("dsmr-nl", 1, True),
    "dsmrreader__kaifa_dsmr42.txt": ("dsmr-nl", 2, False),
    "athombv__dsmr-4.0-isk-2.txt": ("dsmr-nl", 1, True),
    # Dutch DSMR 2.2 / 3 (no version object, Dutch meter identification)
    "dsmr_parser__v2_2.txt": ("dsmr-nl", 1, True),
    "dsmr_parser__v3.txt": ("dsmr-nl", 2, False),
    "dsmrreader__iskra.txt": ("dsmr-nl", 1, True),
    "athombv__dsmr-2.2-kfm-1.txt": ("dsmr-nl", 1, True),
    "athombv__unknown-xmx-1.txt": ("dsmr-nl", 1, True),
    # Luxembourg Smarty: single rate, no tariff object
    "dsmrreader__luxembourg_smarty.txt": ("luxembourg", None, None),
    # other countries: the code is passed on, its meaning is not guessed
    "dsmr_parser__v5_eon_hu.txt": ("unknown", 1, None),
    "dsmr_parser__iskra_ie.txt": ("unknown", 1, None),
    "dsmrreader__sweden_kamstrup.txt": ("unknown", None, None),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_tariff_low_per_meter_family(name: str) -> None:
    family, code, low = EXPECTED[name]
    data = telegram_bytes(name)
    reading = parse_telegram(data, check_crc=name not in BAD_CRC, allow_missing_end=name in NO_END_LINE)
    header, _, body = data.decode("latin-1").partition("\n")
    assert meter_family(header[1:].rstrip("\r"), body) == family
    assert reading.get("tariff") == code
    assert reading.get("tariff_low") == low
    if low is None:
        assert "tariff_low" not in reading  # never invented


def test_setting_overrides_the_family() -> None:
    hungary = telegram_bytes("dsmr_parser__v5_eon_hu.txt")  # tariff 1, country rule unknown
    assert parse_telegram(hungary, tariff_low="1")["tariff_low"] is True
    assert parse_telegram(hungary, tariff_low="2")["tariff_low"] is False
    fluvius = telegram_bytes("dsmrreader__fluvius_polyphase.txt")  # tariff 2 = Belgian night
    assert parse_telegram(fluvius)["tariff_low"] is True
    assert "tariff_low" not in parse_telegram(fluvius, tariff_low="none")
    assert low_code("auto", "emucs") == 2
    assert low_code("auto", "dsmr-nl") == 1
    assert low_code("auto", "unknown") is None
    assert low_code("1", "emucs") == 1
    assert low_code("2", "unknown") == 2
    assert low_code("none", "dsmr-nl") is None
    assert (is_low(1, 1), is_low(2, 1), is_low(None, 1), is_low(2, None)) == (True, False, None, None)
    with pytest.raises(SettingsError, match=r"P1_TARIFF_LOW: '3' is not one of auto, 1, 2, none"):
        ReaderSettings.from_env({"P1_TARIFF_LOW": "3"})
    assert ReaderSettings.from_env({"P1_TARIFF_LOW": "1"}).tariff_low == "1"
