"""Frame layouts of the legacy P1 interface, as data.

The ESP "P1 interface" sends ``{"dsmr":[v0,v1,...]}`` and the meaning of each
position "depends on the interface firmware version" (seed guide, module 1). No
public document gives the layouts, so a layout is a table (position -> reading
field, scale, unit) that a user can add or override in a JSON/YAML file without
touching code (``BRIDGE_LAYOUTS_FILE``), and pick by name (``BRIDGE_LAYOUT``).

``reading value = frame value x scale``; the frame unit is documentation only
(``Wh`` with scale 0.001 gives ``import_kwh``).

Pure module: no sockets, no clocks; the file is read by :func:`load_layouts_file`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from p1common.payloads import Reading, scalar_type
from p1common.persist import load_json
from p1common.settings import SettingsError

TIME_FIELDS = ("minute", "second")
DEFAULT_KEY = "dsmr"
DEFAULT_LAYOUT = "seed-7"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_KEY_RE = re.compile(r"^[A-Za-z0-9_]{1,32}$")


def _numeric_reading_fields() -> dict[str, bool]:
    """Reading fields a frame position may carry: name -> True when integer-valued."""
    out: dict[str, bool] = {}
    for name in Reading.model_fields:
        kind = scalar_type(Reading, name)
        if name != "v" and kind in (int, float):
            out[name] = kind is int
    return out


NUMERIC_FIELDS: dict[str, bool] = _numeric_reading_fields()


@dataclass(frozen=True)
class FieldSpec:
    """One position of a frame. ``name`` None = a position the bridge ignores (sent as 0)."""

    name: str | None
    scale: float = 1.0
    unit: str = ""
    decimals: int = 0  # decimals the frame value carries (0 = an integer on the wire)

    @property
    def is_int(self) -> bool:
        return self.name in TIME_FIELDS or NUMERIC_FIELDS.get(self.name or "", False)

    def reading_decimals(self) -> int:
        """Decimals worth keeping after scaling: those of the scale plus the frame's own."""
        exp = Decimal(repr(self.scale)).normalize().as_tuple().exponent
        return max(0, -int(exp)) + self.decimals


@dataclass(frozen=True)
class Layout:
    name: str
    fields: tuple[FieldSpec, ...]
    key: str = DEFAULT_KEY
    description: str = ""

    def names(self) -> list[str]:
        return [f.name for f in self.fields if f.name]

    @property
    def has_time(self) -> bool:
        return "minute" in self.names() and "second" in self.names()

    def to_json(self) -> dict[str, Any]:
        return {
            "description": self.description,
            "key": self.key,
            "fields": [
                None
                if f.name is None
                else {"name": f.name, "scale": f.scale, "unit": f.unit}
                | ({"decimals": f.decimals} if f.decimals else {})
                for f in self.fields
            ],
        }


# The seed guide's capture (firmware around 1.4, 2022):
#   {"dsmr":[83125000,27689000,0,0,1,11,2]}
# totals: the ESP reads "000559.373*kWh" and drops the decimal point -> Wh as an
# integer (the cheapest parse on an ESP; a 32-bit int holds 2 147 483 kWh that way).
# powers: "00.668*kW" read the same way -> W. See docs/bridge-multicast.md.
SEED_7 = Layout(
    name=DEFAULT_LAYOUT,
    description=(
        "seed guide capture (interface firmware 1.4.x): import/export totals in Wh, "
        "import/export power in W, tariff, meter minute, meter second"
    ),
    fields=(
        FieldSpec("import_kwh", 0.001, "Wh"),
        FieldSpec("export_kwh", 0.001, "Wh"),
        FieldSpec("import_w", 1.0, "W"),
        FieldSpec("export_w", 1.0, "W"),
        FieldSpec("tariff", 1.0, ""),
        FieldSpec("minute", 1.0, "min"),
        FieldSpec("second", 1.0, "s"),
    ),
)

BUILTIN: dict[str, Layout] = {SEED_7.name: SEED_7}


