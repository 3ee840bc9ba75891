"""Telegram text as the meters write it: Fluvius eMUCS 1.7.1 or DSMR 5, CRLF, CRC16.

Number formats copy real telegrams (see tests/data/telegrams): counters
``000301.548*kWh`` (truncated to the Wh), power ``00.338*kW``, Fluvius voltage
``232.9*V`` and current ``000.27*A``, DSMR 5 current ``002*A``, M-Bus values
``00092.287*m3`` with the capture timestamp (every 5 minutes).

DSMR 5 (Dutch) numbers its tariffs the other way round: tariff 1 is the low (night)
tariff, so the night counter is written as 1-0:1.8.1 and the indicator is 0001 at
night. Fluvius: 1-0:1.8.1 = day, 1-0:1.8.2 = night, indicator 0002 at night.
"""

from __future__ import annotations

from p1common.dsmr_crc import crc_hex

from .clock import dsmr_ts
from .meter import Meter

FORMATS = ("fluvius", "dsmr5")
EMPTY_TS = "632525252525W"


def _kwh(wh: int) -> str:
    return f"{wh // 1000:06d}.{wh % 1000:03d}*kWh"


def _kw(w: float) -> str:
    iw = round(w)
    return f"{iw // 1000:02d}.{iw % 1000:03d}*kW"


def _hex(text: str) -> str:
    return text.encode("ascii").hex().upper()


