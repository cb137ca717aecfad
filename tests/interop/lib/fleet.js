// tests/interop/lib/fleet.js — several siohubd nodes of the Open WebUI app
// on one redis-server, for the test_fleet_*.js files:
//
//   const f = await startFleet(h, { nodes: 3, args: [...] });
//   const tab = await f.connect(f.nodes[0], "u1");   // connected, user-join acked
//   await f.api(f.nodes[2], "POST", "chat-events", {...});
//   const pools = await f.pools();                   // the three hashes, parsed
//
// Each node runs
//   WEBUI_SECRET_KEY=S siohubd --app openwebui --listen 127.0.0.1:PORT
//     --directory file:users.json --api-key KEY --websocket-manager redis
//     --redis-url redis://127.0.0.1:RPORT/0 [args]
// and is ready when /healthz answers 200. Tokens come from `siohubd token`.
"use strict";

const childProcess = require("node:child_process");
const fs = require("node:fs");
const http = require("node:http");
const path = require("node:path");
const { HOST, daemonPath, need, skip, sleep } = require("./harness");

const SECRET = "fleet-test-secret";
const API_KEY = "fleet-test-key";
const PREFIX = "open-webui";

// The directory every fleet test shares: u2 is an admin; c1 and c2 are
// channels (u9 is in none).
const USERS = [
  { id: "u1", name: "Ann Lee", email: "ann@example.org", role: "user" },
  { id: "u2", name: "Bob Ode", email: "bob@example.org", role: "admin" },
  { id: "u3", name: "Cy Ray", email: "cy@example.org", role: "user" },
  { id: "u4", name: "Di Fox", email: "di@example.org", role: "user" },
  { id: "u5", name: "Ed Tam", email: "ed@example.org", role: "user" },
  { id: "u6", name: "Flo Nu", email: "flo@example.org", role: "user" },
  { id: "u7", name: "Gus Li", email: "gus@example.org", role: "user" },
  { id: "u8", name: "Hal Oz", email: "hal@example.org", role: "user" },
  { id: "u9", name: "Ida Vo", email: "ida@example.org", role: "user" },
];
const CHANNELS = [
  { id: "c1", members: ["u1", "u2", "u3"] },
  { id: "c2", members: ["u4", "u5", "u6", "u7", "u8"] },
];

function user(id) {
  return USERS.find((u) => u.id === id);
}

// Polls the async predicate every 25 ms; throws "timeout after MS ms: WHAT"
// (what may be a function, called for the message) when it stays false.
async function waitUntil(pred, ms, what) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await pred()) return;
    if (Date.now() > deadline) throw new Error(`timeout after ${ms} ms: ${typeof what === "function" ? await what() : what}`);
    await sleep(25);
  }
}

