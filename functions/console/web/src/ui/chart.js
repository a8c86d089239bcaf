// The usage chart: seats in use per hour (the hour's peak, as steps), max_seats dashed, the
// overdraft's ceiling (max + overdraft) dotted when the license has one, and the acquires
// refused as bars in a band below. SVG built element by element (no markup strings, no
// style attributes: colours and dashes come from styles.css).

import { formatNumber, h, svg, uid } from "../dom.js";

const HEIGHT = 302;
const PAD = { left: 44, right: 14, top: 24 };
const MAIN_H = 170;
const GAP = 46; // between the seats plot and the denials band (the time labels sit here)
const DENIALS_H = 48;

function niceMax(value) {
  if (value <= 5) return Math.max(1, Math.ceil(value));
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (value <= step * magnitude) return step * magnitude;
  }
  return value;
}

function stepPath(values, x, y) {
  let d = "";
  values.forEach((value, i) => {
    d += i === 0 ? `M${x(0)},${y(value)}` : `V${y(value)}`;
    d += `H${x(i + 1)}`;
  });
  return d;
}

function hourLabel(iso, withDate) {
  const date = new Date(iso);
  const hh = String(date.getUTCHours()).padStart(2, "0");
  const md = `${String(date.getUTCMonth() + 1).padStart(2, "0")}-${String(date.getUTCDate()).padStart(2, "0")}`;
  return withDate ? `${md} ${hh}:00` : `${hh}:00`;
}

/**
 * @param {object} spec
 * @param {Array} spec.series    the report's rows (start, peak, max_seats, denials, overage)
 * @param {number} spec.overdraft seats beyond max_seats the policy allows (0: no line)
 * @param {number} spec.width    the drawing's width in px (the container's)
 * @returns {HTMLElement} a figure with the chart and its legend
 */
export function usageChart({ series, overdraft, width }) {
  const W = Math.max(320, Math.round(width || 720));
  const plotW = W - PAD.left - PAD.right;
  const n = series.length;
  const peaks = series.map((row) => row.peak);
  const maxSeats = series.map((row) => row.max_seats);
  const ceiling = overdraft > 0 ? maxSeats.map((m) => m + overdraft) : null;
  const yMax = niceMax(Math.max(1, ...peaks, ...maxSeats, ...(ceiling || [])) * 1.05);
  const denials = series.map((row) => row.denials);
  const dMax = niceMax(Math.max(1, ...denials));

  const x = (i) => +(PAD.left + (i / n) * plotW).toFixed(2);
  const y = (v) => +(PAD.top + MAIN_H - (v / yMax) * MAIN_H).toFixed(2);
  const bandTop = PAD.top + MAIN_H + GAP;
  const dy = (v) => +(bandTop + DENIALS_H - (v / dMax) * DENIALS_H).toFixed(2);

  const titleId = uid("chart");
  const descId = uid("chart");
  const peakAll = Math.max(0, ...peaks);
  const deniedAll = denials.reduce((a, b) => a + b, 0);
  const parts = [
    svg("title", { id: titleId }, "Seats in use per hour, and acquires refused"),
    svg("desc", { id: descId }, `${n} hours from ${hourLabel(series[0].start, true)} UTC: at most ${peakAll} seats in use `
      + `of ${Math.max(...maxSeats)}; ${deniedAll} acquires refused. The table below the chart has every hour.`),
  ];

  // Grid and the seats axis.
  for (const tick of [0, yMax / 2, yMax]) {
    parts.push(svg("line", { class: "gridline", x1: PAD.left, x2: W - PAD.right, y1: y(tick), y2: y(tick) }));
    parts.push(svg("text", { class: "axis", x: PAD.left - 6, y: y(tick) + 4, "text-anchor": "end" }, formatNumber(tick, 1)));
  }
  parts.push(svg("text", { class: "axis", x: 4, y: 11 }, "seats in use"));

  // Time labels: about one per 110 px, on whole hours.
  const labels = Math.max(2, Math.floor(plotW / 110));
  const every = Math.max(1, Math.ceil(n / labels));
  const spansDays = n > 24;
  for (let i = 0; i < n; i += every) {
    parts.push(svg("line", { class: "tick", x1: x(i), x2: x(i), y1: PAD.top + MAIN_H, y2: PAD.top + MAIN_H + 4 }));
    parts.push(svg("text", { class: "axis", x: x(i), y: PAD.top + MAIN_H + 18, "text-anchor": i === 0 ? "start" : "middle" },
      hourLabel(series[i].start, spansDays || i === 0)));
  }

  // Lines: the ceiling, the maximum, then the peak on top.
  if (ceiling) parts.push(svg("path", { class: "line-overdraft", d: stepPath(ceiling, x, y), "data-testid": "chart-overdraft" }));
  parts.push(svg("path", { class: "line-max", d: stepPath(maxSeats, x, y), "data-testid": "chart-max" }));
  parts.push(svg("path", { class: "line-peak", d: stepPath(peaks, x, y), "data-testid": "chart-peak" }));

  // Denials band.
  parts.push(svg("line", { class: "gridline", x1: PAD.left, x2: W - PAD.right, y1: dy(0), y2: dy(0) }));
  parts.push(svg("text", { class: "axis", x: PAD.left - 6, y: dy(dMax) + 8, "text-anchor": "end" }, formatNumber(dMax)));
  parts.push(svg("text", { class: "axis", x: 4, y: bandTop - 5 }, "acquires refused"));
  const barW = Math.max(1, (plotW / n) * 0.8);
  series.forEach((row, i) => {
    if (!row.denials) return;
    parts.push(svg("rect", { class: "bar-denials", x: x(i) + (plotW / n) * 0.1, y: dy(row.denials), width: +barW.toFixed(2),
      height: +(dy(0) - dy(row.denials)).toFixed(2) },
    svg("title", null, `${hourLabel(row.start, true)} UTC: ${row.denials} refused`)));
  });

  const chart = svg("svg", { class: "chart", viewBox: `0 0 ${W} ${HEIGHT}`, width: W, height: HEIGHT, role: "img",
    "aria-labelledby": titleId, "aria-describedby": descId, "data-testid": "usage-chart", focusable: "false" }, parts);

  const legend = h("ul", { class: "legend" },
    h("li", null, h("span", { class: "swatch swatch-peak", "aria-hidden": "true" }), "Seats in use (hour's peak)"),
    h("li", null, h("span", { class: "swatch swatch-max", "aria-hidden": "true" }), "Maximum seats"),
    ceiling ? h("li", null, h("span", { class: "swatch swatch-overdraft", "aria-hidden": "true" }), `With the overdraft (+${overdraft})`) : null,
    h("li", null, h("span", { class: "swatch swatch-denials", "aria-hidden": "true" }), "Acquires refused"));
  return h("figure", { class: "chart-figure" }, h("div", { class: "chart-scroll" }, chart), legend);
}
