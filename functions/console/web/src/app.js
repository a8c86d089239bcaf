// The console's frame: who is signed in, the header (navigation, tenant switcher, sign-out),
// the banners, and routing by the URL hash to one page at a time.
//
// Routes live in the hash (#/licenses, #/licenses/lic_…, #/events, #/webhooks, #/webhooks/wh_…,
// #/anomalies, #/tenants) so the console function only ever serves index.html. A page is a
// function (ctx) => void that renders into ctx.main; leaving it aborts ctx.signal, which
// cancels its requests and stops its polling.

import { createApi, nextCursor, route } from "./api.js";
import { accessOf, signOutUser, watchUser } from "./auth.js";
import { functionUrl } from "./config.js";
import { h, replaceChildren, uid } from "./dom.js";
import { renderAnomalies } from "./pages/anomalies.js";
import { renderEvents } from "./pages/events.js";
import { renderLicense } from "./pages/license.js";
import { renderLicenses } from "./pages/licenses.js";
import { renderNothing } from "./pages/nothing.js";
import { renderSignIn } from "./pages/signin.js";
import { renderTenants } from "./pages/tenants.js";
import { renderWebhook } from "./pages/webhook.js";
import { renderWebhooks } from "./pages/webhooks.js";
import { notFoundPanel } from "./ui/panels.js";

const PAGES = [
  { pattern: /^\/licenses$/, page: renderLicenses, nav: "licenses" },
  { pattern: /^\/licenses\/([^/]+)$/, page: renderLicense, nav: "licenses" },
  { pattern: /^\/events$/, page: renderEvents, nav: "events" },
  { pattern: /^\/webhooks$/, page: renderWebhooks, nav: "webhooks" },
  { pattern: /^\/webhooks\/([^/]+)$/, page: renderWebhook, nav: "webhooks" },
  { pattern: /^\/anomalies$/, page: renderAnomalies, nav: "anomalies" },
  { pattern: /^\/tenants$/, page: renderTenants, nav: "tenants", owner: true },
];

const NAV = [
  { id: "licenses", label: "Licenses", href: "#/licenses" },
  { id: "events", label: "Audit log", href: "#/events" },
  { id: "webhooks", label: "Webhooks", href: "#/webhooks" },
  { id: "anomalies", label: "Conflict flags", href: "#/anomalies" },
  { id: "tenants", label: "Tenants", href: "#/tenants", owner: true },
];

const TENANT_KEY = "coditect-console.tenant";
const TENANT_PAGES = 10; // up to 5,000 tenants in the switcher

/** "#/licenses/lic_x?tenant=a" -> {path: "/licenses/lic_x", query: URLSearchParams}; null if not a route. */
export function parseHash(hash) {
  if (!hash.startsWith("#/")) return null;
  const [path, search = ""] = hash.slice(1).split("?");
  return { path, query: new URLSearchParams(search) };
}

export class ConsoleApp {
  constructor(root, config, auth) {
    this.root = root;
    this.config = config;
    this.auth = auth;
    this.user = null;
    this.access = null; // {role, tenant}
    this.tenant = null; // the owner's choice (null: every tenant) or the admin's own
    this.tenants = [];
    this.page = null; // {controller}
    this.signInMessage = null;
    this.api = createApi({
      base: functionUrl(config, "admin"),
      token: (refresh) => (this.auth.currentUser ? this.auth.currentUser.getIdToken(refresh) : Promise.resolve(null)),
      onUnauthenticated: () => this.sessionEnded(),
      onAvailability: (state) => this.showAvailability(state),
    });
  }

