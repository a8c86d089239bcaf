// Load generator of scripts/bench: one phase per run.
//   node loadgen.js PLAN.json RESULT.json   (stdout carries only progress events)
//
// Node + undici because the machine has 2 cores and the generator shares them with the
// server: one event loop over keep-alive sockets costs far less CPU than Python threads.
//
// Two modes:
//   closed  N connections, each sends its next request as soon as the previous answer is
//           read (saturation). Ops are drawn by weight; acquire makes sessions that
//           heartbeat/release draw from (per-connection slices / one shared pool).
//   users   simulated users with think time: a login ramp (every user acquires once,
//           start times spread over ramp_s), then `duration_s` of ops drawn by weight,
//           each user waiting U(think_s) after every answer. A user without a session
//           acquires instead of heartbeat/release; a user with one re-acquires on the
//           same hardware (the API's 200 "same session" path) when acquire is drawn.
//
// Every loop ends by itself: nothing starts after the deadline, and every request has a
// timeout. Only the plan's base_url (the bench passes 127.0.0.1 ones) is contacted.
"use strict";

const { Client, Pool } = require("undici");
const fs = require("node:fs");
const { performance } = require("node:perf_hooks");

// Progress events for the bench (one JSON line each on stdout): it snapshots the
// server's log and CPU at "window" (the measured window starts) and probes /proc at "midpoint".
function emit(event) {
  process.stdout.write(JSON.stringify({ event }) + "\n");
}

let cpuAtWindow = { user: 0, system: 0 };

function windowStarts(durationS) {
  cpuAtWindow = process.cpuUsage();
  emit("window");
  setTimeout(() => emit("midpoint"), (durationS * 1000) / 2).unref();
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

function percentile(sorted, q) {
  if (sorted.length === 0) return null;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1];
}

// Per-operation tallies: latencies (ms), statuses, and errors split expected/unexpected.
class OpStats {
  constructor(phase) {
    this.phase = phase;
    this.latencies = [];
    this.doneAt = []; // completion time, ms since the phase (window) started
    this.statuses = {};
    this.ok = 0;
    this.expected = {};
    this.unexpected = {};
    this.variants = {}; // answer kind -> latencies, e.g. acquire "201 new session" vs "200 same session"
  }
  record(latencyMs, status) {
    this.latencies.push(latencyMs);
    this.doneAt.push(performance.now() - this.phase.started);
    const key = String(status);
    this.statuses[key] = (this.statuses[key] || 0) + 1;
  }
  variant(label, latencyMs) {
    (this.variants[label] = this.variants[label] || []).push(latencyMs);
  }
  bump(bucket, label) {
    this[bucket][label] = (this[bucket][label] || 0) + 1;
  }
  // p50/p99 per window of `windowS` seconds: shows a latency that drifts during the phase.
  // Answers landing just after the deadline count in the last window.
  windows(windowS, durationS) {
    const buckets = [];
    const last = Math.max(0, Math.ceil(durationS / windowS) - 1);
    this.latencies.forEach((v, i) => {
      const b = Math.min(last, Math.max(0, Math.floor(this.doneAt[i] / 1000 / windowS)));
      (buckets[b] = buckets[b] || []).push(v);
    });
    return Array.from(buckets, (values) => {
      if (!values) return null;
      const sorted = Float64Array.from(values).sort();
      return { count: sorted.length, p50: Math.round(percentile(sorted, 0.5) * 1000) / 1000, p99: Math.round(percentile(sorted, 0.99) * 1000) / 1000 };
    });
  }
  summary(elapsedS) {
    const sorted = Float64Array.from(this.latencies).sort();
    const n = sorted.length;
    let sum = 0;
    for (const v of sorted) sum += v;
    const r = (x) => (x === null ? null : Math.round(x * 1000) / 1000);
    return {
      count: n,
      ok: this.ok,
      rps: elapsedS > 0 ? n / elapsedS : 0,
      latency_ms: {
        mean: n ? r(sum / n) : null,
        p50: r(percentile(sorted, 0.5)),
        p95: r(percentile(sorted, 0.95)),
        p99: r(percentile(sorted, 0.99)),
        max: n ? r(sorted[n - 1]) : null,
      },
      statuses: this.statuses,
      expected_errors: this.expected,
      unexpected_errors: this.unexpected,
      expected_error_count: Object.values(this.expected).reduce((a, b) => a + b, 0),
      unexpected_error_count: Object.values(this.unexpected).reduce((a, b) => a + b, 0),
      variants: Object.fromEntries(Object.entries(this.variants).map(([label, values]) => {
        const v = Float64Array.from(values).sort();
        const r = (x) => Math.round(x * 1000) / 1000;
        return [label, { count: v.length, p50: r(percentile(v, 0.5)), p99: r(percentile(v, 0.99)) }];
      })),
      windows_10s: this.windows(10, this.phase.plan.duration_s || elapsedS),
    };
  }
}

