// One endpoint: change it, send it a test event, rotate its secret, delete it, and its
// delivery log.

import { route } from "../api.js";
import { formatTime, h, replaceChildren, timeEl } from "../dom.js";
import { confirmDialog } from "../ui/dialog.js";
import { describeError, field, form, same, submitButton, submitting } from "../ui/forms.js";
import { loading, notFoundPanel, pageHeading, showFailure } from "../ui/panels.js";
import { secretBox } from "../ui/secret.js";
import { badge, dataTable } from "../ui/table.js";
import { endpointKind, eventsField, readEvents } from "./webhooks.js";

export function renderWebhook(ctx) {
  const { api, main, signal, notify } = ctx;
  const [webhookId] = ctx.params;
  const webhookPath = route`/webhooks/${webhookId}`;
  ctx.setTitle(`Endpoint ${webhookId}`);
  let webhook = null;

  const heading = pageHeading(h("span", null, "Endpoint ", h("code", null, webhookId)));
  const overview = h("section", { class: "section", "aria-label": "Endpoint" }, loading());
  const actionResult = h("div", { "data-testid": "webhook-action-result", "aria-live": "polite" });
  const editArea = h("div");
  const deliveries = h("div", null, loading());
  const refresh = h("button", { type: "button", class: "button small", "data-testid": "deliveries-refresh" }, "Refresh");
  refresh.addEventListener("click", () => loadDeliveries().catch((error) => showFailure(deliveries, error)));
  main.replaceChildren(heading, h("p", null, h("a", { href: "#/webhooks" }, "All endpoints")), overview);

  function drawOverview() {
    const facts = [
      ["URL", h("span", { class: "break" }, webhook.url)],
      ["Kind", endpointKind(webhook.url)],
      ["Tenant", webhook.tenant],
      ["Events", webhook.events.length ? webhook.events.join(", ") : "all"],
      ["State", h("span", null, webhook.enabled ? badge("enabled", "ok") : badge("disabled", "warning"),
        webhook.disabled_reason ? ` ${webhook.disabled_reason}` : "")],
      ["Description", webhook.description || "—"],
      ["Created (UTC)", h("span", null, timeEl(webhook.created_at), ` by ${webhook.created_by}`)],
      webhook.previous_secret_signs_until ? ["Previous secret signs until (UTC)", timeEl(webhook.previous_secret_signs_until)] : null,
    ].filter(Boolean);
    const test = h("button", { type: "button", class: "button", "data-testid": "webhook-test" }, "Send a test event");
    test.addEventListener("click", sendTest);
    const buttons = [test];
    if (endpointKind(webhook.url) === "webhook") {
      const rotate = h("button", { type: "button", class: "button", "data-testid": "webhook-rotate" }, "Rotate the secret…");
      rotate.addEventListener("click", rotateSecret);
      buttons.push(rotate);
    }
    const remove = h("button", { type: "button", class: "button danger", "data-testid": "webhook-delete" }, "Delete…");
    remove.addEventListener("click", deleteEndpoint);
    buttons.push(remove);
    replaceChildren(overview,
      h("dl", { class: "facts" }, facts.map(([term, value]) => h("div", null, h("dt", null, term), h("dd", null, value)))),
      h("div", { class: "actions" }, buttons),
      actionResult);
  }

  function drawEdit() {
    const el = form({ class: "card", "data-testid": "webhook-edit-form", "aria-labelledby": "edit-webhook-title",
      onSubmit: () => save(el) },
    h("h2", { id: "edit-webhook-title" }, "Change the endpoint"),
    h("div", { class: "grid" },
      field({ label: "URL", name: "url", value: webhook.url, attrs: { maxlength: 2048, autocomplete: "off", inputmode: "url" } }),
      field({ label: "Description", name: "description", value: webhook.description, attrs: { maxlength: 200 } })),
    field({ label: "Enabled", name: "enabled", type: "checkbox", value: webhook.enabled, testid: "webhook-enabled",
      hint: "A disabled endpoint gets nothing; enabling it again also clears the service's reason for disabling it." }),
    eventsField(webhook.events),
    h("div", { class: "actions" }, submitButton("Save", "webhook-save")));
    replaceChildren(editArea, el);
  }

  async function save(el) {
    const value = (name) => el.querySelector(`[name="${name}"]`);
    const changes = {};
    if (value("url").value.trim() !== webhook.url) changes.url = value("url").value.trim();
    if (value("description").value.trim() !== webhook.description) changes.description = value("description").value.trim();
    if (value("enabled").checked !== webhook.enabled) changes.enabled = value("enabled").checked;
    const events = readEvents(el);
    if (!same([...events].sort(), [...webhook.events].sort())) changes.events = events;
    if (!Object.keys(changes).length) {
      notify("Nothing changed.", "info");
      return;
    }
    const answer = await submitting(el, () => api.patch(webhookPath, changes, { signal }));
    if (!answer) return;
    webhook = answer.webhook;
    drawOverview();
    drawEdit();
    notify("Endpoint saved.");
  }

  async function sendTest() {
    replaceChildren(actionResult, loading("Sending a test event…"));
    try {
      const result = await api.post(route`/webhooks/${webhookId}/test`, {}, { signal });
      replaceChildren(actionResult, h("p", { class: ["callout", result.delivered ? "callout-ok" : "callout-warning"], "data-testid": "webhook-test-result" },
        result.delivered ? "Delivered" : "Not delivered",
        ` (${result.state}${result.status !== null ? `, status ${result.status}` : ""}, ${result.latency_ms} ms)`,
        result.error ? `: ${result.error}` : "."));
      loadDeliveries().catch(() => {});
    } catch (error) {
      replaceChildren(actionResult, h("p", { class: "form-error", role: "alert" }, describeError(error)));
    }
  }

  async function rotateSecret() {
    const ok = await confirmDialog({
      title: "Rotate the signing secret?",
      message: ["A new secret signs every delivery from now on, and is shown once.",
        "The current one keeps signing beside it for a day, while the receiver is changed over."],
      confirmLabel: "Rotate", testid: "rotate-confirm",
    });
    if (!ok) return;
    try {
      const answer = await api.post(route`/webhooks/${webhookId}/rotate`, {}, { signal });
      webhook = answer.webhook;
      drawOverview();
      replaceChildren(actionResult, secretBox({ title: "New signing secret", value: answer.secret, testid: "webhook-secret",
        copyTestid: "copy-secret", warning: answer.notice || "Copy it into the receiver now." }));
    } catch (error) {
      replaceChildren(actionResult, h("p", { class: "form-error", role: "alert" }, describeError(error)));
    }
  }

  async function deleteEndpoint() {
    const ok = await confirmDialog({
      title: "Delete this endpoint?",
      message: [webhook.url, "Nothing more is delivered to it, and its secret is destroyed."],
      confirmLabel: "Delete", danger: true, testid: "webhook-delete-confirm",
    });
    if (!ok) return;
    try {
      await api.del(webhookPath, { signal });
      location.hash = "#/webhooks";
      notify("Endpoint deleted.");
    } catch (error) {
      replaceChildren(actionResult, h("p", { class: "form-error", role: "alert" }, describeError(error)));
    }
  }

  async function loadDeliveries() {
    const answer = await api.get(route`/webhooks/${webhookId}/deliveries`, { query: { limit: 50 }, signal });
    deliveries.replaceChildren(dataTable({
      caption: "The latest deliveries, each with its last attempts",
      hideCaption: true,
      testid: "deliveries-table",
      empty: "Nothing delivered yet.",
      rows: answer.deliveries,
      rowAttrs: () => ({ "data-testid": "delivery-row" }),
      columns: [
        { label: "Event", header: true, cell: (d) => h("code", { class: "small" }, d.event) },
        { label: "Type", cell: (d) => d.type },
        { label: "State", cell: (d) => badge(d.state, d.state === "delivered" ? "ok" : d.state === "due" ? "info" : "warning") },
        { label: "Attempts", class: "num", cell: (d) => d.attempt_count },
        { label: "First (UTC)", cell: (d) => timeEl(d.first_at) },
        { label: "Next attempt (UTC)", cell: (d) => timeEl(d.next_attempt_at) },
        { label: "Last attempts", cell: (d) => (d.attempts.length
          ? h("details", { class: "disclosure" }, h("summary", null, `${d.attempts.length} shown`),
            h("ul", { class: "plain-list" }, d.attempts.map((a) => h("li", null,
              `${formatTime(a.at)}: ${a.status ?? "no answer"}, ${a.latency_ms} ms${a.error ? `, ${a.error}` : ""}`))))
          : "—") },
      ],
    }));
  }

  api.get(webhookPath, { signal }).then((answer) => {
    webhook = answer.webhook;
    drawOverview();
    drawEdit();
    main.append(editArea, h("section", { class: "section", "aria-labelledby": "deliveries-title" },
      h("div", { class: "section-head" }, h("h2", { id: "deliveries-title" }, "Delivery log"), refresh), deliveries));
    loadDeliveries().catch((error) => showFailure(deliveries, error));
  }).catch((error) => {
    if (error?.notFound) replaceChildren(main, heading, notFoundPanel());
    else showFailure(overview, error);
  });
}
