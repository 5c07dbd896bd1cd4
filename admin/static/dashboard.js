// Comfy Workshop: the instructor's live dashboard. Plain ES module, no build step.
// Every string from the server is written with textContent (never innerHTML).
// The `/admin/ws` socket is the source: `state` messages are the truth, `job.progress` and
// `job.preview` events refresh the running rows in between. It reconnects with backoff
// (0.5 s doubling to 5 s); while it cannot open, `/admin/api/state` is polled every 2 s.

import { API, arr, h, num, obj } from "./ui.js";

const LANES = ["instructor", "high", "normal", "low"];
const TERMINAL = new Set(["completed", "failed", "cancelled"]);
const HEARTBEAT_WARN_S = 15;
const POLL_MS = 2000;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 5000;

// ---------- small helpers ----------
const $ = (id) => document.getElementById(id);
const byTestId = (id) => document.querySelector(`[data-testid="${id}"]`);
// Objects are shown as JSON here (a worker's info, a structured error).
const str = (x) => (x == null ? "" : typeof x === "object" ? JSON.stringify(x) : String(x));
const path = (x) => encodeURIComponent(str(x));

/** Set text only when it changed (keeps the DOM quiet at two states per second). */
function text(el, value) {
  const t = str(value);
  if (el.textContent !== t) el.textContent = t;
}

function fmtDur(s, fine = false) {
  s = num(s);
  if (s == null) return "–";
  s = Math.max(0, s);
  if (fine && s < 10) return `${s.toFixed(1)} s`;
  if (s < 60) return `${Math.floor(s)} s`;
  if (s < 600) return `${Math.floor(s / 60)} min ${Math.floor(s % 60)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d`;
}

const clock = (t) => (num(t) == null ? "–" : new Date(t * 1000).toLocaleTimeString([], { hour12: false }));
const gib = (b) => (num(b) == null ? "?" : (b / 2 ** 30).toFixed(1));
const limitText = (n) => (num(n) == null ? "–" : n < 0 ? "∞" : String(n));
// "cuda:0 NVIDIA H100 80GB HBM3 : cudaMallocAsync" -> "NVIDIA H100 80GB HBM3"
const gpuName = (n) => str(n).replace(/^\S+:\d+\s+/, "").replace(/\s+:\s+\S+$/, "");
const where = (e) => [e.node_type, e.node_id != null ? `#${str(e.node_id)}` : ""].filter(Boolean).map(str).join(" ");

// ---------- time: the server clock of the last state plus local elapsed time ----------
let state = null, stateAt = 0;
const serverNow = () => (num(state?.now) ?? Date.now() / 1000) + (performance.now() - stateAt) / 1000;

/** Show "how long since t" in el; the ticker refreshes it every second. */
function since(el, t, warnAfter = 0) {
  if (num(t) == null) {
    delete el.dataset.since;
    el.classList.remove("warn");
    return text(el, "–");
  }
  el.dataset.since = String(t);
  if (warnAfter) el.dataset.warnAfter = String(warnAfter);
  tick(el);
}
function tick(el) {
  const age = serverNow() - Number(el.dataset.since);
  text(el, fmtDur(age));
  if (el.dataset.warnAfter) el.classList.toggle("warn", age > Number(el.dataset.warnAfter));
}
setInterval(() => document.querySelectorAll("[data-since]").forEach(tick), 1000);

function toast(message, kind = "ok") {
  const el = h("div", { class: `toast ${kind}`, role: kind === "bad" ? "alert" : "status" }, str(message));
  $("toasts").append(el);
  setTimeout(() => el.remove(), kind === "bad" ? 6000 : 2500);
}

// ---------- keyed rows: reused between states, so focused inputs and selects survive ----------
function sync(tbody, items, key, create, update) {
  const old = new Map([...tbody.children].map((r) => [r.dataset.key, r]));
  let prev = null;
  for (const item of items) {
    const k = str(key(item));
    let row = old.get(k);
    if (row) old.delete(k);
    else (row = create()).dataset.key = k;
    update(row, item, row._c);
    const want = prev ? prev.nextSibling : tbody.firstChild;
    if (row !== want) tbody.insertBefore(row, want);
    prev = row;
  }
  for (const row of old.values()) row.remove();
}

