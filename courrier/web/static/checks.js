// The message checks as tabs: HTML check (caniemail support scores), Link check (run on demand: the server makes an
// HTTP request per link) and Spam check (spamd's report; shown only when [capture] spamassassin is set, as
// /api/v1/webui says). Everything from the message or the network is put in the page as text, never as markup.
"use strict";
import { $, api, el } from "./util.js";

const checks = { id: null, hasHTML: false, spam: false, loaded: new Set() };
const pct = (n) => `${Math.round(n * 10) / 10}%`;
const url = (id, what) => `/api/v1/message/${encodeURIComponent(id)}/${what}`;

// Called once at start: whether spamd is configured decides whether the Spam check tab exists.
export async function configureChecks() {
  try { checks.spam = !!(await api("GET", "/api/v1/webui")).SpamAssassin; } catch (e) { checks.spam = false; }
  $("tab-spamcheck").hidden = !checks.spam || !checks.id;
}

// A new message is open: the panes are emptied and each check runs again when its tab is shown.
export function resetChecks(id, hasHTML) {
  Object.assign(checks, { id, hasHTML, loaded: new Set() });
  $("tab-htmlcheck").hidden = !hasHTML;
  $("tab-spamcheck").hidden = !checks.spam;
  $("pane-htmlcheck").replaceChildren();
  $("pane-spamcheck").replaceChildren();
  $("linkcheck-results").replaceChildren();
  $("linkcheck-summary").textContent = "Each link and image gets one HTTP HEAD request from the server.";
  $("linkcheck-summary").className = "muted";
}

// The tab is shown: the HTML and spam checks load once per message (the link check waits for its button).
export function showCheck(tab) {
  const id = checks.id;
  if (!id || checks.loaded.has(tab)) return;
  if (tab === "htmlcheck" && checks.hasHTML) load(tab, id, () => api("GET", url(id, "html-check")), renderHTMLCheck);
  if (tab === "spamcheck" && checks.spam) load(tab, id, () => api("GET", url(id, "sa-check")), renderSpamCheck);
}

async function load(tab, id, get, render) {
  checks.loaded.add(tab);
  const pane = $(`pane-${tab}`);
  pane.replaceChildren(el("p", { class: "muted" }, "checking…"));
  let r;
  try { r = await get(); } catch (e) {
    if (checks.id === id) { pane.replaceChildren(el("p", { class: "check-error" }, e.message)); checks.loaded.delete(tab); }
    return;
  }
  if (checks.id === id) pane.replaceChildren(...render(r));
}

// caniemail descriptions are one-line Markdown the server turned into HTML: shown as their text.
function plain(html) { return new DOMParser().parseFromString(html || "", "text/html").body.textContent; }

function bar(s) {
  return el("div", { class: "support-bar", title: `supported ${pct(s.Supported)}, partial ${pct(s.Partial)}, unsupported ${pct(s.Unsupported)}` },
    ...[["yes", s.Supported], ["partial", s.Partial], ["no", s.Unsupported]].map(([k, v]) =>
      { const e = el("span", { class: `support-${k}` }); e.style.width = `${Math.max(0, Math.min(100, v))}%`; return e; }));
}