class TelegramWriter:
    def __init__(self, fmt: str = "fluvius", equipment_id: str = "1SAG1100123456",
                 gas: bool = True, water: bool = True,
                 gas_id: str = "7FLO2112345678", water_id: str = "8SAG1234567890") -> None:
        if fmt not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
        self.fmt = fmt
        self.gas = gas
        self.water = water
        self.equipment_hex = _hex(equipment_id)
        self.gas_hex = _hex(gas_id)
        self.water_hex = _hex(water_id)
        self._ts_cache: dict[int, str] = {}
        self._hist_key: tuple[int, int, int | None, float] | None = None
        self._hist_line = ""

    def _ts(self, t: int) -> str:
        s = self._ts_cache.get(t)
        if s is None:
            if len(self._ts_cache) > 64:
                self._ts_cache.clear()
            s = self._ts_cache[t] = dsmr_ts(t)
        return s

    def render(self, m: Meter) -> bytes:
        m.update_volts()
        body = self._fluvius(m) if self.fmt == "fluvius" else self._dsmr5(m)
        data = "\r\n".join(body).encode("ascii") + b"\r\n!"
        return data + crc_hex(data).encode("ascii") + b"\r\n"

    # -- Fluvius eMUCS 1.7.1 -------------------------------------------------------------
    def _fluvius(self, m: Meter) -> list[str]:
        i1, i2, e1, e2 = m.counters_wh()
        p1, p2, p3 = m.phase_w
        v, a = m.volts, m.amps
        max_ts, max_w = m.month_max_display
        lines = [
            "/FLU5\\253769484_A",
            "",
            "0-0:96.1.4(50217)",
            f"0-0:96.1.1({self.equipment_hex})",
            f"0-0:1.0.0({m.clock.dsmr(m.now)})",
            f"1-0:1.8.1({_kwh(i1)})",
            f"1-0:1.8.2({_kwh(i2)})",
            f"1-0:2.8.1({_kwh(e1)})",
            f"1-0:2.8.2({_kwh(e2)})",
            f"0-0:96.14.0({m.tariff:04d})",
            f"1-0:1.4.0({_kw(m.avg_demand_w)})",
            f"1-0:1.6.0({self._ts(max_ts)})({_kw(max_w)})",
            self._history(m),
            f"1-0:1.7.0({_kw(m.import_w)})",
            f"1-0:2.7.0({_kw(m.export_w)})",
            f"1-0:21.7.0({_kw(max(p1, 0))})",
            f"1-0:41.7.0({_kw(max(p2, 0))})",
            f"1-0:61.7.0({_kw(max(p3, 0))})",
            f"1-0:22.7.0({_kw(max(-p1, 0))})",
            f"1-0:42.7.0({_kw(max(-p2, 0))})",
            f"1-0:62.7.0({_kw(max(-p3, 0))})",
            f"1-0:32.7.0({v[0]:05.1f}*V)",
            f"1-0:52.7.0({v[1]:05.1f}*V)",
            f"1-0:72.7.0({v[2]:05.1f}*V)",
            f"1-0:31.7.0({a[0]:06.2f}*A)",
            f"1-0:51.7.0({a[1]:06.2f}*A)",
            f"1-0:71.7.0({a[2]:06.2f}*A)",
            "0-0:96.3.10(1)",
            "0-0:17.0.0(999.9*kW)",
            "1-0:31.4.0(999*A)",
            "0-0:96.13.0()",
        ]
        if self.gas:
            ts, value = m.gas_capture
            lines += [
                "0-1:24.1.0(003)",
                f"0-1:96.1.1({self.gas_hex})",
                "0-1:24.4.0(1)",
                f"0-1:24.2.3({self._ts(ts)})({value:09.3f}*m3)",
            ]
        if self.water:
            ts, value = m.water_capture
            ch = 2 if self.gas else 1
            lines += [
                f"0-{ch}:24.1.0(007)",
                f"0-{ch}:96.1.1({self.water_hex})",
                f"0-{ch}:24.2.1({self._ts(ts)})({value:09.3f}*m3)",
            ]
        return lines

    def _history(self, m: Meter) -> str:
        last = m.history[-1] if m.history else None
        key = (len(m.history), last.month_start if last else 0,
               last.max_ts if last else None, last.max_w if last else 0.0)
        if key != self._hist_key:
            self._hist_line = self._history_line(m)
            self._hist_key = key
        return self._hist_line

    def _history_line(self, m: Meter) -> str:
        parts = [f"0-0:98.1.0({len(m.history)})(1-0:1.6.0)(1-0:1.6.0)"]
        for h in m.history:
            when = self._ts(h.max_ts) if h.max_ts is not None else EMPTY_TS
            parts.append(f"({self._ts(h.month_start)})({when})({_kw(h.max_w)})")
        return "".join(parts)

    # -- DSMR 5 ----------------------------------------------------------------------------
    def _dsmr5(self, m: Meter) -> list[str]:
        day_i, night_i, day_e, night_e = m.counters_wh()
        p1, p2, p3 = m.phase_w
        v, a = m.volts, m.amps
        lines = [
            "/Ene5\\T210-D ESMR5.0",
            "",
            "1-3:0.2.8(50)",
            f"0-0:1.0.0({m.clock.dsmr(m.now)})",
            f"0-0:96.1.1({self.equipment_hex})",
            f"1-0:1.8.1({_kwh(night_i)})",
            f"1-0:1.8.2({_kwh(day_i)})",
            f"1-0:2.8.1({_kwh(night_e)})",
            f"1-0:2.8.2({_kwh(day_e)})",
            f"0-0:96.14.0({(1 if m.tariff == 2 else 2):04d})",
            f"1-0:1.7.0({_kw(m.import_w)})",
            f"1-0:2.7.0({_kw(m.export_w)})",
            "0-0:96.7.21(00004)",
            "0-0:96.7.9(00002)",
            "1-0:99.97.0(0)(0-0:96.7.19)",
            "1-0:32.32.0(00000)",
            "1-0:52.32.0(00000)",
            "1-0:72.32.0(00000)",
            "1-0:32.36.0(00000)",
            "1-0:52.36.0(00000)",
            "1-0:72.36.0(00000)",
            "0-0:96.13.0()",
            f"1-0:32.7.0({v[0]:05.1f}*V)",
            f"1-0:52.7.0({v[1]:05.1f}*V)",
            f"1-0:72.7.0({v[2]:05.1f}*V)",
            f"1-0:31.7.0({round(a[0]):03d}*A)",
            f"1-0:51.7.0({round(a[1]):03d}*A)",
            f"1-0:71.7.0({round(a[2]):03d}*A)",
            f"1-0:21.7.0({_kw(max(p1, 0))})",
            f"1-0:41.7.0({_kw(max(p2, 0))})",
            f"1-0:61.7.0({_kw(max(p3, 0))})",
            f"1-0:22.7.0({_kw(max(-p1, 0))})",
            f"1-0:42.7.0({_kw(max(-p2, 0))})",
            f"1-0:62.7.0({_kw(max(-p3, 0))})",
        ]
        if self.gas:
            ts, value = m.gas_capture
            lines += [
                "0-1:24.1.0(003)",
                f"0-1:96.1.0({self.gas_hex})",
                f"0-1:24.2.1({self._ts(ts)})({value:09.3f}*m3)",
            ]
        return lines
