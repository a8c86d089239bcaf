// A license's settings, as four forms that each PATCH only what they changed:
//   Entitlements      what the customer bought (the owner's; read-only to a tenant admin)
//   Restrictions      what a tenant admin may narrow: e-mail domains, sessions per user, revival
//   Seat policy       the whole policy (its overdraft is the owner's)
//   Conflict rules    the anomaly_rules thresholds

import { route } from "../api.js";
import { h } from "../dom.js";
import {
  field, form, fromList, fromLocalInput, same, submitButton, submitting, toInteger, toList, toLocalInput,
} from "../ui/forms.js";
import { policyEditor } from "./policy_editor.js";

const RULES = [
  { key: "hardware_per_user", label: "Hardware ids per user", hint: "One user on more machines than this." },
  { key: "users_per_hardware", label: "Users per hardware id", hint: "One machine used by more users than this." },
  { key: "addresses_per_session", label: "Client addresses per session", hint: "A session heartbeating from more addresses: its token handed around." },
  { key: "grants_per_user", label: "Seats granted per user", hint: "More grants to one user: seat cycling." },
];

/**
 * @param {object} ctx          the page's (api, signal, isOwner, notify)
 * @param {object} license      the license now
 * @param {(answer) => void} onSaved   the PATCH answer ({license, seats, notice})
 */
