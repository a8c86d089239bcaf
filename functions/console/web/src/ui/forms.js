// Labelled form controls, and the server's 400/403/409 messages shown where they belong.

import { ApiError } from "../api.js";
import { h, uid } from "../dom.js";

/**
 * A labelled control inside a `.field` wrapper that names its API field (data-field), so a
 * server error naming that field lands next to it.
 * @param {object} spec  {label, name, type: text|number|email|password|url|textarea|select|checkbox|datetime,
 *                        value, hint, testid, options: [{value, label}], disabled, attrs}
 */
export function field({ label, name, type = "text", value, hint, testid, options, disabled, attrs = {} }) {
  const id = uid("f");
  const hintId = hint ? `${id}-hint` : null;
  const errorId = `${id}-error`;
  const common = { id, name, disabled, "data-testid": testid, "aria-describedby": hintId, ...attrs };
  let control;
  if (type === "textarea") {
    control = h("textarea", { rows: 3, ...common, value: value ?? "" });
  } else if (type === "select") {
    control = h("select", common, options.map((option) =>
      h("option", { value: option.value, selected: option.value === value }, option.label)));
  } else if (type === "checkbox") {
    control = h("input", { type: "checkbox", ...common, checked: Boolean(value) });
  } else if (type === "datetime") {
    // Entered and shown in UTC, as the service keeps every time.
    control = h("input", { type: "datetime-local", step: 1, ...common, value: toLocalInput(value) });
  } else {
    control = h("input", { type, ...common, value: value ?? "" });
  }
  const labelEl = h("label", { for: id }, label);
  const hintEl = hint ? h("p", { class: "hint", id: hintId }, hint) : null;
  const errorEl = h("p", { class: "field-error", id: errorId, hidden: true, "data-testid": "field-error" });
  const parts = type === "checkbox" ? [h("div", { class: "check" }, control, labelEl), hintEl, errorEl]
    : [labelEl, control, hintEl, errorEl];
  return h("div", { class: ["field", type === "checkbox" && "field-checkbox"], dataset: { field: name } }, parts);
}

/**
 * A group of controls answering to one API field (e.g. "policy"): a fieldset with a legend
 * and a place for the server's message about the group as a whole.
 */
export function fieldGroup({ legend, name, hint, testid, hideLegend = false }, ...children) {
  const id = uid("g");
  return h("fieldset", { class: ["group", hideLegend && "group-bare"], dataset: { field: name }, "data-testid": testid },
    h("legend", { class: hideLegend ? "visually-hidden" : null }, legend),
    h("p", { class: "field-error", id: `${id}-error`, hidden: true, "data-testid": "field-error" }),
    hint ? h("p", { class: "hint" }, hint) : null,
    ...children);
}

/** The top-of-form error area (made once per form). */
function formErrorArea(form) {
  let area = form.querySelector(":scope > .form-error");
  if (!area) {
    area = h("div", { class: "form-error", role: "alert", "data-testid": "form-error", tabindex: -1, hidden: true });
    form.prepend(area);
  }
  return area;
}

export function clearErrors(form) {
  for (const el of form.querySelectorAll(".field-error")) {
    el.hidden = true;
    el.textContent = "";
  }
  for (const el of form.querySelectorAll("[aria-invalid]")) {
    el.removeAttribute("aria-invalid");
    const described = (el.getAttribute("aria-describedby") || "").split(" ").filter((id) => !id.endsWith("-error"));
    if (described.length) el.setAttribute("aria-describedby", described.join(" "));
    else el.removeAttribute("aria-describedby");
  }
  const area = form.querySelector(":scope > .form-error");
  if (area) {
    area.hidden = true;
    area.textContent = "";
  }
}

/** The wrapper of the field a server path names: "policy.reserve.0.seats" falls back to "policy". */
function findField(form, name) {
  let path = name;
  while (path) {
    const wrapper = form.querySelector(`[data-field="${CSS.escape(path)}"]`);
    if (wrapper) return wrapper;
    const cut = Math.max(path.lastIndexOf("."), path.lastIndexOf("["));
    if (cut <= 0) return null;
    path = path.slice(0, cut);
  }
  return null;
}

