// courrier inspector UI: plain JavaScript modules over the Mailpit-compatible API and the /api/events WebSocket.
// No build step, no inline scripts (the page's CSP forbids them), nothing loaded from elsewhere.
//
// The address bar is the state a person can share: "/" (the list), "/search?q=…" (a search), "/view/ID" (a message,
// "?q=" kept so back/forward and a reload restore the list it was opened from). Every change of message or search
// goes through navigate(), which pushes a history entry and applies it; popstate applies the entry again.
import { $, api, APIError, addr, el, shortWhen, typing, when } from "./util.js";
import { notifyNew, showUnread, titled, wireNotify } from "./notify.js";
import { darkTheme, loadFrame, renderMessage, showTab, tagOptions, wireView } from "./view.js";

const PAGE = 50;
const state = { start: 0, query: "", total: 0, count: 0, selected: null, messages: [], loaded: false,
                mailbox: "", capture: false, accounts: [], ws: null, errors: {}, tags: {}, picked: new Set() };

// ---------------------------------------------------------------- routes

function routeOf(loc) {
  const m = loc.pathname.match(/^\/view\/([^/]+)$/);
  const params = new URLSearchParams(loc.search);
  return { id: m ? decodeURIComponent(m[1]) : null, query: params.get("q") || "", mailbox: params.get("mailbox") || "" };
}

function urlFor(id, query) {
  const p = new URLSearchParams();
  if (query) p.set("q", query);
  if (state.capture && state.mailbox) p.set("mailbox", state.mailbox);  // capture mode: the mailbox is in the URL
  const qs = p.toString() ? `?${p}` : "";
  return id ? `/view/${encodeURIComponent(id)}${qs}` : query ? `/search${qs}` : `/${qs}`;
}

// Goes to a message (id) or to the list (id null) of a search (query, "" for every message).
export function navigate(id, query = state.query, { replace = false } = {}) {
  const url = urlFor(id, query);
  if (url !== location.pathname + location.search) history[replace ? "replaceState" : "pushState"](null, "", url);
  return applyRoute();
}

async function applyRoute() {
  const r = routeOf(location);
  if (document.activeElement !== $("search")) $("search").value = r.query;
  const mbChanged = state.capture && r.mailbox !== state.mailbox;
  if (mbChanged) { state.mailbox = r.mailbox; $("mb-capture").value = r.mailbox; if (state.loaded) connect(); }
  if (r.query !== state.query || !state.loaded || mbChanged) {
    state.query = r.query; state.start = 0;
    renderTags();
    await loadList();
  }
  if (r.id) { if (r.id !== state.selected || $("view").hidden) await openMessage(r.id); }
  else closeMessage();
}

// ---------------------------------------------------------------- mailbox (server mode)

// In server mode the list, search, bulk actions and live events are about one mailbox ("account/folder"), passed as
// ?mailbox=; message IDs say where they live, so per-message URLs need nothing more. Capture mode: no parameter.
function mbq(sep) { return state.mailbox ? `${sep}mailbox=${encodeURIComponent(state.mailbox)}` : ""; }

async function loadMailboxes() {
  let data;
  try { data = await api("GET", "/api/courrier/mailboxes"); } catch (e) { return; }
  if (data.Mode === "capture") return captureMailboxes(data.Mailboxes || []);
  if (data.Mode !== "server") return;
  state.accounts = data.Accounts;
  const [acct] = (data.Default || "").split("/");
  const account = state.accounts.find((a) => a.Address === acct) || state.accounts[0];
  if (!account) return;
  $("mb-account").replaceChildren(...state.accounts.map((a) => el("option", { value: a.Address }, a.Address)));
  $("mb-account").value = account.Address;
  fillFolders("INBOX");
  $("mailbox-picker").hidden = false;
}

// Capture mode: a message belongs to the mailbox of each envelope recipient and of the SMTP AUTH user; the picker
// lists them with their unread counts ("All mailboxes": no ?mailbox=). The chosen one is kept in the URL.
function captureMailboxes(list) {
  state.capture = true;
  const current = state.mailbox || routeOf(location).mailbox;
  const names = list.map((m) => m.Name);
  if (current && !names.includes(current)) list = [...list, { Name: current, Unread: 0 }];
  $("mb-capture").replaceChildren(el("option", { value: "" }, "All mailboxes"),
    ...list.map((m) => el("option", { value: m.Name }, m.Unread ? `${m.Name} (${m.Unread})` : m.Name)));
  $("mb-capture").value = current;
  $("mb-capture").hidden = false;
}