export function settingsSection(ctx, license, onSaved) {
  const { api, signal, isOwner } = ctx;
  const licensePath = route`/licenses/${license.id}`;
  const revoked = Boolean(license.revoked_at);

  async function save(formEl, changes) {
    if (!Object.keys(changes).length) {
      ctx.notify("Nothing changed.", "info");
      return;
    }
    const answer = await submitting(formEl, () => api.patch(licensePath, changes, { signal }));
    if (!answer) return;
    ctx.notify(answer.notice || "Saved.");
    onSaved(answer);
  }

  const value = (formEl, name) => formEl.querySelector(`[name="${CSS.escape(name)}"]`).value;

  // ---- Entitlements ----------------------------------------------------------------------
  const entitlements = form({ class: "card", "aria-labelledby": "entitlements-title", "data-testid": "entitlements-form",
    onSubmit: () => {
      const changes = {};
      const numbers = ["max_seats", "lease_ttl_s", "heartbeat_interval_s", "offline_grace_s", "max_borrow_s", "ci_seats"];
      for (const name of numbers) {
        const next = toInteger(value(entitlements, name));
        if (next !== null && !same(next, license[name])) changes[name] = next;
      }
      const tier = value(entitlements, "tier").trim();
      if (tier !== license.tier) changes.tier = tier;
      const features = toList(value(entitlements, "features"));
      if (!same(features, license.features)) changes.features = features;
      const expires = fromLocalInput(value(entitlements, "expires_at"));
      if (toLocalInput(expires) !== toLocalInput(license.expires_at)) changes.expires_at = expires;
      const support = value(entitlements, "support_contact").trim() || null;
      if (support !== (license.support_contact ?? null)) changes.support_contact = support;
      return save(entitlements, changes);
    } },
  h("h3", { id: "entitlements-title" }, "Entitlements"),
  isOwner ? null : h("p", { class: "hint" }, "What your organisation bought: only the vendor changes these."),
  h("fieldset", { class: "plain", disabled: !isOwner || revoked },
    h("legend", { class: "visually-hidden" }, "Entitlements"),
    h("div", { class: "grid" },
      field({ label: "Seats (max_seats)", name: "max_seats", type: "number", value: license.max_seats, testid: "seats-input",
        hint: "Lowering it evicts nobody: new grants wait until use drops below it.", attrs: { min: 1, max: 1000000, inputmode: "numeric" } }),
      field({ label: "Tier", name: "tier", value: license.tier, testid: "tier-input", attrs: { maxlength: 64 } }),
      field({ label: "Expires at (UTC)", name: "expires_at", type: "datetime", value: license.expires_at, hint: "Empty: never.",
        testid: "expires-input" }),
      field({ label: "CI pool seats (ci_seats)", name: "ci_seats", type: "number", value: license.ci_seats,
        hint: "Seats beside max_seats that only machine keys take.", attrs: { min: 0, inputmode: "numeric" } }),
      field({ label: "Lease (lease_ttl_s, s)", name: "lease_ttl_s", type: "number", value: license.lease_ttl_s,
        attrs: { min: 10, max: 86400, inputmode: "numeric" } }),
      field({ label: "Heartbeat interval (s)", name: "heartbeat_interval_s", type: "number", value: license.heartbeat_interval_s,
        attrs: { min: 1, max: 86400, inputmode: "numeric" } }),
      field({ label: "Longest borrow (max_borrow_s, s)", name: "max_borrow_s", type: "number", value: license.max_borrow_s,
        hint: "0: no borrowing.", attrs: { min: 0, max: 7776000, inputmode: "numeric" } }),
      field({ label: "Offline grace (offline_grace_s, s)", name: "offline_grace_s", type: "number", value: license.offline_grace_s,
        attrs: { min: 0, max: 2592000, inputmode: "numeric" } }),
      field({ label: "Support contact", name: "support_contact", value: license.support_contact ?? "",
        hint: "Shown in tools with every refusal. Empty: none.", attrs: { maxlength: 200 } })),
    field({ label: "Features", name: "features", type: "textarea", value: fromList(license.features), hint: "One per line." }),
    isOwner ? h("div", { class: "actions" }, submitButton("Save entitlements", "save-license")) : null));

  // ---- Restrictions ----------------------------------------------------------------------
  const restrictions = form({ class: "card", "aria-labelledby": "restrictions-title", "data-testid": "restrictions-form",
    onSubmit: () => {
      const changes = {};
      const domains = toList(value(restrictions, "allowed_domains"));
      if (!same(domains, license.allowed_domains)) changes.allowed_domains = domains;
      for (const name of ["max_sessions_per_user", "revive_window_s"]) {
        const next = toInteger(value(restrictions, name));
        if (next !== null && !same(next, license[name])) changes[name] = next;
      }
      return save(restrictions, changes);
    } },
  h("h3", { id: "restrictions-title" }, "Restrictions"),
  h("fieldset", { class: "plain", disabled: revoked },
    h("legend", { class: "visually-hidden" }, "Restrictions"),
    h("div", { class: "grid" },
      field({ label: "Allowed e-mail domains", name: "allowed_domains", type: "textarea", value: fromList(license.allowed_domains),
        hint: "Only users with a verified e-mail in these domains. Empty: any. One per line.", testid: "domains-input" }),
      field({ label: "Sessions per user (max_sessions_per_user)", name: "max_sessions_per_user", type: "number",
        value: license.max_sessions_per_user, hint: "0: no limit.", attrs: { min: 0, max: 10000, inputmode: "numeric" } }),
      field({ label: "Revival window (revive_window_s, s)", name: "revive_window_s", type: "number", value: license.revive_window_s,
        attrs: { min: 0, max: 86400, inputmode: "numeric" } })),
    h("div", { class: "actions" }, submitButton("Save restrictions", "save-restrictions"))));

  // ---- Seat policy -----------------------------------------------------------------------
  const editor = policyEditor(license.policy || {}, { canOverdraft: isOwner });
  const policyForm = form({ class: "card", "aria-labelledby": "policy-title", "data-testid": "policy-form",
    onSubmit: () => {
      const policy = editor.read();
      return same(policy, license.policy || {}) ? save(policyForm, {}) : save(policyForm, { policy });
    } },
  h("h3", { id: "policy-title" }, "Seat policy"),
  h("fieldset", { class: "plain", disabled: revoked },
    h("legend", { class: "visually-hidden" }, "Seat policy"),
    editor.element,
    h("div", { class: "actions" }, submitButton("Save seat policy", "save-policy"))));

  // ---- Conflict rules --------------------------------------------------------------------
  const rules = license.anomaly_rules || {};
  const rulesForm = form({ class: "card", "aria-labelledby": "rules-title", "data-testid": "anomaly-rules-form",
    onSubmit: () => {
      const changed = {};
      for (const { key } of RULES) {
        const next = {};
        const max = toInteger(value(rulesForm, `anomaly_rules.${key}.max`));
        const windowS = toInteger(value(rulesForm, `anomaly_rules.${key}.window_s`));
        if (max !== null) next.max = max;
        if (windowS !== null) next.window_s = windowS;
        if (Object.keys(next).length && !same({ ...rules[key], ...next }, rules[key] || {})) changed[key] = { ...rules[key], ...next };
      }
      return save(rulesForm, Object.keys(changed).length ? { anomaly_rules: changed } : {});
    } },
  h("h3", { id: "rules-title" }, "Conflict rules"),
  h("p", { class: "hint" }, "More than the maximum within the window raises a conflict flag; a maximum of 0 turns the rule off. Machine keys are not counted."),
  h("fieldset", { class: "plain", disabled: revoked },
    h("legend", { class: "visually-hidden" }, "Conflict rules"),
    RULES.map(({ key, label, hint }) => h("fieldset", { class: "row-card", dataset: { field: `anomaly_rules.${key}` } },
      h("legend", null, label),
      h("p", { class: "hint" }, hint),
      h("p", { class: "field-error", hidden: true }),
      h("div", { class: "row-inline" },
        field({ label: "Maximum", name: `anomaly_rules.${key}.max`, type: "number", value: rules[key]?.max ?? "",
          attrs: { min: 0, max: 100000, inputmode: "numeric" } }),
        field({ label: "Window (s)", name: `anomaly_rules.${key}.window_s`, type: "number", value: rules[key]?.window_s ?? "",
          attrs: { min: 60, max: 604800, inputmode: "numeric" } })))),
    h("div", { class: "actions" }, submitButton("Save conflict rules", "save-anomaly-rules"))));

  return h("section", { class: "section", "aria-labelledby": "settings-title", "data-testid": "license-settings" },
    h("h2", { id: "settings-title" }, "Settings"),
    revoked ? h("p", { class: "hint" }, "This license is revoked: nothing about it changes any more.") : null,
    entitlements, restrictions, policyForm, rulesForm);
}