/** A row from "name:class.class name ..." with its cells in row._c. */
function makeRow(spec, props = {}) {
  const row = h("tr", props);
  row._c = {};
  for (const part of spec.split(" ")) {
    const [name, cls] = part.split(":");
    row.append((row._c[name] = h("td", { class: cls?.replaceAll(".", " ") })));
  }
  return row;
}

// Job ids are UUIDs: tables show their first 8 characters, the title and the timeline all of it.
const shortId = (id) => (str(id).length > 12 ? str(id).slice(0, 8) : str(id));
const jobLink = (id) =>
  h("button", { type: "button", class: "jid", data: { openJob: id }, title: `${str(id)} (timeline)` }, shortId(id));
function linkTo(cell, id) {
  if (cell.firstChild?.dataset?.openJob !== str(id)) cell.replaceChildren(jobLink(id));
}
const btn = (action, label, cls = "") => h("button", { type: "button", class: `btn sm ${cls}`, data: { action } }, label);

// ---------- header ----------
function renderHeader(s) {
  const paused = s.paused === true;
  document.body.classList.toggle("paused", paused);
  const room = $("room-status");
  text(room, paused ? "PAUSED" : "RUNNING");
  room.className = `room ${paused ? "bad" : "ok"}`;
  room.title = paused ? "No new jobs start; running jobs finish" : "Jobs are handed to workers";
  byTestId("pause-btn").hidden = paused;
  byTestId("resume-btn").hidden = !paused;
  text($("mode"), `mode: ${str(s.mode) || "?"}`);
  const lim = obj(s.limits);
  text($("room-limits"), `default limits: ${limitText(lim.max_queued)} queued · ${limitText(lim.max_running)} running`);
  const msg = str(s.broadcast);
  $("broadcast-current").hidden = !msg;
  text($("broadcast-current"), msg ? `Broadcasting: ${msg}` : "");
}

// ---------- running ----------
function createRunning() {
  const row = makeRow("job user:user worker elapsed:num prog:prog preview:pv act:act");
  const c = row._c;
  c.bar = h("div", { class: "bar" }, h("div", { class: "fill" }));
  c.ptext = h("span", { class: "ptext" });
  c.node = h("div", { class: "node muted" });
  c.prog.append(h("div", { class: "pline" }, c.bar, c.ptext), c.node);
  c.img = h("img", { alt: "preview", hidden: true });
  c.img.onerror = () => { c.img.hidden = true; };
  c.img.onload = () => { c.img.hidden = false; };
  c.preview.append(c.img);
  c.act.append(btn("cancel", "Cancel", "danger"));
  return row;
}

function setProgress(c, progress, node) {
  const p = obj(progress);
  const value = num(p.value), max = num(p.max);
  const known = value != null && !!max;
  c.bar.firstChild.style.width = `${known ? Math.max(0, Math.min(100, (100 * value) / max)) : 0}%`;
  c.bar.classList.toggle("idle", !known);
  text(c.ptext, known ? `${value}/${max}` : "");
  if (node !== undefined) text(c.node, node ? `node ${str(node)}` : "");
}

let previewTick = 0;
const refreshPreview = (c, id) => { c.img.src = `${API}/jobs/${path(id)}/preview?t=${++previewTick}`; };

function updateRunning(row, j, c) {
  row.dataset.jobId = str(j.id);
  row.className = `lane-${str(j.lane)}`;
  linkTo(c.job, j.id);
  text(c.user, j.user);
  const attempt = num(j.attempt);
  text(c.worker, `${str(j.worker) || "–"}${attempt > 1 ? ` (try ${attempt})` : ""}`);
  since(c.elapsed, num(j.started_at) ?? num(j.claimed_at));
  c.elapsed.title = num(j.started_at) == null ? str(j.phase) || "claimed, not started yet" : "since it started";
  setProgress(c, j.progress, j.node);
  if (num(j.started_at) == null && str(j.phase)) text(c.node, str(j.phase).startsWith("next") ? "next on GPU" : str(j.phase));
  const left = num(j.eta_finish);
  c.elapsed.dataset.left = left == null ? "" : `about ${fmtDur(left)} left`;
  c.elapsed.title = [c.elapsed.title, c.elapsed.dataset.left].filter(Boolean).join(" · ");
  if (j.has_preview === true && !c.img.getAttribute("src")) refreshPreview(c, j.id);
}

// ---------- queue ----------
let queueFilter = null; // show one user's jobs only, or everyone's (null)
let usersByName = new Map();

