// Webhooks and notifications: a tenant's endpoints (https webhooks, mailto: e-mail), and a
// new one (its signing secret shown once).

import { nextCursor, route } from "../api.js";
import { h, replaceChildren, timeEl } from "../dom.js";
import { field, fieldGroup, form, submitButton, submitting } from "../ui/forms.js";
import { loading, pageHeading, showFailure } from "../ui/panels.js";
import { secretBox } from "../ui/secret.js";
import { badge, dataTable } from "../ui/table.js";

export const EVENT_TYPES = [
  "license.created", "license.updated", "license.suspended", "license.resumed", "license.revoked",
  "license.expiring", "license.expired", "seats.exhausted", "seats.overage", "session.force_released",
  "queue.long_wait", "key.created", "key.revoked", "anomaly.detected",
];

/** Checkboxes of the notification types (none checked: every type). */
export function eventsField(selected) {
  return fieldGroup({ legend: "Events", name: "events", testid: "webhook-events",
    hint: "None checked: every type (an e-mail endpoint: license.expiring and license.expired)." },
  h("div", { class: "checks" }, EVENT_TYPES.map((type) =>
    field({ label: type, name: `events.${type}`, type: "checkbox", value: selected.includes(type), attrs: { "data-event": type } }))));
}

export function readEvents(formEl) {
  return [...formEl.querySelectorAll("[data-event]")].filter((box) => box.checked).map((box) => box.dataset.event);
}

export function endpointKind(url) {
  return url.toLowerCase().startsWith("mailto:") ? "e-mail" : "webhook";
}

export function renderWebhooks(ctx) {
  const { api, main, signal, tenant, isOwner, app } = ctx;
  ctx.setTitle("Webhooks");
  const list = h("div", null, loading());
  const createArea = h("div", { id: "create-webhook", hidden: true });
  const open = h("button", { type: "button", class: "button primary", "aria-expanded": "false", "aria-controls": "create-webhook",
    "data-testid": "create-webhook-open" }, "New endpoint");
  open.addEventListener("click", () => toggle(createArea.hidden));

  main.replaceChildren(
    pageHeading("Webhooks and notifications", h("p", { class: "muted" }, tenant ? `Tenant ${tenant}` : isOwner ? "All tenants" : "")),
    h("p", null, "Where the service sends what an administrator should hear about: signed HTTPS webhooks, or e-mail (mailto: addresses)."),
    h("div", { class: "toolbar" }, open),
    createArea,
    list);

  function toggle(show) {
    createArea.hidden = !show;
    open.setAttribute("aria-expanded", String(show));
    if (show) {
      replaceChildren(createArea, createForm());
      createArea.querySelector("input")?.focus();
    } else {
      createArea.replaceChildren();
      open.focus();
    }
  }

  function createForm() {
    const tenantChoice = isOwner
      ? (app.tenants.length
        ? field({ label: "Tenant", name: "tenant", type: "select", value: tenant || "", testid: "webhook-tenant",
          options: [{ value: "", label: "Choose a tenant" }, ...app.tenants.map((t) => ({ value: t.id, label: t.id }))] })
        : field({ label: "Tenant", name: "tenant", value: tenant || "", testid: "webhook-tenant" }))
      : null;
    const cancel = h("button", { type: "button", class: "button" }, "Cancel");
    cancel.addEventListener("click", () => toggle(false));
    const el = form({ class: "card", "data-testid": "create-webhook-form", "aria-labelledby": "new-webhook-title",
      onSubmit: () => create(el) },
    h("h2", { id: "new-webhook-title" }, "New endpoint"),
    h("div", { class: "grid" },
      field({ label: "URL", name: "url", type: "text", testid: "webhook-url",
        hint: "https://… (a public host), or mailto:someone@example.com", attrs: { autocomplete: "off", maxlength: 2048, inputmode: "url" } }),
      field({ label: "Description", name: "description", testid: "webhook-description", attrs: { maxlength: 200 } }),
      tenantChoice),
    eventsField([]),
    h("div", { class: "actions" }, submitButton("Create endpoint", "create-webhook-submit"), cancel));
    return el;
  }

  async function create(el) {
    const value = (name) => el.querySelector(`[name="${name}"]`)?.value.trim();
    const body = { url: value("url"), events: readEvents(el) };
    if (value("description")) body.description = value("description");
    if (isOwner && value("tenant")) body.tenant = value("tenant");
    const answer = await submitting(el, () => api.post(route`/webhooks`, body, { signal }));
    if (!answer) return;
    const done = h("button", { type: "button", class: "button" }, "Done");
    done.addEventListener("click", () => toggle(false));
    replaceChildren(createArea, h("section", { class: "card", "data-testid": "webhook-created", "aria-labelledby": "webhook-created-title" },
      h("h2", { id: "webhook-created-title", tabindex: -1 }, "Endpoint created"),
      h("p", null, h("a", { href: `#/webhooks/${encodeURIComponent(answer.webhook.id)}` }, answer.webhook.url)),
      answer.secret ? secretBox({ title: "Signing secret", value: answer.secret, testid: "webhook-secret", copyTestid: "copy-secret",
        warning: "Copy the signing secret into the receiver now: it checks every delivery's signature with it." }) : null,
      answer.notice ? h("p", null, answer.notice) : null,
      h("div", { class: "actions" }, done)));
    createArea.querySelector("h2").focus();
    ctx.notify("Endpoint created.");
    load().catch((error) => showFailure(list, error));
  }

  async function load() {
    const webhooks = [];
    let after = null;
    for (let page = 0; page < 10; page += 1) {
      const answer = await api.get(route`/webhooks`, { query: { tenant, limit: 100, after }, signal });
      webhooks.push(...answer.webhooks);
      after = nextCursor(answer.next_after, answer.webhooks, 100);
      if (!after) break;
    }
    list.replaceChildren(dataTable({
      caption: `Endpoints (${webhooks.length})`,
      testid: "webhooks-table",
      empty: "No endpoints yet.",
      rows: webhooks,
      rowAttrs: (w) => ({ "data-testid": "webhook-row", "data-webhook-id": w.id }),
      columns: [
        { label: "Endpoint", header: true, cell: (w) => h("a", { href: `#/webhooks/${encodeURIComponent(w.id)}`, class: "break" }, w.url) },
        { label: "Kind", cell: (w) => endpointKind(w.url) },
        !tenant ? { label: "Tenant", cell: (w) => w.tenant } : null,
        { label: "Events", cell: (w) => (w.events.length ? w.events.join(", ") : "all") },
        { label: "State", cell: (w) => h("span", null, w.enabled ? badge("enabled", "ok") : badge("disabled", "warning"),
          w.disabled_reason ? h("span", { class: "block small" }, w.disabled_reason) : null) },
        { label: "Description", cell: (w) => w.description || "—" },
        { label: "Created (UTC)", cell: (w) => timeEl(w.created_at) },
      ].filter(Boolean),
    }));
  }

  load().catch((error) => showFailure(list, error));
}
