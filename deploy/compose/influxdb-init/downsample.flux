// p1: the raw bucket as 1-minute aggregates in the long-term bucket, which keeps them for years.
// Created or updated by init.sh (compose: the influxdb-init service; k3s: the influxdb-init Job),
// which fills in the @...@ names. Every run aggregates the last 10 minutes again: the 5 since
// the run before plus 5 of margin for points that came late; a minute written twice is stored
// once (same measurement, tags and time). Each minute is stamped at its start.
//   counters and states (kWh, kvarh, m3, GJ, failure counts, tariff, tariff_low, breaker, on,
//   override, seq): the minute's last value; level_code: the minute's highest; the rest: mean.
import "date"

option task = {name: "p1-downsample-1m", every: 5m, offset: 1m}

raw = "@RAW_BUCKET@"
long = "@LONG_BUCKET@"
org = "@ORG@"
stop = date.truncate(t: now(), unit: 1m)
start = date.sub(d: 10m, from: stop)

// the minute's last value
from(bucket: raw)
    |> range(start: start, stop: stop)
    |> filter(fn: (r) => r._field =~ /(_kwh|_kvarh|_m3|_gj|power_failures|_sags|_swells)$/
        or r._field == "tariff" or r._field == "tariff_low" or r._field == "breaker"
        or r._field == "on" or r._field == "override" or r._field == "seq")
    |> aggregateWindow(every: 1m, fn: last, timeSrc: "_start", createEmpty: false)
    |> to(bucket: long, org: org)

// the minute's highest
from(bucket: raw)
    |> range(start: start, stop: stop)
    |> filter(fn: (r) => r._field == "level_code")
    |> aggregateWindow(every: 1m, fn: max, timeSrc: "_start", createEmpty: false)
    |> to(bucket: long, org: org)

// the minute's mean
from(bucket: raw)
    |> range(start: start, stop: stop)
    |> filter(fn: (r) => r._field !~ /(_kwh|_kvarh|_m3|_gj|power_failures|_sags|_swells)$/
        and r._field != "tariff" and r._field != "tariff_low" and r._field != "breaker"
        and r._field != "on" and r._field != "override" and r._field != "seq"
        and r._field != "level_code")
    |> aggregateWindow(every: 1m, fn: mean, timeSrc: "_start", createEmpty: false)
    |> to(bucket: long, org: org)
