// Comfy Workshop: the dashboard's gallery of what the room is making, and "Show everyone".
// Plain ES module, no build step; every string from the server is written with textContent.
//
// Pages of `/admin/api/gallery` (newest first, "Load more" for older ones). Live: dashboard.js
// re-dispatches each `/admin/ws` frame on `document` as a `cw:frame` event; a `job.completed`
// event re-reads the first page (debounced) and adds what is new; a `workshop.showcase` event
// re-reads what is shown now. A slow refresh covers frames missed while the socket was down.

import { API, arr, clock, enc, h, note, num, obj, onEvent, request, str } from "./ui.js";

const PAGE = 40;
const REFRESH_MS = 20000;
const DEBOUNCE_MS = 250;
const ICON = { video: "🎬", audio: "🎵", other: "📄" };

const outputUrl = (job, index) => `${API}/gallery/${enc(job)}/outputs/${enc(index)}`;

// ---------- the gallery ----------
class Gallery {
  constructor(root) {
    this.root = root;
    this.items = new Map(); // job id -> item, newest first by finished_at
    this.next = null;
    this.user = "";
    this.shown = null;
    this.users = new Set();
    this.build();
  }

  build() {
    this.count = h("span", { class: "count", "data-testid": "gallery-count" });
    this.filter = h("select", { "data-testid": "gallery-user", "aria-label": "Show one participant's outputs" },
      h("option", { value: "" }, "everyone"));
    this.filter.addEventListener("change", () => { this.user = this.filter.value; this.reload(); });
    this.current = h("div", { class: "gal-current", "data-testid": "showcase-current", hidden: true });
    this.grid = h("div", { class: "gal-grid", "data-testid": "gallery-grid" });
    this.empty = h("p", { class: "empty", "data-testid": "gallery-empty" }, "Nothing made yet: outputs appear here as they land.");
    this.more = h("button", { type: "button", class: "btn sm", "data-testid": "gallery-more", hidden: true }, "Load more");
    this.more.addEventListener("click", () => this.loadMore());
    this.root.replaceChildren(
      h("div", { class: "gal-head" }, h("h2", {}, "Gallery ", this.count), h("label", { class: "muted small" }, "from ", this.filter)),
      this.current, this.grid, this.empty, this.more, this.dialog());
  }

  async reload() {
    this.items.clear();
    this.grid.replaceChildren();
    this.next = null;
    await this.refresh();
  }

  query(after) {
    const q = new URLSearchParams({ limit: String(PAGE) });
    if (this.user) q.set("user", this.user);
    if (after) q.set("after", after);
    return `/gallery?${q}`;
  }

  // The newest page: add what is new; when more is new than a page holds, start over from it.
  async refresh() {
    let page;
    try { page = obj(await request("GET", this.query())); } catch (e) { return note(`Gallery: ${e.message}`, "bad"); }
    const fresh = arr(page.items).filter((i) => !this.items.has(str(obj(i).job)));
    if (this.items.size && fresh.length >= PAGE) { this.items.clear(); this.grid.replaceChildren(); }
    if (!this.items.size) this.next = page.next ?? null;
    for (const item of fresh.reverse()) this.add(obj(item), true);
    this.render();
  }

  async loadMore() {
    if (!this.next) return;
    this.more.disabled = true;
    try {
      const page = obj(await request("GET", this.query(this.next)));
      for (const item of arr(page.items)) if (!this.items.has(str(obj(item).job))) this.add(obj(item), false);
      this.next = page.next ?? null;
    } catch (e) {
      note(`Gallery: ${e.message}`, "bad");
    } finally {
      this.more.disabled = false;
      this.render();
    }
  }

  add(item, atTop) {
    const job = str(item.job);
    if (!job) return;
    this.items.set(job, item);
    this.noteUser(str(item.user));
    const tiles = arr(item.outputs).map((o) => this.tile(item, obj(o)));
    if (atTop) this.grid.prepend(...tiles); else this.grid.append(...tiles);
  }

  noteUser(user) {
    if (!user || this.users.has(user)) return;
    this.users.add(user);
    const options = [...this.users].sort().map((u) => h("option", { value: u }, u));
    this.filter.replaceChildren(h("option", { value: "" }, "everyone"), ...options);
    this.filter.value = this.user;
  }

  render() {
    const n = this.grid.children.length;
    this.count.textContent = n ? String(n) + (this.next ? "+" : "") : "";
    this.empty.hidden = n > 0;
    this.more.hidden = !this.next;
    this.markShown();
  }

