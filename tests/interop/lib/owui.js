// tests/interop/lib/owui.js — what the Open WebUI app tests share: HS256
// tokens built by hand (good and hostile ones), the directory file, the
// daemon started with --app openwebui, a client for its HTTP API, and
// browser tabs: socket.io-client with Open WebUI's own options.
"use strict";

const crypto = require("node:crypto");
const fs = require("node:fs");
const http = require("node:http");
const os = require("node:os");
const path = require("node:path");

const { HOST, need, once, sleep, withTimeout } = require("./harness");

const SECRET = "siohub-interop-secret";
const API_KEY = "interop-api-key-0123456789";

// ---------------------------------------------------------------- tokens

function b64url(x) {
  return Buffer.from(typeof x === "string" ? x : JSON.stringify(x)).toString("base64url");
}

function nowS() {
  return Math.floor(Date.now() / 1000);
}

// A JWT over claims: HS256 with `secret` unless the header names another
// algorithm (HS512 is signed as such; "none" gets an empty signature).
function jwt(claims, { secret = SECRET, header = { alg: "HS256", typ: "JWT" } } = {}) {
  const signing = `${b64url(header)}.${b64url(claims)}`;
  if (header.alg === "none") return `${signing}.`;
  const hash = header.alg === "HS512" ? "sha512" : "sha256";
  return `${signing}.${crypto.createHmac(hash, secret).update(signing).digest("base64url")}`;
}

// What Open WebUI's create_token makes: {id, exp, jti} (plus iat), HS256.
function token(id, extra = {}) {
  const now = nowS();
  return jwt({ id, iat: now, exp: now + 3600, jti: crypto.randomUUID(), ...extra });
}

// Tokens that must authenticate nobody, all naming `id` (a user the
// directory knows) unless the case is about the user itself. Values are
// what goes into auth.token (one is not even a string).
function hostileTokens(id, pendingId) {
  const now = nowS();
  const good = token(id);
  const parts = good.split(".");
  return {
    "alg none": jwt({ id, iat: now, exp: now + 3600 }, { header: { alg: "none", typ: "JWT" } }),
    "alg none with the real signature": `${b64url({ alg: "none", typ: "JWT" })}.${parts[1]}.${parts[2]}`,
    "wrong secret": jwt({ id, iat: now, exp: now + 3600 }, { secret: "not-the-secret" }),
    "expired an hour ago": jwt({ id, iat: now - 7200, exp: now - 3600 }),
    "HS512 (algorithm not configured)": jwt({ id, exp: now + 3600 }, { header: { alg: "HS512", typ: "JWT" } }),
    "signature of another payload": `${parts[0]}.${b64url({ id: "u-other", exp: now + 3600 })}.${parts[2]}`,
    "truncated signature": good.slice(0, -4),
    "sk- API key": `sk-${crypto.randomBytes(16).toString("hex")}`,
    "garbage": "garbage",
    "empty string": "",
    "a number, not a string": 12345,
    "no id claim": jwt({ sub: id, exp: now + 3600 }),
    "pending role in the directory": token(pendingId),
    "user not in the directory": token("u-not-in-directory"),
  };
}

// ---------------------------------------------------------------- directory

// A directory file's text (see src/auth/directory.h).
function directoryJson(users, channels = []) {
  return JSON.stringify({ users, channels }, null, 1);
}

// A private temporary directory, removed when the test ends.
function tmpDir(h) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "siohub-owui-"));
  h.defer(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

// Starts `siohubd --app openwebui` with the secret in WEBUI_SECRET_KEY, a
// directory file written from `users` / `channels` (or the `directory`
// given, "claims" say), and the API key. The daemon gets .directoryFile
// and .api(method, path, body, opts).
async function owuiServer(h, { users, channels = [], directory, args = [], env = {}, pingInterval = 2000, pingTimeout = 5000 } = {}) {
  const dir = tmpDir(h);
  const file = path.join(dir, "users.json");
  fs.writeFileSync(file, directoryJson(users || [], channels));
  const d = await h.server({
    app: "openwebui",
    env: { WEBUI_SECRET_KEY: SECRET, ...env },
    pingInterval,
    pingTimeout,
    args: ["--directory", directory || `file:${file}`, "--api-key", API_KEY, ...args],
  });
  d.directoryFile = file;
  d.tmpDir = dir;
  d.api = (method, p, body, opts = {}) => api(d.port, method, p, body, opts);
  return d;
}

// ---------------------------------------------------------------- the HTTP API

// One API request. body: an object (sent as JSON), a string or Buffer
// (sent as is) or undefined. opts: key (null sends no Authorization),
// headers, agent (a keep-alive agent for bursts). Resolves {status,
// headers, text, json} (json null when the answer is not JSON).
function api(port, method, p, body, { key = API_KEY, headers = {}, agent = false, timeout = 10000 } = {}) {
  const hdrs = { ...headers };
  if (key !== null) hdrs.Authorization = `Bearer ${key}`;
  let payload;
  if (body !== undefined) {
    payload = typeof body === "string" || Buffer.isBuffer(body) ? body : JSON.stringify(body);
    hdrs["Content-Type"] = "application/json";
    hdrs["Content-Length"] = Buffer.byteLength(payload);
  }
  return new Promise((resolve, reject) => {
    const req = http.request({ host: HOST, port, method, path: p, headers: hdrs, agent }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let json = null;
        try {
          json = JSON.parse(text);
        } catch (_) {
          /* not JSON */
        }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
      res.on("error", reject);
    });
    req.setTimeout(timeout, () => req.destroy(new Error(`${method} ${p}: no answer in ${timeout} ms`)));
    req.on("error", reject);
    req.end(payload);
  });
}

