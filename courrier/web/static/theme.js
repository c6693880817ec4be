// Runs before the first paint (a classic script in <head>): applies the theme chosen with the toggle, if any, so a
// dark-mode user never sees a white flash. Without a choice the stylesheet follows prefers-color-scheme.
"use strict";
try {
  const t = localStorage.getItem("courrier-theme");
  if (t === "light" || t === "dark") document.documentElement.dataset.theme = t;
} catch (e) { /* storage disabled: follow the system */ }
