// The console's run-time settings: config.json, served by the console function beside
// index.html (relative: the console lives under a base path). Nothing secret is in it: the
// Firebase web API key is public by design, and every API call carries the user's ID token.
//
//   {"firebase": {"apiKey", "authDomain", "projectId"},
//    "authEmulator": "http://127.0.0.1:9099" | null,
//    "api": "http://127.0.0.1:8080/{name}"}        (absolute, or relative to the console's URL)

export class ConfigError extends Error {}

export async function loadConfig() {
  let response;
  try {
    response = await fetch("config.json", { cache: "no-store", credentials: "same-origin" });
  } catch {
    throw new ConfigError("config.json could not be fetched");
  }
  if (!response.ok) throw new ConfigError(`config.json answered HTTP ${response.status}`);
  const config = await response.json().catch(() => null);
  if (!config || typeof config.api !== "string" || !config.api.includes("{name}")) {
    throw new ConfigError("config.json has no api template with {name}");
  }
  if (!config.firebase || typeof config.firebase.apiKey !== "string") {
    throw new ConfigError("config.json has no firebase.apiKey");
  }
  return config;
}

/**
 * The base URL of one function: functionUrl(config, "admin") + "/licenses". The template may
 * be absolute or relative to the console's own URL (document.baseURI: the page's <base>).
 */
export function functionUrl(config, name) {
  return new URL(config.api.replaceAll("{name}", name), document.baseURI).href.replace(/\/+$/, "");
}
