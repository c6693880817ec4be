// Small helpers shared by the inspector's modules: DOM building, the API call, formatting.
"use strict";

export const $ = (id) => document.getElementById(id);

export function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-") || k.startsWith("aria-") || k === "role") e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) if (c != null && c !== false) e.append(c);
  return e;
}

export class APIError extends Error {
  constructor(status, text) { super(text); this.status = status; }
}

export async function api(method, path, body) {
  const opts = { method, headers: {} };
  if (body !== undefined) { opts.body = JSON.stringify(body); opts.headers["Content-Type"] = "application/json"; }
  const r = await fetch(path, opts);
  if (!r.ok) throw new APIError(r.status, `${method} ${path}: ${r.status} ${await r.text()}`);
  const ct = r.headers.get("Content-Type") || "";
  return ct.includes("json") ? r.json() : r.text();
}

export function addr(a) { return a ? (a.Name ? `${a.Name} <${a.Address}>` : a.Address) : ""; }
export function addrs(list) { return (list || []).map(addr).join(", "); }
export function when(iso) { const d = new Date(iso); return isNaN(d) ? "" : d.toLocaleString(); }
// The list's date: the time for today's mail, the day otherwise (the year only when it is not this one).
export function shortWhen(iso) {
  const d = new Date(iso), now = new Date();
  if (isNaN(d)) return "";
  if (d.toDateString() === now.toDateString()) return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  const opts = { month: "short", day: "numeric" };
  if (d.getFullYear() !== now.getFullYear()) opts.year = "numeric";
  return d.toLocaleDateString([], opts);
}

export function size(n) {
  return n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} kB` : `${(n / 1048576).toFixed(1)} MB`;
}

// True while the user types somewhere: single-key shortcuts must not fire then.
export function typing(target) {
  const t = target && target.tagName;
  if (t === "INPUT") return !["checkbox", "radio", "button", "submit", "reset"].includes(target.type);
  return t === "TEXTAREA" || t === "SELECT" || (target && target.isContentEditable);
}
