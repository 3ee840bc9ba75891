/* Shared by every page: site, token (localStorage), REST calls, event stream, helpers. */
"use strict";
const P1 = (() => {
  const body = document.body;
  const site = body.dataset.site;
  const TOKEN_KEY = "p1web.token";
  const token = () => localStorage.getItem(TOKEN_KEY) || "";

  function el(tag, attrs, ...children) {
    const ns = ["svg", "rect", "line", "path", "text", "g", "circle", "polyline"].includes(tag)
      ? "http://www.w3.org/2000/svg" : null;
    const e = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") e.textContent = v; else e.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) if (c !== null && c !== undefined)
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return e;
  }

  function set(id, value) {
    const e = document.getElementById(id);
    if (e && e.textContent !== String(value)) e.textContent = value;
  }

  const nf = (d) => new Intl.NumberFormat("en-GB", { minimumFractionDigits: d, maximumFractionDigits: d });
  const fmt = {
    num(x, d = 0, unit = "") {
      if (x === null || x === undefined || Number.isNaN(x)) return "–";
      return nf(d).format(x) + (unit ? " " + unit : "");
    },
    w(x) { return fmt.num(x, 0, "W"); },
    /* Times as written (the meter's local clock, from its ISO text), not the browser's zone. */
    time(iso) {
      if (!iso) return "–";
      const m = /T(\d\d:\d\d:\d\d)/.exec(iso);
      return m ? m[1] : iso;
    },
    datetime(iso) {
      if (!iso) return "–";
      const m = /^(\d{4})-(\d\d)-(\d\d)T(\d\d:\d\d)/.exec(iso);
      return m ? `${m[3]}/${m[2]}/${m[1]} ${m[4]}` : iso;
    },
  };

  async function api(method, path, data) {
    const headers = { "Accept": "application/json" };
    if (token()) headers["Authorization"] = "Bearer " + token();
    if (data !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch(path, { method, headers, body: data === undefined ? undefined : JSON.stringify(data) });
    let payload = null;
    try { payload = await res.json(); } catch (e) { payload = null; }
    return { ok: res.ok, status: res.status, data: payload };
  }
  const sitePath = (p) => `/api/sites/${encodeURIComponent(site)}${p}`;

  /* Live values: one EventSource per page; handlers by event name. */
  function connect(handlers) {
    const dot = document.getElementById("conn");
    let src = null;
    const open = () => {
      const q = token() ? "?token=" + encodeURIComponent(token()) : "";
      src = new EventSource(sitePath("/events") + q);
      src.onopen = () => { if (dot) dot.className = "dot on"; };
      src.onerror = () => { if (dot) dot.className = "dot off"; };
      for (const [kind, fn] of Object.entries(handlers)) {
        src.addEventListener(kind, (ev) => {
          try { fn(JSON.parse(ev.data)); } catch (e) { console.error(kind, e); }
        });
      }
    };
    open();
    document.addEventListener("p1-token", () => { src.close(); open(); });
  }

  /* Show a 422 answer next to the fields it names; other errors in the message line. */
  function showResult(form, res, okText) {
    form.querySelectorAll(".invalid").forEach((e) => e.classList.remove("invalid"));
    form.querySelectorAll(".err").forEach((e) => e.remove());
    const msg = form.querySelector(".msg");
    if (res.ok) {
      if (msg) { msg.className = "msg ok"; msg.textContent = okText || "saved"; }
      return;
    }
    let text = `error ${res.status}`;
    if (res.status === 422 && res.data && res.data.detail) {
      text = res.data.message;
      for (const p of res.data.detail) {
        const name = p.field.replace(/^outputs\[\d+\]\./, "");
        const input = form.querySelector(`[name="${name}"]`);
        if (input) {
          input.classList.add("invalid");
          input.closest("label").append(el("span", { class: "err", text: p.msg }));
        }
      }
    } else if (res.status === 401) {
      text = "not allowed: enter the token at the top (" + ((res.data && res.data.detail) || "") + ")";
    } else if (res.data && res.data.detail) {
      text = String(res.data.detail);
    }
    if (msg) { msg.className = "msg bad"; msg.textContent = text; }
  }

  /* A form's values as a document: numbers for type=number, booleans for checkboxes. */
  function formData(form) {
    const doc = {};
    for (const input of form.querySelectorAll("input[name], select[name]")) {
      if (input.readOnly || input.disabled) continue;
      if (input.type === "checkbox") doc[input.name] = input.checked;
      else if (input.type === "number" || input.hasAttribute("data-number"))
        doc[input.name] = input.value === "" ? null : Number(input.value);
      else if (input.hasAttribute("data-null") && input.value.trim() === "") doc[input.name] = null;
      else doc[input.name] = input.value;
    }
    return doc;
  }

  function fill(form, doc) {
    for (const [k, v] of Object.entries(doc || {})) {
      const input = form.querySelector(`[name="${k}"]`);
      if (!input || input === document.activeElement) continue;
      if (input.type === "checkbox") input.checked = !!v; else input.value = v === null ? "" : v;
    }
  }

  /* Semicircle gauge (SVG): returns update(value, max). */
  function gauge(container, label, color) {
    const r = 80, cx = 100, cy = 95;
    const arc = (f) => {
      const a = Math.PI * (1 - Math.max(0, Math.min(1, f)));
      return `M ${cx - r} ${cy} A ${r} ${r} 0 0 1 ${cx + r * Math.cos(a)} ${cy - r * Math.sin(a)}`;
    };
    const bg = el("path", { d: arc(1), stroke: "#e6e9ee", "stroke-width": 18, fill: "none", "stroke-linecap": "round" });
    const fg = el("path", { d: arc(0), stroke: color, "stroke-width": 18, fill: "none", "stroke-linecap": "round" });
    const val = el("text", { x: cx, y: cy - 12, "text-anchor": "middle", "font-size": 26, "font-weight": 700, fill: "#1d2733" });
    const max = el("text", { x: cx + r, y: cy + 18, "text-anchor": "end", "font-size": 11, fill: "#66717d" });
    const zero = el("text", { x: cx - r, y: cy + 18, "text-anchor": "start", "font-size": 11, fill: "#66717d", text: "0" });
    const svg = el("svg", { viewBox: "0 0 200 118", role: "img", "aria-label": label }, bg, fg, val, zero, max);
    container.append(el("div", { class: "gauge" }, svg, el("div", { class: "label", text: label })));
    return (value, scale) => {
      fg.setAttribute("d", value > 0 ? arc(value / scale) : "M 0 0");
      val.textContent = fmt.w(value);
      max.textContent = fmt.num(scale / 1000, 1, "kW");
    };
  }

  /* Bar chart (SVG) with optional dashed reference lines. */
  /* drawn at the container's own pixel width, so text stays readable on a phone */
  const charts = new Set();
  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => charts.forEach((c) => bars(...c._args)), 150);
  });
  function bars(container, items, lines, opts) {
    container._args = [container, items, lines, opts];
    charts.add(container);
    const W = Math.max(260, Math.round(container.clientWidth || 600)), H = W < 500 ? 190 : 230;
    const L = 34, B = 24, T = 16;
    const values = items.map((i) => i.value || 0).concat((lines || []).map((l) => l.value || 0));
    const top = Math.max(1000, ...values) * 1.1;
    const y = (v) => T + (H - T - B) * (1 - v / top);
    const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": (opts && opts.label) || "chart" });
    const step = top > 8000 ? 2000 : 1000;
    for (let v = 0; v <= top; v += step) {
      svg.append(el("line", { class: "axis", x1: L, x2: W, y1: y(v), y2: y(v), "stroke-opacity": v ? 0.4 : 1 }));
      svg.append(el("text", { x: L - 4, y: y(v) + 4, "text-anchor": "end", text: fmt.num(v / 1000, 0) + "k" }));
    }
    const n = Math.max(items.length, 1);
    const bw = (W - L - 4) / n;
    const every = Math.ceil(n / Math.max(3, Math.floor(W / 48)));
    items.forEach((it, i) => {
      const x = L + 2 + i * bw;
      const v = it.value || 0;
      svg.append(el("rect", { class: "b " + (it.cls || ""), x: x + bw * 0.12, width: Math.max(1, bw * 0.76),
        y: y(v), height: Math.max(0, y(0) - y(v)) }, el("title", {}, `${it.title || it.label}: ${fmt.w(v)}`)));
      if (i % every === 0) svg.append(el("text", { x: x + bw / 2, y: H - 12, "text-anchor": "middle", text: it.label }));
    });
    for (const l of lines || []) {
      if (!l.value) continue;
      svg.append(el("line", { class: l.cls || "line", x1: L, x2: W, y1: y(l.value), y2: y(l.value) }));
      svg.append(el("text", { class: "linelabel", x: W - 4, y: y(l.value) - 4, "text-anchor": "end", text: `${l.label} ${fmt.w(l.value)}` }));
    }
    if (!items.length) svg.append(el("text", { x: W / 2, y: H / 2, "text-anchor": "middle", text: "no data yet" }));
    container.replaceChildren(svg);
  }

  /* Header: navigation, site, token field. */
  function header() {
    const page = body.dataset.page;
    for (const a of document.querySelectorAll("nav a")) {
      if (a.dataset.page === page) a.classList.add("current");
      a.href = `/${a.dataset.page === "api" ? "docs" : a.dataset.page}?site=${encodeURIComponent(site)}`;
    }
    const form = document.getElementById("login");
    const input = document.getElementById("token");
    const state = document.getElementById("auth-state");
    const check = async () => {
      const res = await api("GET", "/api/auth");
      if (state) state.textContent = res.ok && res.data.write ? "✓ can write" : (token() ? "✗ wrong token" : "read only");
    };
    if (form) {
      input.value = token();
      form.addEventListener("submit", (ev) => {
        ev.preventDefault();
        localStorage.setItem(TOKEN_KEY, input.value.trim());
        check();
        document.dispatchEvent(new Event("p1-token"));
      });
      check();
    }
  }
  header();

  return { site, el, set, fmt, api, sitePath, connect, showResult, formData, fill, gauge, bars, token };
})();
