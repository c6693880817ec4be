// courrier inspector UI: plain JavaScript over the Mailpit-compatible API and the /api/events WebSocket.
// No build step, no inline scripts (the page's CSP forbids them), nothing loaded from elsewhere.
"use strict";

const PAGE = 50;
const state = { start: 0, query: "", total: 0, count: 0, selected: null, remote: false, tab: "html", messages: [],
                mailbox: "", accounts: [], ws: null, errors: {} };
const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k.startsWith("data-")) e.setAttribute(k, v); else e[k] = v;
  }
  for (const c of children) if (c != null) e.append(c);
  return e;
}

async function api(method, path, body) {
  const opts = { method, headers: {} };
  if (body !== undefined) { opts.body = JSON.stringify(body); opts.headers["Content-Type"] = "application/json"; }
  const r = await fetch(path, opts);
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${await r.text()}`);
  const ct = r.headers.get("Content-Type") || "";
  return ct.includes("json") ? r.json() : r.text();
}

function addr(a) { return a ? (a.Name ? `${a.Name} <${a.Address}>` : a.Address) : ""; }
function addrs(list) { return (list || []).map(addr).join(", "); }
function when(iso) { const d = new Date(iso); return isNaN(d) ? "" : d.toLocaleString(); }
function size(n) { return n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} kB` : `${(n / 1048576).toFixed(1)} MB`; }

// ---------------------------------------------------------------- mailbox (server mode)

// In server mode the list, search, bulk actions and live events are about one mailbox ("account/folder"), passed as
// ?mailbox=; message IDs say where they live, so per-message URLs need nothing more. Capture mode: no parameter.
function mbq(sep) { return state.mailbox ? `${sep}mailbox=${encodeURIComponent(state.mailbox)}` : ""; }

async function loadMailboxes() {
  let data;
  try { data = await api("GET", "/api/courrier/mailboxes"); } catch (e) { return; }
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

function fillFolders(folder) {
  const account = state.accounts.find((a) => a.Address === $("mb-account").value);
  const names = account ? account.Folders : ["INBOX"];
  $("mb-folder").replaceChildren(...names.map((f) => el("option", { value: f }, f)));
  $("mb-folder").value = names.includes(folder) ? folder : names[0];
  state.mailbox = `${$("mb-account").value}/${$("mb-folder").value}`;
}

function switchMailbox() {
  state.start = 0; state.selected = null; state.messages = [];
  $("view").hidden = true;
  renderList();
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
  state.messages = data.messages || [];
  state.total = data.total; state.count = data.messages_count;
  renderList();
  renderCounts(data.total, data.unread);
  loadErrors(state.messages.map((m) => m.ID));
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
  $("counts").textContent = `${total} message${total === 1 ? "" : "s"}, ${unread} unread`;
  const shown = state.messages.length;
  $("page-info").textContent = state.count ? `${state.start + 1}–${state.start + shown} of ${state.count}` : "no messages";
  $("prev").disabled = state.start === 0;
  $("next").disabled = state.start + shown >= state.count;
}

function listItem(m) {
  const li = el("li", { class: m.Read ? "msg" : "msg unread", "data-id": m.ID, title: m.Subject || "" },
    el("div", { class: "meta" }, el("span", { class: "from" }, addr(m.From) || "(no sender)"),
      el("span", { class: "date" }, when(m.Created))),
    el("div", { class: "subject" }, m.Subject || "(no subject)",
      ...(m.Tags || []).map((t) => el("span", { class: "tag" }, t)),
      m.Attachments ? el("span", { class: "tag" }, `📎${m.Attachments}`) : null,
      state.errors[m.ID] ? el("span", { class: "tag parse-error", title: state.errors[m.ID] }, "⚠ unreadable MIME") : null),
    el("div", { class: "snippet" }, m.Snippet || ""));
  if (m.ID === state.selected) li.classList.add("selected");
  li.addEventListener("click", () => openMessage(m.ID));
  return li;
}

function renderList() {
  $("list").replaceChildren(...state.messages.map(listItem));
}

// ---------------------------------------------------------------- one message

async function openMessage(id) {
  state.selected = id; state.remote = false;
  document.querySelectorAll("#list li").forEach((li) => li.classList.toggle("selected", li.dataset.id === id));
  const [msg, env] = await Promise.all([api("GET", `/api/v1/message/${id}`),
                                        api("GET", `/api/courrier/message/${id}/envelope`)]);
  const li = document.querySelector(`#list li[data-id="${id}"]`);
  if (li) li.classList.remove("unread");
  $("view").hidden = false;
  $("msg-subject").textContent = msg.Subject || "(no subject)";
  renderEnvelope(msg, env);
  $("attachments").replaceChildren(...msg.Attachments.map((a) => el("li", {},
    el("a", { href: `/api/v1/message/${id}/part/${a.PartID}`, download: a.FileName || `part-${a.PartID}`,
              class: "attachment" }, `${a.FileName || a.PartID} (${a.ContentType}, ${size(a.Size)})`))));
  $("pane-text").textContent = msg.Text;
  const headers = await api("GET", `/api/v1/message/${id}/headers`);
  $("pane-headers").replaceChildren(...Object.entries(headers).flatMap(([k, vs]) =>
    vs.map((v) => el("tr", {}, el("td", {}, k), el("td", {}, v)))));
  $("pane-source").textContent = await api("GET", `/api/v1/message/${id}/raw`);
  state.hasHTML = !!msg.HTML;
  showTab(msg.HTML ? "html" : "text");
}

function renderEnvelope(msg, env) {
  const none = env.Listener === "mailbox";  // server mode: stored by IMAP APPEND or a copy, never over SMTP
  $("env-from").textContent = none ? "— (not received over SMTP)" : env.MailFrom ? `<${env.MailFrom}>` : "<> (null sender)";
  $("hdr-from").textContent = addr(msg.From);
  $("env-rcpt").textContent = env.RcptTo.map((r) => `<${r}>`).join(", ");
  $("hdr-to").textContent = addrs(msg.To);
  $("hdr-cc").textContent = addrs(msg.Cc);
  $("hdr-bcc").textContent = addrs(msg.Bcc);
  $("env-client").textContent = [env.Client, env.Helo && `HELO ${env.Helo}`, env.TLS, env.Username && `AUTH ${env.Username}`]
    .filter(Boolean).join(" · ");
  $("env-auth").textContent = env.AuthenticationResults.join("\n") || "—";
  const bad = env.FromMismatch;
  $("row-from").classList.toggle("mismatch", bad);
  $("env-from").classList.toggle("mismatch", bad);
  $("hdr-from").classList.toggle("mismatch", bad);
  $("mismatch-note").hidden = !bad;
  $("parse-error-note").textContent = env.ParseError ? `Shown in part only: ${env.ParseError}. The Source tab has the message as received.` : "";
  $("parse-error-note").hidden = !env.ParseError;
}

function showTab(tab) {
  state.tab = tab;
  for (const t of ["html", "text", "headers", "source"]) {
    $(`pane-${t}`).hidden = t !== tab;
    $(`tab-${t}`).classList.toggle("active", t === tab);
  }
  if (tab === "html") loadFrame();
}

function loadFrame() {
  const id = state.selected;
  const src = state.hasHTML ? `/api/courrier/message/${id}/html?remote=${state.remote ? 1 : 0}` : "about:blank";
  if ($("html-frame").getAttribute("src") !== src) $("html-frame").setAttribute("src", src);
  $("remote-btn").disabled = state.remote;
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
      const li = document.querySelector(`#list li[data-id="${e.Data.ID}"]`);
      if (li) li.classList.toggle("unread", !e.Data.Read);
      const m = state.messages.find((x) => x.ID === e.Data.ID);
      if (m) m.Read = e.Data.Read;
      break;
    }
    case "delete":
      state.messages = state.messages.filter((m) => m.ID !== e.Data.ID);
      renderList();
      if (state.selected === e.Data.ID) { $("view").hidden = true; state.selected = null; }
      break;
    case "truncate": case "prune":
      loadList();
      if (e.Type === "truncate") { $("view").hidden = true; state.selected = null; }
      break;
    case "stats":
      if (e.Data) { state.total = e.Data.Total; renderCounts(e.Data.Total, e.Data.Unread); }
      break;
  }
}