function whyWaiting(s, j) {
  if (j.hold) return ["bad", str(j.hold)];
  if (s.paused === true) return ["warn", "queue paused"];
  if (num(j.position) != null) return ["ok", j.position === 1 ? "next" : ""];
  const u = usersByName.get(str(j.user));
  if (u?.paused === true) return ["warn", "user paused"];
  const maxRunning = num(u?.max_running) ?? num(obj(s.limits).max_running);
  if (u && maxRunning != null && maxRunning >= 0 && (num(u.running) ?? 0) >= maxRunning) {
    return ["muted", "at running limit"];
  }
  return ["muted", "not claimable now"];
}

function createQueued() {
  const row = makeRow("pos:num.pos job user:user lane age:num eta:num.eta why:why act:act");
  const c = row._c;
  const options = LANES.map((l) => h("option", { value: l }, l));
  c.select = h("select", { class: "lane-select", data: { action: "priority" }, "aria-label": "Priority" }, ...options);
  c.select.title = "Change priority";
  c.lane.append(c.select);
  c.act.append(btn("front", "To front"), " ", btn("cancel", "Cancel", "danger"));
  return row;
}

function updateQueued(row, j, c) {
  row.dataset.jobId = str(j.id);
  row.className = `lane-${str(j.lane)}`;
  row.hidden = queueFilter != null && str(j.user) !== queueFilter;
  const pos = num(j.position);
  text(c.pos, pos == null ? "—" : `#${pos}`);
  c.pos.title = `${pos == null ? "not claimable now" : pos === 1 ? "runs next" : ""}${j.front ? " (moved to the front)" : ""}`;
  c.pos.classList.toggle("front", j.front === true);
  linkTo(c.job, j.id);
  text(c.user, j.user);
  c.select.dataset.current = str(j.lane);
  if (document.activeElement !== c.select) c.select.value = str(j.lane);
  since(c.age, j.created_at);
  showEta(c.eta, j, state?.paused === true);
  const [cls, why] = whyWaiting(state, j);
  text(c.why, why);
  c.why.className = `why ${cls}`;
  c.why.title = why;
}

// "in 40 s" (or "40 s after resume" while the queue is paused); the finish in the title. Times are
// seconds from the state's `now`: the estimate is as old as the state, at most a second or two.
function showEta(cell, j, paused) {
  const start = num(j.eta_start), finish = num(j.eta_finish);
  if (start == null) {
    text(cell, "–");
    cell.title = "no GPU will take it now (held, paused user, or no worker)";
    return;
  }
  text(cell, paused ? `${fmtDur(start)} after resume` : start < 1 ? "now" : `in ${fmtDur(start)}`);
  cell.title = finish == null ? "" : `estimated to finish ${paused ? `${fmtDur(finish)} after resume` : `in ${fmtDur(finish)}`}`;
}

function renderChips(s) {
  const lanes = obj(s.lanes);
  $("lane-chips").replaceChildren(...LANES.map((l) =>
    h("span", { class: `chip lane-${l}`, title: `queued in the ${l} lane` }, `${l} ${num(lanes[l]) ?? 0}`)));
  const per = new Map();
  for (const j of arr(s.queue)) per.set(str(obj(j).user), (per.get(str(obj(j).user)) ?? 0) + 1);
  if (queueFilter != null && !per.has(queueFilter)) queueFilter = null;
  const chips = [...per].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([u, n]) => {
    const on = u === queueFilter;
    const title = on ? "Show everyone" : `Show only ${u}`;
    return h("button", { type: "button", class: `chip user-chip${on ? " on" : ""}`, data: { filterUser: u }, title }, `${u} ${n}`);
  });
  $("user-chips").replaceChildren(...(chips.length ? [h("span", { class: "muted" }, "by user:"), ...chips] : []));
}

// ---------- workers ----------
function createWorker() {
  const row = makeRow("id state job beat:num gpu:gpu vram:num counts:num act:act");
  const c = row._c;
  c.name = h("div", { class: "strong" });
  c.sub = h("div", { class: "muted small" });
  c.id.append(c.name, c.sub);
  c.state.append((c.badge = h("span", { class: "badge" })));
  c.drain = btn("drain", "Drain");
  c.drain.title = "Finish the current job, then take no more";
  c.undrain = btn("undrain", "Undrain", "ok");
  c.undrain.title = "Take jobs again";
  c.act.append(c.drain, c.undrain, " ", btn("remove", "Remove", "danger"));
  return row;
}

