// The admin API, called with the signed-in user's Firebase ID token.
//
// Every error answer is {"error": {"code", "message", "field"?, "fields"?, "denied_fields"?}}.
// What the console does with each status:
//   400, 409    the message, next to the field it names (forms.js)
//   401         the token is refreshed once and the call repeated; still 401: sign in again
//   403, 404    "Not found" (a wrong tenant looks exactly like a missing object), except a
//               403 naming denied_fields, which is a form error (entitlements are the owner's)
//   429, 503    a banner "temporarily unavailable, retrying" and the call repeated after
//               Retry-After (or a growing backoff); reads retry until they succeed or the page
//               is left, writes a few times (the service changes nothing on a 503)
//   no answer   (network, CORS) treated like 503

export class ApiError extends Error {
  constructor(status, envelope, retryAfterS = null) {
    const error = (envelope && envelope.error) || {};
    super(error.message || (status ? `HTTP ${status}` : "The service cannot be reached."));
    this.name = "ApiError";
    this.status = status;
    this.code = error.code || (status ? `HTTP_${status}` : "NETWORK");
    this.field = typeof error.field === "string" ? error.field : null;
    this.fields = Array.isArray(error.fields) ? error.fields : [];
    this.deniedFields = Array.isArray(error.denied_fields) ? error.denied_fields : [];
    this.details = error;
    this.retryAfterS = retryAfterS;
  }

  /** 403 and 404 look the same to the user: not found. */
  get notFound() {
    return this.status === 404 || (this.status === 403 && this.deniedFields.length === 0);
  }
}

export function isAbort(error) {
  return error && (error.name === "AbortError" || (error.cause && error.cause.name === "AbortError"));
}

const READ_METHODS = new Set(["GET", "HEAD"]);
const WRITE_ATTEMPTS = 4;
const MAX_BACKOFF_MS = 30_000;
const MAX_RETRY_AFTER_MS = 60_000;

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal && signal.aborted) return reject(new DOMException("aborted", "AbortError"));
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(new DOMException("aborted", "AbortError"));
    }, { once: true });
  });
}

function retryAfterSeconds(response) {
  const value = response.headers.get("Retry-After");
  return value && /^\d+$/.test(value) ? Number(value) : null;
}

/**
 * @param {object} options
 * @param {string} options.base          the admin function's URL (no trailing slash)
 * @param {(refresh: boolean) => Promise<string|null>} options.token   the ID token
 * @param {() => void} options.onUnauthenticated   a 401 the refreshed token did not cure
 * @param {(state: null|"unavailable"|"unreachable") => void} options.onAvailability
 */
export function createApi({ base, token, onUnauthenticated, onAvailability }) {
  let retrying = 0; // calls now waiting to retry: the banner shows while any does

  function setRetrying(delta, kind) {
    retrying = Math.max(0, retrying + delta);
    onAvailability(retrying > 0 ? kind : null);
  }

  function url(path, query) {
    const target = new URL(`${base}${path}`);
    for (const [key, value] of Object.entries(query || {})) {
      if (value !== null && value !== undefined && value !== "") target.searchParams.set(key, String(value));
    }
    return target.toString();
  }

  /**
   * One call. Resolves to the parsed JSON body (or the Response, with `raw`).
   * @param {string} method
   * @param {string} path          "/licenses", "/licenses/lic_…/sessions" (ids encoded by the caller)
   * @param {object} [options]     {query, body, signal, accept, raw}
   */
  async function request(method, path, { query, body, signal, accept = "application/json", raw = false } = {}) {
    const target = url(path, query);
    const isRead = READ_METHODS.has(method);
    let attempt = 0;
    let refreshed = false;
    let waitingKind = null;
    try {
      for (;;) {
        attempt += 1;
        const headers = { Accept: accept };
        const idToken = await token(refreshed);
        if (idToken) headers.Authorization = `Bearer ${idToken}`;
        if (body !== undefined) headers["Content-Type"] = "application/json";
        let response;
        try {
          response = await fetch(target, {
            method,
            headers,
            body: body === undefined ? undefined : JSON.stringify(body),
            signal,
            mode: "cors",
            credentials: "omit",
            cache: "no-store",
            referrerPolicy: "no-referrer",
          });
        } catch (error) {
          if (isAbort(error) || signal?.aborted) throw error;
          if (!isRead && attempt >= WRITE_ATTEMPTS) throw new ApiError(0, null);
          waitingKind = await waitToRetry(waitingKind, "unreachable", attempt, null, signal);
          continue;
        }
        if (response.status === 503 || response.status === 429) {
          const retryAfter = retryAfterSeconds(response);
          if (!isRead && attempt >= WRITE_ATTEMPTS) throw await errorOf(response, retryAfter);
          waitingKind = await waitToRetry(waitingKind, "unavailable", attempt, retryAfter, signal);
          continue;
        }
        if (waitingKind) {
          setRetrying(-1, null);
          waitingKind = null;
        }
        if (response.status === 401) {
          if (!refreshed) {
            refreshed = true; // claims may have changed: a fresh token carries the new ones
            attempt -= 1;
            continue;
          }
          onUnauthenticated();
          throw await errorOf(response, null);
        }
        if (!response.ok) throw await errorOf(response, null);
        if (raw) return response;
        if (response.status === 204) return null;
        return await response.json();
      }
    } finally {
      if (waitingKind) setRetrying(-1, null);
    }
  }

  async function waitToRetry(waitingKind, kind, attempt, retryAfterS, signal) {
    if (!waitingKind) setRetrying(+1, kind);
    else if (waitingKind !== kind) onAvailability(kind);
    // The server's Retry-After when it gives one (it knows when it expects to be back);
    // otherwise 1, 2, 4 ... 30 s. A little jitter keeps many tabs from retrying in step.
    const delay = (retryAfterS !== null && retryAfterS !== undefined
      ? Math.min(MAX_RETRY_AFTER_MS, retryAfterS * 1000)
      : Math.min(MAX_BACKOFF_MS, 1000 * 2 ** Math.min(attempt - 1, 5))) + Math.floor(Math.random() * 250);
    await sleep(delay, signal);
    return kind;
  }

  async function errorOf(response, retryAfterS) {
    const envelope = await response.json().catch(() => null);
    return new ApiError(response.status, envelope, retryAfterS);
  }

  return {
    get: (path, options) => request("GET", path, options),
    post: (path, body, options) => request("POST", path, { ...options, body: body ?? {} }),
    patch: (path, body, options) => request("PATCH", path, { ...options, body }),
    del: (path, options) => request("DELETE", path, options),
    request,
  };
}

/** A path with its interpolated ids encoded: route`/licenses/${id}/sessions`. */
export function route(strings, ...ids) {
  return strings.reduce((out, text, i) => out + text + (i < ids.length ? encodeURIComponent(ids[i]) : ""), "");
}

/**
 * The cursor of the next page, or null when this one is the last: a page shorter than asked
 * is the last, whatever `next_after` says (the list routes name the last id of every page).
 */
export function nextCursor(cursor, items, limit) {
  return items.length < limit ? null : cursor || null;
}
