// Conflict flags (key sharing, seat cycling): a table, and acknowledging one with a note.

import { route } from "../api.js";
import { formatSeconds, formatTime, h, timeEl } from "../dom.js";
import { promptDialog } from "./dialog.js";
import { describeError } from "./forms.js";
import { badge, dataTable } from "./table.js";

export const RULE_LABELS = {
  hardware_per_user: "Hardware ids per user",
  users_per_hardware: "Users per hardware id",
  addresses_per_session: "Client addresses per session",
  grants_per_user: "Seats granted per user",
};

/**
 * @param {object} spec {flags, caption, showLicense, onAcknowledge(flag)}
 */
export function anomalyTable({ flags, caption, showLicense, onAcknowledge }) {
  return dataTable({
    caption,
    testid: "anomalies-table",
    empty: "No conflict flags.",
    rows: flags,
    rowAttrs: (flag) => ({ "data-testid": "anomaly-row", "data-anomaly-id": flag.id }),
    columns: [
      { label: "Rule", header: true, cell: (f) => RULE_LABELS[f.rule] || f.rule },
      { label: "Subject", cell: (f) => h("span", null, h("code", null, f.subject), f.uid ? h("span", { class: "block muted small" }, `user ${f.uid}`) : null) },
      showLicense ? { label: "License", cell: (f) => h("a", { href: `#/licenses/${encodeURIComponent(f.license)}` }, h("code", null, f.license)) } : null,
      { label: "Count", class: "num", cell: (f) => `${f.evidence.count} > ${f.evidence.threshold} in ${formatSeconds(f.evidence.window_s)}` },
      { label: "First seen (UTC)", cell: (f) => timeEl(f.evidence.first_seen) },
      { label: "Last seen (UTC)", cell: (f) => timeEl(f.evidence.last_seen) },
      { label: "Examples", cell: (f) => h("ul", { class: "plain-list" }, (f.evidence.examples || []).map((e) => h("li", null, h("code", null, e)))) },
      { label: "Raised", class: "num", cell: (f) => f.times_raised },
      { label: "State", cell: (f) => (f.acknowledged
        ? h("span", null, badge("acknowledged", "neutral"),
          h("span", { class: "block muted small" }, `by ${f.acknowledged.by} at ${formatTime(f.acknowledged.at)}`),
          f.acknowledged.note ? h("span", { class: "block small" }, f.acknowledged.note) : null)
        : badge("open", "warning")) },
      { label: "Action", cell: (f) => {
        if (f.state !== "open") return null;
        const button = h("button", { type: "button", class: "button small", "data-testid": "acknowledge",
          "data-focus-key": `ack-${f.id}`, "aria-label": `Acknowledge the flag on ${f.subject}` }, "Acknowledge");
        button.addEventListener("click", () => onAcknowledge(f));
        return button;
      } },
    ].filter(Boolean),
  });
}

/** Ask for a note, acknowledge; true when done. */
export async function acknowledgeFlag({ api, signal, notify }, flag) {
  const note = await promptDialog({
    title: "Acknowledge this flag?",
    message: `${RULE_LABELS[flag.rule] || flag.rule}: ${flag.subject}. It is raised again only if its count grows past ${flag.evidence.count}.`,
    label: "Note for the audit log (optional)",
    confirmLabel: "Acknowledge",
    testid: "acknowledge-confirm",
  });
  if (note === null) return false;
  try {
    await api.post(route`/anomalies/${flag.id}/acknowledge`, note ? { note } : {}, { signal });
    notify("Flag acknowledged.");
    return true;
  } catch (error) {
    notify(describeError(error), "error");
    return false;
  }
}
