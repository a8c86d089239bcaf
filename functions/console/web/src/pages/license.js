// One license: what it is, who holds its seats now (refreshed every 3 s, each holder
// releasable), its wait queue, its usage, its conflict flags, and its settings.

import { route } from "../api.js";
import { formatRelative, formatSeconds, formatTime, h, replaceChildren, swapKeepingFocus, timeEl } from "../dom.js";
import { acknowledgeFlag, anomalyTable } from "../ui/anomalies.js";
import { confirmDialog } from "../ui/dialog.js";
import { describeError } from "../ui/forms.js";
import { seatsText, statusBadge } from "../ui/licenses.js";
import { loading, notFoundPanel, pageHeading, showFailure } from "../ui/panels.js";
import { poll } from "../ui/poller.js";
import { badge, dataTable } from "../ui/table.js";
import { settingsSection } from "./license_settings.js";
import { usageSection } from "./license_usage.js";

const HOLDERS_MS = 3_000;

export function renderLicense(ctx) {
  const { api, main, signal, isOwner, notify } = ctx;
  const [licenseId] = ctx.params;
  const licensePath = route`/licenses/${licenseId}`;
  ctx.setTitle(`License ${licenseId}`);

  let license = null;
  let seats = null;
  let ciSeats = null;
  let holdersPoll = null;

  const heading = pageHeading(h("span", null, "License ", h("code", null, licenseId)));
  const overview = h("section", { class: "section", "aria-label": "Overview" }, loading());
  const holdersStatus = h("p", { class: "muted small", "data-testid": "holders-updated" });
  let holdersTable = h("div", null, loading());
  const holders = h("section", { class: "section", "aria-labelledby": "holders-title", "data-testid": "holders" },
    h("h2", { id: "holders-title" }, "Holders"), holdersStatus, holdersTable);
  let queueBody = h("div");
  const queue = h("section", { class: "section", "aria-labelledby": "queue-title", hidden: true, "data-testid": "queue" },
    h("h2", { id: "queue-title" }, "Wait queue"), queueBody);
  const usage = usageSection({ api, signal, licenseId });
  let flagsBody = h("div", null, loading());
  const showAcknowledged = h("input", { type: "checkbox", id: "flags-all", "data-testid": "flags-show-acknowledged" });
  showAcknowledged.addEventListener("change", () => loadFlags().catch(() => {}));
  const flags = h("section", { class: "section", "aria-labelledby": "flags-title", "data-testid": "license-anomalies" },
    h("h2", { id: "flags-title" }, "Conflict flags"),
    h("div", { class: "check" }, showAcknowledged, h("label", { for: "flags-all" }, "Show acknowledged flags too")),
    flagsBody);
  let settings = h("div");

  main.replaceChildren(heading, overview);

  // ---- The license ------------------------------------------------------------------------

  function drawOverview() {
    const facts = [
      ["Tenant", license.tenant],
      ["Tier", license.tier],
      ["Features", license.features.length ? license.features.join(", ") : "—"],
      ["Seats in use", h("span", { "data-testid": "license-seats-live" }, seatsText(seats, ciSeats))],
      ["Expires (UTC)", license.expires_at ? h("span", null, timeEl(license.expires_at), ` (${formatRelative(license.expires_at)})`) : "never"],
      ["Lease / heartbeat", `${formatSeconds(license.lease_ttl_s)} / every ${formatSeconds(license.heartbeat_interval_s)}`],
      ["Borrow / offline grace", `${license.max_borrow_s ? `up to ${formatSeconds(license.max_borrow_s)}` : "not allowed"} / ${formatSeconds(license.offline_grace_s)}`],
      ["Support contact", license.support_contact || "—"],
      ["Created (UTC)", timeEl(license.created_at)],
      ["Changed (UTC)", timeEl(license.updated_at)],
      license.revoked_at ? ["Revoked (UTC)", timeEl(license.revoked_at)] : null,
    ].filter(Boolean);
    replaceChildren(overview,
      h("div", { class: "status-line" }, statusBadge(license)),
      h("dl", { class: "facts" }, facts.map(([term, value]) => h("div", null, h("dt", null, term), h("dd", null, value)))),
      h("div", { class: "actions" }, actionButtons()));
  }

  function actionButtons() {
    const buttons = [];
    if (!license.revoked_at) {
      if (license.suspended) {
        const locked = !isOwner && license.suspended_by === "owner";
        const resume = h("button", { type: "button", class: "button", disabled: locked, "data-testid": "resume-button",
          "aria-describedby": locked ? "resume-locked" : null }, "Resume");
        resume.addEventListener("click", () => setSuspended(false));
        buttons.push(resume);
        if (locked) buttons.push(h("span", { id: "resume-locked", class: "hint" }, "The vendor suspended this license: only the vendor resumes it."));
      } else {
        const suspend = h("button", { type: "button", class: "button", "data-testid": "suspend-button" }, "Suspend");
        suspend.addEventListener("click", () => setSuspended(true));
        buttons.push(suspend);
      }
      if (isOwner) {
        const revoke = h("button", { type: "button", class: "button danger", "data-testid": "revoke-button" }, "Revoke…");
        revoke.addEventListener("click", revokeLicense);
        buttons.push(revoke);
      }
    }
    buttons.push(h("a", { href: `#/events?license=${encodeURIComponent(licenseId)}`, class: "button-link", "data-testid": "license-events-link" },
      "Audit log of this license"));
    return buttons;
  }

  async function setSuspended(suspended) {
    if (suspended) {
      const ok = await confirmDialog({
        title: "Suspend this license?",
        message: ["While it is suspended, no seat is granted for it.", "You can resume it later."],
        confirmLabel: "Suspend", danger: true, testid: "suspend-confirm",
      });
      if (!ok) return;
    }
    try {
      const answer = await api.patch(licensePath, { suspended }, { signal });
      applyLicense(answer);
      notify(answer.notice || (suspended ? "License suspended." : "License resumed."));
    } catch (error) {
      notify(describeError(error), "error");
    }
  }

  async function revokeLicense() {
    const ok = await confirmDialog({
      title: `Revoke ${licenseId}?`,
      message: ["The key stops working, every session ends now, and no token is ever signed for this license again.",
        "This cannot be undone."],
      confirmLabel: "Revoke the license", danger: true, testid: "revoke-confirm",
    });
    if (!ok) return;
    try {
      const answer = await api.del(licensePath, { signal });
      notify(answer.status === "already_revoked" ? "The license was already revoked."
        : `License revoked; ${answer.sessions_ended ?? 0} sessions ended.`);
      applyLicense({ license: answer.license, seats, ci_seats: ciSeats });
      holdersPoll?.now();
    } catch (error) {
      notify(describeError(error), "error");
    }
  }

  function applyLicense(answer) {
    license = answer.license;
    if (answer.seats) seats = answer.seats;
    if (answer.ci_seats) ciSeats = answer.ci_seats;
    drawOverview();
    const fresh = settingsSection(ctx, license, applyLicense);
    settings.replaceWith(fresh);
    settings = fresh;
    queue.hidden = !license.policy?.queue;
  }

  // ---- Holders, live ----------------------------------------------------------------------

  function holderRow(session) {
    const client = session.client || {};
    const user = h("span", null, h("code", null, session.uid), session.email ? h("span", { class: "block muted small" }, session.email) : null);
    const state = h("span", { class: "badges" },
      badge(session.state, session.state === "live" ? "ok" : session.state === "held" ? "neutral" : "info"),
      session.overage ? badge("overage", "warning", "overage-badge") : null,
      session.ci ? badge("CI pool", "neutral") : null);
    let action = null;
    if (session.state !== "held") {
      action = h("button", { type: "button", class: "button small danger", "data-testid": "force-release",
        "data-session-id": session.session_id, "data-focus-key": `release-${session.session_id}`,
        "aria-label": `Force-release the seat of ${session.uid} on ${session.hardware_id}` }, "Force-release");
      action.addEventListener("click", () => forceRelease(session));
    }
    return { user, state, action, client };
  }

  function drawHolders(answer) {
    seats = answer.seats;
    ciSeats = answer.ci_seats || ciSeats;
    const live = overview.querySelector("[data-testid=license-seats-live]");
    if (live) live.textContent = seatsText(seats, ciSeats);
    const now = Date.now();
    const table = dataTable({
      caption: `Holders: ${seatsText(seats, ciSeats)} seats in use`,
      hideCaption: true,
      testid: "holders-table",
      empty: "Nobody holds a seat.",
      rows: answer.sessions.map((session) => ({ session, parts: holderRow(session) })),
      rowAttrs: ({ session }) => ({ "data-testid": "holder-row", "data-session-id": session.session_id }),
      columns: [
        { label: "User", header: true, cell: (r) => r.parts.user },
        { label: "Hardware", cell: (r) => h("code", { class: "break" }, r.session.hardware_id) },
        { label: "Host · client", cell: (r) => h("span", null,
          h("span", { class: "block break", "data-testid": "holder-hostname" }, r.parts.client.hostname || "—"),
          h("span", { class: "block muted small break", "data-testid": "holder-client" },
            [r.parts.client.name, r.parts.client.version].filter(Boolean).join(" "))) },
        { label: "Since (UTC)", cell: (r) => timeEl(r.session.since, { compact: true }) },
        { label: "Last heartbeat", cell: (r) => h("time", { datetime: r.session.last_heartbeat_at, title: `${formatTime(r.session.last_heartbeat_at)} UTC` },
          formatRelative(r.session.last_heartbeat_at, now)) },
        { label: "Expires (UTC)", cell: (r) => timeEl(r.session.expires_at, { compact: true }) },
        // Only when some seat is borrowed: a column of dashes is noise.
        answer.sessions.some((s) => s.borrowed_until)
          ? { label: "Borrowed until (UTC)", cell: (r) => timeEl(r.session.borrowed_until, { compact: true }) } : null,
        { label: "State", cell: (r) => r.parts.state },
        { label: "Action", cell: (r) => r.parts.action },
      ].filter(Boolean),
    });
    holdersTable = swapKeepingFocus(holdersTable, table);
    holdersStatus.textContent = `${seatsText(seats, ciSeats)} seats in use · updated ${new Date(now).toLocaleTimeString()}, every ${HOLDERS_MS / 1000} s`;
  }

  async function refreshHolders() {
    const [answer] = await Promise.all([
      api.get(route`/licenses/${licenseId}/sessions`, { signal }),
      license?.policy?.queue ? refreshQueue().catch(() => {}) : null, // the holders do not wait on it
    ]);
    drawHolders(answer);
  }

  async function forceRelease(session) {
    const host = session.client?.hostname ? ` (${session.client.hostname})` : "";
    const ok = await confirmDialog({
      title: "Force-release this seat?",
      message: [
        `${session.email || session.uid} on ${session.hardware_id}${host}.`,
        "The seat is free now; the holder's tool is refused at its next heartbeat.",
        session.state === "borrowed" ? "This seat is borrowed: its offline token stays usable until it lapses, so the seat stays counted until then." : null,
      ],
      confirmLabel: "Force-release", danger: true, testid: "force-release-confirm",
    });
    if (!ok) return;
    try {
      const answer = await api.del(route`/licenses/${licenseId}/sessions/${session.session_id}`, { signal });
      const counted = answer.seat_counted_until ? ` The seat stays counted until ${formatTime(answer.seat_counted_until)} UTC.` : "";
      notify(answer.notice || (answer.status === "already_released" ? "That seat had already been released."
        : `Released the seat of ${answer.uid || session.uid}.${counted}`));
    } catch (error) {
      notify(describeError(error), "error");
    }
    holdersPoll?.now();
  }

  // ---- Queue ------------------------------------------------------------------------------

  async function refreshQueue() {
    const answer = await api.get(route`/licenses/${licenseId}/queue`, { signal });
    queue.hidden = !answer.queue;
    const table = dataTable({
      caption: `${answer.tickets.length} waiting`,
      testid: "queue-table",
      empty: "Nobody is waiting.",
      rows: answer.tickets,
      rowAttrs: (t) => ({ "data-testid": "queue-row", "data-ticket": t.ticket }),
      columns: [
        { label: "Position", header: true, class: "num", cell: (t) => t.position },
        { label: "User", cell: (t) => h("code", null, t.uid) },
        { label: "Hardware", cell: (t) => h("code", null, t.hardware_id) },
        { label: "Groups", cell: (t) => t.groups.join(", ") || "—" },
        { label: "Since (UTC)", cell: (t) => timeEl(t.since) },
        { label: "Alive until (UTC)", cell: (t) => timeEl(t.alive_until) },
        { label: "Seat held until (UTC)", cell: (t) => timeEl(t.held_until) },
        { label: "Action", cell: (t) => {
          const button = h("button", { type: "button", class: "button small", "data-testid": "queue-remove",
            "data-focus-key": `ticket-${t.ticket}`, "aria-label": `Remove ${t.uid} from the queue` }, "Remove");
          button.addEventListener("click", () => removeTicket(t));
          return button;
        } },
      ],
    });
    queueBody = swapKeepingFocus(queueBody, h("div", null, table));
  }

  async function removeTicket(ticket) {
    const ok = await confirmDialog({
      title: "Remove this caller from the queue?",
      message: [`${ticket.uid} on ${ticket.hardware_id}, position ${ticket.position}.`,
        "Its next poll is refused; a seat held for it passes on to the next in line."],
      confirmLabel: "Remove", danger: true, testid: "queue-remove-confirm",
    });
    if (!ok) return;
    try {
      const answer = await api.del(route`/licenses/${licenseId}/queue/${ticket.ticket}`, { signal });
      notify(answer.status === "not_queued" ? "That caller was no longer waiting." : `Removed ${answer.uid || ticket.uid} from the queue.`);
    } catch (error) {
      notify(describeError(error), "error");
    }
    holdersPoll?.now();
  }

  // ---- Conflict flags ---------------------------------------------------------------------

  async function loadFlags() {
    const answer = await api.get(route`/licenses/${licenseId}/anomalies`,
      { query: { state: showAcknowledged.checked ? null : "open", limit: 100 }, signal });
    const table = anomalyTable({
      flags: answer.anomalies,
      caption: showAcknowledged.checked ? "Every flag of this license" : "Open flags of this license",
      showLicense: false,
      onAcknowledge: async (flag) => {
        if (await acknowledgeFlag(ctx, flag)) loadFlags().catch(() => {});
      },
    });
    flagsBody = swapKeepingFocus(flagsBody, h("div", null, table));
  }

  // ---- Start ------------------------------------------------------------------------------

  api.get(licensePath, { signal }).then((answer) => {
    main.append(holders, queue, usage.element, flags, settings);
    applyLicense(answer);
    refreshHolders().catch((error) => showFailure(holdersTable, error));
    holdersPoll = poll(refreshHolders, HOLDERS_MS, signal);
    usage.load(license).catch(() => {});
    loadFlags().catch((error) => showFailure(flagsBody, error));
  }).catch((error) => {
    if (error?.notFound) replaceChildren(main, heading, notFoundPanel());
    else showFailure(overview, error);
  });
}
