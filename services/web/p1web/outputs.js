/* Outputs page: each output's live decision (from `control`), device state, and its form. */
"use strict";
(() => {
  const { el, fmt } = P1;
  const list = document.getElementById("outputs");
  const tpl = document.getElementById("output_tpl");
  const cards = new Map(); // id -> card element
  let control = null, states = {};
  const KNOWN = new Set(["id", "output_id", "mode", "kind", "on", "pct", "reason", "decision", "seq", "state"]);
  const hhmm = (iso) => { const m = /T(\d\d:\d\d)/.exec(iso || ""); return m ? m[1] : "–"; };

  /* An ev output's fields in its form only when the kind is ev; the switching fields
     (surplus threshold, delays, target net, peak guard) only when it is not: the EV mode
     does not use them (it keeps their values in the document). */
  function evFields(form) {
    const ev = form.querySelector("[name=kind]").value === "ev";
    form.querySelectorAll(".ev-only").forEach((l) => { l.hidden = !ev; });
    form.querySelectorAll(".not-ev").forEach((l) => { l.hidden = ev; });
  }

  /* Tonight's plan: per quarter the house's forecast (base_w) with the car (power_w) stacked
     on it, and the threshold the plan keeps to (threshold_w) as a dashed step line. */
  function evPlan(container, plan) {
    const W = Math.max(260, Math.round(container.clientWidth || 600)), H = W < 500 ? 170 : 210;
    const L = 34, B = 24, T = 12;
    const top = Math.max(1000, ...plan.map((p) => Math.max(0, p.base_w) + p.power_w),
      ...plan.map((p) => p.threshold_w)) * 1.1;
    const y = (v) => T + (H - T - B) * (1 - Math.max(0, v) / top);
    const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "tonight's charging plan" });
    const step = top > 8000 ? 2000 : 1000;
    for (let v = 0; v <= top; v += step) {
      svg.append(el("line", { class: "axis", x1: L, x2: W, y1: y(v), y2: y(v), "stroke-opacity": v ? 0.4 : 1 }));
      svg.append(el("text", { x: L - 4, y: y(v) + 4, "text-anchor": "end", text: fmt.num(v / 1000, 0) + "k" }));
    }
    const n = Math.max(plan.length, 1), bw = (W - L - 4) / n;
    const every = Math.ceil(n / Math.max(3, Math.floor(W / 48)));
    let thr = "";
    plan.forEach((p, i) => {
      const x = L + 2 + i * bw, base = Math.max(0, p.base_w), t = hhmm(p.start);
      svg.append(el("rect", { class: "b base", x: x + bw * 0.1, width: Math.max(1, bw * 0.8), y: y(base),
        height: Math.max(0, y(0) - y(base)) }, el("title", {}, `${t} house ${fmt.w(p.base_w)}`)));
      if (p.power_w > 0) svg.append(el("rect", { class: "b ev", x: x + bw * 0.1, width: Math.max(1, bw * 0.8),
        y: y(base + p.power_w), height: Math.max(0, y(base) - y(base + p.power_w)) },
        el("title", {}, `${t} car ${fmt.w(p.power_w)}`)));
      thr += `${i ? "L" : "M"} ${x} ${y(p.threshold_w)} L ${x + bw} ${y(p.threshold_w)} `;
      if (i % every === 0) svg.append(el("text", { x: x + bw / 2, y: H - 8, "text-anchor": "middle", text: t }));
    });
    if (plan.length) {
      svg.append(el("path", { class: "thr", d: thr.trim() },
        el("title", {}, `threshold ${plan.map((p) => fmt.w(p.threshold_w)).filter((v, i, a) => a.indexOf(v) === i).join(", ")}`)));
    } else svg.append(el("text", { x: W / 2, y: H / 2, "text-anchor": "middle", text: "no plan (no car, or no deadline)" }));
    container.replaceChildren(svg);
  }

  function showEv(c, o) {
    const box = c.querySelector(".ev");
    const ev = o && o.ev;
    box.hidden = !ev;
    if (!ev) return;
    const q = (sel) => c.querySelector(sel);
    q(".ev-current").textContent = ev.current_a > 0
      ? `${fmt.num(ev.current_a, ev.current_a % 1 ? 1 : 0)} A × ${ev.phases} phase${ev.phases > 1 ? "s" : ""}` : "paused";
    q(".ev-power").textContent = ev.power_w === null || ev.power_w === undefined ? "–" : fmt.w(ev.power_w)
      + (ev.connected === false ? " (no car)" : "");
    const got = ev.session_wh || 0;
    q(".ev-energy").textContent = ev.target_wh ? `${fmt.num(got / 1000, 1)} / ${fmt.num(ev.target_wh / 1000, 1, "kWh")}`
      : `${fmt.num(got / 1000, 1, "kWh")} (until full)`;
    q(".ev-bar").hidden = !ev.target_wh;
    if (ev.target_wh) q(".ev-bar > span").style.width = Math.min(100, (100 * got) / ev.target_wh) + "%";
    q(".ev-eta").textContent = (ev.eta ? hhmm(ev.eta) : "–") + (ev.departure ? ` (departure ${hhmm(ev.departure)})` : "");
    q(".ev-raise").textContent = ev.raise_w ? `+${fmt.w(ev.raise_w)} · ${fmt.num(ev.raise_cost_eur_year || 0, 2, "EUR/year")}`
      : "none";
    evPlan(q(".ev-plan"), ev.plan || []);
  }

  const stateText = (x) => !x ? "–" : (x.pct !== undefined && x.pct !== null) ? fmt.num(x.pct, 0, "%")
    : x.on === true ? "on" : x.on === false ? "off" : "–";

  function card(out) {
    let c = cards.get(out.id);
    if (!c) {
      c = tpl.content.firstElementChild.cloneNode(true);
      c.dataset.id = out.id;
      c.querySelector(".oid").textContent = out.id;
      const form = c.querySelector("form");
      form.querySelector("[name=kind]").addEventListener("change", () => evFields(form));
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
    evFields(c.querySelector("form"));
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
      showEv(c, o);
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