function renderHTMLCheck(r) {
  const t = r.Total;
  // per platform: how many of the found features some client there does not fully support
  const perPlatform = Object.entries(r.Platforms || {}).map(([platform, families]) => {
    let no = 0, partial = 0;
    for (const w of r.Warnings) {
      const res = (w.Results || []).filter((x) => x.Platform === platform);
      if (res.some((x) => x.Support === "no")) no++;
      else if (res.some((x) => x.Support === "partial")) partial++;
    }
    return el("tr", { "data-platform": platform }, el("td", {}, platform), el("td", {}, families.join(", ")),
      el("td", { class: no ? "check-error" : "" }, String(no)), el("td", {}, String(partial)));
  });
  const warnings = r.Warnings.map((w) => el("li", { class: "check-warning", "data-slug": w.Slug },
    el("div", { class: "check-title" },
      el("strong", {}, w.Title), " ", el("span", { class: "tag" }, w.Category || "html"),
      el("span", { class: "check-score" }, `unsupported ${pct(w.Score.Unsupported)} · partial ${pct(w.Score.Partial)} · found ${w.Score.Found}×`),
      /^https:\/\//i.test(w.URL) ? el("a", { href: w.URL, target: "_blank", rel: "noreferrer noopener" }, "caniemail") : null),
    bar(w.Score),
    w.Description ? el("div", { class: "muted" }, plain(w.Description)) : null));
  return [
    el("div", { class: "check-total" },
      el("span", { class: "check-big", id: "htmlcheck-score" }, pct(t.Supported)), " supported",
      el("span", { class: "muted" }, ` · partial ${pct(t.Partial)} · unsupported ${pct(t.Unsupported)} · ${t.Tests} tests on ${t.Nodes} elements`)),
    bar(t),
    el("h4", {}, "Per platform"),
    el("table", { class: "check-table", id: "htmlcheck-platforms" },
      el("thead", {}, el("tr", {}, el("th", {}, "Platform"), el("th", {}, "Clients"), el("th", { title: "found features some client there does not support" }, "Unsupported"),
                                    el("th", { title: "found features some client there supports in part" }, "Partial"))),
      el("tbody", {}, ...perPlatform)),
    el("h4", {}, `Warnings (${r.Warnings.length})`),
    r.Warnings.length ? el("ul", { class: "check-list", id: "htmlcheck-warnings" }, ...warnings)
                      : el("p", { id: "htmlcheck-warnings" }, "No features with limited support found."),
  ];
}

async function runLinkCheck() {
  const id = checks.id;
  if (!id) return;
  const follow = $("linkcheck-follow").checked;
  $("linkcheck-run").disabled = true;
  $("linkcheck-summary").className = "muted";
  $("linkcheck-summary").textContent = "checking links…";
  let r;
  try { r = await api("GET", `${url(id, "link-check")}${follow ? "?follow=true" : ""}`); } catch (e) {
    if (checks.id === id) { $("linkcheck-summary").className = "check-error"; $("linkcheck-summary").textContent = e.message; }
    return;
  } finally { $("linkcheck-run").disabled = false; }
  if (checks.id !== id) return;
  $("linkcheck-summary").className = r.Errors ? "check-error" : "check-ok";
  $("linkcheck-summary").textContent = `${r.Links.length} link${r.Links.length === 1 ? "" : "s"}, ${r.Errors} error${r.Errors === 1 ? "" : "s"}`;
  $("linkcheck-results").replaceChildren(
    el("thead", {}, el("tr", {}, el("th", {}, "Status"), el("th", {}, "URL"))),
    el("tbody", {}, ...r.Links.map((x) => el("tr", { class: x.StatusCode >= 400 || x.StatusCode === 0 ? "check-error" : "" },
      el("td", { class: "nowrap" }, `${x.StatusCode || "—"} ${x.Status}`), el("td", {}, x.URL)))));
}

function renderSpamCheck(r) {
  const out = [el("div", { class: "check-total" },
    el("span", { class: "check-big", id: "spamcheck-score" }, String(r.Score)), " points · ",
    el("span", { id: "spamcheck-verdict", class: r.IsSpam ? "check-error" : "check-ok" }, r.IsSpam ? "spam" : "not spam"),
    el("span", { class: "muted" }, " (spam from 5 points)"))];
  if (r.Error) out.push(el("p", { class: "check-error", id: "spamcheck-error" }, r.Error));
  const rules = r.Rules || [];
  if (rules.length) {
    out.push(el("table", { class: "check-table", id: "spamcheck-rules" },
      el("thead", {}, el("tr", {}, el("th", {}, "Score"), el("th", {}, "Rule"), el("th", {}, "Description"))),
      el("tbody", {}, ...rules.map((x) => el("tr", { class: x.Score > 0 ? "check-error" : "" },
        el("td", { class: "nowrap" }, String(x.Score)), el("td", {}, x.Name), el("td", {}, x.Description))))));
  }
  return out;
}

export function wireChecks() {
  $("linkcheck-run").addEventListener("click", runLinkCheck);
  configureChecks();
}
