/* Quarter peak page: running quarter, month peak and history, charts, peak settings. */
"use strict";
(() => {
  const { set, fmt } = P1;
  let quarters = [], month = null, peak = null, config = null;

  const FLOOR = "the 2.5 kW minimum (no quarter this month is above it)";

  /* Where the running quarter's energy comes from (avg_source): our counters from its start,
     the meter's 1-0:1.4.0 for the part before we joined, or only the part we saw (partial:
     energy, average and forecast are lower bounds, the headroom an upper bound). */
  function showSource(p) {
    const badge = document.getElementById("avg_source");
    const note = document.getElementById("avg_note");
    const since = fmt.time(p.observed_from);
    if (p.avg_source === "partial") {
      badge.textContent = "partial: since " + since; badge.className = "badge warn";
      note.textContent = `Started in the middle of this quarter (at ${since}) and the meter sends no ` +
        `quarter average (1-0:1.4.0): energy, average and forecast count only what was seen ` +
        `since ${since}; the quarter's real values are higher.`;
    } else if (p.avg_source === "meter") {
      badge.textContent = "meter's average before " + since; badge.className = "badge";
      note.textContent = `Started in the middle of this quarter (at ${since}): the energy before ` +
        `${since} comes from the meter's own quarter average (1-0:1.4.0), the rest from its counters.`;
    }
    const shown = p.avg_source === "partial" || p.avg_source === "meter";
    badge.hidden = !shown;
    note.hidden = !shown;
  }

  function showPeak(p) {
    peak = p;
    if (!p) return;
    const low = p.avg_source === "partial" ? "at least " : "";
    set("forecast_w", low + fmt.w(p.forecast_w));
    set("energy_wh", low + fmt.num(p.energy_wh, 0, "Wh"));
    set("avg_w", low + fmt.w(p.avg_w));
    set("threshold_w", fmt.w(p.threshold_w));
    set("headroom_w", (low ? "at most " : "") + fmt.w(p.headroom_w));
    showSource(p);
    /* the site's learner: P(the quarter ends above the threshold), why, how long it learned */
    set("probability", p.probability == null ? "–" : Math.round(100 * p.probability) + " %");
    set("reason", p.reason || "–");
    set("days_learned", p.days_learned == null ? "–" : p.days_learned + (p.days_learned === 1 ? " day" : " days"));
    set("meter_avg_demand_w", fmt.w(p.meter_avg_demand_w));
    set("peak_ts", fmt.time(p.ts));
    set("quarter_start", "from " + fmt.time(p.quarter_start));
    const lvl = document.getElementById("level");
    lvl.textContent = p.level; lvl.className = "badge " + p.level;
    const bar = document.getElementById("bar");
    bar.className = "bar " + p.level;
    bar.firstElementChild.style.width = Math.min(100, (100 * p.forecast_w) / Math.max(1, p.threshold_w)) + "%";
    if (!month) {
      set("month_peak_w", fmt.w(p.month_peak_w));
      set("month_note", p.month_peak_is_floor ? FLOOR : "highest quarter this month");
    }
    drawQuarters();
  }

  /* The month's peak as billed; on the 2.5 kW floor it is no quarter and has no time:
     say so, and show the highest quarter so far (the meter's 1-0:1.6.0 or ours). */
  function monthNote(m) {
    if (!m.peak_is_floor) return "highest quarter this month" + (m.peak_start ? " (" + fmt.datetime(m.peak_start) + ")" : "");
    const meter = m.source === "meter";
    const w = meter ? m.meter_peak_w : m.our_peak_w;
    const at = meter ? m.meter_peak_ts : m.our_peak_start;
    return FLOOR + "; " + (w > 0 && at ? `highest quarter so far: ${fmt.w(w)} at ${fmt.datetime(at)}`
      : "no quarter above 0 W yet");
  }

  function showMonth(m) {
    month = m;
    if (!m) return;
    set("month", m.month);
    set("month_peak_w", fmt.w(m.peak_w));
    set("month_note", monthNote(m));
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
    const items = quarters.slice(-32).map((q) => ({ label: fmt.time(q.start).slice(0, 5),
      title: q.start + (q.avg_source === "partial" ? " (partial: only the part seen)" : ""),
      value: q.avg_w, cls: q.avg_w > q.threshold_w ? "over" : "" }));
    if (peak) items.push({ label: "now", value: peak.forecast_w, cls: "cur",
      title: "running quarter (forecast" + (peak.avg_source === "partial" ? ", at least" : "") + ")" });
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
