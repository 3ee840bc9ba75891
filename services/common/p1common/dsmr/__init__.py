"""DSMR / eMUCS telegrams as a library: framing, the OBIS table, parsing, tariff meaning.

Used by p1-reader (the serial path), the peak-forecaster's ``replay``, the meter
simulator's tests and the benches; no service owns it.
"""
