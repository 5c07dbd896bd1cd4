// comfy-workshop: the output the instructor shows to everyone ("show and tell"), as a panel
// the participant can close. Plain ES module, no build step; server text only via textContent.
//
// The first load reads `/workshop/showcase`; later changes come as `workshop.showcase` pushes
// on the page's socket ({"id": null} when nothing is shown). The file comes from
// `/workshop/showcase/image?v=<id>`, which serves only the output shown now. Closing hides
// the panel until the instructor shows something else (remembered across reloads).

import { el, str, subscribe, whenReady } from "./lib/comfy.js";

const CLOSED_KEY = "comfy-workshop.showcase.closed";
const MEDIA = new Set(["image", "video", "audio"]);

function normalize(raw) {
  const data = raw && typeof raw === "object" ? raw : {};
  const id = str(data.id, 64);
  if (!id || !MEDIA.has(data.media)) return null;
  return { id, media: data.media, caption: str(data.caption, 200), author: str(data.author, 100) };
}

function closedId() {
  try { return localStorage.getItem(CLOSED_KEY) || ""; } catch (e) { return ""; }
}

function rememberClosed(id) {
  try { localStorage.setItem(CLOSED_KEY, id); } catch (e) { /* private mode: this page only */ }
}

function buildPanel() {
  document.head.appendChild(el("link", { rel: "stylesheet", href: new URL("./showcase.css", import.meta.url).href }));
  const root = el("aside", { id: "cw-showcase", "data-testid": "cw-showcase", class: "cw-showcase", role: "dialog",
    "aria-label": "Shown by the instructor", hidden: "" });
  const head = el("div", { class: "cw-showcase-head" }, root);
  el("span", { class: "cw-showcase-title" }, head).textContent = "From the room";
  const close = el("button", { id: "cw-showcase-close", "data-testid": "cw-showcase-close", class: "cw-showcase-close",
    type: "button", title: "Close", "aria-label": "Close" }, head);
  close.textContent = "✕";
  const media = el("div", { class: "cw-showcase-media" }, root);
  const caption = el("div", { id: "cw-showcase-caption", "data-testid": "cw-showcase-caption", class: "cw-showcase-caption" }, root);
  const author = el("div", { id: "cw-showcase-author", "data-testid": "cw-showcase-author", class: "cw-showcase-author" }, root);
  document.body.appendChild(root);
  return { root, close, media, caption, author };
}

function start(api) {
  const ui = buildPanel();
  let current = null; // what is shown now, closed or not
  let pushes = 0; // a push that arrives while the first load is in flight wins over it

  function show(raw) {
    const next = normalize(raw);
    if (next && current && next.id === current.id) return;
    current = next;
    ui.media.replaceChildren();
    if (!next || next.id === closedId()) {
      ui.root.hidden = true;
      return;
    }
    const route = `/workshop/showcase/image?v=${encodeURIComponent(next.id)}`;
    const src = typeof api.apiURL === "function" ? api.apiURL(route) : `${api.api_base ?? ""}/api${route}`;
    const attrs = { id: "cw-showcase-image", "data-testid": "cw-showcase-image", src };
    if (next.media === "image") el("img", { ...attrs, alt: next.caption || "Shown by the instructor" }, ui.media);
    else el(next.media, { ...attrs, controls: "", preload: "metadata", ...(next.media === "video" ? { muted: "", loop: "", autoplay: "" } : {}) }, ui.media);
    ui.caption.textContent = next.caption;
    ui.caption.hidden = !next.caption;
    ui.author.textContent = next.author ? `by ${next.author}` : "";
    ui.author.hidden = !next.author;
    ui.root.dataset.showcaseId = next.id;
    ui.root.hidden = false;
  }

  ui.close.addEventListener("click", () => {
    if (current) rememberClosed(current.id);
    ui.root.hidden = true;
    ui.media.replaceChildren(); // stops a video
  });

  async function load() {
    const before = pushes;
    try {
      const res = await api.fetchApi("/workshop/showcase", { cache: "no-store" });
      if (!res || !res.ok) return;
      const data = await res.json();
      if (pushes === before) show(data);
    } catch (e) {
      console.warn("[comfy-workshop] could not load /workshop/showcase", e);
    }
  }

  api.addEventListener("workshop.showcase", (e) => { pushes += 1; show(e?.detail); });
  api.addEventListener("reconnected", () => { subscribe(api); load(); });
  subscribe(api);
  load();
}

await whenReady("comfy.workshop.showcase", (app, api) => start(api));
