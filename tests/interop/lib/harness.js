// tests/interop/lib/harness.js — runs one interop test file against a live
// siohubd (or a reference server) on a free loopback port.
//
// Contract with automake's test driver: exit 0 when every case passed, 1 when
// one failed, 77 to skip (no node modules), 99 on a hard error. One line per
// case, then a closing "NAME: N passed, N failed" line.
//
// The daemon under test is `$top_builddir/siohubd` (or $SIOHUBD), started as
//   siohubd --app echo --listen 127.0.0.1:PORT --ping-interval 300
//           --ping-timeout 200 [extra args]
// (`app: "openwebui"` starts that app instead; it is ready when a handshake
// at its /ws/socket.io/ answers; `env` adds environment variables.)
// When SIOHUB_REFERENCE_SERVER is set to a shell command, that command is run
// with the same arguments instead (used to validate the tests against Node's
// socket.io/engine.io). The daemon's stderr goes to a file next to the test
// log; stopping sends SIGTERM and a daemon that does not exit 0 within 5 s
// fails the test: clean shutdown is part of the contract.
//
// With SIOHUB_REQUIRE_INTEROP set (CI), a skip is a hard error instead.
//
// Fleet tests: `app: "openwebui"` starts the Open WebUI app instead (its
// Engine.IO path is /ws/socket.io/), `env` adds environment variables,
// `healthz: true` also waits for /healthz to answer 200 (Redis up and the
// pub/sub subscription confirmed), and h.redis() starts a redis-server
// ($REDIS_SERVER, exported by make check) on a free loopback port that can
// be stopped and started again on the same port; without REDIS_SERVER the
// test skips (an error under SIOHUB_REQUIRE_INTEROP).
"use strict";

const assert = require("node:assert/strict");
const childProcess = require("node:child_process");
const fs = require("node:fs");
const http = require("node:http");
const net = require("node:net");
const path = require("node:path");
const os = require("node:os");
const { createRequire } = require("node:module");
const { RespClient } = require("./resp");

const HOST = "127.0.0.1";
const STOP_GRACE_MS = 5000;
const READY_TIMEOUT_MS = Number(process.env.SIOHUB_READY_TIMEOUT_MS || 15000);
const testName = path.basename(process.argv[1] || "interop").replace(/\.[^.]*$/, "");

// ---------------------------------------------------------------- small async helpers

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Rejects with "timeout: WHAT" unless `promise` settles within `ms`.
function withTimeout(promise, ms, what) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timeout after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

// Resolves with the arguments of the next `event` on an EventEmitter-like
// object (on/off or addEventListener), or rejects after `ms`.
function once(emitter, event, ms = 5000) {
  return withTimeout(
    new Promise((resolve) => {
      const handler = (...args) => {
        if (emitter.off) emitter.off(event, handler);
        else emitter.removeListener(event, handler);
        resolve(args);
      };
      emitter.on(event, handler);
    }),
    ms,
    `event '${event}'`
  );
}

function toBuffer(x) {
  if (Buffer.isBuffer(x)) return x;
  if (x instanceof ArrayBuffer) return Buffer.from(x);
  if (ArrayBuffer.isView(x)) return Buffer.from(x.buffer, x.byteOffset, x.byteLength);
  throw new Error(`not binary: ${typeof x}`);
}

// Deep copy with every binary value (Buffer, ArrayBuffer, typed array) turned
// into a Buffer, so results from any transport compare with deepStrictEqual.
function normalize(x) {
  if (x instanceof ArrayBuffer || ArrayBuffer.isView(x)) return toBuffer(x);
  if (Array.isArray(x)) return x.map(normalize);
  if (x && typeof x === "object") {
    const out = {};
    for (const k of Object.keys(x)) out[k] = normalize(x[k]);
    return out;
  }
  return x;
}

// ---------------------------------------------------------------- HTTP

// One plain HTTP/1.1 request to 127.0.0.1:port (no keep-alive pooling, so
// every request is its own connection, like the official suites' fetch).
// Resolves { status, headers, body: Buffer, text }; rejects on socket errors.
function request(port, { method = "GET", path: p = "/", headers = {}, body, timeout = 5000 } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: HOST, port, method, path: p, headers, agent: false },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => {
          const b = Buffer.concat(chunks);
          resolve({ status: res.statusCode, headers: res.headers, body: b, text: b.toString("utf8") });
        });
        res.on("error", reject);
      }
    );
    req.setTimeout(timeout, () => req.destroy(new Error(`HTTP ${method} ${p}: no answer in ${timeout} ms`)));
    req.on("error", reject);
    if (body !== undefined) req.end(body);
    else req.end();
  });
}

