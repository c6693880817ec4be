// The open message: envelope beside headers, attachments, and the HTML / text / headers / source tabs (the check
// tabs are checks.js).
"use strict";
import { resetChecks, showCheck, wireChecks } from "./checks.js";
import { highlightHTML } from "./highlight.js";
import { $, api, addr, addrs, el, size, when } from "./util.js";

const TABS = ["html", "text", "htmlsrc", "headers", "source", "htmlcheck", "linkcheck", "spamcheck"];
const view = { id: null, hasHTML: false, remote: false, tab: "html", tags: [], onTags: null };

export async function renderMessage(msg, env, { isCurrent, onTags }) {
  const id = msg.ID;
  const base = `/api/v1/message/${encodeURIComponent(id)}`;
  Object.assign(view, { id, hasHTML: !!msg.HTML, remote: false, tags: msg.Tags || [], onTags });
  $("msg-subject").textContent = msg.Subject || "(no subject)";
  $("msg-unread").textContent = "Mark unread";
  renderEnvelope(msg, env);
  loadAuth(id, env, isCurrent);
  renderDetails(msg);
  renderTags();
  $("dl-eml").href = `${base}/raw`; $("dl-eml").download = `${id}.eml`;
  $("dl-html").href = `/view/${encodeURIComponent(id)}.html`; $("dl-html").download = `${id}.html`;
  $("dl-html").hidden = !msg.HTML;
  $("dl-text").href = `/view/${encodeURIComponent(id)}.txt`; $("dl-text").download = `${id}.txt`;
  $("attachments").replaceChildren(...msg.Attachments.map((a) => attachment(base, a)));
  $("pane-text").textContent = msg.Text;
  $("tab-htmlsrc").hidden = !msg.HTML;
  $("pane-htmlsrc").replaceChildren(...highlightHTML(msg.HTML || ""));
  resetChecks(id, !!msg.HTML);
  showTab(msg.HTML ? "html" : "text");
  const [headers, raw] = await Promise.all([api("GET", `/api/v1/message/${id}/headers`),
                                            api("GET", `/api/v1/message/${id}/raw`)]);
  if (!isCurrent()) return;
  $("pane-headers").replaceChildren(...Object.entries(headers).flatMap(([k, vs]) =>
    vs.map((v) => el("tr", {}, el("td", {}, k), el("td", {}, v)))));
  $("pane-source").textContent = raw;
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
  $("env-auth").replaceChildren(el("span", { class: "muted" }, "checking SPF, DKIM, DMARC…"));
  $("env-auth").dataset.verdict = "";
  // red only for another organisation: bounce@news.example.com sending From news@example.com is how mail is sent
  const bad = env.OrgMismatch ?? env.FromMismatch;
  $("same-org-note").hidden = bad || !env.FromMismatch;
  $("row-from").classList.toggle("mismatch", bad);
  $("env-from").classList.toggle("mismatch", bad);
  $("hdr-from").classList.toggle("mismatch", bad);
  $("mismatch-note").hidden = !bad;
  $("parse-error-note").textContent = env.ParseError ? `Shown in part only: ${env.ParseError}. The Source tab has the message as received.` : "";
  $("parse-error-note").hidden = !env.ParseError;
}

// Date as the reader's clock shows it (the sender's own, with its offset, on hover), size, Reply-To and
// List-Unsubscribe (RFC 2369; one-click when List-Unsubscribe-Post says so, RFC 8058).
function renderDetails(msg) {
  $("msg-date").textContent = when(msg.Date);
  $("msg-date").title = `as sent: ${msg.Date}`;
  $("msg-size").textContent = size(msg.Size);
  const reply = addrs(msg.ReplyTo);
  $("msg-reply-to").textContent = reply;
  $("msg-reply-to").hidden = $("reply-to-label").hidden = !reply;
  const lu = msg.ListUnsubscribe || {};
  const links = (lu.Links || []).filter((u) => /^(https?|mailto):/i.test(u));
  $("msg-unsub").replaceChildren(...links.flatMap((u, i) => [i ? " · " : "",
    el("a", { href: u, target: "_blank", rel: "noreferrer noopener" }, u)]),
    lu.HeaderPost ? el("span", { class: "tag", title: lu.HeaderPost }, "one-click") : null);
  $("msg-unsub").hidden = $("unsub-label").hidden = !links.length && !lu.Header;
  if (!links.length && lu.Header) $("msg-unsub").textContent = lu.Header;
}

