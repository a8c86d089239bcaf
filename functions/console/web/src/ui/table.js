// Data tables: a caption, column headers with scope, and a wrapper that scrolls sideways on a
// narrow screen (focusable, so the keyboard can scroll it too).

import { h, uid } from "../dom.js";

/**
 * @param {object} spec
 * @param {string} spec.caption
 * @param {Array<{label: string, cell: (row) => any, header?: boolean, class?: string}>} spec.columns
 * @param {Array} spec.rows
 * @param {string} spec.empty          shown when there are no rows
 * @param {(row) => object} [spec.rowAttrs]
 * @param {string} [spec.testid]
 * @param {boolean} [spec.hideCaption] visually hidden (a heading already says it)
 */
export function dataTable({ caption, columns, rows, empty, rowAttrs, testid, hideCaption = false }) {
  const captionId = uid("t");
  const body = rows.length
    ? rows.map((row) => h("tr", rowAttrs ? rowAttrs(row) : null, columns.map((column) =>
      h(column.header ? "th" : "td", { scope: column.header ? "row" : null, class: column.class }, column.cell(row)))))
    : h("tr", null, h("td", { colspan: columns.length, class: "empty" }, empty));
  const table = h("table", { class: "table", "data-testid": testid },
    h("caption", { id: captionId, class: hideCaption ? "visually-hidden" : null }, caption),
    h("thead", null, h("tr", null, columns.map((column) => h("th", { scope: "col", class: column.class }, column.label)))),
    h("tbody", null, body));
  return h("div", { class: "table-wrap", role: "region", "aria-labelledby": captionId, tabindex: 0 }, table);
}

/** A small label: status, state, overage. */
export function badge(text, kind = "neutral", testid) {
  return h("span", { class: ["badge", `badge-${kind}`], "data-testid": testid }, text);
}
