/* Quarter peak page: running quarter, month peak and history, charts, peak settings. */
"use strict";
(() => {
  const { set, fmt } = P1;
  let quarters = [], month = null, peak = null, config = null;

  function showPeak(p) {
    peak = p;
    if (!p) return;
    set("forecast_w", fmt.w(p.forecast_w));
    set("energy_wh", fmt.num(p.energy_wh, 0, "Wh"));
    set("avg_w", fmt.w(p.avg_w));
    set("threshold_w", fmt.w(p.threshold_w));
    set("headroom_w", fmt.w(p.headroom_w));
    set("meter_avg_demand_w", fmt.w(p.meter_avg_demand_w));
    set("peak_ts", fmt.time(p.ts));
    set("quarter_start", "from " + fmt.time(p.quarter_start));
    const lvl = document.getElementById("level");
    lvl.textContent = p.level; lvl.className = "badge " + p.level;
    const bar = document.getElementById("bar");
    bar.className = "bar " + p.level;
    bar.firstElementChild.style.width = Math.min(100, (100 * p.forecast_w) / Math.max(1, p.threshold_w)) + "%";
    if (!month) set("month_peak_w", fmt.w(p.month_peak_w));
    drawQuarters();
  }

  function showMonth(m) {
    month = m;
    if (!m) return;
    set("month", m.month);
    set("month_peak_w", fmt.w(m.peak_w));
    set("peak_start", m.peak_start ? "(" + fmt.datetime(m.peak_start) + ")" : "");
    set("billed_w", fmt.w(m.billed_w));
    set("cost_eur_year", fmt.num(m.cost_eur_year, 2, "€"));
    const hist = (m.history || []).map((h) => ({ label: h.month.slice(2), title: h.month, value: h.peak_w,
      cls: h.month === m.month ? "cur" : "" }));
    P1.bars(document.getElementById("chart_months"), hist,
      [{ value: m.billed_w, label: "billed", cls: "line2" }], { label: "month peaks" });
  }

  function showConfig(c) {
    config = c;
    P1.fill(document.getElementById("peak_form"), c);
    set("price", fmt.num(c.price_eur_per_kw_year, 2, "€/kW/year"));
  }

  function drawQuarters() {
    const items = quarters.slice(-32).map((q) => ({ label: fmt.time(q.start).slice(0, 5), title: q.start,
      value: q.avg_w, cls: q.avg_w > q.threshold_w ? "over" : "" }));
    if (peak) items.push({ label: "now", title: "running quarter (forecast)", value: peak.forecast_w, cls: "cur" });
    const threshold = peak ? peak.threshold_w : (quarters.length ? quarters[quarters.length - 1].threshold_w : 0);
    P1.bars(document.getElementById("chart_quarters"), items,
      [{ value: threshold, label: "threshold" }], { label: "quarter averages" });
  }

  const form = document.getElementById("peak_form");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const doc = { ...(config || {}), ...P1.formData(form) };
    const res = await P1.api("PUT", P1.sitePath("/config/peak"), doc);
    P1.showResult(form, res, "saved and published");
    if (res.ok) showConfig(res.data);
  });

  P1.connect({
    snapshot(s) { quarters = s.quarters || []; showConfig(s.config.peak); showMonth(s.month); showPeak(s.peak); drawQuarters(); },
    peak: showPeak,
    month: showMonth,
    quarter(q) {
      if (quarters.length && quarters[quarters.length - 1].start === q.start) quarters[quarters.length - 1] = q;
      else quarters.push(q);
      drawQuarters();
    },
    config(c) { if (c.scope === "peak" && c.doc) showConfig(c.doc); },
  });
})();
