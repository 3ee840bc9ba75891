/* API page: the operations of /openapi.json as a readable list (no CDN, no swagger UI). */
"use strict";
(async () => {
  const { el } = P1;
  const res = await fetch("/openapi.json");
  const spec = await res.json();
  const box = document.getElementById("ops");
  const ref = (s) => (s && s.$ref ? s.$ref.split("/").pop() : s && s.type ? s.type : "");
  for (const [path, ops] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const body = op.requestBody && op.requestBody.content["application/json"];
      const ok = op.responses && (op.responses["200"] || op.responses["204"]);
      const okSchema = ok && ok.content && ok.content["application/json"] && ok.content["application/json"].schema;
      box.append(el("section", { class: "card gap-bottom" },
        el("h2", {}, el("span", { class: "badge " + (method === "get" ? "on" : "warn") }, method.toUpperCase()), " ", el("code", { text: path })),
        op.summary ? el("div", { text: op.summary }) : null,
        op.description ? el("p", { class: "muted", text: op.description }) : null,
        body ? el("div", {}, "body: ", el("code", { text: ref(body.schema) })) : null,
        okSchema ? el("div", {}, "answer: ", el("code", { text: ref(okSchema) })) : null,
        el("div", { class: "muted", text: "status: " + Object.keys(op.responses || {}).join(", ") })));
    }
  }
  const schemas = (spec.components && spec.components.schemas) || {};
  const sec = el("section", { class: "card" }, el("h2", { text: "Documents" }));
  for (const name of ["SiteConfig", "OutputsConfig", "OutputConfig", "PeakConfig", "MonitorConfig", "SwitcherConfig"]) {
    const s = schemas[name];
    if (!s) continue;
    const rows = Object.entries(s.properties || {}).map(([k, p]) => el("tr", {},
      el("td", {}, el("code", { text: k })), el("td", { text: p.type || (p.enum ? p.enum.join(" | ") : ref(p.items) || (p.anyOf ? p.anyOf.map(ref).join(" | ") : "")) }),
      el("td", { text: [p.minimum !== undefined ? "≥ " + p.minimum : "", p.exclusiveMinimum !== undefined ? "> " + p.exclusiveMinimum : "", p.maximum !== undefined ? "≤ " + p.maximum : ""].filter(Boolean).join(", ") }),
      el("td", { text: p.default !== undefined ? JSON.stringify(p.default) : "" }),
      el("td", { class: "prose", text: p.description || "" })));
    sec.append(el("h2", { text: name }), el("div", { class: "scroll" }, el("table", {},
      el("thead", {}, el("tr", {}, ["field", "type", "range", "default", ""].map((h) => el("th", { text: h })))),
      el("tbody", {}, rows))));
  }
  box.append(sec);
})();
