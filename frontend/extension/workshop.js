// comfy-workshop: shows the participant's place in the shared queue, when their jobs will start
// and finish, the phase of each job and the instructor's broadcast. Plain ES module, no build
// step. Server text is only ever written with textContent. The words come from lib/status.js.

import { el, subscribe as subscribeSocket, whenReady } from "./lib/comfy.js";
import { TERMINAL, jobSentence, normalizeProgress, normalizeStatus, pauseNotice, rank } from "./lib/status.js";

const TERMINAL_SHOW_MS = 15000; // how long done/failed/cancelled stay on screen
const MAX_LIST = 6;
const TICK_MS = 1000; // the times count down between pushes
// The stock "Job queued" banner (QueueNotificationBanner, 1.58) stays 4 s whatever happens to the
// job; while one may be up, our own job states decide whether it still tells the truth.
const ACK_WATCH_MS = 6000;
const ACK_POLL_MS = 150;

function buildPanel() {
  const css = el("link", { rel: "stylesheet", href: new URL("./workshop.css", import.meta.url).href });
  document.head.appendChild(css);
  const root = el("div", { id: "cw-status", "data-testid": "cw-status", role: "status", "aria-live": "polite", hidden: "" });
  const broadcast = el("div", { id: "cw-broadcast", "data-testid": "cw-broadcast", class: "cw-broadcast", hidden: "" }, root);
  const paused = el("div", { id: "cw-paused", "data-testid": "cw-paused", class: "cw-paused", hidden: "" }, root);
  const head = el("div", { class: "cw-head" }, root);
  const posLabel = el("span", { class: "cw-pos-label" }, head);
  const position = el("span", { id: "cw-position", "data-testid": "cw-position", class: "cw-position" }, head);
  const phase = el("div", { id: "cw-phase", "data-testid": "cw-phase", class: "cw-phase" }, root);
  const reason = el("div", { id: "cw-reason", "data-testid": "cw-reason", class: "cw-reason", hidden: "" }, root);
  const bar = el("div", { id: "cw-progress", "data-testid": "cw-progress", class: "cw-progress", hidden: "" }, root);
  const fill = el("div", { class: "cw-progress-fill" }, bar);
  const list = el("ul", { id: "cw-jobs", "data-testid": "cw-jobs", class: "cw-jobs", hidden: "" }, root);
  document.body.appendChild(root);
  return { root, broadcast, paused, head, posLabel, position, phase, reason, bar, fill, list };
}

function createController() {
  let ui = null;
  let last = { jobs: [], broadcast: "", paused: false, userPaused: false };
  let receivedAt = Date.now();
  const terminalSince = new Map(); // prompt_id -> first time seen in a terminal state
  const bestPosition = new Map(); // prompt_id -> the best place it has had (to tell "worse")
  const live = new Map(); // prompt_id -> {value, max} from the stock progress frames
  let expiryTimer = null;
  let ticker = null;
  let frame = 0;

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
    for (const map of [terminalSince, bestPosition, live]) {
      for (const id of map.keys()) if (!seen.has(id)) map.delete(id);
    }
    return out;
  }

  // The reason others go first is shown when the job's place got worse than it has been.
  function worse(job) {
    if (job.status !== "queued" || job.position === null) return false;
    const best = bestPosition.get(job.id);
    if (best === undefined || job.position < best) {
      bestPosition.set(job.id, job.position);
      return false;
    }
    return job.position > best;
  }

  const progressOf = (job) => (job.status === "running" ? live.get(job.id) ?? job.progress : null);

  function render() {
    if (!ui) return;
    const now = Date.now();
    const elapsed = (now - receivedAt) / 1000;
    const jobs = visibleJobs(now).sort((x, y) => rank(x) - rank(y));
    ui.broadcast.textContent = last.broadcast;
    ui.broadcast.hidden = !last.broadcast;
    const notice = jobs.some((j) => !TERMINAL.has(j.status)) ? pauseNotice(last) : "";
    ui.paused.textContent = notice;
    ui.paused.hidden = !notice;

    const waiting = jobs.filter((j) => j.position !== null && (j.status === "queued" || j.status === "held"));
    const first = waiting.length ? waiting.reduce((a, b) => (b.position < a.position ? b : a)) : null;
    ui.position.textContent = first ? `#${first.position} in queue` : "";
    ui.posLabel.textContent = first ? "You are " : "";
    ui.position.title = first ? "Your place in the shared queue (#1 runs next)" : "";
    ui.head.hidden = first === null;

    const main = jobs[0];
    const said = main ? jobSentence(main, { elapsed, withPosition: main !== first, progress: progressOf(main) }) : "";
    ui.phase.textContent = said;
    ui.phase.hidden = !said;
    if (main) ui.phase.dataset.status = main.status; else delete ui.phase.dataset.status;
    const worsened = new Set(jobs.filter(worse).map((j) => j.id));
    ui.reason.textContent = first && worsened.has(first.id) && first.reason ? first.reason : "";
    ui.reason.hidden = !ui.reason.textContent;
    const prog = main ? progressOf(main) : null;
    ui.bar.hidden = !prog;
    ui.fill.style.width = prog ? `${(100 * prog.value) / prog.max}%` : "0%";

    ui.list.replaceChildren();
    for (const job of jobs.length > 1 ? jobs.slice(0, MAX_LIST) : []) {
      const li = el("li", { "data-prompt-id": job.id, "data-status": job.status }, ui.list);
      li.textContent = jobSentence(job, { elapsed, progress: progressOf(job) });
    }
    if (jobs.length > MAX_LIST) el("li", { class: "cw-more" }, ui.list).textContent = `…and ${jobs.length - MAX_LIST} more`;
    ui.list.hidden = jobs.length <= 1;

    ui.root.hidden = jobs.length === 0 && !last.broadcast;
    ui.root.dataset.paused = String(last.paused || last.userPaused);
    schedule(now, jobs);
  }

  function schedule(now, jobs) {
    clearTimeout(expiryTimer);
    expiryTimer = null;
    if (terminalSince.size) {
      const next = Math.min(...terminalSince.values()) + TERMINAL_SHOW_MS - now;
      expiryTimer = setTimeout(safeRender, Math.max(250, next + 50));
    }
    const counting = jobs.some((j) => j.etaStart !== null || j.etaFinish !== null);
    if (counting && !ticker) ticker = setInterval(safeRender, TICK_MS);
    if (!counting && ticker) { clearInterval(ticker); ticker = null; }
  }

  function safeRender() {
    try { render(); } catch (e) { console.warn("[comfy-workshop] render failed", e); }
  }

  return {
    mount() { if (!ui) ui = buildPanel(); safeRender(); },
    get jobs() { return last.jobs; },
    update(raw) {
      if (!raw || typeof raw !== "object" || Array.isArray(raw)) return; // keep the last good state
      try { last = normalizeStatus(raw); } catch (e) { console.warn("[comfy-workshop] bad status", e); return; }
      receivedAt = Date.now();
      safeRender();
    },
    // ComfyUI's own `progress` frame: the value the stock progress line shows, shown here too.
    progress(detail) {
      const id = typeof detail?.prompt_id === "string" ? detail.prompt_id : "";
      const p = normalizeProgress(detail);
      if (!id || !p) return;
      live.set(id, p);
      if (!frame) frame = requestAnimationFrame(() => { frame = 0; safeRender(); });
    },
  };
}

