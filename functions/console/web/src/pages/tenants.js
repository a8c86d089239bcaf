// Tenants (the owner's): every customer organisation, and a new one.

import { route } from "../api.js";
import { h, timeEl } from "../dom.js";
import { field, form, submitButton, submitting } from "../ui/forms.js";
import { loading, pageHeading, showFailure } from "../ui/panels.js";
import { dataTable } from "../ui/table.js";

export function renderTenants(ctx) {
  const { api, main, signal, app } = ctx;
  ctx.setTitle("Tenants");
  const list = h("div", null, loading());

  const createForm = form({ class: "card", "data-testid": "create-tenant-form", "aria-labelledby": "new-tenant-title",
    onSubmit: () => create() },
  h("h2", { id: "new-tenant-title" }, "New tenant"),
  h("div", { class: "grid" },
    field({ label: "Name", name: "name", testid: "tenant-name-input", hint: "The customer organisation's name.", attrs: { maxlength: 200, autocomplete: "off" } }),
    field({ label: "Id (optional)", name: "id", testid: "tenant-id-input",
      hint: "3-63 lower case letters, digits or hyphens; made from the name if empty.", attrs: { maxlength: 63, autocomplete: "off" } })),
  h("div", { class: "actions" }, submitButton("Create tenant", "create-tenant-submit")));

  main.replaceChildren(pageHeading("Tenants"), createForm, list);

  async function create() {
    const name = createForm.querySelector("[name=name]").value.trim();
    const id = createForm.querySelector("[name=id]").value.trim();
    const body = id ? { name, id } : { name };
    const tenant = await submitting(createForm, () => api.post(route`/tenants`, body, { signal }));
    if (!tenant) return;
    createForm.reset();
    ctx.notify(`Tenant ${tenant.id} created.`);
    await load().catch((error) => showFailure(list, error));
  }

  function draw(tenants) {
    list.replaceChildren(dataTable({
      caption: `Tenants (${tenants.length})`,
      testid: "tenants-table",
      empty: "No tenants yet.",
      rows: tenants,
      rowAttrs: (t) => ({ "data-testid": "tenant-row", "data-tenant-id": t.id }),
      columns: [
        { label: "Id", header: true, cell: (t) => h("code", null, t.id) },
        { label: "Name", cell: (t) => t.name },
        { label: "Created (UTC)", cell: (t) => timeEl(t.created_at) },
        { label: "Action", cell: (t) => {
          const button = h("button", { type: "button", class: "button small", "data-testid": "tenant-manage",
            "aria-label": `Manage the licenses of ${t.name || t.id}` }, "Manage licenses");
          button.addEventListener("click", () => {
            app.switchTenant(t.id, { reroute: false });
            location.hash = "#/licenses";
          });
          return button;
        } },
      ],
    }));
  }

  async function load() {
    const tenants = await app.loadTenants({ rethrow: true });
    if (!signal.aborted) draw(tenants);
  }

  load().catch((error) => showFailure(list, error));
}
