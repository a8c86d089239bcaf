// Conflict flags across the tenant (or every tenant, the owner's view): open or acknowledged.

import { nextCursor, route } from "../api.js";
import { h, uid } from "../dom.js";
import { acknowledgeFlag, anomalyTable } from "../ui/anomalies.js";
import { loading, pageHeading, showFailure } from "../ui/panels.js";

export function renderAnomalies(ctx) {
  const { api, main, signal, tenant, isOwner } = ctx;
  ctx.setTitle("Conflict flags");
  const state = { flags: [], nextAfter: null };
  const stateId = uid("state");
  const which = h("select", { id: stateId, "data-testid": "anomalies-state" },
    h("option", { value: "open" }, "Open"),
    h("option", { value: "acknowledged" }, "Acknowledged"),
    h("option", { value: "" }, "All"));
  which.addEventListener("change", () => load(false).catch((error) => showFailure(results, error)));
  const results = h("div", null, loading());

  main.replaceChildren(
    pageHeading("Conflict flags", h("p", { class: "muted" }, tenant ? `Tenant ${tenant}` : isOwner ? "All tenants" : "")),
    h("p", null, "Signs of a key or a token shared beyond its seats, or of seats cycled: one user on many machines, one machine "
      + "used by many users, a session heard from many addresses, many grants to one user. Each license sets its thresholds (its settings, “Conflict rules”)."),
    h("div", { class: "toolbar" }, h("div", { class: "field field-inline" }, h("label", { for: stateId }, "Show"), which)),
    results);

  function draw() {
    const table = anomalyTable({
      flags: state.flags,
      caption: `Conflict flags (${state.flags.length}${state.nextAfter ? "+" : ""})`,
      showLicense: true,
      onAcknowledge: async (flag) => {
        if (await acknowledgeFlag(ctx, flag)) load(false).catch((error) => showFailure(results, error));
      },
    });
    let more = null;
    if (state.nextAfter) {
      more = h("button", { type: "button", class: "button small", "data-testid": "load-more" }, "Load more");
      more.addEventListener("click", () => load(true).catch((error) => showFailure(results, error)));
    }
    results.replaceChildren(table, more ? h("nav", { class: "pager", "aria-label": "More flags" }, more) : "");
  }

  async function load(more) {
    const answer = await api.get(route`/anomalies`, {
      query: { tenant, state: which.value || null, limit: 100, after: more ? state.nextAfter : null }, signal });
    state.flags = more ? [...state.flags, ...answer.anomalies] : answer.anomalies;
    state.nextAfter = nextCursor(answer.next_after, answer.anomalies, 100);
    draw();
  }

  load(false).catch((error) => showFailure(results, error));
}