// ---------------------------------------------------------------- ports

// A port the kernel just handed out on 127.0.0.1; closed again before the
// daemon binds it (a small race other tests on this machine could lose).
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, HOST, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// ---------------------------------------------------------------- the daemon

class Daemon {
  constructor(h, opts) {
    this.h = h;
    this.extraArgs = opts.args || [];
    this.app = opts.app || "echo";
    this.pathOverride = opts.path || null;
    this.healthz = !!opts.healthz;
    // null: leave the daemon's own defaults (no --ping-* options).
    this.pingInterval = opts.pingInterval === undefined ? 300 : opts.pingInterval;
    this.pingTimeout = opts.pingTimeout === undefined ? 200 : opts.pingTimeout;
    this.port = opts.port || 0;
    this.app = opts.app || "echo";
    this.env = opts.env || null;
    this.proc = null;
    this.starts = 0;
    this.exitInfo = null;
  }

  get url() {
    return `http://${HOST}:${this.port}`;
  }

  // Where the app serves Engine.IO (each app's default path).
  get enginePath() {
    return this.pathOverride || (this.app === "openwebui" ? "/ws/socket.io/" : "/socket.io/");
  }

  get wsUrl() {
    return `ws://${HOST}:${this.port}`;
  }

  args() {
    // pingInterval / pingTimeout null: the daemon's own defaults.
    return [
      "--app", this.app,
      "--listen", `${HOST}:${this.port}`,
      ...(this.pingInterval === null ? [] : ["--ping-interval", String(this.pingInterval)]),
      ...(this.pingTimeout === null ? [] : ["--ping-timeout", String(this.pingTimeout)]),
      ...this.extraArgs,
    ];
  }

  // Starts the daemon (again, on the same port when it already has one) and
  // waits until a polling handshake answers 200.
  async start() {
    for (let attempt = 0; ; attempt++) {
      const fixedPort = this.port !== 0 && this.starts > 0;
      if (!fixedPort) this.port = await freePort();
      try {
        await this.spawnAndWait();
        return this;
      } catch (e) {
        // A port taken between freePort() and bind: try another one, unless
        // this is a restart that must keep its port.
        if (fixedPort || attempt >= 2 || !e.earlyExit) throw e;
      }
    }
  }

