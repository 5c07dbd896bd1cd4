// comfy-workshop: "Download my work (.zip)": everything the participant made here (outputs,
// uploads, saved workflows) as one zip, from /userNNN/api/workshop/export.zip. Plain ES module,
// no build step.
//
// Where the control is:
// * a button in the top bar, beside Run (the frontend's `actionBarButtons`, 1.58.1);
// * where the frontend has no such bar (1.27.x), a small fixed button at the bottom centre;
// * on both, "Download my work (.zip)" in the File menu (`commands` + `menuCommands`).

import { el, resolveComfy, usable } from "./lib/comfy.js";

const NAME = "comfy.workshop.export";
const COMMAND = "Workshop.DownloadMyWork";
const LABEL = "Download my work (.zip)";
const TOOLTIP = "Everything you made here (outputs, uploads, saved workflows) as one zip";
const ROUTE = "/workshop/export.zip";
const BAR_WAIT_MS = 5000; // how long the top bar gets to show our button before the fallback

// The browser downloads it (the server says "attachment" and names the file): the page stays.
function download(api) {
  const link = el("a", { href: api.apiURL(ROUTE), download: "" }, document.body);
  link.click();
  link.remove();
}

function inTopBar() {
  return [...document.querySelectorAll("[data-testid='action-bar-buttons'] button")].some(
    (b) => b.getAttribute("aria-label") === LABEL,
  );
}

function fixedButton(api) {
  if (document.getElementById("cw-export")) return;
  const css = el("link", { rel: "stylesheet", href: new URL("./export.css", import.meta.url).href });
  document.head.appendChild(css);
  const button = el("button", { id: "cw-export", "data-testid": "cw-export", type: "button", title: TOOLTIP }, document.body);
  button.textContent = LABEL;
  button.addEventListener("click", () => download(api));
}

// The top bar draws its buttons some frames after setup; wait for ours, else add the fallback.
// Where it went is marked on <html data-cw-export="bar|fixed"> (for tests and curious eyes).
function ensureVisible(api) {
  const started = performance.now();
  const look = () => {
    if (inTopBar()) {
      document.documentElement.dataset.cwExport = "bar";
    } else if (performance.now() - started > BAR_WAIT_MS) {
      fixedButton(api);
      document.documentElement.dataset.cwExport = "fixed";
    } else {
      setTimeout(look, 100);
    }
  };
  look();
}

async function start() {
  const { app, api } = await resolveComfy();
  if (!usable(api) || typeof api.apiURL !== "function") {
    console.warn(`[${NAME}] ComfyUI api object not found; disabled`);
    return;
  }
  if (!app || typeof app.registerExtension !== "function") {
    const go = () => { fixedButton(api); document.documentElement.dataset.cwExport = "fixed"; };
    if (document.body) go(); else document.addEventListener("DOMContentLoaded", go, { once: true });
    return;
  }
  app.registerExtension({
    name: NAME,
    commands: [{ id: COMMAND, label: LABEL, icon: "pi pi-download", tooltip: TOOLTIP, function: () => download(api) }],
    menuCommands: [{ path: ["File"], commands: [COMMAND] }],
    // No tooltip here: the bar names the button by its tooltip, and it must read as the label.
    actionBarButtons: [{ icon: "pi pi-download", label: LABEL, onClick: () => download(api) }],
    setup() { ensureVisible(api); },
  });
}

start();
