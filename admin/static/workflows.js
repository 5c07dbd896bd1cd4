// Comfy Workshop dashboard: the instructor's workflows. Upload (one or more .json files,
// UI or API format), rename, reorder, remove, choose the one a first visit opens, a seed per
// participant, and "Send to everyone now". What a workflow needs that no connected GPU has is
// shown on its row. Live: a `workshop.workflows` event (any change, from here, another
// dashboard or the command line) re-reads the list.

import { arr, call, clock, enc, h, note, obj, onEvent, str } from "./ui.js";

class Workflows {
  constructor(root) {
    this.root = root;
    this.list = h("tbody", { "data-testid": "workflows-list" });
    this.empty = h("p", { class: "empty" }, "No workflows published. Upload the lesson's workflows: participants find them in their Workflows sidebar (Workshop/), and the first one opens on their first visit.");
    this.file = h("input", { type: "file", accept: ".json,application/json", multiple: true, "data-testid": "workflow-file", "aria-label": "Workflow files" });
    this.first = h("input", { type: "checkbox", "data-testid": "workflow-upload-first" });
    this.seed = h("input", { type: "checkbox", "data-testid": "workflow-upload-seed" });
    const upload = h("form", { class: "workflow-upload", "data-testid": "workflow-upload" },
      this.file,
      h("label", { title: "Open it on a participant's first visit" }, this.first, " first"),
      h("label", { title: "Every participant gets a seed of their own" }, this.seed, " own seeds"),
      h("button", { type: "submit", class: "btn sm", "data-testid": "workflow-publish" }, "Publish"));
    upload.addEventListener("submit", (e) => { e.preventDefault(); this.publish(); });
    const table = h("table", { class: "grid" },
      h("thead", {}, h("tr", {}, ...["#", "Workflow", "Format", "Version", "Needs", "First", "Own seeds", ""].map((t) => h("th", {}, t)))),
      this.list);
    this.count = h("span", { class: "count" });
    this.mode = h("select", { "data-testid": "templates-mode", "aria-label": "Templates browser" },
      ...[["mark", "mark what no GPU can run"], ["hide", "hide what no GPU can run"], ["all", "show all"], ["off", "workshop workflows only"]]
        .map(([value, label]) => h("option", { value }, label)));
    this.mode.addEventListener("change", () => this.setMode(this.mode.value));
    this.templates = h("span", { class: "muted", "data-testid": "templates-summary" });
    const modeRow = h("p", { class: "templates-mode", title: "What participants' Templates browser shows of ComfyUI's official templates (the Workshop category always comes first)" },
      "Templates browser: ", this.mode, " ", this.templates);
    root.replaceChildren(h("h2", {}, "Workflows ", this.count), table, this.empty, upload, modeRow);
    this.items = [];
  }

  async refreshTemplates() {
    const data = await call("GET", "/templates");
    if (data === null) return;
    const t = obj(data);
    if (t.mode) this.mode.value = str(t.mode);
    this.templates.textContent = t.runnable != null && t.official != null
      ? `${str(t.runnable)} of ${str(t.official)} official templates run on the room's GPUs`
      : "(checked once a GPU has reported)";
  }

  async setMode(mode) {
    if ((await call("PUT", "/templates/mode", { json: { mode } })) !== null) note(`Templates browser: ${mode}`);
    this.refreshTemplates();
  }

  async refresh() {
    const data = await call("GET", "/workflows");
    if (data === null) return;
    this.items = arr(data).map(obj);
    this.render();
  }

  render() {
    this.count.textContent = this.items.length ? `(${this.items.length})` : "";
    this.empty.hidden = this.items.length > 0;
    this.list.replaceChildren(...this.items.map((w, i) => this.row(w, i)));
  }