  async spawnAndWait() {
    if (this.h.closing) throw new Error("the test is finishing: no new daemon");
    this.starts++;
    const logPath = this.h.logPath(`daemon${this.h.daemonCount++}`);
    this.logPath = logPath;
    const log = fs.openSync(logPath, "w");
    const args = this.args();
    let cmd, argv;
    if (process.env.SIOHUB_REFERENCE_SERVER) {
      cmd = "/bin/sh";
      argv = ["-c", `exec ${process.env.SIOHUB_REFERENCE_SERVER} "$@"`, "sh", ...args];
    } else {
      cmd = daemonPath();
      argv = args;
    }
    fs.writeSync(log, `# ${cmd} ${argv.join(" ")}\n`);
    this.exitInfo = null;
    const env = this.env ? { ...process.env, ...this.env } : process.env;
    const proc = childProcess.spawn(cmd, argv, { stdio: ["ignore", log, log], env });
    fs.closeSync(log);
    this.proc = proc;
    this.h.allProcs.push(proc);
    this.exited = new Promise((resolve) => {
      proc.on("exit", (code, signal) => {
        this.exitInfo = { code, signal };
        resolve(this.exitInfo);
      });
      proc.on("error", (err) => {
        this.exitInfo = { code: null, signal: null, error: err };
        resolve(this.exitInfo);
      });
    });
    this.h.daemons.add(this);

    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (this.exitInfo) {
        this.proc = null;
        this.h.daemons.delete(this);
        const e = new Error(`daemon exited before it was ready (${describeExit(this.exitInfo)}); log: ${logPath}\n${tail(logPath)}`);
        e.earlyExit = !this.exitInfo.error; // a bind race is worth a retry, ENOENT is not
        throw e;
      }
      try {
        const r = await request(this.port, { path: `${this.enginePath}?EIO=4&transport=polling`, timeout: 1000 });
        if (r.status === 200 && (!this.healthz || (await request(this.port, { path: "/healthz", timeout: 1000 })).status === 200)) return;
      } catch (_) {
        /* not listening yet */
      }
      if (Date.now() > deadline) {
        this.kill();
        await this.exited;
        this.proc = null;
        this.h.daemons.delete(this);
        throw new Error(`daemon not ready after ${READY_TIMEOUT_MS} ms; log: ${logPath}\n${tail(logPath)}`);
      }
      await sleep(50);
    }
  }

  // True while the process runs.
  alive() {
    return this.proc !== null && this.exitInfo === null;
  }

  assertAlive() {
    if (!this.alive()) {
      throw new Error(`daemon is not running (${this.exitInfo ? describeExit(this.exitInfo) : "never started"}); log: ${this.logPath}\n${tail(this.logPath)}`);
    }
  }

  // SIGTERM, then the daemon must exit with status 0 within 5 s. Throws
  // otherwise (after SIGKILL, so nothing is left running).
  async stop() {
    if (!this.proc) return;
    const proc = this.proc;
    if (this.exitInfo) {
      this.proc = null;
      this.h.daemons.delete(this);
      throw new Error(`daemon had already exited (${describeExit(this.exitInfo)}); log: ${this.logPath}\n${tail(this.logPath)}`);
    }
    proc.kill("SIGTERM");
    let info;
    try {
      info = await withTimeout(this.exited, STOP_GRACE_MS, "daemon exit after SIGTERM");
    } catch (_) {
      proc.kill("SIGKILL");
      await this.exited;
      this.proc = null;
      this.h.daemons.delete(this);
      throw new Error(`daemon did not exit within ${STOP_GRACE_MS} ms of SIGTERM; log: ${this.logPath}`);
    }
    this.proc = null;
    this.h.daemons.delete(this);
    if (info.code !== 0) {
      throw new Error(`daemon did not exit cleanly on SIGTERM (${describeExit(info)}); log: ${this.logPath}\n${tail(this.logPath)}`);
    }
  }

  // kill -9, on purpose (a node dying): waits for the exit; the harness no
  // longer expects a clean SIGTERM exit from this daemon.
  async kill9() {
    this.assertAlive();
    this.proc.kill("SIGKILL");
    await this.exited;
    this.proc = null;
    this.h.daemons.delete(this);
  }

  // Last resort on a hard failure: no checks.
  kill() {
    if (this.proc && !this.exitInfo) this.proc.kill("SIGKILL");
  }
}

function describeExit(info) {
  if (info.error) return `spawn failed: ${info.error.message}`;
  if (info.signal) return `killed by ${info.signal}`;
  return `exit status ${info.code}`;
}

function tail(file, lines = 20) {
  try {
    const all = fs.readFileSync(file, "utf8").split("\n");
    return all.slice(-lines).map((l) => `  | ${l}`).join("\n");
  } catch (_) {
    return "  | (no log)";
  }
}

function daemonPath() {
  if (process.env.SIOHUBD) return process.env.SIOHUBD;
  const top = process.env.top_builddir || process.cwd();
  return path.join(top, "siohubd");
}

// ---------------------------------------------------------------- redis-server

// A redis-server of the test's own on a free 127.0.0.1 port, no persistence
// (a restart starts empty, like a Redis that lost its data). stop() kills
// it (an outage), start() brings it back on the same port.
class RedisServer {
  constructor(h) {
    this.h = h;
    this.port = 0;
    this.proc = null;
    this.starts = 0;
    this.exitInfo = null;
    this.dir = fs.mkdtempSync(path.join(process.env.TMPDIR || os.tmpdir(), "siohub-redis-"));
  }

  // redis://127.0.0.1:PORT/DB
  url(db = 0) {
    return `redis://${HOST}:${this.port}/${db}`;
  }