function fillFolders(folder) {
  const account = state.accounts.find((a) => a.Address === $("mb-account").value);
  const names = account ? account.Folders : ["INBOX"];
  $("mb-folder").replaceChildren(...names.map((f) => el("option", { value: f }, f)));
  $("mb-folder").value = names.includes(folder) ? folder : names[0];
  state.mailbox = `${$("mb-account").value}/${$("mb-folder").value}`;
}

function switchMailbox() {
  state.start = 0; state.selected = null; state.messages = [];
  renderList();
  navigate(null, "");
  loadList();
  connect();  // the live events of the new mailbox; the old socket is closed without reconnecting
}

// ---------------------------------------------------------------- list

async function loadList() {
  const q = state.query;
  const url = (q ? `/api/v1/search?query=${encodeURIComponent(q)}&start=${state.start}&limit=${PAGE}`
                 : `/api/v1/messages?start=${state.start}&limit=${PAGE}`) + mbq("&");
  const mb = state.mailbox;
  let data;
  try { data = await api("GET", url); } catch (e) { $("counts").textContent = e.message; return; }
  if (mb !== state.mailbox || q !== state.query) return;  // the user moved on meanwhile
  state.loaded = true;
  state.messages = data.messages || [];
  state.total = data.total; state.count = data.messages_count;
  renderList();
  renderCounts(data.total, data.unread);
  loadErrors(state.messages.map((m) => m.ID));
  loadTags();
  if (state.capture) loadMailboxes();  // the picker's unread counts
}

// ---------------------------------------------------------------- tags (sidebar on wide screens, chips otherwise)

