// Building the DOM without markup strings.
//
// Everything the server sends (tenant names, hostnames, client versions, audit details) is
// text, and text only ever enters the page as a text node: `h` appends strings with
// `append`, never `innerHTML`. The page runs under `style-src 'self'`, so no element gets a
// `style` attribute (classes do that job), and under `script-src 'self'`, so listeners are
// attached here, never written as attributes.

const SVG_NS = "http://www.w3.org/2000/svg";
// Set as properties: their attributes are only the initial state.
const PROPERTIES = new Set(["value", "checked", "disabled", "selected", "indeterminate"]);
// Links go to the console's own routes, or to a Blob the console made (downloads).
const SAFE_HREF = /^(#\/|#main$|blob:)/;

function setAttributes(el, attrs, isSvg) {
  if (!attrs) return;
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "style") throw new Error("no style attributes (CSP style-src 'self'): use a class");
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "class") {
      const names = Array.isArray(value) ? value.filter(Boolean).join(" ") : value;
      if (names) el.setAttribute("class", names);
    } else if (name === "dataset") {
      for (const [key, data] of Object.entries(value)) {
        if (data !== null && data !== undefined) el.dataset[key] = String(data);
      }
    } else if (!isSvg && PROPERTIES.has(name)) {
      el[name] = value;
    } else {
      if (name === "href" && !SAFE_HREF.test(String(value))) throw new Error(`unsafe link ${value}`);
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
}

function appendChildren(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

/** An HTML element: h("a", {href: "#/licenses", onclick}, "Licenses"). Strings become text. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttributes(el, attrs, false);
  appendChildren(el, children);
  return el;
}

/** An SVG element (the usage chart), built the same way. */
export function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttributes(el, attrs, true);
  appendChildren(el, children);
  return el;
}

/** Replace an element's children. */
export function replaceChildren(el, ...children) {
  el.replaceChildren();
  appendChildren(el, children);
  return el;
}

/**
 * Swap `fresh` in for `stale` and keep the keyboard where it was: a table refreshed every
 * few seconds must not throw the focus off the button a user has tabbed to. Elements that
 * can hold focus carry `data-focus-key`, the same in both versions.
 */
export function swapKeepingFocus(stale, fresh) {
  const active = document.activeElement;
  const key = active && stale.contains(active) ? active.dataset.focusKey : undefined;
  stale.replaceWith(fresh);
  if (key) fresh.querySelector(`[data-focus-key="${CSS.escape(key)}"]`)?.focus();
  return fresh;
}

let sequence = 0;
/** A document-unique id for label/aria wiring. */
export function uid(prefix = "c") {
  sequence += 1;
  return `${prefix}${sequence}`;
}

// ---- Formatting: every time is shown in UTC, as the service counts it -------------------

const pad = (n) => String(n).padStart(2, "0");

/** "2025-06-01 14:03:05" (UTC); "—" for none. */
export function formatTime(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return `${date.getUTCFullYear()}-${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())} `
    + `${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())}`;
}

/**
 * A <time> element showing formatTime; `compact` drops the date of a time today (UTC), the
 * full time staying in its title.
 */
export function timeEl(iso, { compact = false } = {}) {
  if (!iso) return h("span", { class: "muted" }, "—");
  const full = formatTime(iso);
  const today = formatTime(new Date().toISOString()).slice(0, 10);
  const text = compact && full.startsWith(today) ? full.slice(11) : full;
  return h("time", { datetime: iso, title: `${full} UTC` }, text);
}

/** "42 s", "5 min", "3 h 20 min", "2 d 4 h" */
export function formatSeconds(total) {
  if (total === null || total === undefined || Number.isNaN(Number(total))) return "—";
  let s = Math.round(Math.abs(Number(total)));
  const sign = Number(total) < 0 ? "−" : "";
  if (s < 60) return `${sign}${s} s`;
  const d = Math.floor(s / 86400); s -= d * 86400;
  const hr = Math.floor(s / 3600); s -= hr * 3600;
  const min = Math.floor(s / 60); s -= min * 60;
  const parts = [];
  if (d) parts.push(`${d} d`);
  if (hr) parts.push(`${hr} h`);
  if (min && !d) parts.push(`${min} min`);
  if (s && !d && !hr) parts.push(`${s} s`);
  return sign + parts.slice(0, 2).join(" ");
}

/** "12 s ago" / "in 5 min", relative to now. */
export function formatRelative(iso, now = Date.now()) {
  if (!iso) return "";
  const ms = new Date(iso).getTime();
  if (Number.isNaN(ms)) return "";
  const seconds = (ms - now) / 1000;
  return seconds >= 0 ? `in ${formatSeconds(seconds)}` : `${formatSeconds(-seconds)} ago`;
}

/** A number with at most `digits` decimals ("—" for null). */
export function formatNumber(value, digits = 0) {
  if (value === null || value === undefined || Number.isNaN(Number(value))) return "—";
  return Number(value).toLocaleString("en-US", { maximumFractionDigits: digits });
}

/** "2025-06-01T14:03:05Z" from a Date: what the API reads (no milliseconds). */
export function isoSeconds(date) {
  return `${date.toISOString().slice(0, 19)}Z`;
}
