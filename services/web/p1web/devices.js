/* Devices page: online/offline from p1/status/+, monitor / switcher / site settings. */
"use strict";
(() => {
  const { el, fmt } = P1;
  const statuses = new Map();
  let config = null;
  const mon = document.getElementById("monitor_form");
  const sw = document.getElementById("switcher_form");
  const siteForm = document.getElementById("site_form");

  function showStatuses() {
    const rows = [...statuses.values()].sort((a, b) => a.client_id.localeCompare(b.client_id));
    document.querySelector("#statuses tbody").replaceChildren(...rows.map((s) => el("tr", { "data-client": s.client_id },
      el("td", { text: s.client_id }), el("td", {}, el("span", { class: "badge " + s.state, text: s.state })),
      el("td", { text: fmt.datetime(s.since) }))));
    P1.set("n_online", rows.filter((s) => s.state === "online").length);
    listIds();
  }

  function listIds() {
    const ids = new Set([...statuses.keys(), ...Object.keys((config && config.monitor) || {}),
      ...Object.keys((config && config.switcher) || {})]);
    document.getElementById("device_ids").replaceChildren(...[...ids].sort().map((id) => el("option", { value: id })));
    const outs = ((config && config.outputs && config.outputs.outputs) || []).map((o) => o.id);
    document.getElementById("output_ids").replaceChildren(...outs.map((id) => el("option", { value: id })));
  }

  function showConfig() {
    const monitors = Object.keys(config.monitor || {});
    P1.set("monitors", monitors.length ? "configured: " + monitors.join(", ") : "no monitor configured yet");
    const switchers = Object.entries(config.switcher || {});
    P1.set("switchers", switchers.length ? "configured: " + switchers.map(([k, v]) => `${k} → ${v.output_id}`).join(", ") : "no switcher configured yet");
    const devInput = mon.querySelector("[name=device_id]");
    if (!devInput.value && monitors.length) devInput.value = monitors[0];
    fillMonitor();
    P1.fill(siteForm, config.site);
    listIds();
  }

  function fillMonitor() {
    const id = mon.querySelector("[name=device_id]").value;
    const doc = (config.monitor || {})[id] || { max_import_w: 5000, max_export_w: 5000 };
    P1.fill(mon, doc);
    P1.fill(mon, { manual_threshold_w: config.peak.manual_threshold_w });
  }

  function showPeak(p) {
    if (!p) return;
    mon.querySelector("#dyn_threshold").value = fmt.num(p.threshold_w, 0);
    mon.querySelector("#month_peak").value = fmt.num(p.month_peak_w, 0);
  }

  mon.querySelector("[name=device_id]").addEventListener("change", () => config && fillMonitor());
  mon.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const d = P1.formData(mon);
    const res = await P1.api("PUT", P1.sitePath(`/config/monitor/${encodeURIComponent(d.device_id.trim())}`),
      { max_import_w: d.max_import_w, max_export_w: d.max_export_w });
    if (!res.ok || d.manual_threshold_w === config.peak.manual_threshold_w) { P1.showResult(mon, res, "saved and published"); return; }
    const res2 = await P1.api("PUT", P1.sitePath("/config/peak"), { ...config.peak, manual_threshold_w: d.manual_threshold_w });
    P1.showResult(mon, res2, "saved and published");
  });
  sw.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const d = P1.formData(sw);
    const id = d.device_id.trim();
    delete d.device_id;
    P1.showResult(sw, await P1.api("PUT", P1.sitePath(`/config/switcher/${encodeURIComponent(id)}`), d), "saved and published");
  });
  siteForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    P1.showResult(siteForm, await P1.api("PUT", P1.sitePath("/config/site"), P1.formData(siteForm)), "saved and published");
  });

  P1.connect({
    snapshot(s) {
      statuses.clear();
      for (const x of s.statuses || []) statuses.set(x.client_id, x);
      config = s.config; showStatuses(); showConfig(); showPeak(s.peak);
    },
    status(x) { statuses.set(x.client_id, x); showStatuses(); },
    peak: showPeak,
    config(c) {
      if (!config) return;
      if (c.scope === "monitor" || c.scope === "switcher") {
        config[c.scope] = { ...(config[c.scope] || {}) };
        if (c.doc) config[c.scope][c.id] = c.doc; else delete config[c.scope][c.id];
      } else if (c.doc) config[c.scope] = c.doc;
      showConfig();
    },
  });
})();