// The stock "Job queued" banner must not outlive the job: once every job that appeared after
// the Run has ended, a banner still acknowledging the Run is hidden (the banner itself is
// the frontend's; its icon tells an acknowledgement from an outcome in any language).
function watchRunAcknowledgement(ctl) {
  const ACK = /lucide--(check|loader-circle)\]/;
  let watch = null;

  function banner() {
    const host = document.querySelector('[data-testid="queue-notification-banner"]');
    if (!host) return null;
    const icon = host.querySelector('[data-testid="notification-icon"]');
    return { host, ack: ACK.test(String(icon?.className ?? "")) };
  }

  function check() {
    const found = banner();
    if (!found || !watch) return;
    const fresh = ctl.jobs.filter((j) => !watch.before.has(j.id));
    const ended = fresh.length > 0 && fresh.every((j) => TERMINAL.has(j.status));
    found.host.classList.toggle("cw-ack-ended", found.ack && ended);
    if (Date.now() > watch.until) stop(found.host);
  }

  function stop(host) {
    clearInterval(watch?.timer);
    watch = null;
    host?.classList.remove("cw-ack-ended");
  }

  // `promptQueueing` comes before the request is sent (frontends that have it), so the jobs
  // known then are surely not the Run's; `promptQueued` comes after the answer, when a push
  // may already have told us of the new job: it starts a watch only where none is running.
  function begin() {
    if (watch) stop(banner()?.host);
    watch = { before: new Set(ctl.jobs.map((j) => j.id)), until: Date.now() + ACK_WATCH_MS };
    watch.timer = setInterval(check, ACK_POLL_MS);
  }
  return {
    queueing: begin,
    queued() { if (!watch) begin(); },
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
  api.addEventListener("progress", (e) => ctl.progress(e?.detail));
  const run = watchRunAcknowledgement(ctl);
  api.addEventListener("promptQueueing", run.queueing);
  api.addEventListener("promptQueued", run.queued);
  api.addEventListener("reconnected", () => { subscribe(); refresh(); });
  document.addEventListener("visibilitychange", () => { if (!document.hidden) refresh(); });
  subscribe();
  refresh();
}

// The stock page redraws its canvas on `executing` and `progress`, not on `executed`: a node's new
// output image is fetched and drawn at the next `executing`, which on ComfyUI follows at once but
// here comes only once the worker has finished the job (history read, outcome reported). Redraw
// when an output arrives, so the image is fetched as soon as it is stored.
function drawOutputsAtOnce(app, api) {
  api.addEventListener("executed", () => {
    try { app?.canvas?.setDirty(true, false); } catch (e) { console.warn("[comfy-workshop] redraw failed", e); }
  });
}

await whenReady("comfy.workshop", (app, api) => {
  drawOutputsAtOnce(app, api);
  start(api);
});