  tile(item, out) {
    const job = str(item.job), index = num(out.index) ?? 0, media = str(out.media);
    const wf = obj(item.workflow);
    const url = outputUrl(job, index);
    let visual;
    if (media === "image") {
      visual = h("img", { src: `${url}/thumbnail`, alt: str(out.filename), loading: "lazy", decoding: "async" });
    } else if (media === "video") {
      visual = h("video", { src: `${url}#t=0.1`, preload: "metadata", muted: true, playsinline: true });
    } else {
      visual = h("span", { class: "gal-icon", "aria-hidden": "true" }, ICON[media] || ICON.other);
    }
    const types = arr(wf.node_types).map(str).join(", ");
    const about = [str(wf.text) && `“${str(wf.text)}”`, `${num(wf.nodes) ?? 0} nodes: ${types}`].filter(Boolean).join("\n");
    const show = h("button", { type: "button", class: "btn sm", "data-testid": "gallery-show", disabled: media === "other" || null,
      title: media === "other" ? "Only images, video and audio can be shown" : "Show on every participant's screen" }, "Show everyone");
    show.addEventListener("click", () => this.ask(item, out));
    return h("figure", { class: "gal-item", "data-testid": "gallery-item", data: { jobId: job, index, user: str(item.user), media }, title: about },
      h("a", { class: "gal-visual", href: url, target: "_blank", rel: "noopener" }, visual),
      h("figcaption", {},
        h("span", { class: "gal-user strong" }, str(item.user)),
        h("span", { class: "muted" }, ` · ${clock(item.finished_at)}`),
        h("div", { class: "gal-text muted small" }, str(wf.text) || `${num(wf.nodes) ?? 0} nodes`),
        h("div", { class: "gal-acts" }, show,
          h("a", { class: "btn sm ghost", href: `${API}/gallery/${enc(job)}/workflow`, download: "", "data-testid": "gallery-workflow",
            title: "The workflow that made it: open it in ComfyUI" }, "Workflow"))));
  }

  // ---------- show everyone ----------
  dialog() {
    this.dlg = h("dialog", { class: "gal-dialog", "data-testid": "showcase-dialog" });
    this.dlgPreview = h("div", { class: "gal-preview" });
    this.caption = h("input", { type: "text", maxlength: "200", "data-testid": "showcase-caption", placeholder: "Caption (optional)", "aria-label": "Caption" });
    this.author = h("input", { type: "checkbox", "data-testid": "showcase-author" });
    this.authorName = h("span");
    const confirm = h("button", { type: "submit", class: "btn ok", "data-testid": "showcase-confirm" }, "Show everyone");
    const cancel = h("button", { type: "button", class: "btn ghost" }, "Cancel");
    cancel.addEventListener("click", () => this.dlg.close());
    const form = h("form", { method: "dialog" },
      h("h3", {}, "Show on every participant's screen"), this.dlgPreview,
      h("label", { class: "gal-row" }, "Caption ", this.caption),
      h("label", { class: "gal-row" }, this.author, " Show the author's name (", this.authorName, ")"),
      h("div", { class: "gal-acts" }, confirm, cancel));
    form.addEventListener("submit", (e) => { e.preventDefault(); this.confirm(confirm); });
    this.dlg.append(form);
    return this.dlg;
  }

  ask(item, out) {
    this.pick = { job: str(item.job), index: num(out.index) ?? 0 };
    const url = outputUrl(this.pick.job, this.pick.index);
    this.dlgPreview.replaceChildren(out.media === "image"
      ? h("img", { src: `${url}/thumbnail`, alt: "" })
      : h("span", { class: "gal-icon" }, ICON[str(out.media)] || ICON.other));
    this.caption.value = str(obj(item.workflow).text).slice(0, 200);
    this.author.checked = false;
    this.authorName.textContent = str(item.user);
    this.dlg.showModal();
    this.caption.focus();
  }

  async confirm(button) {
    button.disabled = true;
    try {
      const r = obj(await request("PUT", "/showcase", { json: { ...this.pick, author: this.author.checked, caption: this.caption.value } }));
      this.dlg.close();
      this.setShown(r.shown);
      note("Shown on every participant's screen");
    } catch (e) {
      note(e.message, "bad");
    } finally {
      button.disabled = false;
    }
  }

  async stop(button) {
    button.disabled = true;
    try {
      await request("DELETE", "/showcase");
      this.setShown(null);
      note("No longer shown");
    } catch (e) {
      note(e.message, "bad");
      button.disabled = false;
    }
  }

  async loadShown() {
    try { this.setShown(obj(await request("GET", "/showcase")).shown); } catch { /* the next event tries again */ }
  }

  setShown(shown) {
    this.shown = shown && str(shown.id) ? obj(shown) : null;
    if (!this.shown) {
      this.current.hidden = true;
      this.current.replaceChildren();
      return this.markShown();
    }
    const s = this.shown;
    const stop = h("button", { type: "button", class: "btn sm danger", "data-testid": "showcase-stop" }, "Stop showing");
    stop.addEventListener("click", () => this.stop(stop));
    const thumb = s.media === "image" ? h("img", { src: `${outputUrl(s.job, s.index)}/thumbnail`, alt: "" }) : h("span", { class: "gal-icon" }, ICON[str(s.media)] || ICON.other);
    this.current.replaceChildren(thumb,
      h("span", {}, h("span", { class: "strong" }, "On every screen: "), `${str(s.user)}'s output`,
        s.author ? " (with their name)" : " (no name)", str(s.caption) ? ` — “${str(s.caption)}”` : ""),
      stop);
    this.current.hidden = false;
    this.markShown();
  }

  markShown() {
    const s = this.shown;
    for (const el of this.grid.children) {
      const on = Boolean(s) && el.dataset.jobId === str(s.job) && el.dataset.index === str(s.index);
      el.classList.toggle("on-screen", on);
    }
  }
}

// ---------- start, and stay live ----------
const root = document.getElementById("gallery");
if (root) {
  const gallery = new Gallery(root);
  let timer = null;
  const soon = () => { clearTimeout(timer); timer = setTimeout(() => gallery.refresh(), DEBOUNCE_MS); };
  onEvent(["job.completed"], soon);
  onEvent(["workshop.showcase"], () => gallery.loadShown());
  setInterval(() => { if (!document.hidden) gallery.refresh(); }, REFRESH_MS);
  gallery.refresh();
  gallery.loadShown();
}
