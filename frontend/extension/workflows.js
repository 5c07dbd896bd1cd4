// comfy-workshop: the instructor's workflows in the participant's ComfyUI.
// - First visit: the workflow the instructor chose opens, ready to Run (once per participant;
//   the server remembers it, so a second browser or a reload never yanks an open graph away).
// - "Send to everyone": the instructor opens a workflow in every page, as a new tab.
// - The Workflows sidebar follows publishes live; a save of a Workshop workflow keeps the
//   participant's own copy (the server stores it in their folder), and they are told where.
// Plain ES module, no build step.

import { resolveComfy, str, subscribe, usable } from "./lib/comfy.js";

const WORKSHOP_PREFIX = "workflows/Workshop/";
const STARTUP_GRACE_MS = 8000; // load anyway if the page never reports its own first graph

function toast(app, summary, detail) {
  try {
    const t = app?.extensionManager?.toast;
    if (t && typeof t.add === "function") { t.add({ severity: "info", summary, detail, life: 8000 }); return; }
  } catch (e) { /* older frontend */ }
  console.info(`[comfy-workshop] ${summary}: ${detail}`);
}

async function refreshSidebar(app) {
  try {
    const store = app?.extensionManager?.workflow;
    if (store && typeof store.syncWorkflows === "function") await store.syncWorkflows();
  } catch (e) {
    console.warn("[comfy-workshop] could not refresh the workflows list", e);
  }
}

// Open a published workflow by its user-data path ("workflows/Workshop/x.json") as a tab.
async function openPublished(app, api, path) {
  if (!path.startsWith(WORKSHOP_PREFIX)) return false;
  const res = await api.fetchApi(`/userdata/${encodeURIComponent(path)}`, { cache: "no-store" });
  if (!res || !res.ok) return false;
  const graph = await res.json();
  await refreshSidebar(app); // so the page knows the file and opens it as itself
  const name = path.slice("workflows/".length);
  if (graph && Array.isArray(graph.nodes)) {
    await app.loadGraphData(graph, true, true, name);
  } else if (typeof app.loadApiJson === "function") {
    app.loadApiJson(graph, name.split("/").pop());
  } else {
    return false;
  }
  return true;
}

const pause = (ms) => new Promise((r) => setTimeout(r, ms));

// The page's start is over once its active workflow has been the same for a while.
async function settled(app) {
  const store = app?.extensionManager?.workflow;
  if (!store) return pause(1000);
  let last = null;
  let same = 0;
  for (let i = 0; i < 100 && same < 4; i++) {
    await pause(150);
    const now = store.activeWorkflow;
    same = now && now === last ? same + 1 : 0;
    last = now;
  }
}

// Open `path` and check it is the active tab; the page's own start may still take it over once.
async function openAndCheck(app, api, path) {
  const store = app?.extensionManager?.workflow;
  for (let attempt = 0; attempt < 3; attempt++) {
    if (!(await openPublished(app, api, path))) return false;
    if (!store) return true;
    await settled(app);
    if (store.activeWorkflow?.path === path) return true;
  }
  return false;
}

function firstVisit(app, api) {
  let startupLoaded = false;
  let pending = null;
  const run = async () => {
    if (!pending) return;
    const path = pending;
    pending = null;
    try {
      if (await openAndCheck(app, api, path)) await api.fetchApi("/workshop/welcome", { method: "POST" });
    } catch (e) {
      console.warn("[comfy-workshop] could not open the workshop's first workflow", e);
    }
  };
  const onStartupLoaded = () => {
    if (startupLoaded) return;
    startupLoaded = true;
    // Let the page finish activating its own first graph (afterConfigureGraph comes before the
    // page makes it the active workflow), then open ours as the active tab.
    settled(app).then(run);
  };
  setTimeout(onStartupLoaded, STARTUP_GRACE_MS);
  (async () => {
    try {
      const res = await api.fetchApi("/workshop/welcome", { cache: "no-store" });
      if (!res || !res.ok) return;
      const data = await res.json();
      const path = str(data?.workflow?.path, 400);
      if (!path) return;
      pending = path;
      if (startupLoaded) await run();
    } catch (e) {
      console.warn("[comfy-workshop] could not ask for the first workflow", e);
    }
  })();
  return onStartupLoaded;
}

// After a save of a Workshop workflow (stored by the server as the participant's own copy),
// carry on in the own copy: open it as the active tab and close the Workshop one, which keeps
// showing what the instructor published.
async function switchToOwnCopy(app, file) {
  const store = app?.extensionManager?.workflow;
  const ownName = file.slice(WORKSHOP_PREFIX.length);
  await refreshSidebar(app);
  if (!store || typeof store.getWorkflowByPath !== "function") return;
  const own = store.getWorkflowByPath(`workflows/${ownName}`);
  const published = store.getWorkflowByPath(file);
  if (!own) return;
  await app.loadGraphData(app.graph.serialize(), true, true, ownName);
  if (published && store.activeWorkflow === own && typeof store.closeWorkflow === "function") {
    await store.closeWorkflow(published);
  }
}

function watchOwnCopies(app, api) {
  if (typeof api.storeUserData !== "function") return;
  const original = api.storeUserData.bind(api);
  api.storeUserData = async (file, data, options) => {
    const res = await original(file, data, options);
    if (typeof file === "string" && file.startsWith(WORKSHOP_PREFIX) && res && res.ok) {
      const name = file.slice(WORKSHOP_PREFIX.length);
      toast(app, "Saved your own copy", `Workshop workflows stay as the instructor published them; yours is "${name}" in your workflows.`);
      setTimeout(() => switchToOwnCopy(app, file).catch((e) => console.warn("[comfy-workshop] could not open your copy", e)), 0);
    }
    return res;
  };
}

function start(app, api) {
  api.addEventListener("workshop.open", async (e) => {
    const path = str(e?.detail?.path, 400);
    try {
      if (await openPublished(app, api, path)) toast(app, "From your instructor", `Opened ${path.slice(WORKSHOP_PREFIX.length)}`);
    } catch (err) {
      console.warn("[comfy-workshop] could not open the workflow sent by the instructor", err);
    }
  });
  api.addEventListener("workshop.workflows", () => refreshSidebar(app));
  api.addEventListener("reconnected", () => subscribe(api));
  subscribe(api);
  watchOwnCopies(app, api);
}

const { app, api } = await resolveComfy();
if (!usable(api) || !app || typeof app.registerExtension !== "function") {
  console.warn("[comfy-workshop] ComfyUI app not found; workshop workflows disabled");
} else {
  let onLoaded = () => {};
  let started = false;
  app.registerExtension({
    name: "comfy.workshop.workflows",
    setup() {
      if (started) return;
      started = true;
      onLoaded = firstVisit(app, api);
      start(app, api);
    },
    // The page's own first graph (a restored tab, the default graph, a blank one) goes through
    // loadGraphData, which calls afterConfigureGraph: ours opens after it, never under it.
    afterConfigureGraph() { onLoaded(); },
  });
}