function updateWorker(row, w, c) {
  const info = obj(w.info);
  row.dataset.workerId = str(w.id);
  text(c.name, w.id);
  const name = info.name && str(info.name) !== str(w.id) ? str(info.name) : "";
  text(c.sub, [name, info.comfyui_version ? `ComfyUI ${str(info.comfyui_version)}` : ""].filter(Boolean).join(" · "));
  const st = str(w.state) || "unknown";
  text(c.badge, st);
  c.badge.className = `badge st-${st}`;
  c.job.title = w.next ? `next on this GPU (waiting in its ComfyUI's queue): ${str(w.next)}` : "";
  if (w.job) linkTo(c.job, w.job);
  else if (c.job.textContent !== "idle") c.job.replaceChildren(h("span", { class: "muted" }, "idle"));
  const age = num(w.heartbeat_age);
  since(c.beat, age == null ? null : num(state?.now) - age, HEARTBEAT_WARN_S);
  const devices = arr(info.devices).map(obj);
  text(c.gpu, devices.map((d) => gpuName(d.name) || str(d.type) || "?").join("\n") || "–");
  c.gpu.title = devices.map((d) => str(d.name)).join("\n");
  text(c.vram, devices.map((d) => {
    const total = num(d.vram_total), free = num(d.vram_free);
    return total == null ? "–" : `${free == null ? "?" : gib(total - free)} / ${gib(total)} GiB`;
  }).join("\n") || "–");
  text(c.counts, `${num(w.done) ?? 0} / ${num(w.failed) ?? 0}`);
  c.counts.classList.toggle("bad", (num(w.failed) ?? 0) > 0);
  c.drain.hidden = st === "draining";
  c.drain.disabled = st !== "online";
  c.undrain.hidden = st !== "draining";
}

// ---------- push endpoints ----------
function createEndpoint() {
  const row = makeRow("id state running:num cold:num since:num act:act");
  const c = row._c;
  c.name = h("div", { class: "strong" });
  c.sub = h("div", { class: "muted small" });
  c.id.append(c.name, c.sub);
  c.badge = h("span", { class: "badge" });
  c.reason = h("div", { class: "muted small" });
  c.state.append(c.badge, c.reason);
  c.act.append(btn("remove-endpoint", "Remove", "danger"));
  return row;
}

function updateEndpoint(row, e, c) {
  row.dataset.endpoint = str(e.name);
  text(c.name, e.name);
  text(c.sub, `${str(e.kind)} · ${str(e.url)}${num(e.prefetch) ? " · next waits" : ""}`);
  const st = str(e.state) || "cold";
  text(c.badge, st);
  c.badge.className = `badge st-${st}`;
  text(c.reason, str(e.reason));
  text(c.running, `${num(e.running) ?? 0} / ${num(e.slots) ?? 1}`);
  const last = num(e.last_cold_start), typical = num(e.typical_cold_start);
  text(c.cold, last == null ? "–" : `last ${Math.round(last)} s · usually ${Math.round(typical ?? last)} s`);
  since(c.since, num(e.since) || null);
}

// ---------- users ----------
function limitInput(field, label) {
  const title = `${label} (empty = room default, -1 = no limit)`;
  const el = h("input", { type: "number", min: "-1", step: "1", class: "lim", data: { field }, "aria-label": label, title });
  el.addEventListener("input", () => { el.dataset.dirty = "1"; });
  return el;
}

function createUser() {
  const row = makeRow("user:user queued:num running:num completed:num failed:num cancelled:num avg:num last:num "
    + "limits:limits act:act");
  const c = row._c;
  c.name = h("span", { class: "strong" });
  c.role = h("span", { class: "badge role", hidden: true }, "instructor");
  c.pausedTag = h("span", { class: "badge st-paused", hidden: true }, "paused");
  c.user.append(c.name, " ", c.role, " ", c.pausedTag);
  c.q = limitInput("max_queued", "max queued");
  c.r = limitInput("max_running", "max running");
  c.limits.append(c.q, c.r, btn("save-limits", "Save"), btn("default-limits", "default", "ghost"));
  c.act.append((c.toggle = btn("pause-user", "Pause")), " ", btn("sign-out-user", "Sign out", "ghost"));
  return row;
}

