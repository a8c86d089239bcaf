// The admin console: a single-page app over the admin API (issue 17). See README.md.

import { ConsoleApp } from "./app.js";
import { startAuth } from "./auth.js";
import { loadConfig } from "./config.js";
import { h, replaceChildren } from "./dom.js";

async function boot() {
  const root = document.getElementById("app");
  try {
    const config = await loadConfig();
    new ConsoleApp(root, config, startAuth(config)).start();
  } catch (error) {
    replaceChildren(root, h("main", { id: "main", class: "main main-narrow", tabindex: -1 },
      h("section", { class: "panel panel-error", role: "alert", "data-testid": "error-panel" },
        h("h1", null, "The console could not start"),
        h("p", null, error?.message || String(error)))));
  }
}

boot();
