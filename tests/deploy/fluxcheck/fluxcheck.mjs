// Type-checks Flux scripts offline with InfluxData's own Flux front end (the Flux language
// server, compiled to WebAssembly: @influxdata/flux-lsp-browser): parse errors, unknown
// functions or packages, wrong argument names and types, as InfluxDB would report them
// before running a query. No InfluxDB 2 server is needed.
//
//   node fluxcheck.mjs < scripts.json     # [{"name": "...", "flux": "..."}, ...]
//
// prints {"<name>": ["<line>:<column> <message>", ...], ...}: an empty list = valid.
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { createRequire } from "node:module";

// The package is a wasm-bindgen "bundler" build (it imports the .wasm as an ES module,
// which Node does not do): instantiate the WebAssembly with its JS glue by hand.
const require = createRequire(import.meta.url);
const pkgDir = dirname(require.resolve("@influxdata/flux-lsp-browser/package.json"));
let glue = readFileSync(join(pkgDir, "flux-lsp-browser_bg.js"), "utf8");
const wasmImport = "import * as wasm from './flux-lsp-browser_bg.wasm';";
const memoryViews = "cachedInt32Memory0 = new Int32Array(wasm.memory.buffer);\n" +
  "cachedUint8Memory0 = new Uint8Array(wasm.memory.buffer);\n";
if (!glue.includes(wasmImport) || !glue.includes(memoryViews)) {
  throw new Error("unexpected @influxdata/flux-lsp-browser glue code: update fluxcheck.mjs");
}
glue = glue.replace("\n" + memoryViews, "\n"); // set once the instance exists, below
glue = glue.replace(wasmImport, "let wasm;\nexport function __setWasm(w) { wasm = w;\n" + memoryViews + "}");
const dir = mkdtempSync(join(tmpdir(), "fluxcheck-"));
writeFileSync(join(dir, "glue.mjs"), glue);
const bindings = await import(join(dir, "glue.mjs"));
rmSync(dir, { recursive: true, force: true });
const { instance } = await WebAssembly.instantiate(
  readFileSync(join(pkgDir, "flux-lsp-browser_bg.wasm")), { "./flux-lsp-browser_bg.js": bindings });
bindings.__setWasm(instance.exports);

console.info = () => {}; // the server's start-up chatter; stdout carries the answer only
const scripts = JSON.parse(readFileSync(0, "utf8"));
const lsp = new bindings.Lsp();
const waiting = new Map(); // uri -> resolve(diagnostics)
lsp.onMessage((raw) => {
  const msg = JSON.parse(String(raw));
  if (msg.method === "textDocument/publishDiagnostics" && waiting.has(msg.params.uri)) {
    waiting.get(msg.params.uri)(msg.params.diagnostics);
    waiting.delete(msg.params.uri);
  }
});
lsp.run().catch((err) => { console.error("flux language server stopped:", err); process.exit(2); });
const send = (msg) => lsp.send(JSON.stringify({ jsonrpc: "2.0", ...msg }));
await send({ id: 1, method: "initialize", params: { capabilities: {} } });
await send({ method: "initialized", params: {} });

const out = {};
for (const [i, { name, flux }] of scripts.entries()) {
  const uri = `file:///script-${i}/main.flux`; // own folder: the server joins the files of a folder into one package
  const published = new Promise((resolve) => waiting.set(uri, resolve));
  const timeout = new Promise((resolve) => setTimeout(() => resolve(null), 30000));
  await send({ method: "textDocument/didOpen",
               params: { textDocument: { uri, languageId: "flux", version: 1, text: flux } } });
  const diagnostics = await Promise.race([published, timeout]);
  if (diagnostics === null) {
    out[name] = ["0:0 the Flux language server published no diagnostics within 30 s"];
    continue;
  }
  out[name] = diagnostics.filter((d) => (d.severity ?? 1) === 1).map(
    (d) => `${d.range.start.line + 1}:${d.range.start.character + 1} ${d.message}`);
  // second opinion: the library's own semantic check (types and builtin signatures)
  const script = new bindings.Flux(flux);
  if (!script.is_valid() && out[name].length === 0) {
    out[name].push("0:0 invalid Flux (semantic check) without a diagnostic");
  }
  script.free();
}
process.stdout.write(JSON.stringify(out) + "\n");
process.exit(0);