function updateUser(row, u, c) {
  const paused = u.paused === true;
  row.dataset.user = str(u.user);
  row.classList.toggle("is-paused", paused);
  text(c.name, u.user);
  c.user.title = str(u.user);
  c.role.hidden = u.role !== "instructor";
  c.pausedTag.hidden = !paused;
  for (const k of ["queued", "running", "completed", "failed", "cancelled"]) text(c[k], num(u[k]) ?? 0);
  c.failed.classList.toggle("bad", (num(u.failed) ?? 0) > 0);
  c.running.classList.toggle("ok", (num(u.running) ?? 0) > 0);
  text(c.avg, fmtDur(u.avg_wait, true));
  text(c.last, fmtDur(u.last_wait, true));
  const lim = obj(state?.limits);
  for (const [el, field] of [[c.q, "max_queued"], [c.r, "max_running"]]) {
    el.placeholder = limitText(lim[field]);
    if (document.activeElement !== el && !el.dataset.dirty) el.value = num(u[field]) == null ? "" : String(u[field]);
  }
  c.toggle.dataset.action = paused ? "resume-user" : "pause-user";
  text(c.toggle, paused ? "Resume" : "Pause");
  c.toggle.classList.toggle("ok", paused);
}

// ---------- failures ----------
function createFailure() {
  const row = makeRow("when:num job:jid-text user:user worker err:err", { class: "clickable", title: "Show timeline" });
  const c = row._c;
  c.etype = h("span", { class: "etype" });
  c.enode = h("span", { class: "muted" });
  c.emsg = h("div", { class: "emsg" });
  c.err.append(c.etype, " ", c.enode, c.emsg);
  return row;
}

function updateFailure(row, f, c) {
  const e = obj(f.error);
  row.dataset.jobId = str(f.id);
  row.dataset.openJob = str(f.id);
  since(c.when, f.finished_at);
  text(c.job, shortId(f.id));
  c.job.title = str(f.id);
  text(c.user, f.user);
  text(c.worker, str(f.worker) || "–");
  text(c.etype, str(e.type) || "error");
  text(c.enode, where(e) ? `at ${where(e)}` : "");
  text(c.emsg, e.message);
  c.emsg.title = str(e.message);
}

// ---------- the whole state ----------
function applyState(s) {
  if (!s || typeof s !== "object") return;
  state = s;
  stateAt = performance.now();
  const list = (k) => arr(s[k]).map(obj);
  usersByName = new Map(list("users").map((u) => [str(u.user), u]));
  renderHeader(s);
  const section = (name, items, key, create, update, count = items.length) => {
    sync($(`${name}-list`), items, key, create, update);
    $(`${name}-empty`).hidden = items.length > 0;
    text($(`${name}-count`), count);
  };
  section("running", list("running"), (j) => j.id, createRunning, updateRunning);
  renderChips(s);
  section("queue", list("queue"), (j) => j.id, createQueued, updateQueued);
  const workers = list("workers");
  const online = workers.filter((w) => w.state === "online").length;
  section("workers", workers, (w) => w.id, createWorker, updateWorker, `${online} online / ${workers.length}`);
  const endpoints = list("endpoints");
  const ready = endpoints.filter((e) => e.state === "ready" || e.state === "busy").length;
  section("endpoints", endpoints, (e) => e.name, createEndpoint, updateEndpoint, `${ready} up / ${endpoints.length}`);
  section("users", list("users"), (u) => u.user, createUser, updateUser);
  section("failures", list("failures"), (f) => `${str(f.id)}@${str(f.finished_at)}`, createFailure, updateFailure);
  if (timelineJob && performance.now() - timelineFetchedAt > 1500 && !TERMINAL.has(timelineStatus)) loadTimeline();
}

function onEvent(ev) {
  ev = obj(ev);
  const id = str(ev.job);
  if (!id) return;
  const row = [...$("running-list").children].find((r) => r.dataset.jobId === id);
  const d = obj(ev.data);
  if (row && ev.type === "job.progress") setProgress(row._c, d, d.node);
  else if (row && ev.type === "job.preview") refreshPreview(row._c, id);
  else if (id === timelineJob) loadTimeline();
}

// ---------- timeline panel ----------
let timelineJob = null, timelineStatus = "", timelineFetchedAt = 0, timelineSeq = 0;

