// The workshop panel's words, from the parts the server sends (`workshop.status`). Pure: no DOM,
// no clock of its own; `workshop.js` renders what these return. Each sentence is built once
// from its parts: the worker is named once, "Done" is said once, a pause is said once (by the
// panel's notice, never by each job), and the position is said where the caller asks for it.

import { int, str } from "./comfy.js";

export const TERMINAL = new Set(["completed", "failed", "cancelled"]);
const ACTIVE = ["copying", "running", "starting"]; // most interesting first
const KNOWN = new Set([...ACTIVE, "queued", "held", ...TERMINAL]);
const WAITS = new Set(["paused", "user_paused", "own_job"]);

const num = (v) => (typeof v === "number" && Number.isFinite(v) ? v : null);

export function normalizeJob(raw) {
  if (!raw || typeof raw !== "object") return null;
  const id = str(raw.prompt_id, 200);
  if (!id) return null;
  const status = KNOWN.has(raw.status) ? raw.status : "queued";
  const pos = int(raw.position);
  return {
    id,
    status,
    position: pos !== null && pos > 0 ? pos : null,
    detail: str(raw.detail),
    worker: str(raw.worker, 200) || null,
    progress: normalizeProgress(raw.progress),
    wait: WAITS.has(raw.wait) ? raw.wait : null,
    reason: str(raw.reason) || null,
    etaStart: num(raw.eta_start),
    etaFinish: num(raw.eta_finish),
  };
}

export function normalizeProgress(raw) {
  if (!raw || typeof raw !== "object") return null;
  const value = int(raw.value), max = int(raw.max);
  if (value === null || max === null || max <= 0) return null;
  return { value: Math.max(0, Math.min(value, max)), max };
}

export function normalizeStatus(raw) {
  const data = raw && typeof raw === "object" ? raw : {};
  const jobs = Array.isArray(data.jobs) ? data.jobs.map(normalizeJob).filter(Boolean) : [];
  return {
    jobs,
    broadcast: str(data.broadcast, 2000).trim(),
    paused: data.paused === true,
    userPaused: data.user_paused === true,
  };
}

// The most interesting job first: one being worked on, then the next to run, then the ended.
export function rank(job) {
  const a = ACTIVE.indexOf(job.status);
  if (a >= 0) return a;
  if (job.status === "queued" || job.status === "held") return 10 + (job.position ?? 1e6) / 1e7;
  return 20;
}

// "about 40 s": rounded the way a person says it (to 5 s, then to minutes).
export function about(seconds) {
  const s = num(seconds);
  if (s === null) return "";
  if (s < 5) return "a few seconds";
  if (s < 57.5) return `about ${Math.max(5, Math.round(s / 5) * 5)} s`;
  if (s < 90) return "about 1 min";
  const minutes = Math.round(s / 60);
  if (minutes < 60) return `about ${minutes} min`;
  const h = Math.floor(minutes / 60), m = minutes % 60;
  return m ? `about ${h} h ${m} min` : `about ${h} h`;
}

export const positionText = (position) => (position === 1 ? "Next to run" : `#${position} in the queue`);

export function progressText(progress) {
  if (!progress) return "";
  return `${Math.round((100 * progress.value) / progress.max)}% (${progress.value}/${progress.max})`;
}

// Seconds still to go, `elapsed` seconds after the status was received (never below zero).
const left = (eta, elapsed) => (eta === null ? null : Math.max(0, eta - elapsed));

function times(job, elapsed) {
  const start = left(job.etaStart, elapsed), finish = left(job.etaFinish, elapsed);
  const parts = [];
  if (start !== null) parts.push(start < 5 ? "starts in a few seconds" : `starts in ${about(start)}`);
  if (finish !== null) parts.push(`done in ${about(finish)}`);
  return parts.join(", ");
}

const capital = (s) => (s ? s[0].toUpperCase() + s.slice(1) : s);

// One job's sentence. `withPosition`: say its place in the queue (the panel's head says it for
// the job it shows first). `progress`: the live value/max to show (the stock progress frames').
export function jobSentence(job, { elapsed = 0, withPosition = true, progress = job.progress } = {}) {
  const on = job.worker ? ` on ${job.worker}` : "";
  const finish = left(job.etaFinish, elapsed);
  const remaining = finish === null ? "" : finish < 5 ? "finishing" : `${about(finish)} left`;
  switch (job.status) {
    case "queued": {
      const parts = [];
      if (withPosition && job.position !== null) parts.push(positionText(job.position));
      if (job.wait === "own_job") parts.push("waits for your running job to finish");
      const when = times(job, elapsed);
      if (when) parts.push(when);
      return capital(parts.join(" · ")) || "Queued";
    }
    case "held": return `Held: ${job.detail || "waiting for a GPU that can run it"}`;
    case "starting": return [`Starting${on}${job.detail ? `: ${job.detail}` : ""}`, remaining].filter(Boolean).join(" · ");
    case "running": return [`Running${on}`, progressText(progress), remaining].filter(Boolean).join(" · ");
    case "copying": return "Copying outputs";
    case "completed": return "Done";
    case "failed": return `Failed: ${job.detail || "unknown error"}`;
    case "cancelled": return job.detail ? `Cancelled ${job.detail}` : "Cancelled";
    default: return job.detail;
  }
}

// The pause, said once for the whole panel.
export function pauseNotice(status) {
  if (status.userPaused) return "The instructor paused your jobs: they wait until you are resumed";
  if (status.paused) return "Queue paused by the instructor";
  return "";
}
