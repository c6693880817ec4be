// The open message: envelope beside headers, attachments, and the HTML / text / headers / source tabs.
"use strict";
import { $, api, addr, addrs, el, size } from "./util.js";

const view = { id: null, hasHTML: false, remote: false, tab: "html" };

export async function renderMessage(msg, env, { isCurrent }) {
  const id = msg.ID;
  Object.assign(view, { id, hasHTML: !!msg.HTML, remote: false });
  $("msg-subject").textContent = msg.Subject || "(no subject)";
  $("msg-unread").textContent = "Mark unread";
  renderEnvelope(msg, env);
  $("attachments").replaceChildren(...msg.Attachments.map((a) => el("li", {},
    el("a", { href: `/api/v1/message/${id}/part/${a.PartID}`, download: a.FileName || `part-${a.PartID}`,
              class: "attachment" }, `${a.FileName || a.PartID} (${a.ContentType}, ${size(a.Size)})`))));
  $("pane-text").textContent = msg.Text;
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
  $("env-auth").textContent = env.AuthenticationResults.join("\n") || "—";
  const bad = env.FromMismatch;
  $("row-from").classList.toggle("mismatch", bad);
  $("env-from").classList.toggle("mismatch", bad);
  $("hdr-from").classList.toggle("mismatch", bad);
  $("mismatch-note").hidden = !bad;
  $("parse-error-note").textContent = env.ParseError ? `Shown in part only: ${env.ParseError}. The Source tab has the message as received.` : "";
  $("parse-error-note").hidden = !env.ParseError;
}

export function showTab(tab) {
  view.tab = tab;
  for (const t of ["html", "text", "headers", "source"]) {
    $(`pane-${t}`).hidden = t !== tab;
    $(`tab-${t}`).classList.toggle("active", t === tab);
    $(`tab-${t}`).setAttribute("aria-selected", String(t === tab));
  }
  if (tab === "html") loadFrame();
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
  $("remote-btn").addEventListener("click", () => { view.remote = true; loadFrame(); });
  document.querySelectorAll(".preview-widths button").forEach((b) => b.addEventListener("click", () => previewWidth(b.dataset.width)));
}