def parse_field(raw: Any, where: str) -> FieldSpec:
    """A field given as ``null`` (ignored), ``"name"`` (scale 1) or ``{name, scale, unit}``."""
    if raw is None or raw == "" or raw == "-":
        return FieldSpec(None)
    if isinstance(raw, str):
        raw = {"name": raw}
    if not isinstance(raw, Mapping):
        raise SettingsError(f"{where}: expected a field name, an object or null, got {raw!r}")
    unknown = set(raw) - {"name", "scale", "unit", "decimals"}
    if unknown:
        raise SettingsError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    name = raw.get("name")
    if name is not None and name not in TIME_FIELDS and name not in NUMERIC_FIELDS:
        raise SettingsError(
            f"{where}: {name!r} is not a numeric reading field nor minute/second "
            f"(e.g. import_kwh, export_kwh, import_w, export_w, tariff, import_t1_kwh)"
        )
    scale = raw.get("scale", 1.0)
    if isinstance(scale, bool) or not isinstance(scale, int | float) or not math.isfinite(scale) or scale == 0:
        raise SettingsError(f"{where}: scale must be a non-zero number, got {scale!r}")
    if name in TIME_FIELDS and scale != 1:
        raise SettingsError(f"{where}: {name} takes no scale")
    decimals = raw.get("decimals", 0)
    if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 6:
        raise SettingsError(f"{where}: decimals must be an integer 0..6, got {decimals!r}")
    unit = raw.get("unit", "")
    if not isinstance(unit, str):
        raise SettingsError(f"{where}: unit must be text, got {unit!r}")
    return FieldSpec(name, float(scale), unit, decimals)


def parse_layout(name: str, raw: Any, where: str) -> Layout:
    if not _NAME_RE.match(name):
        raise SettingsError(f"{where}: layout name {name!r}: use letters, digits, '.', '-', '_'")
    if isinstance(raw, list):
        raw = {"fields": raw}
    if not isinstance(raw, Mapping):
        raise SettingsError(f"{where}: expected an object with 'fields', got {type(raw).__name__}")
    unknown = set(raw) - {"fields", "key", "description"}
    if unknown:
        raise SettingsError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    fields_raw = raw.get("fields")
    if not isinstance(fields_raw, list) or not fields_raw:
        raise SettingsError(f"{where}: 'fields' must be a non-empty list")
    if len(fields_raw) > 64:
        raise SettingsError(f"{where}: at most 64 fields")
    fields = tuple(parse_field(f, f"{where} field {i}") for i, f in enumerate(fields_raw))
    names = [f.name for f in fields if f.name]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise SettingsError(f"{where}: field(s) {', '.join(sorted(dup))} appear twice")
    if ("minute" in names) != ("second" in names):
        raise SettingsError(f"{where}: minute and second go together")
    key = raw.get("key", DEFAULT_KEY)
    if not isinstance(key, str) or not _KEY_RE.match(key):
        raise SettingsError(f"{where}: key must be a short JSON key like 'dsmr', got {key!r}")
    desc = raw.get("description", "")
    return Layout(name=name, fields=fields, key=key, description=str(desc))


def parse_layouts(doc: Any, where: str) -> tuple[dict[str, Layout], str | None]:
    """``{"default": name?, "layouts": {name: layout}}`` -> (layouts, default name)."""
    if not isinstance(doc, Mapping):
        raise SettingsError(f"{where}: expected an object with 'layouts'")
    unknown = set(doc) - {"layouts", "default"}
    if unknown:
        raise SettingsError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    raw = doc.get("layouts", {})
    if not isinstance(raw, Mapping):
        raise SettingsError(f"{where}: 'layouts' must map names to layouts")
    layouts = {str(n): parse_layout(str(n), v, f"{where}: layout {n!r}") for n, v in raw.items()}
    default = doc.get("default")
    if default is not None and not isinstance(default, str):
        raise SettingsError(f"{where}: 'default' must be a layout name")
    return layouts, default


def load_layouts_file(path: str | Path, var: str = "BRIDGE_LAYOUTS_FILE") -> tuple[dict[str, Layout], str | None]:
    """Read a layouts file (JSON, or YAML for .yaml/.yml); errors name the variable."""
    p = Path(path)
    where = f"{var}: {p}"
    if not p.is_file():
        raise SettingsError(f"{where}: no such file")
    try:
        if p.suffix.lower() in (".yaml", ".yml"):
            import yaml

            doc = yaml.safe_load(p.read_text(encoding="utf-8"))
        else:
            doc = load_json(p)
    except (OSError, ValueError, json.JSONDecodeError) as exc:
        raise SettingsError(f"{where}: unreadable ({exc})") from None
    except Exception as exc:  # yaml.YAMLError, StateFileError
        raise SettingsError(f"{where}: unreadable ({exc})") from None
    return parse_layouts(doc, where)


def resolve(
    name: str | None,
    extra: Mapping[str, Layout] | None = None,
    file_default: str | None = None,
    var: str = "BRIDGE_LAYOUT",
) -> Layout:
    """Pick a layout: explicit name, else the file's default, else the seed's layout."""
    known = dict(BUILTIN)
    known.update(extra or {})
    wanted = name or file_default or DEFAULT_LAYOUT
    if wanted not in known:
        raise SettingsError(f"{var}: unknown layout {wanted!r}; known: {', '.join(sorted(known))}")
    return known[wanted]


def all_layouts(extra: Mapping[str, Layout] | None = None) -> dict[str, Layout]:
    known = dict(BUILTIN)
    known.update(extra or {})
    return known