// An image part shows as a thumbnail (the part itself, scaled by the browser); any other part as an icon.
function attachment(base, a) {
  const url = `${base}/part/${encodeURIComponent(a.PartID)}`;
  const name = a.FileName || a.PartID;
  const thumb = /^image\/(png|jpe?g|gif|webp|bmp|avif)$/i.test(a.ContentType)
    ? el("img", { class: "thumb", src: url, alt: name, loading: "lazy" })
    : el("span", { class: "thumb icon", "aria-hidden": "true" }, "📄");
  return el("li", {}, el("a", { href: url, download: a.FileName || `part-${a.PartID}`, class: "attachment", title: name },
    thumb, el("span", {}, `${name} (${a.ContentType}, ${size(a.Size)})`)));
}

// Tags: chips with a remove button, and the input that adds one on Enter (PUT /api/v1/tags sets the whole list).
function renderTags() {
  $("msg-tags").replaceChildren(...view.tags.map((t) => el("span", { class: "tag", "data-tag": t }, t,
    el("button", { type: "button", title: `remove tag ${t}`, "aria-label": `remove tag ${t}`,
                   onclick: () => setTags(view.tags.filter((x) => x !== t)) }, "×"))));
}

async function setTags(tags) {
  const id = view.id;
  await api("PUT", "/api/v1/tags", { IDs: [id], Tags: tags });
  if (id !== view.id) return;
  view.tags = tags;
  renderTags();
  if (view.onTags) view.onTags(id, tags);
}

function addTag() {
  const t = $("tag-input").value.trim();
  $("tag-input").value = "";
  if (t && !view.tags.some((x) => x.toLowerCase() === t.toLowerCase())) setTags([...view.tags, t]);
}

export function tagOptions(names) {
  $("tag-options").replaceChildren(...names.map((n) => el("option", { value: n })));
}

// SPF, DKIM and DMARC as a receiving MX would judge the message (checked on demand by the server, off its loop):
// the verdict, each method's result with its domain, and why; the Authentication-Results already in the message
// (server mode: our MX's) below.
async function loadAuth(id, env, isCurrent) {
  let r;
  try { r = await api("GET", `/api/courrier/message/${encodeURIComponent(id)}/auth`); }
  catch (e) { if (isCurrent()) $("env-auth").textContent = `cannot check: ${e.message}`; return; }
  if (!isCurrent()) return;
  const badge = (label, result, detail) => el("span", { class: `auth auth-${result}`, title: detail || "" },
    `${label} ${result}`);
  const methods = [badge("SPF", r.SPF.Result, r.SPF.Reason + (r.SPF.Domain ? ` (${r.SPF.Domain})` : "")),
    ...(r.DKIM.length ? r.DKIM.map((k) => badge(`DKIM${k.Domain ? ` d=${k.Domain}` : ""}`, k.Result, k.Reason))
                      : [badge("DKIM", "none", "no DKIM-Signature")]),
    badge("DMARC", r.DMARC.Result, r.DMARC.Reason)];
  $("env-auth").dataset.verdict = r.Verdict;
  $("env-auth").replaceChildren(
    el("span", { class: `verdict verdict-${r.Verdict}` }, r.Verdict), " ", ...methods,
    el("div", { class: "auth-why" }, r.Why),
    ...env.AuthenticationResults.map((h) => el("div", { class: "auth-header" }, `Authentication-Results: ${h}`)));
}

export function showTab(tab) {
  view.tab = tab;
  for (const t of TABS) {
    $(`pane-${t}`).hidden = t !== tab;
    $(`tab-${t}`).classList.toggle("active", t === tab);
    $(`tab-${t}`).setAttribute("aria-selected", String(t === tab));
  }
  if (tab === "html") loadFrame();
  showCheck(tab);
}

// The sanitized HTML follows the page's theme: in dark mode its default colours are dark (colour-scheme), while
// colours the message sets itself are kept, as mail clients do.
export function darkTheme() {
  const t = document.documentElement.dataset.theme;
  return t ? t === "dark" : matchMedia("(prefers-color-scheme: dark)").matches;
}

export function loadFrame() {
  if (!view.id) return;
  const src = view.hasHTML ? `/api/courrier/message/${view.id}/html?remote=${view.remote ? 1 : 0}${darkTheme() ? "&theme=dark" : ""}`
    : "about:blank";
  if ($("html-frame").getAttribute("src") !== src) $("html-frame").setAttribute("src", src);
  $("remote-btn").disabled = view.remote;
}

function previewWidth(w) {
  $("html-frame").classList.toggle("w-tablet", w === "tablet");
  $("html-frame").classList.toggle("w-phone", w === "phone");
  document.querySelectorAll(".preview-widths button").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.width === w)));
}

export function wireView() {
  wireChecks();
  $("remote-btn").addEventListener("click", () => { view.remote = true; loadFrame(); });
  document.querySelectorAll(".preview-widths button").forEach((b) => b.addEventListener("click", () => previewWidth(b.dataset.width)));
  $("tag-input").addEventListener("keydown", (ev) => { if (ev.key === "Enter") { ev.preventDefault(); addTag(); } });
}
