// Shared by the workshop's extension modules: finding the frontend's singletons, and small
// DOM helpers. Plain ES module, no build step. Server text is only ever written with textContent.

// The frontend publishes its singletons on window.comfyAPI (1.58.1: set by app-*.js and
// api-*.js; static/scripts/app.js and api.js are shims re-exporting them). Older or
// different frontends: fall back to importing the shims relative to this file.
export async function resolveComfy() {
  let app = window.comfyAPI?.app?.app;
  let api = window.comfyAPI?.api?.api;
  if (!app) {
    try { app = (await import("../../../scripts/app.js")).app; } catch (e) { /* older layout */ }
  }
  if (!api) {
    try { api = (await import("../../../scripts/api.js")).api; } catch (e) { /* older layout */ }
  }
  if (!api && app) api = app.api;
  return { app, api };
}

export function usable(api) {
  return Boolean(api && typeof api.addEventListener === "function" && typeof api.fetchApi === "function");
}

// Run `start(app, api)` once the app is set up (or at once on a frontend without extensions).
export async function whenReady(name, start) {
  const { app, api } = await resolveComfy();
  if (!usable(api)) {
    console.warn(`[${name}] ComfyUI api object not found; disabled`);
    return;
  }
  if (app && typeof app.registerExtension === "function") {
    let started = false;
    app.registerExtension({ name, setup() { if (!started) { started = true; start(app, api); } } });
  } else {
    const go = () => start(app, api);
    if (document.body) go(); else document.addEventListener("DOMContentLoaded", go, { once: true });
  }
}

// Ask the server to push the workshop's own message types to this socket (the server sends them
// only to sockets that ask, so a page without the extension never gets a type it does not know).
// Call after api.addEventListener(type, ...) for each type: that registers the type, so ComfyApi's
// socket handler dispatches it as a CustomEvent instead of logging "Unknown message type".
export function subscribe(api) {
  try {
    const ws = api.socket;
    if (ws && ws.readyState === 1) ws.send(JSON.stringify({ type: "workshop.subscribe" }));
  } catch (e) {
    console.warn("[comfy-workshop] could not subscribe to status pushes", e);
  }
}

export function el(tag, attrs, parent) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

export const str = (v, max = 500) => (typeof v === "string" ? v.slice(0, max) : "");
export const int = (v) => (typeof v === "number" && Number.isFinite(v) ? Math.trunc(v) : null);