  start() {
    watchUser(this.auth, (user) => {
      this.onUser(user).catch((error) => this.fatal(error));
    });
    window.addEventListener("hashchange", () => this.route({ focus: true }));
    // In-app links are fragments ("#/licenses"). The console function gives the page a
    // <base href> (its own URL), against which a link resolves: were the page opened at a
    // URL differing from it (no trailing slash), following the link would load the page
    // again. Setting the fragment of this document's own URL never does.
    document.addEventListener("click", (event) => {
      const link = event.target.closest?.("a[href^='#']");
      if (!link || event.defaultPrevented || event.button !== 0
        || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
      event.preventDefault();
      const target = link.getAttribute("href");
      if (target === "#main") this.root.querySelector("#main")?.focus(); // the skip link: no route
      else if (location.hash === target) this.route({ focus: true });
      else location.hash = target;
    });
  }

  async onUser(user) {
    if (!user) {
      this.leavePage();
      this.user = null;
      this.access = null;
      this.renderSignIn();
      return;
    }
    const access = await accessOf(user);
    const unchanged = this.user && this.user.uid === user.uid && this.access
      && this.access.role === access.role && this.access.tenant === access.tenant;
    this.user = user;
    if (unchanged) return; // an hourly token refresh: nothing to redraw
    this.access = access;
    this.signInMessage = null;
    if (!access.role) {
      this.leavePage();
      this.renderNothing();
      return;
    }
    this.tenant = access.role === "admin" ? access.tenant : sessionStorage.getItem(TENANT_KEY) || null;
    this.renderShell();
    this.route({ focus: false });
    if (access.role === "owner") this.loadTenants();
  }

  sessionEnded() {
    if (!this.user) return;
    this.signInMessage = "Your session has ended: sign in again.";
    signOutUser(this.auth).catch(() => {});
  }

  fatal(error) {
    replaceChildren(this.root, h("main", { id: "main", class: "main", tabindex: -1 },
      h("section", { class: "panel panel-error", role: "alert", "data-testid": "error-panel" },
        h("h1", null, "The console could not start"), h("p", null, error?.message || String(error)))));
  }

  // ---- Frames -----------------------------------------------------------------------------

  renderSignIn() {
    const main = h("main", { id: "main", class: "main main-narrow", tabindex: -1 });
    replaceChildren(this.root, main);
    renderSignIn({ main, auth: this.auth, message: this.signInMessage });
  }

  renderNothing() {
    const main = h("main", { id: "main", class: "main main-narrow", tabindex: -1 });
    replaceChildren(this.root, main);
    renderNothing({ main, user: this.user, signOut: () => signOutUser(this.auth) });
  }

  renderShell() {
    const role = this.access.role;
    this.navLinks = new Map();
    const navList = h("ul", { class: "nav-list" }, NAV.filter((item) => !item.owner || role === "owner").map((item) => {
      const link = h("a", { href: item.href, "data-testid": `nav-${item.id}` }, item.label);
      this.navLinks.set(item.id, link);
      return h("li", null, link);
    }));
    this.scope = h("div", { class: "scope" });
    this.renderScope();
    const signOut = h("button", { type: "button", class: "button small", "data-testid": "sign-out" }, "Sign out");
    signOut.addEventListener("click", () => signOutUser(this.auth));
    const who = h("div", { class: "account" },
      h("span", { class: "who", "data-testid": "signed-in-as" }, this.user.email || this.user.uid),
      h("span", { class: "badge badge-neutral", "data-testid": "role" }, role === "owner" ? "owner" : "tenant admin"),
      signOut);
    const header = h("header", { class: "topbar" },
      h("div", { class: "brand" }, "Coditect licenses"),
      h("nav", { class: "nav", "aria-label": "Console" }, navList),
      this.scope, who);
    this.banner = h("div", { class: "banner", role: "status", "aria-live": "polite", "data-testid": "unavailable-banner", hidden: true });
    this.notice = h("div", { class: "notice", role: "status", "aria-live": "polite", "data-testid": "notice", hidden: true });
    this.main = h("main", { id: "main", class: "main", tabindex: -1 });
    replaceChildren(this.root, header, this.banner, this.notice, this.main);
  }

  renderScope() {
    if (this.access.role === "admin") {
      replaceChildren(this.scope, h("span", { class: "muted" }, "Tenant "),
        h("strong", { "data-testid": "tenant-name" }, this.access.tenant));
      return;
    }
    const id = uid("tenant");
    const select = h("select", { id, "data-testid": "tenant-switcher" },
      h("option", { value: "" }, "All tenants"),
      this.tenants.map((tenant) => h("option", { value: tenant.id, selected: tenant.id === this.tenant },
        tenant.name && tenant.name !== tenant.id ? `${tenant.name} (${tenant.id})` : tenant.id)));
    if (this.tenant && !this.tenants.some((tenant) => tenant.id === this.tenant)) {
      select.append(h("option", { value: this.tenant, selected: true }, this.tenant));
    }
    select.addEventListener("change", () => this.switchTenant(select.value || null));
    replaceChildren(this.scope, h("label", { for: id }, "Tenant"), select);
  }

  switchTenant(tenant, { reroute = true } = {}) {
    this.tenant = tenant;
    if (tenant) sessionStorage.setItem(TENANT_KEY, tenant);
    else sessionStorage.removeItem(TENANT_KEY);
    this.renderScope();
    if (reroute) this.route({ focus: false });
  }

  /** The owner's tenants, for the switcher and for forms that name a tenant. */
  async loadTenants({ rethrow = false } = {}) {
    const tenants = [];
    let after = null;
    try {
      for (let page = 0; page < TENANT_PAGES; page += 1) {
        const answer = await this.api.get(route`/tenants`, { query: { limit: 500, after } });
        tenants.push(...answer.tenants);
        after = nextCursor(answer.next_after, answer.tenants, 500);
        if (!after) break;
      }
    } catch (error) {
      if (rethrow) throw error;
      console.warn("tenants could not be listed", error);
      return this.tenants;
    }
    this.tenants = tenants;
    if (this.access?.role === "owner" && this.scope) this.renderScope();
    return tenants;
  }

  showAvailability(state) {
    if (!this.banner) return;
    this.banner.hidden = !state;
    this.banner.textContent = state === "unreachable"
      ? "The service cannot be reached: retrying…"
      : state ? "The service is temporarily unavailable: retrying…" : "";
  }

  /** A message in the notice area (what an action did). */
  notify(message, kind = "success") {
    if (!this.notice) return;
    this.notice.className = `notice notice-${kind}`;
    replaceChildren(this.notice, h("p", null, message));
    this.notice.hidden = false;
  }

  clearNotice() {
    if (!this.notice) return;
    this.notice.hidden = true;
    this.notice.replaceChildren();
  }

  // ---- Routing ----------------------------------------------------------------------------

  leavePage() {
    this.page?.controller.abort();
    this.page = null;
  }

  route({ focus }) {
    if (!this.access?.role || !this.main) return;
    const parsed = parseHash(location.hash);
    if (!parsed) {
      if (location.hash === "" || location.hash === "#") {
        const start = new URL(location.href); // this document's URL, not the <base>'s
        start.hash = "#/licenses";
        location.replace(start.href);
      }
      return; // an in-page anchor (e.g. the skip link): the page stays
    }
    this.leavePage();
    this.clearNotice();
    const main = h("main", { id: "main", class: "main", tabindex: -1 });
    this.main.replaceWith(main);
    this.main = main;
    const match = PAGES.map((page) => ({ page, found: parsed.path.match(page.pattern) })).find((m) => m.found);
    for (const [id, link] of this.navLinks) {
      if (match && match.page.nav === id) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    if (!match || (match.page.owner && this.access.role !== "owner")) {
      document.title = "Not found · Coditect licenses";
      replaceChildren(main, notFoundPanel());
      return;
    }
    const controller = new AbortController();
    this.page = { controller };
    let params;
    try {
      params = match.found.slice(1).map(decodeURIComponent);
    } catch {
      replaceChildren(main, notFoundPanel());
      return;
    }
    match.page.page({
      app: this,
      api: this.api,
      main,
      params,
      query: parsed.query,
      signal: controller.signal,
      role: this.access.role,
      tenant: this.tenant,
      isOwner: this.access.role === "owner",
      notify: (message, kind) => this.notify(message, kind),
      setTitle: (title) => { document.title = `${title} · Coditect licenses`; },
    });
    // After a navigation, put the keyboard (and a screen reader) at the new page's heading.
    if (focus) (main.querySelector("h1") || main).focus();
  }
}
