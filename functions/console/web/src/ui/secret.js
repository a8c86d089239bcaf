// A secret the server shows once (a license key, a webhook signing secret): a warning, the
// value, and a copy button.

import { h, uid } from "../dom.js";

function selectText(el) {
  const range = document.createRange();
  range.selectNodeContents(el);
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
}

/**
 * @param {object} spec {title, value, warning, testid (the value), copyTestid}
 */
export function secretBox({ title, value, warning, testid, copyTestid }) {
  const valueId = uid("s");
  const code = h("code", { id: valueId, class: "secret-value", "data-testid": testid, tabindex: 0 }, value);
  const status = h("span", { class: "copy-status", role: "status", "aria-live": "polite", "data-testid": `${copyTestid}-status` });
  const button = h("button", { type: "button", class: "button", "aria-describedby": valueId, "data-testid": copyTestid }, "Copy");
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(value);
      status.textContent = "Copied";
    } catch {
      // No clipboard access (an insecure origin, a denied permission): select it for the user.
      selectText(code);
      let copied = false;
      try {
        copied = document.execCommand("copy");
      } catch {
        copied = false;
      }
      status.textContent = copied ? "Copied" : "Selected: press Ctrl+C (⌘C) to copy";
    }
  });
  return h("div", { class: "secret", role: "group", "aria-label": title },
    h("p", { class: "warning" }, h("strong", null, "Shown only once. "), warning),
    h("div", { class: "secret-row" }, code, button, status));
}