  async start() {
    const restart = this.starts > 0;
    for (let attempt = 0; attempt < 5; attempt++) {
      if (!restart) this.port = await freePort();
      this.starts++;
      const logPath = this.h.logPath(`redis${this.starts}`);
      this.logPath = logPath;
      const log = fs.openSync(logPath, "w");
      const argv = ["--port", String(this.port), "--bind", HOST, "--save", "", "--appendonly", "no",
        "--dir", this.dir, "--logfile", ""];
      fs.writeSync(log, `# ${process.env.REDIS_SERVER} ${argv.join(" ")}\n`);
      const proc = childProcess.spawn(process.env.REDIS_SERVER, argv, { stdio: ["ignore", log, log] });
      fs.closeSync(log);
      this.proc = proc;
      this.exitInfo = null;
      this.h.allProcs.push(proc);
      this.exited = new Promise((resolve) => {
        proc.on("exit", (code, signal) => resolve((this.exitInfo = { code, signal })));
        proc.on("error", (error) => resolve((this.exitInfo = { code: null, signal: null, error })));
      });
      const deadline = Date.now() + 5000;
      while (!this.exitInfo && Date.now() < deadline) {
        try {
          const c = await RespClient.connect(this.port, { timeout: 500 });
          const pong = await withTimeout(c.command("PING"), 1000, "PING").finally(() => c.close());
          if (pong === "PONG") return this;
        } catch (_) {
          /* not listening yet */
        }
        await sleep(20);
      }
      if (!this.exitInfo) {
        proc.kill("SIGKILL");
        await this.exited;
        throw new Error(`redis-server on port ${this.port} did not answer PING; log: ${logPath}\n${tail(logPath)}`);
      }
      // Exited: the port was taken (by another test, between our probe and
      // its bind). A restart must keep its port: wait and try it again.
      if (restart) await sleep(200);
    }
    throw new Error(`redis-server would not start on port ${this.port}; log: ${this.logPath}\n${tail(this.logPath)}`);
  }

  alive() {
    return this.proc !== null && this.exitInfo === null;
  }

  // kill -9: the daemons see the connection drop (an outage).
  async stop() {
    if (!this.alive()) return;
    this.proc.kill("SIGKILL");
    await this.exited;
    this.proc = null;
  }

  // A client of this server (closed at the end of the test).
  async client(opts) {
    const c = await RespClient.connect(this.port, opts);
    this.h.defer(() => c.close());
    return c;
  }
}

// ---------------------------------------------------------------- modules

// require() a package from the build tree's tests/interop/node_modules (what
// `make check` installs with npm ci), else from the source tree or NODE_PATH.
// Skips the test when it is not installed.
function need(name) {
  const bases = [];
  if (process.env.top_builddir) bases.push(path.join(process.env.top_builddir, "tests", "interop"));
  bases.push(path.join(__dirname, ".."));
  for (const base of bases) {
    try {
      return createRequire(path.join(base, "package.json"))(name);
    } catch (e) {
      if (e.code !== "MODULE_NOT_FOUND") throw e;
    }
  }
  try {
    return require(name);
  } catch (e) {
    if (e.code !== "MODULE_NOT_FOUND") throw e;
  }
  skip(`npm module '${name}' is not installed (make check installs it with npm ci)`);
}

function skip(reason) {
  if (process.env.SIOHUB_REQUIRE_INTEROP) {
    console.log(`ERROR: ${reason} (SIOHUB_REQUIRE_INTEROP is set, so this is not a skip)`);
    process.exit(99);
  }
  console.log(`SKIP: ${reason}`);
  process.exit(77);
}

// ---------------------------------------------------------------- the test runner

class Harness {
  constructor(opts) {
    // True when validating against the Node reference server: the few
    // checks where siohub is stricter than Node relax (each says so).
    this.reference = !!process.env.SIOHUB_REFERENCE_SERVER;
    this.timeoutMs = opts.timeoutMs || 60000;
    this.caseTimeoutMs = opts.caseTimeoutMs || 15000;
    this.passed = 0;
    this.failed = 0;
    this.daemons = new Set();
    this.allProcs = []; // every process started, for the last-resort kill
    this.closing = false;
    this.daemonCount = 0;
    this.cleanups = [];
    this.redisServers = [];
    const top = process.env.top_builddir;
    this.logDir = top
      ? path.join(top, "tests", "interop")
      : fs.mkdtempSync(path.join(require("node:os").tmpdir(), "siohub-interop-"));
    fs.mkdirSync(this.logDir, { recursive: true });
  }

  logPath(what) {
    return path.join(this.logDir, `${testName}.${what}.stderr`);
  }

  // Starts a daemon; options: app ("echo" default, or "openwebui"), args
  // (extra CLI args), env (extra environment), pingInterval, pingTimeout
  // (null: not given, the daemon's defaults). The harness stops it (and
  // checks its exit) at the end.
  async server(opts = {}) {
    const d = new Daemon(this, opts);
    await d.start();
    return d;
  }

