// Licenses: the tenant's licenses (the owner's choice of tenant, or all) with their seats in
// use, live; search; and, for the owner, a new license (its key shown once).

import { nextCursor, route } from "../api.js";
import { formatRelative, h, replaceChildren, swapKeepingFocus, timeEl } from "../dom.js";
import { field, form, fromLocalInput, submitButton, submitting, toInteger, toList } from "../ui/forms.js";
import { licenseStatus, seatsText, statusBadge } from "../ui/licenses.js";
import { loading, pageHeading, showFailure } from "../ui/panels.js";
import { poll } from "../ui/poller.js";
import { secretBox } from "../ui/secret.js";
import { dataTable } from "../ui/table.js";

const SERVER_PAGE = 100;
const SHOWN = 25; // rows per page on screen (seats are fetched for these)
const REFRESH_MS = 10_000;
const LICENSE_ID = /^lic_[0-9a-z]{20}$/;

export function renderLicenses(ctx) {
  const { api, main, signal, tenant, isOwner, app } = ctx;
  ctx.setTitle("Licenses");
  const state = { licenses: [], nextAfter: null, seats: new Map(), search: "", page: 0, loaded: false };

  const searchId = "license-search";
  const search = h("input", { id: searchId, type: "search", class: "search-input", "data-testid": "license-search", autocomplete: "off",
    placeholder: "id, tier, feature, tenant, status" });
  search.addEventListener("input", () => {
    state.search = search.value.trim().toLowerCase();
    state.page = 0;
    draw();
    refreshSeats().catch(() => {});
  });

  let listArea = h("div", { class: "list-area" }, loading());
  const updated = h("p", { class: "muted small", "aria-live": "off", "data-testid": "licenses-updated" });
  const createArea = h("div", { id: "create-license", hidden: true });
  let createButton = null;
  if (isOwner) {
    createButton = h("button", { type: "button", class: "button primary", "aria-expanded": "false",
      "aria-controls": "create-license", "data-testid": "create-license-open" }, "New license");
    createButton.addEventListener("click", () => toggleCreate(createArea.hidden));
  }

  main.replaceChildren(
    pageHeading("Licenses", h("p", { class: "muted" }, tenant ? `Tenant ${tenant}` : isOwner ? "All tenants" : "")),
    h("div", { class: "toolbar" },
      h("div", { class: "field field-inline" }, h("label", { for: searchId }, "Search"), search),
      createButton),
    createArea,
    listArea,
    updated);

  // ---- The list ---------------------------------------------------------------------------

  function filtered() {
    if (!state.search) return state.licenses;
    return state.licenses.filter((license) => [
      license.id, license.tier, license.tenant, licenseStatus(license).text, ...(license.features || []),
    ].some((text) => String(text || "").toLowerCase().includes(state.search)));
  }

  function visible() {
    const rows = filtered();
    const pages = Math.max(1, Math.ceil(rows.length / SHOWN));
    state.page = Math.min(state.page, pages - 1);
    return { rows: rows.slice(state.page * SHOWN, (state.page + 1) * SHOWN), total: rows.length, pages };
  }

  function draw() {
    if (!state.loaded) return;
    const { rows, total, pages } = visible();
    const columns = [
      { label: "License", header: true, cell: (l) => h("a", { href: `#/licenses/${encodeURIComponent(l.id)}`,
        "data-focus-key": `open-${l.id}` }, h("code", null, l.id)) },
      !tenant ? { label: "Tenant", cell: (l) => l.tenant } : null,
      { label: "Tier", cell: (l) => l.tier },
      { label: "Seats in use", class: "num", cell: (l) => {
        const live = state.seats.get(l.id);
        const text = l.revoked_at ? "—" : live ? seatsText(live.seats, live.ci_seats) : `… / ${l.max_seats}`;
        return h("span", { "data-testid": "license-seats" }, text);
      } },
      { label: "Expires (UTC)", cell: (l) => (l.expires_at
        ? h("span", null, timeEl(l.expires_at), h("span", { class: "muted small block" }, formatRelative(l.expires_at)))
        : h("span", { class: "muted" }, "never")) },
      { label: "Status", cell: (l) => statusBadge(l) },
    ].filter(Boolean);
    const table = dataTable({
      caption: state.search ? `Licenses matching “${search.value.trim()}” (${total})` : `Licenses (${total}${state.nextAfter ? "+" : ""})`,
      columns,
      rows,
      empty: state.search ? "No license matches." : "No licenses yet.",
      testid: "licenses-table",
      rowAttrs: (l) => ({ "data-testid": "license-row", "data-license-id": l.id }),
    });
    const shortcut = LICENSE_ID.test(state.search) && !state.licenses.some((l) => l.id === state.search)
      ? h("p", null, "Not among those loaded: ", h("a", { href: `#/licenses/${state.search}` }, `open ${state.search}`))
      : null;
    // Swapped whole, the keyboard's place kept: a refresh may redraw it while someone tabs.
    listArea = swapKeepingFocus(listArea, h("div", { class: "list-area" }, shortcut, table, pager(pages, total)));
  }

  function pager(pages, total) {
    const previous = h("button", { type: "button", class: "button small", disabled: state.page === 0,
      "data-testid": "page-previous", "data-focus-key": "page-previous" }, "Previous");
    const next = h("button", { type: "button", class: "button small", disabled: state.page >= pages - 1,
      "data-testid": "page-next", "data-focus-key": "page-next" }, "Next");
    previous.addEventListener("click", () => turn(-1));
    next.addEventListener("click", () => turn(+1));
    const more = state.nextAfter ? h("button", { type: "button", class: "button small", "data-testid": "load-more" }, "Load more licenses") : null;
    more?.addEventListener("click", () => loadMore().catch((error) => showFailure(listArea, error)));
    return h("nav", { class: "pager", "aria-label": "Pages of licenses" }, previous,
      h("span", { class: "muted" }, `Page ${state.page + 1} of ${pages} · ${total} shown`), next, more);
  }

  function turn(delta) {
    state.page += delta;
    draw();
    listArea.querySelector(delta < 0 ? "[data-testid=page-previous]" : "[data-testid=page-next]")?.focus();
    refreshSeats().catch(() => {});
  }

  async function fetchPage(after, limit = SERVER_PAGE) {
    return api.get(route`/licenses`, { query: { tenant, limit, after }, signal });
  }

  async function load() {
    const answer = await fetchPage(null);
    state.licenses = answer.licenses;
    state.nextAfter = nextCursor(answer.next_after, answer.licenses, SERVER_PAGE);
    state.loaded = true;
    takeListedSeats(answer.licenses);
    draw();
    await refreshSeats();
  }

  async function loadMore() {
    const answer = await fetchPage(state.nextAfter);
    state.licenses.push(...answer.licenses);
    state.nextAfter = nextCursor(answer.next_after, answer.licenses, SERVER_PAGE);
    takeListedSeats(answer.licenses);
    draw();
    await refreshSeats();
  }

  /** Every 10 s: the loaded licenses again (status, expiry) and the seats of those on screen. */
  async function refresh() {
    const count = Math.max(SERVER_PAGE, state.licenses.length);
    if (count <= 500) {
      const answer = await fetchPage(null, count);
      const changed = JSON.stringify(answer.licenses) !== JSON.stringify(state.licenses);
      state.licenses = answer.licenses;
      state.nextAfter = nextCursor(answer.next_after, answer.licenses, count);
      takeListedSeats(answer.licenses);
      if (changed) draw();
    }
    await refreshSeats();
  }

  // Each listed license carries its seats in use now (one call for the page).
  function takeListedSeats(licenses) {
    for (const license of licenses) {
      if (license.seats) state.seats.set(license.id, { seats: license.seats, ci_seats: license.ci_pool });
    }
  }

  /** The seat cells redrawn from the last listing (focus and scroll stay where they were). */
  async function refreshSeats() {
    if (signal.aborted) return;
    const table = listArea.querySelector(".table-wrap");
    if (table) {
      // Redraw only the seat cells: focus and scroll stay where the user left them.
      for (const row of table.querySelectorAll("[data-testid=license-row]")) {
        const live = state.seats.get(row.dataset.licenseId);
        const cell = row.querySelector("[data-testid=license-seats]");
        if (live && cell) cell.textContent = seatsText(live.seats, live.ci_seats);
      }
    }
    updated.textContent = `Seats as of ${new Date().toLocaleTimeString()}; refreshed every ${REFRESH_MS / 1000} s.`;
  }

  // ---- A new license (owner) --------------------------------------------------------------

  function toggleCreate(open) {
    createArea.hidden = !open;
    createButton.setAttribute("aria-expanded", String(open));
    if (open) {
      replaceChildren(createArea, createForm());
      createArea.querySelector("input, select")?.focus();
    } else {
      createArea.replaceChildren();
      createButton.focus();
    }
  }

  function tenantField(value) {
    const tenants = app.tenants;
    if (!tenants.length) {
      return field({ label: "Tenant (the customer's id)", name: "tenant", value: value || "", testid: "create-license-tenant",
        attrs: { required: true, autocomplete: "off" } });
    }
    return field({ label: "Tenant", name: "tenant", type: "select", value: value || "", testid: "create-license-tenant",
      options: [{ value: "", label: "Choose a tenant" }, ...tenants.map((t) => ({ value: t.id, label: t.name && t.name !== t.id ? `${t.name} (${t.id})` : t.id }))] });
  }

  function createForm() {
    const el = form({ class: "card", "data-testid": "create-license-form", "aria-labelledby": "create-license-title",
      onSubmit: () => create(el) },
    h("h2", { id: "create-license-title" }, "New license"),
    h("div", { class: "grid" },
      tenantField(tenant),
      field({ label: "Seats (max_seats)", name: "max_seats", type: "number", value: "5", testid: "create-license-seats",
        attrs: { min: 1, max: 1000000, inputmode: "numeric", required: true } }),
      field({ label: "Tier", name: "tier", value: "standard", testid: "create-license-tier", attrs: { required: true, maxlength: 64 } }),
      field({ label: "Expires at (UTC)", name: "expires_at", type: "datetime", hint: "Empty: never.", testid: "create-license-expires" }),
      field({ label: "CI pool seats (ci_seats)", name: "ci_seats", type: "number", hint: "Seats for machine keys only, beside max_seats. Empty: none.",
        attrs: { min: 0, inputmode: "numeric" } }),
      field({ label: "Support contact", name: "support_contact", hint: "Shown in tools with every refusal. Optional.", attrs: { maxlength: 200 } })),
    field({ label: "Features", name: "features", type: "textarea", hint: "One per line.", testid: "create-license-features" }),
    h("div", { class: "actions" },
      submitButton("Create license", "create-license-submit"),
      cancelButton()));
    return el;
  }

  function cancelButton() {
    const button = h("button", { type: "button", class: "button" }, "Cancel");
    button.addEventListener("click", () => toggleCreate(false));
    return button;
  }

  async function create(el) {
    const value = (name) => el.querySelector(`[name="${name}"]`).value;
    const body = { tenant: value("tenant").trim() || undefined, max_seats: toInteger(value("max_seats")) ?? undefined,
      tier: value("tier").trim() || undefined, features: toList(value("features")) };
    const expires = fromLocalInput(value("expires_at"));
    if (expires) body.expires_at = expires;
    const ci = toInteger(value("ci_seats"));
    if (ci !== null) body.ci_seats = ci;
    const support = value("support_contact").trim();
    if (support) body.support_contact = support;
    const answer = await submitting(el, () => api.post(route`/licenses`, body, { signal }));
    if (!answer) return;
    const id = answer.license.id;
    const done = h("button", { type: "button", class: "button", "data-testid": "create-license-done" }, "Done");
    done.addEventListener("click", () => toggleCreate(false));
    replaceChildren(createArea, h("section", { class: "card", "data-testid": "license-created", "aria-labelledby": "created-title" },
      h("h2", { id: "created-title", tabindex: -1 }, "License created"),
      h("p", null, "License ", h("a", { href: `#/licenses/${encodeURIComponent(id)}`, "data-testid": "created-license-link" }, h("code", null, id)),
        ` for tenant ${answer.license.tenant}: ${answer.license.max_seats} seats, tier ${answer.license.tier}.`),
      secretBox({ title: "License key", value: answer.license_key, testid: "license-key", copyTestid: "copy-key",
        warning: "Copy the license key now and give it to the customer: the service keeps only its hash and cannot show it again." }),
      h("div", { class: "actions" }, done)));
    createArea.querySelector("h2").focus();
    ctx.notify(`License ${id} created.`);
    poller.now();
  }

  const poller = poll(refresh, REFRESH_MS, signal);
  load().catch((error) => showFailure(listArea, error));
}
