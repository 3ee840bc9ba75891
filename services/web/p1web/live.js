/* Live page: gauges, per phase values, counters, gas/water; updated on every reading. */
"use strict";
(() => {
  const { set, fmt } = P1;
  const box = document.getElementById("gauges");
  const imp = P1.gauge(box, "Import", "#e8730c");
  const exp = P1.gauge(box, "Export", "#2e9e44");
  let scale = { imp: 5000, exp: 5000 };

  function scaleFrom(config) {
    const mons = Object.values((config && config.monitor) || {});
    if (mons.length) scale = { imp: mons[0].max_import_w, exp: mons[0].max_export_w };
  }
  const fit = (v, s) => (v > s ? Math.ceil(v / 1000) * 1000 : s);

  // Which tariff is low comes from the reading (tariff_low, decided per meter family in
  // p1common.dsmr.tariff): Belgian night = code 2, Dutch low = code 1. Never guessed here.
  const words = (low) => (low ? "low · night" : "normal · day");
  function tariff(r) {
    const t = document.getElementById("tariff");
    const known = typeof r.tariff_low === "boolean";
    t.textContent = known ? words(r.tariff_low) : r.tariff != null ? `code ${r.tariff}` : "–";
    t.title = r.tariff != null ? `meter tariff code ${r.tariff}` : "";
    t.className = "badge" + (r.tariff_low === true ? " on" : "");
    // the T1/T2 counter rows: which of the two registers is the low one
    let lowCode = null;
    if (known && (r.tariff === 1 || r.tariff === 2)) lowCode = r.tariff_low ? r.tariff : 3 - r.tariff;
    for (const code of [1, 2])
      set(`t${code}_label`, lowCode === null ? `Tariff ${code} (T${code})` : `${lowCode === code ? "Low · night" : "Normal · day"} (T${code})`);
  }

  function reading(r) {
    if (!r) return;
    imp(r.import_w || 0, fit(r.import_w || 0, scale.imp));
    exp(r.export_w || 0, fit(r.export_w || 0, scale.exp));
    set("ts", fmt.time(r.ts));
    set("net_w", fmt.w(r.net_w));
    tariff(r);
    set("avg_demand_w", fmt.w(r.avg_demand_w));
    set("month_max_w", fmt.w(r.month_max_w));
    for (const l of ["l1", "l2", "l3"]) {
      set(`${l}_import_w`, fmt.w(r[`${l}_import_w`]));
      set(`${l}_export_w`, fmt.w(r[`${l}_export_w`]));
      set(`${l}_voltage_v`, fmt.num(r[`${l}_voltage_v`], 1, "V"));
      set(`${l}_current_a`, fmt.num(r[`${l}_current_a`], 2, "A"));
    }
    for (const k of ["import_t1_kwh", "import_t2_kwh", "export_t1_kwh", "export_t2_kwh", "import_kwh", "export_kwh"])
      set(k, fmt.num(r[k], 3, "kWh"));
    set("gas_m3", fmt.num(r.gas_m3, 3, "m³"));
    set("gas_ts", fmt.datetime(r.gas_ts));
    set("water_m3", fmt.num(r.water_m3, 3, "m³"));
    set("water_ts", fmt.datetime(r.water_ts));
    set("meter", [r.meter_id && `meter ${r.meter_id}`, r.source && `source ${r.source}`, r.message].filter(Boolean).join(" · ") || " ");
  }

  imp(0, scale.imp); exp(0, scale.exp);
  P1.connect({
    snapshot(s) { scaleFrom(s.config); reading(s.reading); },
    reading,
    config(c) { if (c.scope === "monitor" && c.doc) { scale = { imp: c.doc.max_import_w, exp: c.doc.max_export_w }; } },
  });
})();
