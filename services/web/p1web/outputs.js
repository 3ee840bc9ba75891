/* Outputs page: each output's live decision (from `control`), device state, and its form. */
"use strict";
(() => {
  const { el, fmt } = P1;
  const list = document.getElementById("outputs");
  const tpl = document.getElementById("output_tpl");
  const cards = new Map(); // id -> card element
  let control = null, states = {};
  const KNOWN = new Set(["id", "output_id", "mode", "kind", "on", "pct", "reason", "decision", "seq", "state"]);

  const stateText = (x) => !x ? "–" : (x.pct !== undefined && x.pct !== null) ? fmt.num(x.pct, 0, "%")
    : x.on === true ? "on" : x.on === false ? "off" : "–";

  function card(out) {
    let c = cards.get(out.id);
    if (!c) {
      c = tpl.content.firstElementChild.cloneNode(true);
      c.dataset.id = out.id;
      c.querySelector(".oid").textContent = out.id;
      const form = c.querySelector("form");
      form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const res = await P1.api("PUT", P1.sitePath(`/outputs/${encodeURIComponent(out.id)}`), P1.formData(form));
        P1.showResult(form, res, "saved and published");
      });
      c.querySelector(".delete").addEventListener("click", async () => {
        if (!confirm(`Delete output ${out.id}?`)) return;
        const res = await P1.api("DELETE", P1.sitePath(`/outputs/${encodeURIComponent(out.id)}`));
        P1.showResult(form, res, "deleted");
      });
      cards.set(out.id, c);
      list.append(c);
    }
    P1.fill(c.querySelector("form"), out);
    c.querySelector(".mode").textContent = out.mode;
    return c;
  }

  function showConfig(doc) {
    const ids = new Set(doc.outputs.map((o) => o.id));
    for (const [id, c] of cards) if (!ids.has(id)) { c.remove(); cards.delete(id); }
    doc.outputs.forEach(card);
    showLive();
  }

  function showLive() {
    const byId = {};
    for (const o of (control && control.outputs) || []) byId[o.id ?? o.output_id] = o;
    for (const [id, c] of cards) {
      const o = byId[id];
      const s = c.querySelector(".state");
      s.textContent = stateText(o);
      s.className = "badge state " + (o && (o.on || o.pct > 0) ? "on" : "");
      if (o && o.mode) c.querySelector(".mode").textContent = o.mode;
      c.querySelector(".decision").textContent = !o ? "no control data"
        : (o.decision === undefined || o.decision === "pct") ? stateText(o) : o.decision;
      c.querySelector(".reason").textContent = (o && o.reason) || "–";
      const dev = states[id];
      c.querySelector(".device").textContent = dev
        ? stateText(dev) + (dev.override ? " (manual override)" : "") + " · " + fmt.time(dev.ts) : "no state reported";
      // every other field the controller reports (timers, level, following, ...), units from the name
      const timers = Object.entries(o || {}).filter(([k, v]) => !KNOWN.has(k) && v !== null && typeof v !== "object");
      c.querySelector(".timers").replaceChildren(...timers.map(([k, v]) => {
        const m = /^(.*)_(w|s|pct|kwh)$/.exec(k);
        const unit = m ? { w: " W", s: " s", pct: " %", kwh: " kWh" }[m[2]] : "";
        const name = (m ? m[1] : k).replace(/_/g, " ");
        const text = typeof v === "number" ? fmt.num(v, v % 1 ? 1 : 0) + unit : String(v);
        return el("span", { class: "badge spaced" }, `${name}: ${text}`);
      }));
    }
    if (control) P1.set("control_ts", "control " + fmt.time(control.ts));
  }

  const add = document.getElementById("new_output");
  add.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const doc = P1.formData(add);
    const id = doc.id.trim();
    delete doc.id;
    const res = await P1.api("PUT", P1.sitePath(`/outputs/${encodeURIComponent(id)}`), doc);
    P1.showResult(add, res, "added");
    if (res.ok) { add.reset(); showConfig(res.data); }
  });

  P1.connect({
    snapshot(s) { control = s.control; states = s.states || {}; showConfig(s.config.outputs); },
    control(c) { control = c; showLive(); },
    state(x) { states[x.id] = x.state; showLive(); },
    config(c) { if (c.scope === "outputs" && c.doc) showConfig(c.doc); },
  });
})();
