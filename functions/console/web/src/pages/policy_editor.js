// The seat policy as a form: groups, include, exclude, reservations, group maximums, the
// overdraft (the owner's), the wait queue. `read()` gives the policy JSON PATCH expects (the
// whole policy: it replaces the one before). Field wrappers are named by the API's paths
// ("policy.groups.0.name"), so the server's messages land next to what they are about.

import { h, uid } from "../dom.js";
import { field, fieldGroup, fromList, toInteger, toList } from "../ui/forms.js";

function listField(label, name, values, hint) {
  return field({ label, name, type: "textarea", value: fromList(values), hint: hint ?? "One per line." });
}

function removeButton(label, onRemove) {
  const button = h("button", { type: "button", class: "button small" }, label);
  button.addEventListener("click", onRemove);
  return button;
}

/**
 * @param {object} policy       the license's policy now
 * @param {object} options      {canOverdraft: the owner may change the overdraft}
 * @returns {{element: HTMLElement, read: () => object}}
 */
export function policyEditor(policy, { canOverdraft }) {
  const model = {
    groups: (policy.groups || []).map((g) => ({ name: g.name || "", uids: fromList(g.uids), domains: fromList(g.domains),
      claimName: g.claim?.name || "", claimValue: g.claim?.value || "" })),
    reserve: (policy.reserve || []).map((r) => ({ group: r.group, seats: String(r.seats) })),
    max: (policy.max || []).map((r) => ({ group: r.group, seats: String(r.seats) })),
  };
  const datalistId = uid("groups");
  const datalist = h("datalist", { id: datalistId });
  const groupsBox = h("div", { class: "rows" });
  const reserveBox = h("div", { class: "rows" });
  const maxBox = h("div", { class: "rows" });

  // ---- Groups --------------------------------------------------------------------------
  function drawGroups() {
    groupsBox.replaceChildren(...model.groups.map((g, i) => {
      const base = `policy.groups.${i}`;
      const box = h("fieldset", { class: "row-card", "data-testid": "policy-group" },
        h("legend", null, `Group ${i + 1}`),
        h("div", { class: "grid" },
          field({ label: "Name", name: `${base}.name`, value: g.name, hint: "Lower case letters, digits, . _ -",
            attrs: { "data-part": "name", autocomplete: "off" } }),
          field({ label: "Custom claim name", name: `${base}.claim.name`, value: g.claimName, attrs: { "data-part": "claimName" } }),
          field({ label: "Custom claim value", name: `${base}.claim.value`, value: g.claimValue, attrs: { "data-part": "claimValue" } })),
        h("div", { class: "grid" },
          field({ label: "Users (uids)", name: `${base}.uids`, type: "textarea", value: g.uids, hint: "One per line.", attrs: { "data-part": "uids" } }),
          field({ label: "E-mail domains", name: `${base}.domains`, type: "textarea", value: g.domains,
            hint: "Verified e-mail domains, one per line.", attrs: { "data-part": "domains" } })),
        removeButton(`Remove group ${i + 1}`, () => { sync(); model.groups.splice(i, 1); redraw(); }));
      return box;
    }));
    datalist.replaceChildren(...model.groups.filter((g) => g.name).map((g) => h("option", { value: g.name })));
  }

  // ---- Reservations and maximums: [{group, seats}] --------------------------------------
  function drawRows(box, rows, key, noun) {
    box.replaceChildren(...rows.map((row, i) => h("div", { class: "row-inline", "data-testid": `policy-${key}-row` },
      field({ label: `${noun} ${i + 1}: group`, name: `policy.${key}.${i}.group`, value: row.group,
        attrs: { list: datalistId, "data-part": "group", autocomplete: "off" } }),
      field({ label: "Seats", name: `policy.${key}.${i}.seats`, type: "number", value: row.seats,
        attrs: { min: 1, inputmode: "numeric", "data-part": "seats" } }),
      removeButton(`Remove ${noun.toLowerCase()} ${i + 1}`, () => { sync(); rows.splice(i, 1); redraw(); }))));
  }

  function addButton(label, onAdd) {
    const button = h("button", { type: "button", class: "button small" }, label);
    button.addEventListener("click", () => {
      sync();
      onAdd();
      redraw();
    });
    return button;
  }

  // Read what was typed back into the model before the rows are redrawn.
  function sync() {
    [...groupsBox.children].forEach((box, i) => {
      for (const input of box.querySelectorAll("[data-part]")) model.groups[i][input.dataset.part] = input.value;
    });
    for (const [box, rows] of [[reserveBox, model.reserve], [maxBox, model.max]]) {
      [...box.children].forEach((line, i) => {
        for (const input of line.querySelectorAll("[data-part]")) rows[i][input.dataset.part] = input.value;
      });
    }
  }

  function redraw() {
    drawGroups();
    drawRows(reserveBox, model.reserve, "reserve", "Reservation");
    drawRows(maxBox, model.max, "max", "Maximum");
  }
  redraw();

  // ---- Overdraft -------------------------------------------------------------------------
  const overdraftKind = Number.isInteger(policy.overdraft_seats) ? "seats"
    : typeof policy.overdraft_ratio === "number" ? "ratio" : "none";
  const overdraft = h("fieldset", { class: "row-card", disabled: !canOverdraft, "data-testid": "policy-overdraft" },
    h("legend", null, "Overdraft"),
    canOverdraft ? null : h("p", { class: "hint" }, "The overdraft is an entitlement: only the vendor changes it."),
    h("div", { class: "grid" },
      field({ label: "Kind", name: "policy.overdraft_kind", type: "select", value: overdraftKind,
        options: [{ value: "none", label: "None" }, { value: "seats", label: "Extra seats" }, { value: "ratio", label: "Ratio of max_seats" }] }),
      field({ label: "Extra seats", name: "policy.overdraft_seats", type: "number", value: policy.overdraft_seats ?? "",
        attrs: { min: 0, inputmode: "numeric" } }),
      field({ label: "Ratio (1.25 = 25 % more)", name: "policy.overdraft_ratio", type: "number", value: policy.overdraft_ratio ?? "",
        attrs: { min: 1, max: 10, step: 0.05, inputmode: "decimal" } })));

  // ---- Queue -----------------------------------------------------------------------------
  const queue = policy.queue || null;
  const queueBox = h("fieldset", { class: "row-card", "data-testid": "policy-queue" },
    h("legend", null, "Wait queue"),
    field({ label: "Callers may wait for a seat", name: "policy.queue.enabled", type: "checkbox", value: Boolean(queue) }),
    h("div", { class: "grid" },
      field({ label: "Longest queue", name: "policy.queue.max_length", type: "number", value: queue?.max_length ?? "",
        hint: "Default 100.", attrs: { min: 1, max: 10000, inputmode: "numeric" } }),
      field({ label: "Claim window (s)", name: "policy.queue.claim_window_s", type: "number", value: queue?.claim_window_s ?? "",
        hint: "How long a freed seat waits for the next in line. Default 30.", attrs: { min: 5, max: 600, inputmode: "numeric" } }),
      field({ label: "Poll interval (s)", name: "policy.queue.poll_interval_s", type: "number", value: queue?.poll_interval_s ?? "",
        hint: "Default 10.", attrs: { min: 1, max: 300, inputmode: "numeric" } })),
    listField("Priority groups", "policy.queue.priority", queue?.priority, "Served first, in this order; one per line."));

  const element = fieldGroup({ legend: "Seat policy", name: "policy", testid: "policy-editor", hideLegend: true,
    hint: "Evaluated in order: exclude, include, group maximum, per-user maximum, a reserved seat, a free seat, the overdraft, the queue." },
  datalist,
  h("section", { class: "subsection", "aria-label": "Groups" }, h("h4", null, "Groups"), groupsBox,
    addButton("Add a group", () => model.groups.push({ name: "", uids: "", domains: "", claimName: "", claimValue: "" }))),
  h("div", { class: "grid" },
    h("fieldset", { class: "row-card" }, h("legend", null, "Include (if set, only these)"),
      listField("Groups", "policy.include.groups", policy.include?.groups),
      listField("Users (uid or e-mail)", "policy.include.users", policy.include?.users),
      h("p", { class: "hint" }, "Both empty: everyone may hold a seat.")),
    h("fieldset", { class: "row-card" }, h("legend", null, "Exclude (never)"),
      listField("Groups", "policy.exclude.groups", policy.exclude?.groups),
      listField("Users (uid or e-mail)", "policy.exclude.users", policy.exclude?.users),
      listField("Hardware ids", "policy.exclude.hardware", policy.exclude?.hardware))),
  h("section", { class: "subsection", "aria-label": "Reservations" }, h("h4", null, "Reserved seats"),
    h("p", { class: "hint" }, "Held for a group's members: nobody else takes them, even idle."), reserveBox,
    addButton("Add a reservation", () => model.reserve.push({ group: "", seats: "" }))),
  h("section", { class: "subsection", "aria-label": "Group maximums" }, h("h4", null, "Group maximums"),
    h("p", { class: "hint" }, "A group's members together hold at most this many."), maxBox,
    addButton("Add a maximum", () => model.max.push({ group: "", seats: "" }))),
  overdraft,
  queueBox);

  const value = (name) => element.querySelector(`[name="${CSS.escape(name)}"]`);

  function read() {
    sync();
    const out = {};
    const groups = model.groups.filter((g) => g.name || g.uids || g.domains || g.claimName || g.claimValue).map((g) => {
      const group = { name: g.name.trim() };
      if (toList(g.uids).length) group.uids = toList(g.uids);
      if (toList(g.domains).length) group.domains = toList(g.domains);
      if (g.claimName.trim() || g.claimValue.trim()) group.claim = { name: g.claimName.trim(), value: g.claimValue.trim() };
      return group;
    });
    if (groups.length) out.groups = groups;
    const lists = (prefix, names) => {
      const part = {};
      for (const name of names) {
        const items = toList(value(`${prefix}.${name}`).value);
        if (items.length) part[name] = items;
      }
      return Object.keys(part).length ? part : null;
    };
    const include = lists("policy.include", ["groups", "users"]);
    if (include) out.include = include;
    const exclude = lists("policy.exclude", ["groups", "users", "hardware"]);
    if (exclude) out.exclude = exclude;
    for (const key of ["reserve", "max"]) {
      const rows = model[key].filter((r) => r.group || r.seats).map((r) => ({ group: r.group.trim(), seats: toInteger(r.seats) }));
      if (rows.length) out[key] = rows;
    }
    const kind = value("policy.overdraft_kind").value;
    if (kind === "seats") out.overdraft_seats = toInteger(value("policy.overdraft_seats").value);
    if (kind === "ratio") {
      const ratio = value("policy.overdraft_ratio").value.trim();
      out.overdraft_ratio = ratio === "" || Number.isNaN(Number(ratio)) ? ratio : Number(ratio);
    }
    if (value("policy.queue.enabled").checked) {
      const q = {};
      for (const name of ["max_length", "claim_window_s", "poll_interval_s"]) {
        const number = toInteger(value(`policy.queue.${name}`).value);
        if (number !== null) q[name] = number;
      }
      const priority = toList(value("policy.queue.priority").value);
      if (priority.length) q.priority = priority;
      out.queue = q;
    }
    return out;
  }

  return { element, read };
}
