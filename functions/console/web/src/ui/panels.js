// What a page shows instead of its content: not found, an error, loading.

import { ApiError, isAbort } from "../api.js";
import { h, replaceChildren } from "../dom.js";
import { describeError } from "./forms.js";

export function notFoundPanel() {
  return h("section", { class: "panel panel-notfound", "data-testid": "not-found", role: "alert" },
    h("h2", null, "Not found"),
    h("p", null, "This does not exist, or it is not yours to see."),
    h("p", null, h("a", { href: "#/licenses" }, "Back to the licenses")));
}

function errorPanel(error) {
  return h("section", { class: "panel panel-error", "data-testid": "error-panel", role: "alert" },
    h("h2", null, "Something went wrong"),
    h("p", null, describeError(error)));
}

export function loading(text = "Loading…") {
  return h("p", { class: "loading", role: "status" }, text);
}

/**
 * Show a failed load in `container` (a leave of the page is no failure).
 * @returns {boolean} whether something was shown
 */
export function showFailure(container, error) {
  if (isAbort(error)) return false;
  if (error instanceof ApiError && error.notFound) replaceChildren(container, notFoundPanel());
  else replaceChildren(container, errorPanel(error));
  return true;
}

/** A page's h1: focusable from script, so a navigation can move the keyboard to it. */
export function pageHeading(title, ...after) {
  return h("div", { class: "page-head" }, h("h1", { tabindex: -1 }, title), ...after);
}
