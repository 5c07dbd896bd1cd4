// comfy-workshop: shows the participant's place in the shared queue, the phase of
// each of their jobs and the instructor's broadcast. Plain ES module, no build step.
// Server text is only ever written with textContent.

import { el, int, str, subscribe as subscribeSocket, whenReady } from "./lib/comfy.js";

const TERMINAL = new Set(["completed", "failed", "cancelled"]);
const ACTIVE = ["copying", "running", "starting"]; // most interesting first
const KNOWN = new Set([...ACTIVE, "queued", "held", ...TERMINAL]);
const TERMINAL_SHOW_MS = 15000; // how long done/failed/cancelled stay on screen
const MAX_LIST = 6;

function normalizeJob(raw) {
  if (!raw || typeof raw !== "object") return null;
  const id = str(raw.prompt_id, 200);
  if (!id) return null;
  const status = KNOWN.has(raw.status) ? raw.status : "queued";
  const pos = int(raw.position);
  let progress = null;
  if (raw.progress && typeof raw.progress === "object") {
    const value = int(raw.progress.value), max = int(raw.progress.max);
    if (value !== null && max !== null && max > 0) progress = { value: Math.max(0, Math.min(value, max)), max };
  }
  return { id, status, position: pos !== null && pos > 0 ? pos : null, detail: str(raw.detail), worker: str(raw.worker, 200) || null, progress };
}

function normalizeStatus(raw) {
  const data = raw && typeof raw === "object" ? raw : {};
  const jobs = Array.isArray(data.jobs) ? data.jobs.map(normalizeJob).filter(Boolean) : [];
  return { jobs, broadcast: str(data.broadcast, 2000).trim(), paused: data.paused === true };
}

function phaseSentence(job) {
  const pct = job.progress ? ` — ${Math.round((100 * job.progress.value) / job.progress.max)}% (${job.progress.value}/${job.progress.max})` : "";
  const on = job.worker ? ` on worker ${job.worker}` : "";
  const d = job.detail;
  switch (job.status) {
    case "queued": return d || "Queued, waiting for a free GPU worker";
    case "held": return `Held: ${d || "waiting for a suitable GPU worker"}`;
    case "starting": return `Starting${on}: ${d || "GPU warming up / loading models"}`;
    case "running": return `Running${on}${pct}${d ? ` — ${d}` : ""}`;
    case "copying": return `Copying outputs${d ? ` — ${d}` : ""}`;
    case "completed": return `Done${d ? ` — ${d}` : ""}`;
    case "failed": return `Failed${d ? `: ${d}` : ""}`;
    case "cancelled": return `Cancelled${d ? `: ${d}` : ""}`;
    default: return d;
  }
}

function buildPanel() {
  const css = el("link", { rel: "stylesheet", href: new URL("./workshop.css", import.meta.url).href });
  document.head.appendChild(css);
  const root = el("div", { id: "cw-status", "data-testid": "cw-status", role: "status", "aria-live": "polite", hidden: "" });
  const broadcast = el("div", { id: "cw-broadcast", "data-testid": "cw-broadcast", class: "cw-broadcast", hidden: "" }, root);
  const paused = el("div", { id: "cw-paused", "data-testid": "cw-paused", class: "cw-paused", hidden: "" }, root);
  paused.textContent = "Queue paused by the instructor";
  const head = el("div", { class: "cw-head" }, root);
  const posLabel = el("span", { class: "cw-pos-label" }, head);
  const position = el("span", { id: "cw-position", "data-testid": "cw-position", class: "cw-position" }, head);
  const phase = el("div", { id: "cw-phase", "data-testid": "cw-phase", class: "cw-phase" }, root);
  const bar = el("div", { id: "cw-progress", "data-testid": "cw-progress", class: "cw-progress", hidden: "" }, root);
  const fill = el("div", { class: "cw-progress-fill" }, bar);
  const list = el("ul", { id: "cw-jobs", "data-testid": "cw-jobs", class: "cw-jobs", hidden: "" }, root);
  document.body.appendChild(root);
  return { root, broadcast, paused, head, posLabel, position, phase, bar, fill, list };
}

