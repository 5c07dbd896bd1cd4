// Comfy Workshop dashboard: small helpers shared by its panels' modules (workflows.js,
// gallery.js). Plain ES module, no build step; server text only ever goes in as text.

export const API = "/admin/api";
export const obj = (x) => (x && typeof x === "object" && !Array.isArray(x) ? x : {});
export const arr = (x) => (Array.isArray(x) ? x : []);
export const str = (x) => (x == null ? "" : String(x));
export const num = (x) => (typeof x === "number" && Number.isFinite(x) ? x : null);
export const enc = (x) => encodeURIComponent(str(x));
export const clock = (t) => (num(t) == null ? "–" : new Date(t * 1000).toLocaleTimeString([], { hour12: false }));

export function h(tag, props = {}, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v == null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "data") for (const [dk, dv] of Object.entries(v)) el.dataset[dk] = str(dv);
    else el.setAttribute(k, v === true ? "" : str(v));
  }
  for (const kid of kids) if (kid != null) el.append(kid);
  return el;
}

export function note(message, kind = "ok") {
  const box = document.getElementById("toasts");
  if (!box) return;
  const el = h("div", { class: `toast ${kind}`, role: kind === "bad" ? "alert" : "status" }, message);
  box.append(el);
  setTimeout(() => el.remove(), kind === "bad" ? 6000 : 2500);
}

// One admin API call: the parsed JSON (`{}` for no body); throws an Error whose message is
// the server's reason (or says the request was not sent).
export async function request(method, url, { json, body, headers } = {}) {
  const init = { method, credentials: "same-origin", cache: "no-store", headers: { ...(headers || {}) } };
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (body !== undefined) {
    init.body = body;
  }
  let r;
  try {
    r = await fetch(`${API}${url}`, init);
  } catch {
    throw new Error("Network error: the request was not sent.");
  }
  let data = null;
  try { data = await r.json(); } catch { /* not JSON */ }
  if (r.ok) return data ?? {};
  const d = obj(data).detail; // FastAPI's own refusals (validation: a list of {msg})
  throw new Error(str(obj(obj(data).error).message) || (typeof d === "string" ? d : str(obj(arr(d)[0]).msg))
    || `${r.status} ${r.statusText}`.trim());
}

// The same, for a control: null after telling the instructor why it did not work.
export async function call(method, url, options) {
  try {
    return await request(method, url, options);
  } catch (e) {
    note(e.message, "bad");
    return null;
  }
}

// Each frame of the dashboard's socket (dashboard.js re-dispatches them on `document`).
export function onEvent(types, handler) {
  document.addEventListener("cw:frame", (e) => {
    const frame = obj(e.detail);
    if (frame.type !== "event") return;
    const data = obj(frame.data);
    if (types.includes(str(data.type))) handler(data);
  });
}