/** Show a message in a field wrapper; returns what should take the focus. */
function showFieldError(wrapper, message) {
  const errorEl = wrapper.querySelector(":scope > .field-error");
  errorEl.textContent = errorEl.textContent ? `${errorEl.textContent} ${message}` : message;
  errorEl.hidden = false;
  // A group of controls (the seat policy) has no control of its own: its message takes the focus.
  const input = wrapper.querySelector(":scope > :is(input, select, textarea), :scope > .check > input");
  if (!input) {
    errorEl.tabIndex = -1;
    return errorEl;
  }
  input.setAttribute("aria-invalid", "true");
  const described = new Set((input.getAttribute("aria-describedby") || "").split(" ").filter(Boolean));
  described.add(errorEl.id);
  input.setAttribute("aria-describedby", [...described].join(" "));
  return input;
}

/** A sentence for an error a form cannot place next to a field. */
export function describeError(error) {
  if (!(error instanceof ApiError)) return error?.message || String(error);
  if (error.notFound) return "Not found: it does not exist, or it is not yours to see.";
  if (error.status === 0) return "The service cannot be reached. Try again.";
  if (error.status === 503 || error.status === 429) return "The service is temporarily unavailable. Try again in a moment.";
  return error.message;
}

/**
 * Show an error on a form: next to the fields the server names (field, fields[], or
 * denied_fields), the rest at the top; focus moves to the first of them.
 */
export function showError(form, error) {
  clearErrors(form);
  const problems = [];
  if (error instanceof ApiError && error.status === 403 && error.deniedFields.length) {
    for (const name of error.deniedFields) problems.push({ field: name, problem: "Only the vendor (the platform owner) changes this." });
  } else if (error instanceof ApiError && error.status === 400) {
    if (error.fields.length) problems.push(...error.fields);
    else if (error.field) problems.push({ field: error.field, problem: error.message });
  }
  let first = null;
  const unplaced = [];
  for (const { field: name, problem } of problems) {
    const wrapper = name ? findField(form, String(name)) : null;
    if (wrapper) first = first || showFieldError(wrapper, problem);
    else unplaced.push(name && name !== "(body)" ? `${name}: ${problem}` : problem);
  }
  const top = [];
  // The envelope's own message says what was wrong as a whole ("the request body does not
  // match the contract"; "only the platform owner..."): shown unless a field already shows it.
  if (!(problems.length === 1 && error.field && first)) top.push(describeError(error));
  top.push(...unplaced);
  const area = formErrorArea(form);
  area.replaceChildren(...top.map((line) => h("p", null, line)));
  area.hidden = top.length === 0;
  (first || area).focus();
}

/**
 * Run a form's submission: the submit button is disabled meanwhile, errors are cleared
 * first and shown after; resolves to fn's result, or undefined when it failed.
 */
export async function submitting(form, fn) {
  const buttons = [...form.querySelectorAll("button[type=submit]")];
  clearErrors(form);
  for (const button of buttons) button.disabled = true;
  form.setAttribute("aria-busy", "true");
  try {
    return await fn();
  } catch (error) {
    if (error && error.name === "AbortError") return undefined;
    showError(form, error);
    return undefined;
  } finally {
    for (const button of buttons) button.disabled = false;
    form.removeAttribute("aria-busy");
  }
}

/** A form that never navigates (the CSP has form-action 'none'): submit runs `onSubmit`. */
export function form(attrs, ...children) {
  const { onSubmit, ...rest } = attrs;
  const el = h("form", { novalidate: true, ...rest }, ...children);
  el.addEventListener("submit", (event) => {
    event.preventDefault();
    onSubmit(event);
  });
  return el;
}

/** Lines or commas of a textarea: a list without blanks. */
export function toList(text) {
  return String(text || "").split(/[\n,]+/).map((item) => item.trim()).filter(Boolean);
}

export function fromList(items) {
  return (items || []).join("\n");
}

/** An integer from a number input, or null when empty (a non-integer stays as text: the server says why). */
export function toInteger(text) {
  const value = String(text ?? "").trim();
  if (value === "") return null;
  return /^-?\d+$/.test(value) ? Number(value) : value;
}

/** "2025-06-01T14:03:05Z" -> "2025-06-01T14:03:05" for a datetime-local input showing UTC. */
export function toLocalInput(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? "" : date.toISOString().slice(0, 19);
}

/** A datetime-local value read as UTC -> RFC 3339, or null when empty. */
export function fromLocalInput(value) {
  if (!value) return null;
  const full = value.length === 16 ? `${value}:00` : value;
  return `${full.slice(0, 19)}Z`;
}

function canonical(value) {
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.keys(value).sort().map((key) => [key, canonical(value[key])]));
  }
  return value ?? null;
}

/** The same JSON, whatever the order of keys? (used to send only what changed) */
export function same(a, b) {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

export function submitButton(label, testid) {
  return h("button", { type: "submit", class: "button primary", "data-testid": testid }, label);
}
