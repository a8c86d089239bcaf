// What every page says about a license the same way.

import { badge } from "./table.js";

/** Revoked, suspended (by whom), expired or active. */
export function licenseStatus(license, now = Date.now()) {
  if (license.revoked_at) return { text: "Revoked", kind: "danger" };
  if (license.suspended) {
    return { text: license.suspended_by === "owner" ? "Suspended by the vendor" : "Suspended", kind: "warning" };
  }
  if (license.expires_at && new Date(license.expires_at).getTime() <= now) return { text: "Expired", kind: "danger" };
  return { text: "Active", kind: "ok" };
}

export function statusBadge(license) {
  const { text, kind } = licenseStatus(license);
  return badge(text, kind, "license-status");
}

/** Seats beyond max_seats the policy's overdraft allows (0: none). */
export function overdraftSeats(license) {
  const policy = license.policy || {};
  if (Number.isInteger(policy.overdraft_seats)) return policy.overdraft_seats;
  if (typeof policy.overdraft_ratio === "number") return Math.floor(license.max_seats * (policy.overdraft_ratio - 1));
  return 0;
}

/** "3 / 10", "3 / 10 + 2 CI": seats in use of the maximum. */
export function seatsText(seats, ciSeats) {
  if (!seats) return "…";
  const ci = ciSeats && (ciSeats.max > 0 || ciSeats.used > 0) ? ` · CI ${ciSeats.used} / ${ciSeats.max}` : "";
  return `${seats.used} / ${seats.max}${ci}`;
}