function tagQuery(t) { return /[\s"]/.test(t) ? `tag:"${t.replace(/"/g, "")}"` : `tag:${t}`; }

async function loadTags() {
  let info;
  try { info = await api("GET", `/api/v1/info${mbq("?")}`); } catch (e) { return; }
  state.tags = info.Tags || {};
  renderTags();
}

function renderTags() {
  const names = Object.keys(state.tags).sort((a, b) => a.localeCompare(b, undefined, { sensitivity: "base" }));
  tagOptions(names);
  const entry = (label, query, count) => el("li", {}, el("button", {
    type: "button", class: query === state.query ? "active" : "", "data-tag": label,
    onclick: () => navigate(null, query) }, el("span", { class: "name" }, label),
    count == null ? null : el("span", { class: "count" }, String(count))));
  $("tag-nav").replaceChildren(entry("All messages", "", null),
    ...names.map((t) => entry(t, tagQuery(t), state.tags[t])));
  $("tag-chips").replaceChildren(...(names.length ? [["All", ""], ...names.map((t) => [`${t} ${state.tags[t]}`, tagQuery(t)])] : [])
    .map(([label, query]) => el("button", { type: "button", class: query === state.query ? "active" : "",
                                             onclick: () => navigate(null, query) }, label)));
}

function onTags(id, tags) {
  const m = state.messages.find((x) => x.ID === id);
  if (m) { m.Tags = tags; renderList(); }
  loadTags();
}

// Messages whose MIME could be read only in part carry an error mark (courrier's own endpoint: Mailpit's JSON has
// no field for it).
async function loadErrors(ids) {
  if (!ids.length) return;
  let data;
  try { data = await api("GET", `/api/courrier/parse-errors?${ids.map((i) => `id=${encodeURIComponent(i)}`).join("&")}`); }
  catch (e) { return; }
  Object.assign(state.errors, data.Errors || {});
  if (Object.keys(data.Errors || {}).length) renderList();
}

function renderCounts(total, unread) {
  showUnread(unread);
  $("counts").textContent = `${total} message${total === 1 ? "" : "s"}, ${unread} unread`;
  const shown = state.messages.length;
  $("page-info").textContent = state.count ? `${state.start + 1}–${state.start + shown} of ${state.count}`
    : state.query ? "no message matches" : "no messages";
  $("prev").disabled = state.start === 0;
  $("next").disabled = state.start + shown >= state.count;
  renderBulk();
}

function listItem(m) {
  const pick = el("input", { type: "checkbox", class: "pick", checked: state.picked.has(m.ID),
                             "aria-label": `select ${m.Subject || "(no subject)"}` });
  pick.addEventListener("click", (ev) => ev.stopPropagation());
  pick.addEventListener("change", () => setPicked(m.ID, pick.checked));
  const li = el("li", { class: m.Read ? "msg" : "msg unread", "data-id": m.ID, title: m.Subject || "" }, pick,
    el("div", { class: "meta" }, el("span", { class: "from" }, addr(m.From) || "(no sender)"),
      el("span", { class: "date", title: when(m.Created) }, shortWhen(m.Created))),
    el("div", { class: "subject" }, m.Subject || "(no subject)",
      ...(m.Tags || []).map((t) => el("span", { class: "tag" }, t)),
      m.Attachments ? el("span", { class: "tag" }, `📎${m.Attachments}`) : null,
      state.errors[m.ID] ? el("span", { class: "tag parse-error", title: state.errors[m.ID] }, "⚠ unreadable MIME") : null),
    el("div", { class: "snippet" }, m.Snippet || ""));
  if (m.ID === state.selected) li.classList.add("selected");
  if (state.picked.has(m.ID)) li.classList.add("picked");
  li.addEventListener("click", () => navigate(m.ID));
  return li;
}

function renderList() {
  const here = new Set(state.messages.map((m) => m.ID));
  for (const id of state.picked) if (!here.has(id)) state.picked.delete(id);  // only what is on screen
  $("list").replaceChildren(...state.messages.map(listItem));
  markSelected();
  renderBulk();
}

// ---------------------------------------------------------------- bulk actions

function setPicked(id, on) {
  if (on) state.picked.add(id); else state.picked.delete(id);
  const li = document.querySelector(`#list li[data-id="${CSS.escape(id)}"]`);
  if (li) { li.classList.toggle("picked", on); li.querySelector(".pick").checked = on; }
  renderBulk();
}

// With a selection the buttons act on it; without one, on every message of the current search (the whole
// mailbox when there is no search) — what "all" means is said on the buttons.
function renderBulk() {
  const n = state.picked.size;
  for (const b of ["bulk-read", "bulk-unread", "bulk-delete"]) $(b).hidden = n === 0;
  for (const b of ["mark-all-read", "delete-all"]) $(b).hidden = n > 0;
  $("select-all").checked = n > 0 && n === state.messages.length;
  $("select-all").indeterminate = n > 0 && n < state.messages.length;
  $("bulk-scope").textContent = n ? `${n} selected` : state.query ? `${state.count} found` : "";
  $("mark-all-read").textContent = state.query ? `Mark ${state.count} found read` : "Mark all read";
  $("delete-all").textContent = state.query ? `Delete ${state.count} found` : "Delete all";
  $("mark-all-read").disabled = $("delete-all").disabled = state.count === 0;
}

async function bulkRead(read) {
  await api("PUT", "/api/v1/messages", { IDs: [...state.picked], Read: read });
  state.picked.clear();
  renderList();
  loadList();
}

async function bulkDelete() {
  const ids = [...state.picked];
  if (!ids.length) return;
  await api("DELETE", "/api/v1/messages", { IDs: ids });
  state.messages = state.messages.filter((m) => !state.picked.has(m.ID));
  state.picked.clear();
  renderList();
  if (ids.includes(state.selected)) navigate(null, state.query, { replace: true });
  loadList();
}

async function markAllRead() {
  await api("PUT", `/api/v1/messages${mbq("?")}`, state.query ? { Read: true, Search: state.query } : { Read: true });
  loadList();
}

async function deleteAll() {
  const q = state.query;
  const what = q ? `the ${state.count} messages found by “${q}”` : state.mailbox ? `all messages of ${state.mailbox}` : "all messages";
  if (!confirm(`Delete ${what}?`)) return;
  if (q) await api("DELETE", `/api/v1/search?query=${encodeURIComponent(q)}${mbq("&")}`);
  else await api("DELETE", `/api/v1/messages${mbq("?")}`, {});
  loadList();
}

function markSelected() {
  document.querySelectorAll("#list li").forEach((li) => li.classList.toggle("selected", li.dataset.id === state.selected));
  const cur = document.querySelector("#list li.selected");
  if (cur && cur.scrollIntoViewIfNeeded) cur.scrollIntoViewIfNeeded(false);
  const i = state.messages.findIndex((m) => m.ID === state.selected);
  $("msg-prev").disabled = i <= 0 && state.start === 0;
  $("msg-next").disabled = i < 0 || (i >= state.messages.length - 1 && state.start + state.messages.length >= state.count);
}

// ---------------------------------------------------------------- one message

async function openMessage(id) {
  state.selected = id;
  markSelected();
  let msg, env;
  try {
    // One after the other: reading the summary marks it read, which moves its file (new/ → cur/), and a lookup
    // racing that rename can miss the file in both folders (capture store's _locate).
    msg = await api("GET", `/api/v1/message/${encodeURIComponent(id)}`);
    env = await api("GET", `/api/courrier/message/${encodeURIComponent(id)}/envelope`);
  } catch (e) {
    if (state.selected !== id) return;
    showMissing(id, e);
    return;
  }
  if (state.selected !== id) return;  // another message was opened meanwhile
  const li = document.querySelector(`#list li[data-id="${CSS.escape(id)}"]`);
  if (li) li.classList.remove("unread");
  const m = state.messages.find((x) => x.ID === id);
  if (m) m.Read = true;
  document.body.classList.add("viewing");
  $("view").hidden = false;
  $("view").classList.remove("missing");
  titled(`${msg.Subject || "(no subject)"} — courrier`);
  await renderMessage(msg, env, { isCurrent: () => state.selected === id, onTags });
}

function showMissing(id, e) {
  document.body.classList.add("viewing");
  $("view").hidden = false;
  $("view").classList.add("missing");
  $("msg-subject").textContent = e instanceof APIError && e.status === 404 ? `No message ${id}: it was deleted, or never was.`
    : `Cannot open ${id}: ${e.message}`;
}

function closeMessage() {
  state.selected = null;
  document.body.classList.remove("viewing");
  $("view").hidden = true;
  titled("courrier");
  markSelected();
}

// The message after (+1, older) or before (-1, newer) the open one in the list, across pages.
async function step(dir) {
  let i = state.messages.findIndex((m) => m.ID === state.selected);
  if (i < 0) { if (state.messages.length) navigate(state.messages[dir > 0 ? 0 : state.messages.length - 1].ID); return; }
  i += dir;
  if (i >= state.messages.length && state.start + state.messages.length < state.count) {
    state.start += PAGE; await loadList(); i = 0;
  } else if (i < 0 && state.start > 0) {
    state.start = Math.max(0, state.start - PAGE); await loadList(); i = state.messages.length - 1;
  }
  if (i >= 0 && i < state.messages.length) navigate(state.messages[i].ID);
}

async function deleteCurrent() {
  const id = state.selected;
  if (!id) return;
  const i = state.messages.findIndex((m) => m.ID === id);
  const after = state.messages[i + 1] || state.messages[i - 1];
  await api("DELETE", "/api/v1/messages", { IDs: [id] });
  if (state.messages.some((m) => m.ID === id)) state.count = Math.max(0, state.count - 1);
  state.messages = state.messages.filter((m) => m.ID !== id);
  renderList();
  navigate(after ? after.ID : null, state.query, { replace: true });
}

async function toggleRead() {
  const id = state.selected;
  if (!id) return;
  const m = state.messages.find((x) => x.ID === id);
  const read = m ? !m.Read : false;
  await api("PUT", "/api/v1/messages", { IDs: [id], Read: read });
  if (m) m.Read = read;
  const li = document.querySelector(`#list li[data-id="${CSS.escape(id)}"]`);
  if (li) li.classList.toggle("unread", !read);
  $("msg-unread").textContent = read ? "Mark unread" : "Mark read";
}

// ---------------------------------------------------------------- live events

function connect() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const old = state.ws;
  const ws = state.ws = new WebSocket(`${proto}//${location.host}/api/events${mbq("?")}`);
  if (old) old.close();
  ws.addEventListener("open", () => {
    if (ws !== state.ws) return;
    $("status").textContent = "live"; $("status").classList.add("live"); loadList();
  });
  ws.addEventListener("close", () => {
    if (ws !== state.ws) return;  // replaced by a mailbox switch
    $("status").textContent = "offline"; $("status").classList.remove("live");
    setTimeout(() => { if (ws === state.ws) connect(); }, 2000);
  });
  ws.addEventListener("message", (ev) => { if (ws === state.ws) onEvent(JSON.parse(ev.data)); });
}

function onEvent(e) {
  switch (e.Type) {
    case "new":
      notifyNew(e.Data, (id) => navigate(id));
      if (!state.query && state.start === 0) {
        state.messages = [e.Data, ...state.messages].slice(0, PAGE);
        state.count += 1;
        renderList();
        loadErrors([e.Data.ID]);
      } else {
        loadList();
      }
      break;
    case "update": {
      const li = document.querySelector(`#list li[data-id="${CSS.escape(e.Data.ID)}"]`);
      if (li && "Read" in e.Data) li.classList.toggle("unread", !e.Data.Read);
      const m = state.messages.find((x) => x.ID === e.Data.ID);
      if (m && "Read" in e.Data) m.Read = e.Data.Read;
      break;
    }
    case "delete":
      if (state.messages.some((m) => m.ID === e.Data.ID)) state.count = Math.max(0, state.count - 1);
      state.messages = state.messages.filter((m) => m.ID !== e.Data.ID);
      renderList();
      if (state.selected === e.Data.ID) navigate(null, state.query, { replace: true });
      break;
    case "truncate": case "prune":
      loadList();
      if (e.Type === "truncate" && state.selected) navigate(null, state.query, { replace: true });
      break;
    case "stats":
      if (e.Data) { state.total = e.Data.Total; renderCounts(e.Data.Total, e.Data.Unread); }
      break;
  }
}

// ---------------------------------------------------------------- keyboard

// Single keys, as mail readers have them; listed in the help overlay (index.html #help), which "?" opens.
const KEYS = {
  j: () => step(1),
  k: () => step(-1),
  Delete: () => (state.picked.size ? bulkDelete() : deleteCurrent()),
  r: toggleRead,
  x: () => { if (state.selected) setPicked(state.selected, !state.picked.has(state.selected)); },
  "/": () => { $("search").focus(); $("search").select(); },
  "?": () => toggleHelp(true),
  Escape: () => { if (!$("help").hidden) toggleHelp(false); else if (state.selected) navigate(null); },
};

function onKey(ev) {
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
  if (typing(ev.target)) {
    if (ev.key === "Escape") ev.target.blur();
    return;
  }
  const fn = KEYS[ev.key];
  if (!fn) return;
  ev.preventDefault();
  fn();
}

function toggleHelp(show) {
  $("help").hidden = !show;
  if (show) $("help-close").focus();
}

// ---------------------------------------------------------------- theme

// The toggle picks the opposite of what is shown now and remembers it (theme.js applies it on the next load).
function toggleTheme() {
  const next = darkTheme() ? "light" : "dark";
  document.documentElement.dataset.theme = next;
  try { localStorage.setItem("courrier-theme", next); } catch (e) { /* not remembered */ }
  loadFrame();
}

// ---------------------------------------------------------------- wiring

async function init() {
  $("search-form").addEventListener("submit", (ev) => {
    ev.preventDefault(); $("search").blur(); navigate(null, $("search").value.trim());
  });
  $("prev").addEventListener("click", () => { state.start = Math.max(0, state.start - PAGE); loadList(); });
  $("next").addEventListener("click", () => { state.start += PAGE; loadList(); });
  document.querySelectorAll(".tabs button").forEach((b) => b.addEventListener("click", () => showTab(b.dataset.tab)));
  $("delete-all").addEventListener("click", deleteAll);
  $("mark-all-read").addEventListener("click", markAllRead);
  $("bulk-read").addEventListener("click", () => bulkRead(true));
  $("bulk-unread").addEventListener("click", () => bulkRead(false));
  $("bulk-delete").addEventListener("click", bulkDelete);
  $("select-all").addEventListener("change", (ev) => {
    const on = ev.target.checked;  // read once: each setPicked re-renders the box
    for (const m of state.messages) setPicked(m.ID, on);
  });
  $("mb-account").addEventListener("change", () => { fillFolders("INBOX"); switchMailbox(); });
  $("mb-folder").addEventListener("change", () => { fillFolders($("mb-folder").value); switchMailbox(); });
  $("mb-capture").addEventListener("change", () => { state.mailbox = $("mb-capture").value; switchMailbox(); });
  $("msg-back").addEventListener("click", () => navigate(null));
  $("msg-prev").addEventListener("click", () => step(-1));
  $("msg-next").addEventListener("click", () => step(1));
  $("msg-delete").addEventListener("click", deleteCurrent);
  $("msg-unread").addEventListener("click", toggleRead);
  $("msg-release").addEventListener("click", async () => {
    const to = prompt("Release to (comma-separated addresses):");
    if (!to) return;
    try {
      await api("POST", `/api/v1/message/${state.selected}/release`, { To: to.split(",").map((s) => s.trim()).filter(Boolean) });
      alert("Released.");
    } catch (e) { alert(e.message); }
  });
  $("pause").addEventListener("change", async (ev) => {
    const r = await api("PUT", "/api/courrier/pause", { Paused: ev.target.checked });
    ev.target.checked = r.Paused;
  });
  $("help-btn").addEventListener("click", () => toggleHelp(true));
  $("theme-toggle").addEventListener("click", toggleTheme);
  wireNotify();
  matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => loadFrame());
  $("help-close").addEventListener("click", () => toggleHelp(false));
  $("help").addEventListener("click", (ev) => { if (ev.target === $("help")) toggleHelp(false); });
  wireView();
  document.addEventListener("keydown", onKey);
  window.addEventListener("popstate", applyRoute);
  api("GET", "/api/courrier/pause").then((r) => { $("pause").checked = r.Paused; }).catch(() => {});
  await loadMailboxes();  // server mode: pick the mailbox before the first list and socket
  await applyRoute();
  connect();
}

init();
