// The audit log, newest first: filtered by license, type, user and time, a page at a time.
//
// The filters live in the URL (#/events?license=…&type=…&actor=…&from=…&to=…), so a link
// from a license opens its log. GET /admin/events applies them all (type and actor exactly;
// they need a tenant, which the owner picks with the switcher) and pages with next_after.

import { nextCursor, route } from "../api.js";
import { h, timeEl, uid } from "../dom.js";
import { field, form, fromLocalInput, showError } from "../ui/forms.js";
import { loading, pageHeading, showFailure } from "../ui/panels.js";
import { dataTable } from "../ui/table.js";

const FETCH = 100; // events per call
const SHOWN = 50; // per page on screen

export function renderEvents(ctx) {
  const { api, main, signal, tenant } = ctx;
  ctx.setTitle("Audit log");
  const filters = {
    license: ctx.query.get("license") || "",
    type: ctx.query.get("type") || "",
    actor: ctx.query.get("actor") || "",
    from: ctx.query.get("from") || "",
    to: ctx.query.get("to") || "",
  };
  const state = { events: [], nextAfter: null, page: 0 };
  const typesId = uid("types");
  const types = h("datalist", { id: typesId });

  const filterForm = form({ class: "card filters", "data-testid": "events-filter", "aria-label": "Filter the audit log",
    onSubmit: () => apply() },
  h("div", { class: "grid" },
    field({ label: "License", name: "license", value: filters.license, testid: "events-license", attrs: { autocomplete: "off", placeholder: "lic_…" } }),
    field({ label: "Type", name: "type", value: filters.type, testid: "events-type", attrs: { list: typesId, autocomplete: "off", placeholder: "e.g. license.update" } }),
    field({ label: "User (actor)", name: "actor", value: filters.actor, testid: "events-actor", attrs: { autocomplete: "off" } }),
    field({ label: "From (UTC)", name: "from", type: "datetime", value: filters.from, testid: "events-from" }),
    field({ label: "To (UTC)", name: "to", type: "datetime", value: filters.to, testid: "events-to" })),
  types,
  h("div", { class: "actions" },
    h("button", { type: "submit", class: "button primary", "data-testid": "events-apply" }, "Apply filters"),
    resetButton()));

  function resetButton() {
    const button = h("button", { type: "button", class: "button" }, "Clear filters");
    button.addEventListener("click", () => { location.hash = "#/events"; });
    return button;
  }

  function apply() {
    const read = (name) => filterForm.querySelector(`[name=${name}]`).value.trim();
    const query = new URLSearchParams();
    for (const name of ["license", "type", "actor"]) if (read(name)) query.set(name, read(name));
    for (const name of ["from", "to"]) if (read(name)) query.set(name, fromLocalInput(read(name)));
    const next = `#/events${query.toString() ? `?${query}` : ""}`;
    if (location.hash === next) load().catch(failed);
    else location.hash = next; // the router draws the page again with these filters
  }

  const results = h("div", null, loading());
  main.replaceChildren(
    pageHeading("Audit log", h("p", { class: "muted" }, tenant ? `Tenant ${tenant}` : ctx.isOwner ? "All tenants" : "")),
    filterForm,
    results);

  function draw() {
    const rows = state.events;
    const pages = Math.max(1, Math.ceil(rows.length / SHOWN));
    state.page = Math.min(state.page, pages - 1);
    const shown = rows.slice(state.page * SHOWN, (state.page + 1) * SHOWN);
    types.replaceChildren(...[...new Set(state.events.map((e) => e.type))].sort().map((t) => h("option", { value: t })));
    const table = dataTable({
      caption: `Events (${rows.length}${state.nextAfter ? "+" : ""}), newest first; times in UTC`,
      testid: "events-table",
      empty: "No events match.",
      rows: shown,
      rowAttrs: (e) => ({ "data-testid": "event-row", "data-event-id": e.id }),
      columns: [
        { label: "Time (UTC)", header: true, cell: (e) => timeEl(e.at) },
        { label: "Type", cell: (e) => h("code", null, e.type) },
        { label: "Actor", cell: (e) => e.actor },
        !tenant ? { label: "Tenant", cell: (e) => e.tenant } : null,
        { label: "License", cell: (e) => (e.license ? h("a", { href: `#/licenses/${encodeURIComponent(e.license)}` }, h("code", null, e.license)) : "—") },
        { label: "Session", cell: (e) => (e.session ? h("code", { class: "small" }, e.session) : "—") },
        { label: "Details", cell: (e) => (e.details && Object.keys(e.details).length
          ? h("details", { class: "disclosure" }, h("summary", null, "Details"), h("pre", { class: "json" }, JSON.stringify(e.details, null, 2)))
          : "—") },
      ].filter(Boolean),
    });
    const previous = h("button", { type: "button", class: "button small", disabled: state.page === 0, "data-testid": "page-previous" }, "Newer");
    const next = h("button", { type: "button", class: "button small", disabled: state.page >= pages - 1, "data-testid": "page-next" }, "Older");
    previous.addEventListener("click", () => turn(-1, "page-previous"));
    next.addEventListener("click", () => turn(+1, "page-next"));
    let more = null;
    if (state.nextAfter) {
      more = h("button", { type: "button", class: "button small", "data-testid": "load-more" }, "Load older events");
      more.addEventListener("click", () => loadMore().catch(failed));
    }
    results.replaceChildren(table, h("nav", { class: "pager", "aria-label": "Pages of events" },
      previous, h("span", { class: "muted" }, `Page ${state.page + 1} of ${pages}`), next, more));
  }

  function turn(delta, testid) {
    state.page += delta;
    draw();
    const button = results.querySelector(`[data-testid=${testid}]`);
    (button && !button.disabled ? button : results.querySelector(".table-wrap"))?.focus();
  }

  function query(after) {
    return { tenant, license: filters.license, type: filters.type, actor: filters.actor,
      from: filters.from, to: filters.to, limit: FETCH, after };
  }

  async function load() {
    const answer = await api.get(route`/events`, { query: query(null), signal });
    state.events = answer.events;
    state.nextAfter = nextCursor(answer.next_after, answer.events, FETCH);
    state.page = 0;
    draw();
  }

  async function loadMore() {
    const answer = await api.get(route`/events`, { query: query(state.nextAfter), signal });
    state.events.push(...answer.events);
    state.nextAfter = nextCursor(answer.next_after, answer.events, FETCH);
    draw();
  }

  function failed(error) {
    if (error?.status === 400) { // a filter the server refused: say so next to it
      results.replaceChildren();
      showError(filterForm, error);
    } else {
      showFailure(results, error);
    }
  }

  load().catch(failed);
}