// ---------------------------------------------------------------- wiring

async function init() {
  $("search-form").addEventListener("submit", (ev) => {
    ev.preventDefault(); state.query = $("search").value.trim(); state.start = 0; loadList();
  });
  $("prev").addEventListener("click", () => { state.start = Math.max(0, state.start - PAGE); loadList(); });
  $("next").addEventListener("click", () => { state.start += PAGE; loadList(); });
  document.querySelectorAll(".tabs button").forEach((b) => b.addEventListener("click", () => showTab(b.dataset.tab)));
  $("remote-btn").addEventListener("click", () => { state.remote = true; loadFrame(); });
  $("delete-all").addEventListener("click", async () => {
    const what = state.mailbox ? `all messages of ${state.mailbox}` : "all messages";
    if (confirm(`Delete ${what}?`)) { await api("DELETE", `/api/v1/messages${mbq("?")}`, {}); loadList(); }
  });
  $("mark-all-read").addEventListener("click", async () => {
    await api("PUT", `/api/v1/messages${mbq("?")}`, { Read: true }); loadList();
  });
  $("mb-account").addEventListener("change", () => { fillFolders("INBOX"); switchMailbox(); });
  $("mb-folder").addEventListener("change", () => { fillFolders($("mb-folder").value); switchMailbox(); });
  $("msg-delete").addEventListener("click", async () => {
    await api("DELETE", "/api/v1/messages", { IDs: [state.selected] });
    $("view").hidden = true; state.selected = null; loadList();
  });
  $("msg-unread").addEventListener("click", async () => {
    await api("PUT", "/api/v1/messages", { IDs: [state.selected], Read: false }); loadList();
  });
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
  api("GET", "/api/courrier/pause").then((r) => { $("pause").checked = r.Paused; }).catch(() => {});
  await loadMailboxes();  // server mode: pick the mailbox before the first list and socket
  loadList();
  connect();
}

document.addEventListener("DOMContentLoaded", init);
