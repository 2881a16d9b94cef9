// graphflow run inspector: plain JavaScript over the server's JSON API and SSE streams.
"use strict";

const gf = (window.gf = { graph: null, thread: null, stream: null, run: null });
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const child of children) {
    if (child !== null && child !== undefined)
      node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function say(text) { $("status").textContent = text; }

function headers(extra = {}) {
  const key = sessionStorage.getItem("graphflow-key");
  return key ? { "X-Api-Key": key, ...extra } : extra;
}

async function api(method, path, body) {
  const init = { method, headers: headers(body ? { "Content-Type": "application/json" } : {}) };
  if (body !== undefined) init.body = JSON.stringify(body);
  const resp = await fetch(path, init);
  const type = resp.headers.get("content-type") || "";
  const data = type.includes("json") ? await resp.json() : await resp.text();
  if (!resp.ok) {
    const message = data && data.message ? data.message : `${resp.status} ${resp.statusText}`;
    throw new Error(message);
  }
  return data;
}

const short = (v) => { const s = JSON.stringify(v); return s && s.length > 160 ? s.slice(0, 159) + "…" : s; };
const enc = encodeURIComponent;

// -- graphs ------------------------------------------------------------------------------------

async function loadGraphs() {
  const graphs = await api("GET", "/graphs");
  const list = $("graphs");
  list.replaceChildren(...graphs.map((g) => el("li", {},
    el("button", { type: "button", "data-graph": g.name, onclick: () => gf.selectGraph(g.name) },
      g.name, el("small", {}, `${g.nodes.length} nodes`)))));
  if (!gf.graph && graphs.length) await selectGraph(graphs[0].name);
  return graphs;
}

function markCurrent(listId, attr, value) {
  for (const b of $(listId).querySelectorAll("button"))
    b.setAttribute("aria-current", String(b.getAttribute(attr) === value));
}

async function drawDiagram(graph, thread) {
  const query = thread ? `?thread_id=${enc(thread)}` : "";
  const resp = await fetch(`/graphs/${enc(graph)}/svg${query}`, { headers: headers() });
  if (!resp.ok) throw new Error(`the diagram of ${graph}: ${resp.status}`);
  // graphflow's own SVG (escaped by its writer), not user input: inserted as markup
  $("diagram").innerHTML = await resp.text();
  $("diagram").setAttribute("aria-label", `diagram of ${graph}` + (thread ? `, the path thread ${thread} ran highlighted` : ""));
}

async function selectGraph(name) {
  gf.graph = name;
  markCurrent("graphs", "data-graph", name);
  $("graph-title").textContent = `Graph ${name}`;
  $("start-new").textContent = `Start a run of ${name}`;
  await drawDiagram(name, gf.thread && gf.threadGraph === name ? gf.thread : null);
  await loadThreads();
}

// -- threads -----------------------------------------------------------------------------------

async function loadThreads() {
  const threads = await api("GET", "/threads?limit=200");
  $("threads").replaceChildren(...threads.map((t) => el("li", {},
    el("button", { type: "button", "data-thread": t.thread_id, onclick: () => gf.selectThread(t.thread_id) },
      t.thread_id, el("small", {}, `${t.graph} · `, el("span", { class: `s-${t.status}` }, t.status))))));
  if (gf.thread) markCurrent("threads", "data-thread", gf.thread);
}

async function selectThread(id) {
  gf.thread = id;
  markCurrent("threads", "data-thread", id);
  await refreshThread();
  $("main").focus();
}

function diffOf(before, after) {
  const keys = [...new Set([...Object.keys(before || {}), ...Object.keys(after || {})])];
  const out = [];
  for (const k of keys) {
    const a = before ? before[k] : undefined, b = after ? after[k] : undefined;
    if (JSON.stringify(a) === JSON.stringify(b)) continue;
    if (Array.isArray(a) && Array.isArray(b) && b.length > a.length &&
        JSON.stringify(b.slice(0, a.length)) === JSON.stringify(a)) {
      out.push(el("li", {}, `${k}: `, el("ins", {}, `+ ${short(b.slice(a.length))}`)));
    } else {
      out.push(el("li", {}, `${k}: `, a === undefined ? "" : el("del", {}, short(a)), " → ", el("ins", {}, short(b))));
    }
  }
  return out;
}

function money(x) { return x ? `$${Number(x).toFixed(6)}` : "$0"; }

async function refreshThread() {
  const id = gf.thread;
  const [thread, runs, history] = await Promise.all([
    api("GET", `/threads/${enc(id)}`), api("GET", `/threads/${enc(id)}/runs`),
    api("GET", `/threads/${enc(id)}/history?limit=1000`).catch(() => [])]);
  gf.threadGraph = thread.graph;
  if (gf.graph !== thread.graph) { gf.graph = thread.graph; markCurrent("graphs", "data-graph", thread.graph); }
  $("thread-view").hidden = false;
  $("thread-title").textContent = `Thread ${id}`;
  const head = history[0];
  $("thread-summary").replaceChildren(`graph ${thread.graph} · `, el("span", { class: `badge s-${thread.status}` }, thread.status),
    head ? ` · step ${head.step} · next: ${head.next.join(", ") || "nothing (finished)"}` : " · no state yet");
  const usage = (head && head.metadata.usage) || {};
  $("usage").replaceChildren(el("span", {}, `input tokens: ${usage.input_tokens || 0}`),
    el("span", {}, `output tokens: ${usage.output_tokens || 0}`), el("span", {}, `cost: ${money(usage.cost)}`));
  // runs
  $("runs").tBodies[0].replaceChildren(...runs.map((r) => el("tr", {},
    el("td", {}, r.run_id.slice(0, 8)), el("td", {}, el("span", { class: `badge s-${r.status}` }, r.status)),
    el("td", {}, r.usage ? `${r.usage.input_tokens} / ${r.usage.output_tokens}` : "–"),
    el("td", {}, r.usage ? money(r.usage.cost) : "–"),
    el("td", {}, r.started_at ? new Date(r.started_at * 1000).toLocaleTimeString() : "–"))));
  // timeline: oldest first; a step's nodes are what the checkpoint before it had next
  const steps = [...history].reverse();
  $("timeline").replaceChildren(...steps.map((s, i) => {
    const prev = i > 0 ? steps[i - 1] : null;
    // a run's input checkpoint (the state before its input: __start__ due), then its input
    const ran = prev ? prev.next.join(", ") : "?";
    const nodes = s.metadata.source === "input" ? "before the input" :
      s.metadata.source === "update" ? "state update" : (ran === "__start__" ? "input" : ran);
    const diff = diffOf(prev ? prev.values : {}, s.values);
    return el("li", { "data-step": s.step },
      el("span", { class: "nodes" }, `step ${s.step}: ${nodes}`), " ",
      el("span", { class: "source" }, `(${s.metadata.source})`),
      diff.length ? el("ul", { class: "diff", "aria-label": `changes in step ${s.step}` }, ...diff) : el("div", { class: "source" }, "no change"));
  }));
  // interrupts
  const pending = head ? head.interrupts : [];
  $("interrupts").hidden = !pending.length;
  // the same questions as shown already: keep their forms (and what is being typed in them)
  const ids = `${id}:` + pending.map((intr) => intr.id).join(",");
  if ($("interrupt-list").dataset.ids !== ids) {
  $("interrupt-list").dataset.ids = ids;
  $("interrupt-list").replaceChildren(...pending.map((intr) => {
    const inputId = `answer-${intr.id}`;
    return el("div", { class: "interrupt", "data-interrupt": intr.id },
      el("div", {}, `${intr.node} asks:`), el("pre", {}, JSON.stringify(intr.value, null, 2)),
      el("form", { onsubmit: (ev) => { ev.preventDefault(); gf.answer(intr.id, $(inputId).value); } },
        el("label", { for: inputId }, `Answer to ${intr.node}`),
        el("input", { id: inputId, type: "text", placeholder: "an answer (JSON or text)" }),
        el("button", { type: "submit" }, "Answer")));
  }));
  }
  await drawDiagram(thread.graph, history.length ? id : null);
  const active = runs.find((r) => r.status === "pending" || r.status === "running");
  if (active && (!gf.run || gf.run !== active.run_id)) follow(id, active.run_id);
  return { thread, runs, history };
}

// -- runs --------------------------------------------------------------------------------------

function parseAnswer(text) {
  try { return JSON.parse(text); } catch { return text; }
}

async function answer(interruptId, text) {
  const run = await api("POST", `/threads/${enc(gf.thread)}/runs`,
    { command: { resume: { [interruptId]: parseAnswer(text) } }, stream_mode: ["updates", "values", "messages"] });
  say(`answered; run ${run.run_id.slice(0, 8)} started`);
  follow(gf.thread, run.run_id);
}

async function startNew(ev) {
  ev.preventDefault();
  let input;
  try { input = JSON.parse($("new-input").value || "{}"); } catch (e) { say(`the input is not JSON: ${e.message}`); return; }
  const thread = await api("POST", "/threads", { graph: gf.graph });
  gf.thread = thread.thread_id;
  const run = await api("POST", `/threads/${enc(thread.thread_id)}/runs`, { input, stream_mode: ["updates", "values", "messages"] });
  say(`thread ${thread.thread_id} created; run ${run.run_id.slice(0, 8)} started`);
  await loadThreads();
  markCurrent("threads", "data-thread", thread.thread_id);
  follow(thread.thread_id, run.run_id);
  await refreshThread();
}

function describe(event, data) {
  if (event === "updates") {
    if (data.__interrupt__) return data.__interrupt__.length ? `⏸ interrupted: ${data.__interrupt__.map((i) => i.node).join(", ")} waits for an answer` : "⏸ breakpoint";
    return Object.entries(data).map(([node, upd]) => `✓ ${node} ${short(upd)}`).join("; ");
  }
  if (event === "messages") return null;
  if (event === "values") return null;
  if (event === "end") return `■ run ended: ${data.status}` + (data.error ? ` (${data.error.message})` : "");
  if (event === "error") return `✗ ${data.type}: ${data.message}`;
  if (event === "metadata") return data.cancelling ? "… cancelling at the next step" : data.resumed ? "↻ resumed after a server restart" : null;
  return `${event}: ${short(data)}`;
}

// SSE over fetch (EventSource cannot send the API key header); reconnects with Last-Event-ID.
async function follow(thread, runId) {
  if (gf.stream) gf.stream.abort.abort();
  const stream = (gf.stream = { readyState: 0, last: 0, abort: new AbortController(), run: runId });
  gf.run = runId;
  $("live").hidden = false;
  $("live-run").textContent = runId.slice(0, 8);
  $("live-events").replaceChildren();
  let tokens = null;
  const log = (text) => { const item = el("li", {}, text); $("live-events").append(item); item.scrollIntoView({ block: "nearest" }); return item; };
  while (true) {
    try {
      const resp = await fetch(`/threads/${enc(thread)}/runs/${enc(runId)}/stream`, {
        headers: headers(stream.last ? { "Last-Event-ID": String(stream.last) } : {}), signal: stream.abort.signal });
      if (!resp.ok) throw new Error(`stream: ${resp.status}`);
      stream.readyState = 1;
      const reader = resp.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
          const fields = {};
          for (const line of block.split("\n")) {
            if (!line || line.startsWith(":")) continue;
            const i = line.indexOf(":");
            fields[line.slice(0, i)] = line.slice(i + 1).replace(/^ /, "");
          }
          if (!fields.event) continue;
          stream.last = Number(fields.id || stream.last);
          const data = JSON.parse(fields.data || "null");
          if (fields.event === "messages") {
            if (!tokens) tokens = log(`${data[1].node} says: `);
            tokens.append(data[0].content || "");
          } else {
            if (fields.event === "updates") tokens = null;
            const text = describe(fields.event, data);
            if (text) log(text);
          }
          if (fields.event === "updates" || fields.event === "end") refreshThread().catch((e) => say(e.message));
          if (fields.event === "end") {
            stream.readyState = 2; gf.run = null;
            say(`run ${runId.slice(0, 8)} ${data.status}`);
            await loadThreads();
            return;
          }
        }
      }
    } catch (e) {
      if (stream.abort.signal.aborted) { stream.readyState = 2; return; }
      say(`stream interrupted (${e.message}); reconnecting…`);
    }
    stream.readyState = 0;
    await new Promise((r) => setTimeout(r, 1000));  // reconnect, after the last event seen
  }
}

async function cancelRun() {
  if (!gf.run) return;
  await api("POST", `/threads/${enc(gf.thread)}/runs/${enc(gf.run)}/cancel`);
  say("cancel requested: the run stops at its next step");
}

// -- start -------------------------------------------------------------------------------------

function guard(fn) { return (...args) => Promise.resolve(fn(...args)).catch((e) => say(e.message)); }

$("key-form").addEventListener("submit", guard(async (ev) => {
  ev.preventDefault();
  sessionStorage.setItem("graphflow-key", $("api-key").value.trim());
  await loadGraphs();
  say("key set");
}));
$("new-thread").addEventListener("submit", guard(startNew));
$("cancel-run").addEventListener("click", guard(cancelRun));
for (const name of ["selectGraph", "selectThread", "answer"]) {
  const fn = { selectGraph, selectThread, answer }[name];
  gf[name] = guard(fn);
}
guard(async () => {
  $("api-key").value = sessionStorage.getItem("graphflow-key") || "";
  await loadGraphs();
  const wanted = new URLSearchParams(location.search).get("thread");
  if (wanted) await selectThread(wanted);
  say("ready");
})();