// A keep-alive agent with one connection: requests go out one after the
// other, in the order they were made (the daemon sees them in order).
function serialAgent(h) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  h.defer(() => agent.destroy());
  return agent;
}

// ---------------------------------------------------------------- browser tabs

// The client's transports per test mode: Open WebUI's client asks for
// WebSocket only when ENABLE_WEBSOCKET_SUPPORT, else for polling and the
// upgrade; "upgrade" runs the latter against siohub's default (polling
// with the upgrade offered), "polling" against a daemon started with
// ENABLE_WEBSOCKET_SUPPORT=false (polling only, as Open WebUI's own).
const TRANSPORTS = {
  websocket: ["websocket"],
  upgrade: ["polling", "websocket"],
  polling: ["polling", "websocket"],
};

// Polls pred() every 10 ms until it returns a truthy value (returned);
// throws after ms with what (a string, or a function for details).
async function waitFor(pred, ms, what) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await pred();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timeout after ${ms} ms: ${typeof what === "function" ? what() : what}`);
    await sleep(10);
  }
}

// A browser tab: the options of Open WebUI's src/routes/+layout.svelte
// (path, transports, auth {token}, reconnection 1000..5000 ms, 0.5
// randomization), one Engine.IO session per tab (forceNew). Every event
// it receives is recorded in .events ({ev, args, at}); .of(ev) lists the
// argument arrays of one event; .disconnects the reasons seen; .opened the
// transport each Engine.IO session opened with, .upgrades the upgrades.
class Tab {
  constructor(server, { token: tok, auth, mode = "websocket", name = "tab", options = {} } = {}) {
    const { io } = need("socket.io-client");
    this.name = name;
    this.events = [];
    this.disconnects = [];
    this.connectErrors = [];
    this.connects = 0;
    this.opened = [];
    this.upgrades = [];
    const a = auth !== undefined ? auth : tok !== undefined ? { token: tok } : {};
    this.token = tok;
    this.sock = io(server.url, {
      path: "/ws/socket.io",
      transports: TRANSPORTS[mode],
      auth: a,
      reconnection: true,
      reconnectionDelay: 1000,
      reconnectionDelayMax: 5000,
      randomizationFactor: 0.5,
      forceNew: true,
      timeout: 10000,
      ...options,
    });
    this.sock.io.on("open", () => {
      const engine = this.sock.io.engine;
      this.opened.push(engine.transport.name);
      engine.on("upgrade", (t) => this.upgrades.push(t.name));
    });
    this.sock.onAny((ev, ...args) => this.events.push({ ev, args, at: Date.now() }));
    this.sock.on("connect", () => this.connects++);
    this.sock.on("disconnect", (reason) => this.disconnects.push(reason));
    this.sock.on("connect_error", (e) => this.connectErrors.push(String(e && e.message)));
  }

  get id() {
    return this.sock.id;
  }

  of(ev) {
    return this.events.filter((e) => e.ev === ev).map((e) => e.args);
  }

  // The last `ev` payload (first argument), or undefined.
  last(ev) {
    const all = this.of(ev);
    return all.length ? all[all.length - 1][0] : undefined;
  }

  // Resolves once connected (rejects on connect_error or after ms).
  async connected(ms = 10000) {
    if (this.sock.connected) return this;
    await withTimeout(
      new Promise((resolve, reject) => {
        this.sock.once("connect", resolve);
        this.sock.once("connect_error", (e) => reject(new Error(`${this.name}: connect_error ${e && e.message}`)));
      }),
      ms,
      `${this.name} connect`
    );
    return this;
  }

  // Emits with an ack; resolves with the ack's arguments, or rejects after
  // ms when none comes.
  ack(ev, data, ms = 5000) {
    return withTimeout(
      new Promise((resolve) => this.sock.emit(ev, data, (...args) => resolve(args))),
      ms,
      `${this.name}: ack of '${ev}'`
    );
  }

  // What Open WebUI's client does right after connecting.
  userJoin(ms = 5000) {
    return this.ack("user-join", { auth: { token: this.token } }, ms);
  }

  close() {
    this.sock.disconnect();
  }
}

// Opens a tab and waits for its connection; closed at the end of the case
// (defer) or of the file (h.defer).
async function openTab(server, defer, opts) {
  const t = new Tab(server, opts);
  defer(() => t.close());
  await t.connected();
  return t;
}

// Asserts that nothing matching pred arrives at any of tabs during ms.
async function expectNone(tabs, ev, ms, what) {
  const before = tabs.map((t) => t.of(ev).length);
  await sleep(ms);
  tabs.forEach((t, i) => {
    const extra = t.of(ev).slice(before[i]);
    if (extra.length) throw new Error(`${what}: ${t.name} got ${extra.length} '${ev}': ${JSON.stringify(extra[0])}`);
  });
}

function sorted(a) {
  return [...a].sort();
}

module.exports = {
  API_KEY,
  SECRET,
  Tab,
  TRANSPORTS,
  api,
  b64url,
  directoryJson,
  expectNone,
  hostileTokens,
  jwt,
  nowS,
  once,
  openTab,
  owuiServer,
  serialAgent,
  sorted,
  tmpDir,
  token,
  waitFor,
};
