// The instructor's "Login cards" page (/admin/cards): the cards the JSON API makes go into
// their participant's slot (the server renders each card); each slot says where that
// participant's newest card stands. Cards exist on screen only: reloading the page forgets
// them (the server keeps no copy of a link), so print before leaving.

const slots = () => [...document.querySelectorAll(".slot[data-user]")];
const slotOf = (user) => slots().find((s) => s.dataset.user === user);
const lifetime = () => document.getElementById("lifetime").value;

function showError(message) {
  const box = document.getElementById("cards-error");
  box.textContent = message;
  box.hidden = !message;
}

async function call(method, path, body) {
  const response = await fetch(path, {
    method,
    credentials: "same-origin",
    headers: body ? { "Content-Type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = data?.error?.message ?? data?.detail ?? response.statusText;
    throw new Error(typeof detail === "string" ? detail : JSON.stringify(detail));
  }
  return data;
}

function place(card) {
  const slot = slotOf(card.user);
  if (!slot) return;
  slot.querySelector(".holder").innerHTML = card.html;
  slot.classList.add("ready");
}

function clear(user) {
  const slot = slotOf(user);
  const card = slot?.querySelector(".holder .card:not(.placeholder)");
  if (!card) return;
  card.classList.add("placeholder");
  card.innerHTML = `<div class="name"></div><p>Card revoked. Press New card for a new one.</p>`;
  card.querySelector(".name").textContent = user;
  slot.classList.remove("ready");
}

const clock = (seconds) =>
  new Date(seconds * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });

function describe(status) {
  const id = status.card_id ? `card ${status.card_id}: ` : "";
  switch (status.state) {
    case "active": return `${id}not used yet, works until ${clock(status.expires)}`;
    case "used": return `${id}used at ${clock(status.at)}`;
    case "expired": return `${id}expired at ${clock(status.expires)}`;
    case "revoked": return `${id}revoked at ${clock(status.at)}`;
    case "stale": return `${id}no longer works (password or role changed)`;
    default: return "no card yet";
  }
}

async function refresh() {
  const states = await call("GET", "/admin/api/cards");
  for (const status of states) {
    const slot = slotOf(status.user);
    if (!slot) continue;
    const state = slot.querySelector(".state");
    state.textContent = describe(status);
    state.dataset.state = status.state;
  }
}

const actions = {
  async all() {
    const n = slots().length;
    if (!confirm(`Make new cards for all ${n} participants? Their current cards stop working.`)) return;
    const made = await call("POST", "/admin/api/cards", { expires: lifetime() });
    made.cards.forEach(place);
  },
  async new(user) {
    place(await call("POST", `/admin/api/cards/${encodeURIComponent(user)}`, { expires: lifetime() }));
  },
  async reset(user) {
    if (!confirm(`Reset ${user}'s password? They are logged out everywhere and get a new card.`)) return;
    const path = `/admin/api/cards/${encodeURIComponent(user)}/reset-password`;
    place(await call("POST", path, { expires: lifetime() }));
  },
  async revoke(user) {
    if (!confirm(`Revoke ${user}'s card? Its QR code stops working (the password still works).`)) return;
    await call("DELETE", `/admin/api/cards/${encodeURIComponent(user)}`);
    clear(user);
  },
  async print() {
    window.print();
  },
};

document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-action]");
  if (!button || !(button.dataset.action in actions)) return;
  const user = button.closest(".slot")?.dataset.user;
  button.disabled = true;
  try {
    showError("");
    await actions[button.dataset.action](user);
    await refresh();
  } catch (error) {
    showError(`${button.textContent}${user ? ` (${user})` : ""}: ${error.message}`);
  } finally {
    button.disabled = false;
  }
});

refresh().catch((error) => showError(`Card states: ${error.message}`));