  // Starts a redis-server on a free loopback port (stopped at the very end,
  // after the daemons). Skips the test when REDIS_SERVER is not set.
  async redis() {
    if (!process.env.REDIS_SERVER) skip("REDIS_SERVER is not set (make check exports the redis-server configure found)");
    const r = new RedisServer(this);
    this.redisServers.push(r);
    await r.start();
    return r;
  }

  // Registers fn to run at the end, before the daemons stop (close clients).
  defer(fn) {
    this.cleanups.push(fn);
  }

  // Runs one case; a thrown error or a timeout fails it. `fn` gets a
  // per-case `defer` so clients it opens are closed even when it fails.
  async case(name, fn, { timeout } = {}) {
    const ms = timeout || this.caseTimeoutMs;
    const local = [];
    const started = Date.now();
    try {
      await withTimeout(Promise.resolve().then(() => fn((f) => local.push(f))), ms, `case '${name}'`);
      this.passed++;
      console.log(`ok - ${name} (${Date.now() - started} ms)`);
    } catch (e) {
      this.failed++;
      console.log(`not ok - ${name}`);
      console.log(indent(e && e.stack ? e.stack : String(e)));
    }
    for (const f of local.reverse()) {
      try {
        await f();
      } catch (_) {
        /* cleanup is best effort */
      }
    }
  }

  // Fails the run with `msg` without aborting it (checks outside a case).
  fail(msg) {
    this.failed++;
    console.log(`not ok - ${msg}`);
  }

  async finish() {
    this.closing = true;
    for (const f of this.cleanups.reverse()) {
      try {
        await f();
      } catch (_) {
        /* best effort */
      }
    }
    for (const d of [...this.daemons]) {
      try {
        await d.stop();
        this.passed++;
        console.log(`ok - daemon on port ${d.port} exited 0 on SIGTERM`);
      } catch (e) {
        this.failed++;
        console.log(`not ok - daemon shutdown`);
        console.log(indent(e.message));
      }
    }
    // Redis last: the daemons release their locks and beacons on SIGTERM.
    for (const r of this.redisServers) {
      await r.stop();
      fs.rmSync(r.dir, { recursive: true, force: true });
    }
    console.log(`${testName}: ${this.passed} passed, ${this.failed} failed`);
    return this.failed === 0 ? 0 : 1;
  }

  // Last resort (also run right before exiting): a case that timed out may
  // still have started a daemon behind the harness' back.
  killAll() {
    this.closing = true;
    for (const d of this.daemons) d.kill();
    for (const r of this.redisServers) {
      if (r.alive()) r.proc.kill("SIGKILL");
      try {
        fs.rmSync(r.dir, { recursive: true, force: true });
      } catch (_) {
        /* best effort */
      }
    }
    for (const p of this.allProcs) if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
  }
}

function indent(s) {
  return String(s)
    .split("\n")
    .map((l) => `    ${l}`)
    .join("\n");
}

// Runs a test file body: `run({ timeoutMs }, async (h) => { ... h.case(...) })`.
// Guarantees an exit within timeoutMs, with every daemon killed.
function run(opts, body) {
  const h = new Harness(opts);
  const overall = setTimeout(() => {
    console.log(`not ok - ${testName} did not finish within ${h.timeoutMs} ms`);
    console.log(`${testName}: ${h.passed} passed, ${h.failed + 1} failed`);
    h.killAll();
    process.exit(1);
  }, h.timeoutMs);
  overall.unref();
  process.on("SIGTERM", () => {
    h.killAll();
    process.exit(1);
  });
  process.on("unhandledRejection", (e) => {
    // A stray rejection from a client library must not end the run silently.
    console.log(`# unhandled rejection: ${e && e.stack ? e.stack : e}`);
  });
  Promise.resolve()
    .then(() => body(h))
    .then(
      () => h.finish(),
      async (e) => {
        console.log(`not ok - ${testName} aborted`);
        console.log(indent(e && e.stack ? e.stack : String(e)));
        h.failed++;
        return h.finish();
      }
    )
    .then(
      (code) => {
        h.killAll();
        process.exit(code);
      },
      (e) => {
        console.log(`${testName}: hard error ${e && e.stack}`);
        h.killAll();
        process.exit(99);
      }
    );
}

module.exports = {
  HOST,
  assert,
  daemonPath,
  freePort,
  need,
  normalize,
  once,
  request,
  run,
  skip,
  sleep,
  toBuffer,
  withTimeout,
};