function percentile(sorted, p) {
  if (!sorted.length) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

class Fleet {
  constructor(h, redis, opts) {
    this.h = h;
    this.redis = redis;
    this.opts = opts;
    this.nodes = [];
    this.tokens = new Map();
    this.sockets = new Set();
    this.io = need("socket.io-client").io;
    this.agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
    this.usersPath = h.logPath("users.json").replace(/\.stderr$/, "");
    fs.writeFileSync(this.usersPath, JSON.stringify({ users: USERS, channels: CHANNELS }, null, 1));
    h.defer(() => {
      for (const s of this.sockets) s.disconnect();
      this.agent.destroy();
    });
  }

  nodeArgs(extra) {
    return [
      "--directory", `file:${this.usersPath}`,
      "--api-key", API_KEY,
      "--websocket-manager", "redis",
      "--redis-url", this.redis.url(),
      "--presence-window", "100",
      ...(this.opts.args || []),
      ...(extra || []),
    ];
  }

  // Starts one more node (ready: /healthz 200).
  async addNode(extra) {
    const d = await this.h.server({
      app: "openwebui",
      args: this.nodeArgs(extra),
      env: { WEBUI_SECRET_KEY: SECRET },
      healthz: true,
      pingInterval: this.opts.pingInterval ?? 2000,
      pingTimeout: this.opts.pingTimeout ?? 10000,
    });
    this.nodes.push(d);
    return d;
  }

  // An HS256 token for uid from `siohubd token`.
  token(uid) {
    if (!this.tokens.has(uid)) {
      const r = childProcess.spawnSync(daemonPath(), ["token", "--user", uid], {
        env: { ...process.env, WEBUI_SECRET_KEY: SECRET },
        encoding: "utf8",
      });
      if (r.status !== 0) throw new Error(`siohubd token --user ${uid}: status ${r.status}: ${r.stderr}`);
      this.tokens.set(uid, r.stdout.trim());
    }
    return this.tokens.get(uid);
  }

  // A browser tab on node: socket.io-client over WebSocket with auth
  // {token} (no token when uid is null), then, as Open WebUI's layout does,
  // "user-join" whose ack says the tab is in its user and channel rooms.
  // Resolves the connected socket; sock.userJoin holds the ack.
  async connect(node, uid, { join = true, transports = ["websocket"], timeout = 10000 } = {}) {
    const sock = this.io(node.url, {
      path: "/ws/socket.io/",
      transports,
      auth: uid ? { token: this.token(uid) } : {},
      forceNew: true,
      reconnection: false,
      timeout,
    });
    this.sockets.add(sock);
    sock.node = node;
    sock.uid = uid;
    await new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${uid} on :${node.port}: no connect in ${timeout} ms`)), timeout);
      sock.once("connect", () => {
        clearTimeout(t);
        resolve();
      });
      sock.once("connect_error", (e) => {
        clearTimeout(t);
        reject(e);
      });
    });
    if (uid && join) sock.userJoin = await sock.timeout(timeout).emitWithAck("user-join", { auth: { token: this.token(uid) } });
    return sock;
  }

  // Records every `event` a socket receives: returns the array of first
  // arguments (arrival times, Date.now(), in .times).
  record(sock, event) {
    const got = [];
    // Not enumerable: deepEqual compares the events only.
    Object.defineProperty(got, "times", { value: [], enumerable: false });
    sock.on(event, (arg) => {
      got.push(arg);
      got.times.push(Date.now());
    });
    return got;
  }

  // One API request with the bearer key: { status, body } (body parsed
  // JSON when it is). p is under /api/v1/ unless it starts with "/".
  api(node, method, p, body, { timeout = 10000 } = {}) {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          host: HOST,
          port: node.port,
          method,
          path: p.startsWith("/") ? p : `/api/v1/${p}`,
          agent: this.agent,
          headers: {
            Authorization: `Bearer ${API_KEY}`,
            ...(data ? { "Content-Type": "application/json", "Content-Length": data.length } : {}),
          },
        },
        (res) => {
          const chunks = [];
          res.on("data", (c) => chunks.push(c));
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            let parsed = text;
            try {
              parsed = JSON.parse(text);
            } catch (_) {
              /* not JSON */
            }
            resolve({ status: res.statusCode, body: parsed });
          });
          res.on("error", reject);
        }
      );
      req.setTimeout(timeout, () => req.destroy(new Error(`API ${method} ${p}: no answer in ${timeout} ms`)));
      req.on("error", reject);
      req.end(data);
    });
  }

  async client() {
    if (!this.rc || this.rc.closed) this.rc = await this.redis.client();
    return this.rc;
  }

  // The three pools as Python would read them (HGETALL + json.loads).
  async pools() {
    const c = await this.client();
    return {
      session_pool: await c.hgetallJson(`${PREFIX}:session_pool`),
      user_pool: await c.hgetallJson(`${PREFIX}:user_pool`),
      usage_pool: await c.hgetallJson(`${PREFIX}:usage_pool`),
    };
  }

  // Waits until every listed socket is in session_pool under its user and
  // in that user's user_pool list.
  async waitInPools(socks, ms = 10000) {
    let last;
    await waitUntil(
      async () => {
        last = await this.pools();
        return socks.every((s) => last.session_pool[s.id]?.id === s.uid && (last.user_pool[s.uid] || []).includes(s.id));
      },
      ms,
      () => `sessions ${socks.map((s) => `${s.uid}/${s.id}`).join(", ")} not all in the pools: ${JSON.stringify(last)}`
    );
  }

  // GET /healthz: { status, body }.
  async healthz(node) {
    return this.api(node, "GET", "/healthz");
  }
}

// Starts a redis-server and `nodes` siohubd nodes on it. Skips (77) when
// REDIS_SERVER is unset, and against a reference server (these are
// siohub's own features).
async function startFleet(h, opts = {}) {
  if (process.env.SIOHUB_REFERENCE_SERVER) skip("fleet mode is siohub's own (Redis, the Open WebUI app)");
  need("socket.io-client");
  const redis = await h.redis();
  const f = new Fleet(h, redis, opts);
  const n = opts.nodes ?? 3;
  const perNode = opts.nodeArgs || [];
  // One at a time: the logs then number daemon0, daemon1, ... as the nodes.
  for (let i = 0; i < n; i++) await f.addNode(perNode[i]);
  return f;
}

module.exports = { API_KEY, CHANNELS, PREFIX, SECRET, USERS, percentile, startFleet, user, waitUntil };