function openTimeline(id) {
  timelineJob = str(id);
  timelineStatus = "";
  text($("tl-title"), `Job ${timelineJob}`);
  $("tl-body").replaceChildren(h("p", { class: "muted" }, "Loading…"));
  $("timeline").hidden = false;
  loadTimeline();
}

const closeTimeline = () => { timelineJob = null; $("timeline").hidden = true; };

async function loadTimeline() {
  const id = timelineJob;
  const seq = ++timelineSeq;
  timelineFetchedAt = performance.now();
  let body;
  try {
    const r = await fetch(`${API}/jobs/${path(id)}`, { credentials: "same-origin", cache: "no-store" });
    body = r.ok ? await r.json() : { _error: r.status === 404 ? "Job not found (unknown or expired)." : `HTTP ${r.status}` };
  } catch {
    body = { _error: "Network error." };
  }
  if (seq === timelineSeq && id === timelineJob) renderTimeline(obj(body)); // else a newer request won
}

function renderTimeline(j) {
  const out = $("tl-body");
  if (j._error) return out.replaceChildren(h("p", { class: "bad" }, j._error));
  timelineStatus = str(j.status);
  const dl = h("dl", { class: "facts" });
  const fact = (k, v) => { if (v != null && v !== "") dl.append(h("dt", {}, k), h("dd", {}, str(v))); };
  for (const k of ["status", "user", "lane", "worker", "attempts", "seq"]) fact(k, j[k]);
  for (const k of ["created_at", "claimed_at", "started_at", "finished_at"]) {
    if (num(j[k]) != null) fact(k.replace("_at", ""), `${clock(j[k])} (${fmtDur(serverNow() - j[k])} ago)`);
  }
  const p = obj(j.progress);
  if (num(p.max)) fact("progress", `${num(p.value) ?? 0}/${p.max}${p.node ? ` · node ${str(p.node)}` : ""}`);
  fact("hold", j.hold);
  const parts = [h("span", { class: `badge st-${timelineStatus}` }, timelineStatus || "?"), dl];
  if (j.error) {
    const e = obj(j.error);
    const head = `${str(e.type) || "error"}${where(e) ? ` at ${where(e)}` : ""}`;
    parts.push(h("div", { class: "errbox" }, h("div", { class: "etype" }, head), h("div", { class: "emsg full" }, str(e.message))));
  }
  const outputs = arr(j.outputs).map(obj);
  if (outputs.length) {
    const item = (o) => h("li", {}, [o.subfolder, o.filename].filter(Boolean).map(str).join("/"), " ", h("span",
      { class: "muted" }, [o.type, o.media, o.node_id != null ? `node ${str(o.node_id)}` : ""].filter(Boolean).map(str).join(" · ")));
    parts.push(h("h3", {}, `Outputs (${outputs.length})`), h("ul", { class: "outputs" }, ...outputs.map(item)));
  }
  const entries = arr(j.timeline).map(obj);
  const t0 = num(j.created_at) ?? num(entries[0]?.at);
  const head = h("tr", {}, ...["Time", "+", "Change", "Worker", "Reason"].map((t) => h("th", {}, t)));
  const line = (t) => h("tr", { class: `to-${str(t.to)}` },
    h("td", { class: "num" }, clock(t.at)),
    h("td", { class: "num muted" }, t0 != null && num(t.at) != null ? fmtDur(t.at - t0, true) : ""),
    h("td", {}, `${str(t.from) || "∅"} → ${str(t.to)}`),
    h("td", {}, `${str(t.worker) || "–"}${num(t.attempt) ? ` #${t.attempt}` : ""}`),
    h("td", { class: "reason" }, str(t.reason)));
  parts.push(h("h3", {}, `Timeline (${entries.length})`),
    h("table", { class: "grid tl" }, h("thead", {}, head), h("tbody", {}, ...entries.map(line))));
  out.replaceChildren(...parts);
}

// ---------- controls ----------
async function api(method, url, body) {
  const init = { method, credentials: "same-origin" };
  if (body !== undefined) Object.assign(init, { headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  let r;
  try {
    r = await fetch(`${API}${url}`, init);
  } catch {
    toast("Network error: the request was not sent.", "bad");
    return false;
  }
  if (r.ok) {
    if (!wsLive) poll(); // no socket to tell us: fetch the new state now
    return true;
  }
  let msg = `${r.status} ${r.statusText}`.trim();
  try {
    const j = obj(await r.json());
    const d = j.detail; // FastAPI's own refusals (validation: a list of {msg})
    msg = str(obj(j.error).message) || (typeof d === "string" ? d : str(obj(arr(d)[0]).msg)) || msg;
  } catch { /* not JSON */ }
  toast(msg, "bad");
  return false;
}

// empty = room default (null); a whole number >= -1; anything else is refused (undefined)
const readLimit = (raw, n = Number(raw)) => (raw.trim() === "" ? null : Number.isInteger(n) && n >= -1 ? n : undefined);

async function act(action, el) {
  const jobId = el.closest("[data-job-id]")?.dataset.jobId;
  const workerId = el.closest("[data-worker-id]")?.dataset.workerId;
  const userRow = el.closest("[data-user]");
  const user = userRow?.dataset.user;
  const done = (ok, message) => ok && toast(message);
  switch (action) {
    case "pause-queue": return done(await api("POST", "/queue/pause"), "Queue paused");
    case "resume-queue": return done(await api("POST", "/queue/resume"), "Queue resumed");
    case "cancel": return jobId && done(await api("POST", `/jobs/${path(jobId)}/cancel`), `Cancelled ${shortId(jobId)}`);
    case "front": return jobId && done(await api("POST", `/jobs/${path(jobId)}/front`), `${shortId(jobId)} moved to the front`);
    case "drain": return workerId && done(await api("POST", `/workers/${path(workerId)}/drain`), `Draining ${workerId}`);
    case "undrain": return workerId && done(await api("POST", `/workers/${path(workerId)}/resume`), `${workerId} takes jobs again`);
    case "remove-endpoint": {
      const name = el.closest("[data-endpoint]")?.dataset.endpoint;
      if (!name || !window.confirm(`Remove endpoint ${name}? Its running jobs go back to the queue.`)) return;
      return done(await api("DELETE", `/endpoints/${path(name)}`), `Removed endpoint ${name}`);
    }
    case "remove":
      if (!workerId || !window.confirm(`Remove worker ${workerId}? Its running job goes back to the queue.`)) return;
      return done(await api("DELETE", `/workers/${path(workerId)}`), `Removed ${workerId}`);
    case "pause-user":
    case "resume-user": {
      const paused = action === "pause-user";
      return user && done(await api("POST", `/users/${path(user)}/pause`, { paused }), `${user} ${paused ? "paused" : "resumed"}`);
    }
    case "sign-out-user":
      if (!user || !window.confirm(`Sign ${user} out everywhere? Their open pages stop until they log in again.`)) return;
      return done(await api("POST", `/users/${path(user)}/sign-out`), `${user} signed out everywhere`);
    case "sign-out-room":
      if (!window.confirm("Sign out every participant? Their open pages stop until they log in again. You stay signed in.")) return;
      return done(await api("POST", "/sessions/sign-out"), "Every participant signed out");
    case "save-limits":
    case "default-limits": {
      if (!user) return;
      const inputs = [...userRow.querySelectorAll("input.lim")];
      const [q, r] = inputs.map((i) => readLimit(i.value));
      const body = action === "default-limits" ? { max_queued: null, max_running: null } : { max_queued: q, max_running: r };
      if (body.max_queued === undefined || body.max_running === undefined) {
        return toast("Limits are whole numbers: empty = room default, -1 = no limit.", "bad");
      }
      if (!(await api("PUT", `/users/${path(user)}/limits`, body))) return;
      for (const input of inputs) {
        delete input.dataset.dirty;
        if (action === "default-limits") input.value = "";
      }
      return toast(`Limits saved for ${user}`);
    }
    case "broadcast-clear":
      if (!(await api("POST", "/broadcast", { message: "" }))) return;
      $("broadcast-input").value = "";
      return toast("Broadcast cleared");
    case "close-timeline": return closeTimeline();
    default: return undefined;
  }
}

document.addEventListener("click", async (e) => {
  const t = e.target instanceof Element ? e.target : null;
  const chip = t?.closest("[data-filter-user]");
  if (chip) {
    queueFilter = queueFilter === chip.dataset.filterUser ? null : chip.dataset.filterUser;
    return state && applyState(state);
  }
  const b = t?.closest("button[data-action]");
  if (b && !b.disabled) {
    b.disabled = true;
    try { await act(b.dataset.action, b); } finally { b.disabled = false; }
    return;
  }
  const open = t?.closest("[data-open-job]");
  if (open) openTimeline(open.dataset.openJob);
});

document.addEventListener("change", async (e) => {
  const sel = e.target instanceof Element ? e.target.closest('select[data-action="priority"]') : null;
  const jobId = sel?.closest("[data-job-id]")?.dataset.jobId;
  if (!sel || !jobId) return;
  const priority = sel.value;
  sel.disabled = true;
  const ok = await api("POST", `/jobs/${path(jobId)}/priority`, { priority });
  sel.disabled = false;
  if (ok) toast(`${shortId(jobId)} → ${priority}`);
  else sel.value = sel.dataset.current ?? sel.value;
  sel.blur();
});

document.addEventListener("keydown", (e) => {
  if (e.key === "Escape" && timelineJob) closeTimeline();
  if (e.key === "Enter" && e.target instanceof HTMLInputElement && e.target.classList.contains("lim")) {
    e.target.closest("tr")?.querySelector('[data-action="save-limits"]')?.click();
  }
});

$("endpoint-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = e.currentTarget;
  const f = Object.fromEntries(new FormData(form));
  const body = { url: str(f.url).trim(), kind: str(f.kind), slots: Number(f.slots) || 1 };
  if (str(f.header).trim()) body.headers = [str(f.header).trim()];
  if (str(f.outputs).trim()) body.outputs = str(f.outputs).trim();
  if (f.prefetch) body.prefetch = 1;
  const name = str(f.name).trim();
  if (await api("PUT", `/endpoints/${path(name)}`, body)) {
    form.reset();
    toast(`Endpoint ${name} added: it starts taking jobs within seconds`);
  }
});

$("broadcast-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const input = $("broadcast-input");
  const message = input.value.trim();
  if (!message) return toast("Type a message first (Clear removes the current one).", "bad");
  const send = byTestId("broadcast-send");
  send.disabled = true;
  try {
    if (await api("POST", "/broadcast", { message })) {
      if (input.value.trim() === message) input.value = "";
      toast("Broadcast sent");
    }
  } finally {
    send.disabled = false;
  }
});

// ---------- connection: the socket first, polling while it cannot open ----------
let ws = null, wsLive = false, backoff = BACKOFF_MIN_MS, pollTimer = null;

const setConn = (kind, label) => { $("conn-status").className = `conn ${kind}`; text($("conn-status"), label); };

async function poll() {
  try {
    const r = await fetch(`${API}/state`, { credentials: "same-origin", cache: "no-store" });
    if (r.status === 401 || r.status === 403) return setConn("bad", "signed out — reload");
    if (!r.ok) throw new Error(String(r.status));
    const s = await r.json();
    if (wsLive) return; // the socket is the truth again
    applyState(s);
    if (pollTimer) setConn("warn", "polling · reconnecting…");
  } catch {
    if (!wsLive) setConn("bad", "offline · reconnecting…");
  }
}

function startPolling() {
  if (!pollTimer) poll();
  pollTimer ??= setInterval(poll, POLL_MS);
}

function connect() {
  const url = `${location.protocol === "https:" ? "wss://" : "ws://"}${location.host}/admin/ws`;
  let sock;
  try {
    sock = new WebSocket(url);
  } catch {
    return lost(false);
  }
  ws = sock;
  let opened = false;
  sock.onopen = () => {
    opened = wsLive = true;
    clearInterval(pollTimer);
    pollTimer = null;
    setConn("ok", "live");
  };
  sock.onmessage = (m) => {
    let msg;
    try { msg = JSON.parse(m.data); } catch { return; }
    backoff = BACKOFF_MIN_MS; // only a socket that delivers resets the backoff
    if (msg?.type === "state") applyState(msg.data);
    else if (msg?.type === "event") onEvent(msg.data);
    document.dispatchEvent(new CustomEvent("cw:frame", { detail: msg })); // for gallery.js
  };
  sock.onclose = () => {
    if (ws !== sock) return;
    ws = null;
    wsLive = false;
    lost(opened);
  };
}

function lost(hadOpened) {
  if (!hadOpened) startPolling(); // it could not even open: poll until it can
  setConn("warn", pollTimer ? "polling · reconnecting…" : "reconnecting…");
  setTimeout(connect, backoff);
  backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
}

connect();