function createController() {
  let ui = null;
  let last = { jobs: [], broadcast: "", paused: false };
  const terminalSince = new Map(); // prompt_id -> first time seen in a terminal state
  let expiryTimer = null;

  function visibleJobs(now) {
    const seen = new Set();
    const out = [];
    for (const job of last.jobs) {
      if (seen.has(job.id)) continue;
      seen.add(job.id);
      if (TERMINAL.has(job.status)) {
        if (!terminalSince.has(job.id)) terminalSince.set(job.id, now);
        if (now - terminalSince.get(job.id) >= TERMINAL_SHOW_MS) continue;
      } else {
        terminalSince.delete(job.id);
      }
      out.push(job);
    }
    for (const id of terminalSince.keys()) if (!seen.has(id)) terminalSince.delete(id);
    return out;
  }

  function rank(job) {
    const a = ACTIVE.indexOf(job.status);
    if (a >= 0) return a;
    if (job.status === "queued" || job.status === "held") return 10 + (job.position ?? 1e6) / 1e7;
    return 20; // terminal
  }

  function render() {
    if (!ui) return;
    const now = Date.now();
    const jobs = visibleJobs(now).sort((x, y) => rank(x) - rank(y));
    ui.broadcast.textContent = last.broadcast;
    ui.broadcast.hidden = !last.broadcast;
    ui.paused.hidden = !last.paused;

    const waiting = jobs.filter((j) => j.position !== null && (j.status === "queued" || j.status === "held"));
    const best = waiting.length ? Math.min(...waiting.map((j) => j.position)) : null;
    ui.position.textContent = best !== null ? `#${best} in queue` : "";
    ui.posLabel.textContent = best !== null ? "You are " : "";
    ui.position.title = best !== null ? "Your place in the shared queue (#1 runs next)" : "";
    ui.head.hidden = best === null;

    const main = jobs[0];
    ui.phase.textContent = main ? phaseSentence(main) : "";
    ui.phase.hidden = !main;
    if (main) ui.phase.dataset.status = main.status; else delete ui.phase.dataset.status;
    const prog = main && main.status === "running" ? main.progress : null;
    ui.bar.hidden = !prog;
    ui.fill.style.width = prog ? `${(100 * prog.value) / prog.max}%` : "0%";

    ui.list.replaceChildren();
    for (const job of jobs.length > 1 ? jobs.slice(0, MAX_LIST) : []) {
      const li = el("li", { "data-prompt-id": job.id, "data-status": job.status }, ui.list);
      li.textContent = (job.position !== null ? `#${job.position} · ` : "") + phaseSentence(job);
    }
    if (jobs.length > MAX_LIST) el("li", { class: "cw-more" }, ui.list).textContent = `…and ${jobs.length - MAX_LIST} more`;
    ui.list.hidden = jobs.length <= 1;

    ui.root.hidden = jobs.length === 0 && !last.broadcast;
    ui.root.dataset.paused = String(last.paused);

    clearTimeout(expiryTimer);
    expiryTimer = null;
    if (terminalSince.size) {
      const next = Math.min(...terminalSince.values()) + TERMINAL_SHOW_MS - now;
      expiryTimer = setTimeout(safeRender, Math.max(250, next + 50));
    }
  }

  function safeRender() {
    try { render(); } catch (e) { console.warn("[comfy-workshop] render failed", e); }
  }

  return {
    mount() { if (!ui) ui = buildPanel(); safeRender(); },
    update(raw) {
      if (!raw || typeof raw !== "object" || Array.isArray(raw)) return; // keep the last good state
      try { last = normalizeStatus(raw); } catch (e) { console.warn("[comfy-workshop] bad status", e); return; }
      safeRender();
    },
  };
}

function start(api) {
  const ctl = createController();
  ctl.mount();
  let pushes = 0; // a push that arrives while a fetch is in flight wins over the fetch

  async function refresh() {
    const before = pushes;
    try {
      const res = await api.fetchApi("/workshop/status", { cache: "no-store" });
      if (!res || !res.ok) return;
      const data = await res.json();
      if (pushes === before) ctl.update(data);
    } catch (e) {
      console.warn("[comfy-workshop] could not load /workshop/status", e);
    }
  }

  const subscribe = () => subscribeSocket(api);

  api.addEventListener("workshop.status", (e) => { pushes += 1; ctl.update(e?.detail); });
  api.addEventListener("reconnected", () => { subscribe(); refresh(); });
  document.addEventListener("visibilitychange", () => { if (!document.hidden) refresh(); });
  subscribe();
  refresh();
}

await whenReady("comfy.workshop", (app, api) => start(api));
