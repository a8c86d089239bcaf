// A license's usage: hour by hour over a chosen period (GET .../report?granularity=hour), as a
// chart, as a table, the summary with its right-sizing line, and the same rows as CSV.

import { route } from "../api.js";
import { formatNumber, formatTime, h, isoSeconds, replaceChildren, uid } from "../dom.js";
import { describeError } from "../ui/forms.js";
import { overdraftSeats } from "../ui/licenses.js";
import { loading, showFailure } from "../ui/panels.js";
import { usageChart } from "../ui/chart.js";
import { dataTable } from "../ui/table.js";

const PERIODS = [
  { value: "24", label: "Last 24 hours" },
  { value: "168", label: "Last 7 days" },
  { value: "720", label: "Last 30 days" },
  { value: "2160", label: "Last 90 days" },
];
const HOUR_MS = 3_600_000;

function window_(hours) {
  // Whole hours: the report widens its bounds to them anyway, and equal bounds make equal CSVs.
  const to = new Date(Math.ceil(Date.now() / HOUR_MS) * HOUR_MS);
  const from = new Date(to.getTime() - hours * HOUR_MS);
  return { from: isoSeconds(from), to: isoSeconds(to) };
}

function summaryList(summary) {
  const rows = [
    ["Peak seats in use", formatNumber(summary.peak)],
    ["95th percentile", formatNumber(summary.p95)],
    ["Average in use", formatNumber(summary.average, 2)],
    ["Utilization", summary.utilization === null ? "—" : `${formatNumber(summary.utilization * 100, 1)} %`],
    ["Seat-hours", formatNumber(summary.seat_hours, 1)],
    ["Hours with every seat in use", formatNumber(summary.hours_at_full)],
    ["Acquires refused", formatNumber(summary.denials)],
    ["Callers refused for want of a seat", formatNumber(summary.denied_callers)],
    ["Most seats in the overdraft", formatNumber(summary.overage_peak)],
    ["Sessions begun", formatNumber(summary.grants)],
  ];
  return h("dl", { class: "facts", "data-testid": "usage-summary" },
    rows.map(([term, value]) => h("div", null, h("dt", null, term), h("dd", null, value))));
}

function rightSizing(summary, maxSeats) {
  const { seats, coverage } = summary.right_size;
  const verdict = seats < maxSeats ? `${maxSeats - seats} fewer than the ${maxSeats} it has`
    : seats > maxSeats ? `${seats - maxSeats} more than the ${maxSeats} it has` : `exactly the ${maxSeats} it has`;
  return h("p", { class: "callout", "data-testid": "right-size" },
    h("strong", null, `${seats} seats`), ` would have covered ${formatNumber(coverage * 100, 1)} % of this period's demand: ${verdict}.`);
}

function hoursTable(series) {
  return dataTable({
    caption: "Every hour of the period (UTC)",
    columns: [
      { label: "Hour (UTC)", header: true, cell: (r) => formatTime(r.start).slice(0, 16) },
      { label: "Peak", class: "num", cell: (r) => r.peak },
      { label: "Max seats", class: "num", cell: (r) => r.max_seats },
      { label: "Average", class: "num", cell: (r) => formatNumber(r.average, 2) },
      { label: "Overdraft", class: "num", cell: (r) => r.overage },
      { label: "Refused", class: "num", cell: (r) => r.denials },
      { label: "Sessions begun", class: "num", cell: (r) => r.grants },
      { label: "Final", cell: (r) => (r.final ? "yes" : "not yet") },
    ],
    rows: series,
    empty: "No hours in this period.",
  });
}

/**
 * @returns {{element: HTMLElement, load: (license) => Promise<void>}}
 */
export function usageSection({ api, signal, licenseId }) {
  let license = null;
  const periodId = uid("period");
  const period = h("select", { id: periodId, "data-testid": "usage-period" },
    PERIODS.map((p) => h("option", { value: p.value, selected: p.value === "168" }, p.label)));
  const csv = h("button", { type: "button", class: "button", "data-testid": "usage-csv" }, "Download CSV");
  const csvStatus = h("span", { class: "muted small", role: "status", "aria-live": "polite" });
  const body = h("div", { class: "usage-body" }, loading());
  const element = h("section", { class: "section", "aria-labelledby": "usage-title", "data-testid": "usage" },
    h("h2", { id: "usage-title" }, "Usage"),
    h("div", { class: "toolbar" },
      h("div", { class: "field field-inline" }, h("label", { for: periodId }, "Period"), period),
      csv, csvStatus),
    body);

  period.addEventListener("change", () => draw().catch(() => {}));
  csv.addEventListener("click", () => download().catch(() => {}));

  function query(extra) {
    return { granularity: "hour", ...window_(Number(period.value)), ...extra };
  }

  async function draw() {
    replaceChildren(body, loading());
    let report;
    try {
      report = await api.get(route`/licenses/${licenseId}/report`, { query: query(), signal });
    } catch (error) {
      if (error?.status === 400) {
        replaceChildren(body, h("p", { class: "form-error", role: "alert" }, describeError(error)));
      } else {
        showFailure(body, error);
      }
      return;
    }
    const width = body.clientWidth || element.clientWidth || 720;
    replaceChildren(body,
      report.series.length ? usageChart({ series: report.series, overdraft: overdraftSeats(license), width })
        : h("p", { class: "muted" }, "No hours in this period."),
      rightSizing(report.summary, report.max_seats),
      summaryList(report.summary),
      h("p", { class: "muted small" }, `Final up to ${formatTime(report.through)} UTC; later hours are live and may still change.`),
      h("details", { class: "disclosure" }, h("summary", null, "The figures hour by hour"), hoursTable(report.series)));
  }

  // The CSV is fetched with the ID token (never in a URL) and handed to the browser as a file.
  async function download() {
    csv.disabled = true;
    csvStatus.textContent = "Preparing…";
    try {
      const response = await api.get(route`/licenses/${licenseId}/report`,
        { query: query({ format: "csv" }), accept: "text/csv", raw: true, signal });
      const blob = await response.blob();
      const bounds = query();
      const name = `${licenseId}_hour_${bounds.from.slice(0, 13)}_${bounds.to.slice(0, 13)}.csv`.replaceAll(":", "");
      const url = URL.createObjectURL(blob);
      const link = h("a", { href: url, download: name, class: "visually-hidden" }, "download");
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
      csvStatus.textContent = `Downloaded ${name}`;
    } catch (error) {
      csvStatus.textContent = describeError(error);
    } finally {
      csv.disabled = false;
    }
  }

  return {
    element,
    async load(current) {
      license = current;
      await draw();
    },
  };
}
