// The tab tells what is unread: a favicon drawn with the unread count (and the count in the title), and — when the
// user turns them on — a browser notification for each new message, which opens it when clicked.
"use strict";
import { $, addr } from "./util.js";

const KEY = "courrier-notify";
let lastUnread = -1;

function drawIcon(unread) {
  const c = document.createElement("canvas");
  c.width = c.height = 64;
  const g = c.getContext("2d");
  g.fillStyle = "#2f6fde";                      // the envelope
  g.beginPath(); g.roundRect(2, 12, 60, 42, 6); g.fill();
  g.strokeStyle = "#ffffff"; g.lineWidth = 4;
  g.beginPath(); g.moveTo(6, 16); g.lineTo(32, 38); g.lineTo(58, 16); g.stroke();
  if (unread > 0) {                              // the badge, top right
    const text = unread > 99 ? "99+" : String(unread);
    g.fillStyle = "#d93025";
    g.beginPath(); g.arc(44, 20, 20, 0, 2 * Math.PI); g.fill();
    g.fillStyle = "#ffffff";
    g.font = `bold ${text.length > 2 ? 18 : text.length > 1 ? 22 : 28}px sans-serif`;
    g.textAlign = "center"; g.textBaseline = "middle";
    g.fillText(text, 44, 21);
  }
  return c.toDataURL("image/png");
}

export function showUnread(unread) {
  if (unread === lastUnread) return;
  lastUnread = unread;
  let link = document.querySelector('link[rel="icon"]');
  if (!link) { link = document.createElement("link"); link.rel = "icon"; document.head.append(link); }
  link.type = "image/png";
  link.href = drawIcon(unread);
  link.dataset.unread = String(unread);
  const base = document.title.replace(/^\(\d+\+?\) /, "");
  document.title = unread > 0 ? `(${unread}) ${base}` : base;
}

export function titled(title) {
  document.title = lastUnread > 0 ? `(${lastUnread}) ${title}` : title;
}

function enabled() {
  try { return localStorage.getItem(KEY) === "on" && "Notification" in window && Notification.permission === "granted"; }
  catch (e) { return false; }
}

function renderToggle() {
  const on = enabled();
  $("notify-toggle").setAttribute("aria-pressed", String(on));
  $("notify-toggle").title = on ? "Notifications on: click to turn off" : "Notify me of new mail";
  $("notify-toggle").classList.toggle("on", on);
}

async function toggle() {
  if (!("Notification" in window)) { alert("This browser has no notifications."); return; }
  if (enabled()) { localStorage.setItem(KEY, "off"); renderToggle(); return; }
  const perm = Notification.permission === "granted" ? "granted" : await Notification.requestPermission();
  localStorage.setItem(KEY, perm === "granted" ? "on" : "off");
  renderToggle();
}

// A new message: a notification (when on), whose click brings the tab forward on that message.
export function notifyNew(summary, open) {
  if (!enabled()) return;
  const n = new Notification(summary.Subject || "(no subject)", {
    body: `From ${addr(summary.From) || "(no sender)"}`, tag: summary.ID, icon: drawIcon(0) });
  n.onclick = () => { window.focus(); open(summary.ID); n.close(); };
}

export function wireNotify() {
  $("notify-toggle").addEventListener("click", toggle);
  renderToggle();
}