  row(w, i) {
    const name = str(w.name);
    const needs = [...arr(w.missing_nodes).map((n) => `node ${n}`), ...arr(w.missing_models).map((m) => `model ${m}`)];
    const gap = needs.length
      ? h("span", { class: "warn", "data-testid": "workflow-missing", title: `Checked against ${str(w.checked_against)}` }, `⚠ no GPU has: ${needs.join(", ")}`)
      : h("span", { class: "muted", title: `Checked against ${str(w.checked_against)}` }, "✓");
    const first = h("input", { type: "radio", name: "first-workflow", "aria-label": `Open ${name} on a first visit`, "data-testid": "workflow-first" });
    first.checked = w.first === true;
    first.addEventListener("change", () => this.change(name, { first: true }));
    const seed = h("input", { type: "checkbox", "aria-label": `A seed per participant for ${name}`, "data-testid": "workflow-seed" });
    seed.checked = w.randomize_seed === true;
    seed.addEventListener("change", () => this.change(name, { randomize_seed: seed.checked }));
    const button = (label, testid, title, action, disabled = false) => {
      const b = h("button", { type: "button", class: "btn sm", title, "data-testid": testid, disabled }, label);
      b.addEventListener("click", action);
      return b;
    };
    return h("tr", { data: { workflow: name } },
      h("td", {}, String(i + 1)),
      h("td", { class: "name" }, h("a", { href: `/admin/api/workflows/${enc(name)}`, download: `${name}.json`, title: `Published by ${str(w.published_by)} at ${clock(w.published_at)}` }, name)),
      h("td", {}, str(w.format)),
      h("td", {}, `v${str(w.version)}`),
      h("td", {}, gap),
      h("td", {}, first),
      h("td", {}, seed),
      h("td", { class: "actions" },
        button("↑", "workflow-up", "Move up", () => this.move(i, -1), i === 0),
        button("↓", "workflow-down", "Move down", () => this.move(i, 1), i === this.items.length - 1),
        button("Rename", "workflow-rename", "Rename", () => this.rename(name)),
        button("Send to everyone now", "workflow-send", "Open it now in every participant's page, as a new tab", () => this.send(name)),
        button("Remove", "workflow-remove", "Remove it from every sidebar (participants' own copies stay)", () => this.remove(name))));
  }

  async publish() {
    const files = [...(this.file.files || [])];
    if (!files.length) { note("Choose one or more workflow files (.json) first.", "bad"); return; }
    let published = 0;
    for (const [i, file] of files.entries()) {
      const params = new URLSearchParams({ name: file.name });
      if (this.first.checked && i === 0) params.set("first", "true");
      if (this.seed.checked) params.set("randomize_seed", "true");
      const done = await call("POST", `/workflows?${params}`, { body: file, headers: { "Content-Type": "application/json" } });
      if (done === null) continue; // the reason was shown
      published += 1;
      const needs = [...arr(done.missing_nodes), ...arr(done.missing_models)];
      if (needs.length) note(`${str(done.name)}: no connected GPU has ${needs.join(", ")}`, "bad");
    }
    if (published) {
      note(`Published ${published} workflow${published > 1 ? "s" : ""}`);
      this.file.value = "";
      this.first.checked = false;
    }
    this.refresh();
  }

  async change(name, fields) {
    if ((await call("PATCH", `/workflows/${enc(name)}`, { json: fields })) === null) this.refresh();
  }

  async rename(name) {
    const to = window.prompt(`Rename "${name}" to:`, name);
    if (!to || to === name) return;
    await this.change(name, { name: to });
  }

  async move(i, by) {
    const names = this.items.map((w) => str(w.name));
    const j = i + by;
    if (j < 0 || j >= names.length) return;
    [names[i], names[j]] = [names[j], names[i]];
    const data = await call("PUT", "/workflows/order", { json: { names } });
    if (data !== null) { this.items = arr(data).map(obj); this.render(); }
  }

  async send(name) {
    if ((await call("POST", `/workflows/${enc(name)}/send`)) !== null) note(`Sent "${name}" to every open participant page`);
  }

  async remove(name) {
    if (!window.confirm(`Remove "${name}" from every participant's sidebar? Their own copies stay.`)) return;
    if ((await call("DELETE", `/workflows/${enc(name)}`)) !== null) note(`Removed "${name}"`);
    this.refresh();
  }
}

const root = document.getElementById("workflows");
if (root) {
  const panel = new Workflows(root);
  onEvent(["workshop.workflows", "worker.joined", "worker.removed", "endpoint"], () => panel.refresh());
  onEvent(["control", "worker.joined", "worker.removed"], () => panel.refreshTemplates());
  panel.refresh();
  panel.refreshTemplates();
}
