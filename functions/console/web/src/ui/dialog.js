// Modal questions on the native <dialog>: showModal() traps focus and Escape cancels.

import { h, uid } from "../dom.js";

function openDialog(dialog, initialFocus) {
  const previous = document.activeElement;
  const previousKey = previous?.dataset?.focusKey;
  document.body.append(dialog);
  dialog.showModal();
  initialFocus.focus();
  return () => {
    dialog.remove();
    // A live table may have redrawn the button meanwhile: find its successor by key.
    const target = previous?.isConnected ? previous
      : previousKey ? document.querySelector(`[data-focus-key="${CSS.escape(previousKey)}"]`) : null;
    target?.focus();
  };
}

/**
 * Ask before doing something that cannot be undone.
 * @returns {Promise<boolean>}
 */
export function confirmDialog({ title, message, confirmLabel = "Confirm", danger = false, testid = "confirm-ok" }) {
  return new Promise((resolve) => {
    const titleId = uid("d");
    const ok = h("button", { type: "button", class: ["button", danger ? "danger" : "primary"], "data-testid": testid }, confirmLabel);
    const cancel = h("button", { type: "button", class: "button", "data-testid": "confirm-cancel" }, "Cancel");
    const lines = Array.isArray(message) ? message : [message];
    const dialog = h("dialog", { class: "dialog", "aria-labelledby": titleId, "data-testid": "confirm-dialog" },
      h("h2", { id: titleId }, title),
      lines.filter(Boolean).map((line) => h("p", null, line)),
      h("div", { class: "dialog-actions" }, cancel, ok));
    let confirmed = false;
    ok.addEventListener("click", () => { confirmed = true; dialog.close(); });
    cancel.addEventListener("click", () => dialog.close());
    const restore = openDialog(dialog, cancel); // the harmless choice has the focus first
    dialog.addEventListener("close", () => { restore(); resolve(confirmed); });
  });
}

/**
 * Ask for a short text (e.g. a note for the audit log).
 * @returns {Promise<string|null>}  the text ("" if left empty), or null when cancelled
 */
export function promptDialog({ title, message, label, confirmLabel = "OK", maxLength = 500, testid = "prompt-ok" }) {
  return new Promise((resolve) => {
    const titleId = uid("d");
    const inputId = uid("d");
    const input = h("textarea", { id: inputId, rows: 3, maxlength: maxLength, "data-testid": "prompt-input" });
    const ok = h("button", { type: "submit", class: "button primary", "data-testid": testid }, confirmLabel);
    const cancel = h("button", { type: "button", class: "button" }, "Cancel");
    let answer = null;
    const body = h("form", { novalidate: true },
      message ? h("p", null, message) : null,
      h("div", { class: "field" }, h("label", { for: inputId }, label), input),
      h("div", { class: "dialog-actions" }, cancel, ok));
    body.addEventListener("submit", (event) => {
      event.preventDefault();
      answer = input.value.trim();
      dialog.close();
    });
    const dialog = h("dialog", { class: "dialog", "aria-labelledby": titleId, "data-testid": "prompt-dialog" },
      h("h2", { id: titleId }, title), body);
    cancel.addEventListener("click", () => dialog.close());
    const restore = openDialog(dialog, input);
    dialog.addEventListener("close", () => { restore(); resolve(answer); });
  });
}
