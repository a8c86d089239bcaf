// Live figures: run a refresh every few seconds while the tab is visible; stop with the page.

import { isAbort } from "../api.js";

/**
 * @param {() => Promise<void>} refresh
 * @param {number} intervalMs  the pause between the end of one refresh and the next
 * @param {AbortSignal} signal the page's: aborting stops the polling
 * @returns {{now: () => void}} refresh at once (e.g. after a force-release)
 */
export function poll(refresh, intervalMs, signal) {
  let timer = null;
  let running = false;
  let again = false;

  async function tick() {
    clearTimeout(timer);
    if (signal.aborted || document.hidden) return;
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      await refresh();
    } catch (error) {
      if (!isAbort(error)) console.warn("refresh failed", error);
    } finally {
      running = false;
      if (again) {
        again = false;
        tick();
      } else {
        schedule();
      }
    }
  }

  function schedule() {
    clearTimeout(timer);
    if (!signal.aborted && !document.hidden) timer = setTimeout(tick, intervalMs);
  }

  // Hidden: no requests at all. Shown again: refresh at once, then on the interval.
  function onVisibility() {
    if (document.hidden) clearTimeout(timer);
    else tick();
  }

  document.addEventListener("visibilitychange", onVisibility);
  signal.addEventListener("abort", () => {
    clearTimeout(timer);
    document.removeEventListener("visibilitychange", onVisibility);
  }, { once: true });
  schedule();
  return { now: tick };
}
