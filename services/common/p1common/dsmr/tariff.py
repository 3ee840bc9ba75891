"""Which tariff code means "low" (night): decided here, once, per meter family.

The meter says its tariff as a number (0-0:96.14.0) and its meaning depends on the
country's specification:

| family | recognised by | low (night) tariff |
|---|---|---|
| Belgian eMUCS (Fluvius, Sibelga, ORES; Sagemcom, Landis+Gyr E360, Iskra AM550 ... alike) | the eMUCS version object 0-0:96.1.4 | code 2: 1-0:1.8.2 is "nacht" |
| Dutch DSMR 4.x / 5.x | the DSMR version object 1-3:0.2.8 (and not Luxembourg) | code 1: 1-0:1.8.1 is "laag/dal" |
| Dutch DSMR 2.2 / 3 | no version object; a Dutch meter's identification (Iskra MT382, Kaifa, Kamstrup 162/382, Landis+Gyr ZCF/E350) | code 1 |
| Luxembourg Smarty (``/Lux5``, ``/SAT5``) | identification | none: single rate, no 0-0:96.14.0 |
| anything else (Sweden, Hungary, Ireland, Austria ...) | | unknown: ``tariff_low`` is left out |

Belgian meters of every maker follow eMUCS (the Belgian companion of DSMR), so the
version object, not the maker's letters, decides. A meter this table does not know,
or gets wrong, is set with p1-reader's ``P1_TARIFF_LOW`` (``1``, ``2`` or ``none``);
the legacy ESP modules (Belgian) with bridge-multicast's ``BRIDGE_TARIFF_LOW``.
"""

from __future__ import annotations

from typing import Literal

Family = Literal["emucs", "dsmr-nl", "luxembourg", "unknown"]

LOW_CODE: dict[Family, int | None] = {"emucs": 2, "dsmr-nl": 1, "luxembourg": None, "unknown": None}

# identification prefixes (after '/') of Dutch DSMR 2.2/3 meters, which send no version object
_DUTCH_LEGACY = ("ISk5\\2MT382", "ISk5\x02MT382", "ISk5MT382", "KFM5", "KMP5", "XMX5", "ZCF")
_LUXEMBOURG = ("Lux5", "SAT5")

Setting = Literal["auto", "1", "2", "none"]
SETTINGS: tuple[str, ...] = ("auto", "1", "2", "none")


def meter_family(header: str, body: str) -> Family:
    """The family of a telegram from its identification line and its body text."""
    if "0-0:96.1.4(" in body:
        return "emucs"
    if header.startswith(_LUXEMBOURG):
        return "luxembourg"
    if "1-3:0.2.8(" in body or header.startswith(_DUTCH_LEGACY):
        return "dsmr-nl"
    return "unknown"


def low_code(setting: str, family: Family) -> int | None:
    """The tariff code that is low: from the setting when it names one, else the family's."""
    if setting == "none":
        return None
    if setting in ("1", "2"):
        return int(setting)
    return LOW_CODE[family]


def is_low(tariff: int | None, code: int | None) -> bool | None:
    """``tariff_low`` of a reading: None when the tariff or its meaning is unknown."""
    if tariff is None or code is None:
        return None
    return tariff == code

