// HTML source with its markup coloured: tags, attribute names, quoted values, comments, doctype. Built from DOM text
// nodes (never innerHTML), so the message's markup is shown, not run. Past MAX characters the rest is plain text:
// a 10 MB message must not freeze the tab.
"use strict";
import { el } from "./util.js";

const MAX = 200_000;
const TOKEN = /<!--[\s\S]*?(?:-->|$)|<![^>]*>?|<\/?[A-Za-z][^\s/>]*(?:[^>"']|"[^"]*"|'[^']*')*>?/g;
const ATTR = /([^\s=/>]+)(\s*=\s*)("[^"]*"|'[^']*'|[^\s>]+)?/g;

function tag(text) {
  const out = [];
  const m = text.match(/^<\/?[^\s/>]*/)[0];
  out.push(el("span", { class: "hl-tag" }, m));
  let rest = text.slice(m.length);
  const close = rest.match(/\/?>$/);
  const tail = close ? close[0] : "";
  rest = rest.slice(0, rest.length - tail.length);
  let last = 0;
  for (const a of rest.matchAll(ATTR)) {
    out.push(rest.slice(last, a.index), el("span", { class: "hl-attr" }, a[1]), a[2] || "");
    if (a[3]) out.push(el("span", { class: "hl-str" }, a[3]));
    last = a.index + a[0].length;
  }
  out.push(rest.slice(last));
  if (tail) out.push(el("span", { class: "hl-tag" }, tail));
  return out;
}

export function highlightHTML(source) {
  const text = source.length > MAX ? source.slice(0, MAX) : source;
  const parts = [];
  let last = 0;
  for (const m of text.matchAll(TOKEN)) {
    if (m.index > last) parts.push(text.slice(last, m.index));
    const t = m[0];
    if (t.startsWith("<!--")) parts.push(el("span", { class: "hl-com" }, t));
    else if (t.startsWith("<!")) parts.push(el("span", { class: "hl-doc" }, t));
    else parts.push(...tag(t));
    last = m.index + t.length;
  }
  parts.push(text.slice(last));
  if (source.length > MAX) parts.push(el("span", { class: "hl-com" }, `\n… ${source.length - MAX} more characters (see Source)`));
  return parts;
}