class Phase {
  constructor(plan) {
    this.plan = plan;
    this.stats = {};
    this.timeline = []; // completions per whole second since start
    this.started = 0;
    this.notes = [];
    // Seat accounting per license, so a 409 counts as expected only when our own
    // sessions (plus acquires still in flight) really could fill the license.
    this.maxSeats = plan.license_max_seats || [];
    this.held = (plan.license_held || this.maxSeats.map(() => 0)).slice();
    this.acquiring = this.maxSeats.map(() => 0);
  }
  op(name) {
    return this.stats[name] || (this.stats[name] = new OpStats(this));
  }
  tick(now) {
    const second = Math.floor((now - this.started) / 1000);
    if (second >= 0) this.timeline[second] = (this.timeline[second] || 0) + 1;
  }
}

function authHeaders(token) {
  return { "content-type": "application/json", authorization: `Bearer ${token}` };
}

// One request: returns {status, body (parsed when wanted), error}.
async function send(dispatcher, path, headers, payload, wantBody, timeoutMs) {
  try {
    const res = await dispatcher.request({
      method: payload === null ? "GET" : "POST",
      path,
      headers,
      body: payload === null ? undefined : payload,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    if (wantBody || res.statusCode >= 300) {
      const text = await res.body.text();
      let body = null;
      try {
        body = JSON.parse(text);
      } catch (_) {
        body = null;
      }
      return { status: res.statusCode, body };
    }
    await res.body.dump();
    return { status: res.statusCode, body: null };
  } catch (err) {
    return { status: 0, body: null, error: `ERR ${err.code || err.name || "error"}` };
  }
}

function errorLabel(result) {
  if (result.error) return result.error;
  const code = result.body && result.body.error && result.body.error.code;
  return `${result.status} ${code || "(no code)"}`;
}

// ---- the four seat operations (plus plain ones for reference servers) -------------

// One timed request, recorded under `statsName`; returns the result for the caller to judge.
async function timed(phase, statsName, dispatcher, path, headers, payload, wantBody) {
  const t0 = performance.now();
  const result = await send(dispatcher, path, headers, payload, wantBody, phase.plan.timeout_ms);
  const t1 = performance.now();
  const stats = phase.op(statsName);
  stats.record(t1 - t0, result.status);
  phase.tick(t1);
  result.latencyMs = t1 - t0;
  return { result, stats };
}

function judge200(result, stats) {
  if (result.status === 200) stats.ok += 1;
  else stats.bump("unexpected", errorLabel(result));
  return result.status === 200;
}

async function doAcquire(phase, statsName, dispatcher, ident, licenseIndex, hardwareId) {
  const plan = phase.plan;
  const payload = JSON.stringify({ license_key: plan.license_keys[licenseIndex], hardware_id: hardwareId });
  phase.acquiring[licenseIndex] = (phase.acquiring[licenseIndex] || 0) + 1;
  let outcome;
  try {
    outcome = await timed(phase, statsName, dispatcher, plan.paths.acquire, ident.headers, payload, true);
  } finally {
    phase.acquiring[licenseIndex] -= 1;
  }
  const { result, stats } = outcome;
  if ((result.status === 201 || result.status === 200) && result.body && result.body.session_id) {
    stats.ok += 1;
    stats.variant(result.status === 201 ? "201 new session" : "200 same session", result.latencyMs);
    return { session_id: result.body.session_id, token: ident.token, license: licenseIndex, created: result.status === 201 };
  }
  if (result.status === 409) {
    // Expected only if our own live sessions plus acquires still in flight could fill it.
    const max = phase.maxSeats[licenseIndex];
    const full = max !== undefined && phase.held[licenseIndex] + phase.acquiring[licenseIndex] >= max;
    stats.bump(full ? "expected" : "unexpected", `409 NO_SEAT_AVAILABLE (${full ? "license full" : "seats were free"})`);
    return null;
  }
  stats.bump("unexpected", errorLabel(result));
  return null;
}

async function doHeartbeat(phase, statsName, dispatcher, session) {
  const payload = JSON.stringify({ session_id: session.session_id });
  const { result, stats } = await timed(phase, statsName, dispatcher, phase.plan.paths.heartbeat, session.headers, payload, false);
  return judge200(result, stats);
}

// True when the session is gone (released now, or the server says it already was).
async function doRelease(phase, statsName, dispatcher, session) {
  const payload = JSON.stringify({ session_id: session.session_id });
  const { result, stats } = await timed(phase, statsName, dispatcher, phase.plan.paths.release, session.headers, payload, true);
  if (result.status === 200 && result.body && result.body.status === "released") {
    stats.ok += 1;
    return true;
  }
  // "already_released" for a session we hold and never released is a server anomaly.
  const label = result.status === 200 ? `200 ${result.body && result.body.status} (session was live)` : errorLabel(result);
  stats.bump("unexpected", label);
  return result.status === 200;
}

async function doValidate(phase, statsName, dispatcher, ident, licenseIndex) {
  const payload = JSON.stringify({ license_key: phase.plan.license_keys[licenseIndex] });
  const { result, stats } = await timed(phase, statsName, dispatcher, phase.plan.paths.validate, ident.headers, payload, false);
  judge200(result, stats);
}

// A reference request: GET, or POST with a small JSON body (like a heartbeat's).
async function doPlain(phase, name, dispatcher, ident) {
  const spec = phase.plan.paths[name];
  const payload = spec.method === "GET" ? null : '{"session_id":"x"}';
  const { result, stats } = await timed(phase, name, dispatcher, spec.path, ident.headers, payload, false);
  judge200(result, stats);
}

// ---- helpers ----------------------------------------------------------------

function weightedPicker(weights) {
  const names = Object.keys(weights).filter((k) => weights[k] > 0);
  const total = names.reduce((a, k) => a + weights[k], 0);
  if (!names.length || total <= 0) throw new Error("no operation has a positive weight");
  return () => {
    let x = Math.random() * total;
    for (const k of names) {
      x -= weights[k];
      if (x < 0) return k;
    }
    return names[names.length - 1];
  };
}

function withHeaders(session) {
  return { ...session, headers: authHeaders(session.token) };
}

function stripSession(s) {
  return { session_id: s.session_id, token: s.token, license: s.license };
}

function clientOptions(plan) {
  return {
    pipelining: 1,
    keepAliveTimeout: 30_000,
    keepAliveMaxTimeout: 60_000,
    headersTimeout: plan.timeout_ms,
    bodyTimeout: plan.timeout_ms,
    connect: { timeout: 10_000 },
  };
}

// ---- closed loop ------------------------------------------------------------

async function runClosed(plan) {
  const phase = new Phase(plan);
  const conns = plan.connections;
  const pick = weightedPicker(plan.ops);
  const identities = plan.identities.map((i) => ({ ...i, headers: authHeaders(i.token) }));
  const pool = (plan.sessions || []).map(withHeaders);
  // heartbeat: each connection cycles through its own slice of the live sessions.
  const slices = Array.from({ length: conns }, () => []);
  pool.forEach((s, i) => slices[i % conns].push(s));
  const releasePool = pool.slice();
  const released = new Set();
  const acquired = [];
  let poolExhaustedAt = null;

  const clients = Array.from({ length: conns }, () => new Client(plan.base_url, clientOptions(plan)));
  phase.started = performance.now();
  const deadline = phase.started + plan.duration_s * 1000;
  windowStarts(plan.duration_s);

  const allLicenses = plan.license_keys.map((_, i) => i);
  const acquireOn = plan.acquire_licenses || allLicenses;
  const validateOn = plan.validate_licenses || allLicenses;
  let substituted = 0;

  async function acquireOnce(client, ident, c, seq) {
    const li = acquireOn[(c + seq) % acquireOn.length];
    const got = await doAcquire(phase, "acquire", client, ident, li, `${plan.hw_prefix}-${c}-${seq}`);
    if (got && got.created) {
      phase.held[li] += 1;
      const s = withHeaders(got);
      acquired.push(s);
      releasePool.push(s);
      slices[c].push(s);
    }
  }

  async function loop(c) {
    const client = clients[c];
    const ident = identities[c % identities.length];
    let seq = 0;
    let cursor = 0;
    while (performance.now() < deadline) {
      const name = pick();
      seq += 1;
      if (name === "acquire") {
        await acquireOnce(client, ident, c, seq);
      } else if (name === "heartbeat") {
        const mine = slices[c];
        if (!mine.length) {
          if (!plan.ops.acquire) {
            phase.notes.push(`connection ${c} had no session to heartbeat`);
            return;
          }
          substituted += 1; // warm-up: acquire first, heartbeat later
          await acquireOnce(client, ident, c, seq);
          continue;
        }
        await doHeartbeat(phase, "heartbeat", client, mine[cursor++ % mine.length]);
      } else if (name === "release") {
        // Mixed with heartbeats, a connection releases only its own sessions, so no
        // heartbeat of another connection can be in flight for it; alone, from one pool.
        const s = plan.ops.heartbeat ? slices[c].pop() : releasePool.pop();
        if (!s && plan.ops.heartbeat && plan.ops.acquire) {
          await acquireOnce(client, ident, c, seq); // warm-up: nothing of ours to release yet
          continue;
        }
        if (!s) {
          if (poolExhaustedAt === null) poolExhaustedAt = (performance.now() - phase.started) / 1000;
          return;
        }
        if (await doRelease(phase, "release", client, s)) {
          released.add(s.session_id);
          phase.held[s.license] -= 1;
        }
      } else if (name === "validate") {
        await doValidate(phase, "validate", client, ident, validateOn[(c + seq) % validateOn.length]);
      } else {
        await doPlain(phase, name, client, ident);
      }
    }
  }

  await Promise.all(clients.map((_, c) => loop(c)));
  const elapsedS = (performance.now() - phase.started) / 1000;
  await Promise.all(clients.map((cl) => cl.close().catch(() => {})));
  if (poolExhaustedAt !== null) phase.notes.push(`session pool exhausted after ${poolExhaustedAt.toFixed(1)} s`);
  const live = pool.concat(acquired).filter((s) => !released.has(s.session_id));
  const seen = new Set();
  return finish(phase, elapsedS, {
    sessions_out: live.filter((s) => !seen.has(s.session_id) && seen.add(s.session_id)).map(stripSession),
    substituted_by_acquire: { heartbeat: substituted },
    connections: conns,
  });
}

// ---- simulated users ------------------------------------------------------------

async function runUsers(plan) {
  const phase = new Phase(plan);
  const [thinkMin, thinkMax] = plan.think_s;
  const think = () => (thinkMin + Math.random() * (thinkMax - thinkMin)) * 1000;
  const pick = weightedPicker(plan.weights);
  const shared = plan.user_connections > 0 ? new Pool(plan.base_url, { ...clientOptions(plan), connections: plan.user_connections }) : null;
  const users = plan.users.map((u) => ({
    ...u,
    headers: authHeaders(u.token),
    client: shared || new Client(plan.base_url, clientOptions(plan)),
    session: null,
  }));
  const substituted = { heartbeat: 0, release: 0 };

  // Login ramp: every user's first acquire, start times spread uniformly over ramp_s.
  phase.started = performance.now();
  await Promise.all(users.map(async (u) => {
    await sleep(Math.random() * plan.ramp_s * 1000);
    const got = await doAcquire(phase, "ramp acquire", u.client, u, u.license, u.hardware_id);
    if (got) {
      if (got.created) phase.held[u.license] += 1;
      u.session = withHeaders(got);
    }
  }));
  const rampS = (performance.now() - phase.started) / 1000;
  const rampStats = phase.stats["ramp acquire"];
  delete phase.stats["ramp acquire"];
  const rampTimeline = phase.timeline;
  phase.timeline = [];

  // The measured window.
  phase.started = performance.now();
  const deadline = phase.started + plan.duration_s * 1000;
  windowStarts(plan.duration_s);
  await Promise.all(users.map(async (u) => {
    for (;;) {
      // A user whose next request would start after the deadline is done now, so the
      // window (and req/s) is not stretched by users asleep past it.
      const wake = performance.now() + think();
      if (wake >= deadline) return;
      await sleep(wake - performance.now());
      let name = pick();
      if ((name === "heartbeat" || name === "release") && !u.session) {
        substituted[name] += 1;
        name = "acquire";
      }
      if (name === "acquire") {
        const got = await doAcquire(phase, "acquire", u.client, u, u.license, u.hardware_id);
        if (got) {
          if (got.created) phase.held[u.license] += 1;
          u.session = withHeaders(got);
        }
      } else if (name === "heartbeat") {
        await doHeartbeat(phase, "heartbeat", u.client, u.session);
      } else if (name === "release") {
        const s = u.session;
        if (await doRelease(phase, "release", u.client, s)) {
          phase.held[u.license] -= 1;
          u.session = null;
        }
      } else if (name === "validate") {
        await doValidate(phase, "validate", u.client, u, u.license);
      }
    }
  }));
  const elapsedS = (performance.now() - phase.started) / 1000;
  await Promise.all((shared ? [shared] : users.map((u) => u.client)).map((cl) => cl.close().catch(() => {})));
  return finish(phase, elapsedS, {
    ramp: {
      elapsed_s: rampS,
      acquire: rampStats ? rampStats.summary(rampS) : null,
      timeline: Array.from(rampTimeline, (v) => v || 0),
    },
    substituted_by_acquire: substituted,
    sessions_out: users.filter((u) => u.session).map((u) => stripSession(u.session)),
    connections: shared ? plan.user_connections : users.length,
  });
}

function finish(phase, elapsedS, extra) {
  const ops = {};
  for (const [name, s] of Object.entries(phase.stats)) ops[name] = s.summary(elapsedS);
  const cpu = process.cpuUsage(cpuAtWindow); // the measured window only, like the server's figures
  return {
    elapsed_s: elapsedS,
    ops,
    timeline: Array.from(phase.timeline, (v) => v || 0), // Array.from: no holes for seconds without answers
    notes: [...new Set(phase.notes)],
    generator_cpu_s: (cpu.user + cpu.system) / 1e6,
    ...extra,
  };
}

async function main() {
  const [planPath, resultPath] = process.argv.slice(2);
  if (!planPath || !resultPath) throw new Error("usage: node loadgen.js PLAN.json RESULT.json");
  const plan = JSON.parse(fs.readFileSync(planPath, "utf8"));
  plan.timeout_ms = (plan.timeout_s || 30) * 1000;
  const result = plan.mode === "users" ? await runUsers(plan) : await runClosed(plan);
  fs.writeFileSync(resultPath, JSON.stringify(result) + "\n");
}

main().catch((err) => {
  process.stderr.write(`loadgen: ${err.stack || err}\n`);
  process.exit(1);
});
