// tests/interop/lib/proxy.js — what stands between a client and siohubd in
// the hostile-network and browser tests:
//
// - Relay: a TCP relay in front of the daemon that reads the request line
//   and headers of every request going through it (several per connection
//   with keep-alive; none after a WebSocket upgrade) and can cut the
//   connections carrying a given request (the network dropping an SSE
//   stream) or hold new requests until released (the client cannot come
//   back yet, while events keep being posted).
// - httpProxy: a Node reverse proxy for HTTP, streamed responses (SSE) and
//   the WebSocket upgrade; or one that refuses the upgrade with 400 or
//   closes the connection on it, as corporate proxies do.
// - Nginx: Debian's nginx running contrib/nginx/siohub.conf (the example
//   operators copy), adapted only in its addresses, as the test user, in a
//   temporary directory; optionally with the Upgrade header stripped.
"use strict";

const childProcess = require("node:child_process");
const fs = require("node:fs");
const http = require("node:http");
const net = require("node:net");
const os = require("node:os");
const path = require("node:path");

const { HOST, freePort, sleep, withTimeout } = require("./harness");

// ---------------------------------------------------------------- the relay

const REQUEST_LINE = /^(GET|POST|PUT|DELETE|OPTIONS|HEAD|PATCH) (\S+) HTTP\/1\.[01]\r\n/;

// The head of one request: {method, path, headers (lower-case names)}, or
// null when the chunk does not start a request.
function parseHead(chunk) {
  const text = chunk.toString("latin1");
  const m = REQUEST_LINE.exec(text);
  if (!m) return null;
  const end = text.indexOf("\r\n\r\n");
  const lines = text.slice(0, end < 0 ? text.length : end).split("\r\n").slice(1);
  const headers = {};
  for (const l of lines) {
    const colon = l.indexOf(":");
    if (colon > 0) headers[l.slice(0, colon).trim().toLowerCase()] = l.slice(colon + 1).trim();
  }
  return { method: m[1], path: m[2], headers, at: Date.now() };
}

class Relay {
  constructor(targetPort) {
    this.targetPort = targetPort;
    this.port = 0;
    this.conns = new Set();
    this.requests = []; // every request head seen, in order
    this.holdPred = null;
    this.held = []; // {conn, chunk}
    this.server = null;
  }

  async start() {
    this.server = net.createServer((c) => this.accept(c));
    await new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(0, HOST, resolve);
    });
    this.port = this.server.address().port;
    return this;
  }

  accept(client) {
    const up = net.connect(this.targetPort, HOST);
    const conn = { client, up, current: null, upgraded: false, paused: false };
    this.conns.add(conn);
    const done = () => {
      this.conns.delete(conn);
      client.destroy();
      up.destroy();
    };
    client.on("error", done);
    up.on("error", done);
    client.on("close", done);
    up.on("close", done);
    up.pipe(client);
    client.on("data", (chunk) => this.fromClient(conn, chunk));
  }

  fromClient(conn, chunk) {
    if (!conn.upgraded) {
      const head = parseHead(chunk);
      if (head) {
        conn.current = head;
        this.requests.push(head);
        if ((head.headers.upgrade || "").toLowerCase() === "websocket") conn.upgraded = true;
        if (this.holdPred && this.holdPred(head)) {
          this.held.push({ conn, chunk });
          conn.client.pause();
          conn.paused = true;
          return;
        }
      }
    }
    if (conn.paused) {
      this.held.push({ conn, chunk });
      return;
    }
    if (!conn.up.write(chunk)) {
      conn.client.pause();
      conn.up.once("drain", () => {
        if (!conn.paused) conn.client.resume();
      });
    }
  }

  // Requests matching pred wait in the relay (their connection paused)
  // until release().
  hold(pred) {
    this.holdPred = pred;
  }

  // The held requests (their heads).
  heldRequests() {
    return this.held.map((x) => x.conn.current).filter((x, i, a) => a.indexOf(x) === i);
  }

  release() {
    this.holdPred = null;
    const held = this.held;
    this.held = [];
    const conns = new Set();
    for (const { conn, chunk } of held) {
      conns.add(conn);
      conn.up.write(chunk);
    }
    for (const conn of conns) {
      conn.paused = false;
      conn.client.resume();
    }
  }

  // Cuts (both sides, at once) every connection whose current request
  // matches pred; returns how many.
  cut(pred) {
    let n = 0;
    for (const conn of [...this.conns]) {
      if (conn.current && pred(conn.current)) {
        conn.client.destroy();
        conn.up.destroy();
        this.conns.delete(conn);
        n++;
      }
    }
    return n;
  }

  async stop() {
    for (const conn of this.conns) {
      conn.client.destroy();
      conn.up.destroy();
    }
    this.conns.clear();
    if (this.server) await new Promise((resolve) => this.server.close(() => resolve()));
    this.server = null;
  }
}

// ---------------------------------------------------------------- a Node reverse proxy

const HOP_BY_HOP = new Set(["connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-connection", "te", "trailer"]);

// A reverse proxy to 127.0.0.1:targetPort for the requests route(req)
// accepts (else fallback(req, res) answers). Responses stream through as
// they arrive (SSE, held polls). upgrade: "pass" (a WebSocket goes
// through), "400" (refused with 400 Bad Request, as a proxy that does not
// do WebSockets), "close" (the connection is closed without an answer).
// .upgrades counts the upgrade requests seen.
async function httpProxy({ targetPort, upgrade = "pass", route = () => true, fallback = null }) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const sockets = new Set();
  const proxy = { port: 0, upgrades: 0, requests: 0 };
  const server = http.createServer((req, res) => {
    if (!route(req)) {
      if (fallback) return fallback(req, res);
      res.writeHead(404).end();
      return;
    }
    proxy.requests++;
    const headers = {};
    for (const [k, v] of Object.entries(req.headers)) if (!HOP_BY_HOP.has(k)) headers[k] = v;
    const up = http.request({ host: HOST, port: targetPort, method: req.method, path: req.url, headers, agent }, (ur) => {
      const out = {};
      for (const [k, v] of Object.entries(ur.headers)) if (!HOP_BY_HOP.has(k)) out[k] = v;
      res.writeHead(ur.statusCode, out);
      res.flushHeaders();
      ur.on("data", (c) => res.write(c));
      ur.on("end", () => res.end());
      ur.on("error", () => res.destroy());
      ur.on("aborted", () => res.destroy());
    });
    up.on("error", () => res.destroy());
    res.on("close", () => up.destroy());
    req.pipe(up);
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.setNoDelay(true);
    s.on("close", () => sockets.delete(s));
  });
  server.on("upgrade", (req, socket, head) => {
    proxy.upgrades++;
    socket.on("error", () => {});
    if (!route(req) || upgrade === "close") {
      socket.destroy();
      return;
    }
    if (upgrade === "400") {
      socket.end("HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 28\r\nConnection: close\r\n\r\nWebSockets are not allowed.\n");
      return;
    }
    const up = net.connect(targetPort, HOST, () => {
      let text = `${req.method} ${req.url} HTTP/1.1\r\n`;
      for (let i = 0; i < req.rawHeaders.length; i += 2) text += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
      up.write(text + "\r\n");
      if (head && head.length) up.write(head);
      up.pipe(socket);
      socket.pipe(up);
    });
    sockets.add(up);
    up.on("close", () => {
      sockets.delete(up);
      socket.destroy();
    });
    up.on("error", () => socket.destroy());
    socket.on("close", () => up.destroy());
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, HOST, resolve);
  });
  proxy.port = server.address().port;
  proxy.url = `http://${HOST}:${proxy.port}`;
  proxy.stop = async () => {
    for (const s of sockets) s.destroy();
    agent.destroy();
    await new Promise((resolve) => server.close(() => resolve()));
  };
  return proxy;
}

// ---------------------------------------------------------------- nginx

function topSrcdir() {
  return process.env.top_srcdir || path.join(__dirname, "..", "..", "..");
}

// nginx's path ($NGINX, else Debian's /usr/sbin/nginx or one on PATH), or
// null when that is not an executable.
function nginxPath() {
  const candidates = process.env.NGINX
    ? [process.env.NGINX]
    : ["/usr/sbin", "/usr/local/sbin", ...(process.env.PATH || "").split(":")].map((d) => path.join(d || ".", "nginx"));
  for (const p of candidates) {
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch (_) {
      /* next */
    }
  }
  return null;
}

// Replaces `from` (which must occur exactly once) by `to`: a changed example
// fails the test loudly instead of being tested half-adapted.
function replaceOnce(text, from, to) {
  const n = text.split(from).length - 1;
  if (n !== 1) throw new Error(`contrib/nginx/siohub.conf: expected "${from}" once, found it ${n} times`);
  return text.replace(from, () => to);
}

// The example with its addresses changed: listen on 127.0.0.1:listenPort,
// siohubd at siohubPort, "Open WebUI" at webPort. stripUpgrade: the
// WebSocket upgrade is not passed on (Upgrade and Connection cleared), as a
// proxy that does not do WebSockets.
function siohubConf({ listenPort, siohubPort, webPort, stripUpgrade = false }) {
  let conf = fs.readFileSync(path.join(topSrcdir(), "contrib", "nginx", "siohub.conf"), "utf8");
  conf = replaceOnce(conf, "server 127.0.0.1:8090;", `server ${HOST}:${siohubPort};`);
  conf = replaceOnce(conf, "server 127.0.0.1:8080;", `server ${HOST}:${webPort};`);
  conf = replaceOnce(conf, "listen 80;", `listen ${HOST}:${listenPort};`);
  if (stripUpgrade) {
    conf = replaceOnce(conf, "proxy_set_header Upgrade $http_upgrade;", 'proxy_set_header Upgrade "";');
    conf = replaceOnce(conf, "proxy_set_header Connection $siohub_connection;", 'proxy_set_header Connection "";');
  }
  return conf;
}

// nginx as the test user: one process (master_process off, so no user
// switch even as root), everything under a temporary directory, the error
// log next to the test's log. The http {} block is Debian's default
// nginx.conf made hostile: gzip on for every text type this gateway
// sends, so only the example's own settings keep SSE uncompressed.
class Nginx {
  constructor(h, opts) {
    this.h = h;
    this.opts = opts;
    this.port = 0;
    this.proc = null;
    this.exitInfo = null;
  }

  get url() {
    return `http://${HOST}:${this.port}`;
  }

  async start() {
    const bin = nginxPath();
    if (!bin) throw new Error("nginx not found");
    this.dir = fs.mkdtempSync(path.join(process.env.TMPDIR || os.tmpdir(), "siohub-nginx-"));
    const dir = this.dir;
    // A hard exit (the harness' timeout kills nginx first) leaves no files.
    process.on("exit", () => {
      try {
        fs.rmSync(dir, { recursive: true, force: true });
      } catch (_) {
        /* best effort */
      }
    });
    this.port = await freePort();
    const d = this.dir;
    fs.writeFileSync(path.join(d, "siohub.conf"), siohubConf({ listenPort: this.port, ...this.opts }));
    this.logPath = this.h.logPath(`nginx${this.h.nginxCount = (this.h.nginxCount || 0) + 1}`);
    fs.writeFileSync(
      path.join(d, "nginx.conf"),
      [
        "daemon off;",
        "master_process off;",
        "worker_processes 1;",
        `pid ${d}/nginx.pid;`,
        `error_log ${this.logPath} info;`,
        "events { worker_connections 512; }",
        "http {",
        "    sendfile on;",
        "    tcp_nopush on;",
        "    types_hash_max_size 2048;",
        "    default_type application/octet-stream;",
        `    access_log ${d}/access.log;`,
        `    client_body_temp_path ${d}/body;`,
        `    proxy_temp_path ${d}/proxy;`,
        `    fastcgi_temp_path ${d}/fastcgi;`,
        `    uwsgi_temp_path ${d}/uwsgi;`,
        `    scgi_temp_path ${d}/scgi;`,
        "    gzip on;",
        "    gzip_proxied any;",
        "    gzip_min_length 1;",
        "    gzip_types text/plain text/event-stream application/json;",
        `    include ${d}/siohub.conf;`,
        "}",
        "",
      ].join("\n")
    );
    const argv = ["-p", `${d}/`, "-c", `${d}/nginx.conf`, "-e", this.logPath];
    fs.writeFileSync(this.logPath, `# ${bin} ${argv.join(" ")}\n`);
    const proc = childProcess.spawn(bin, argv, { stdio: ["ignore", "ignore", "ignore"] });
    this.proc = proc;
    this.h.allProcs.push(proc);
    this.exited = new Promise((resolve) => {
      proc.on("exit", (code, signal) => resolve((this.exitInfo = { code, signal })));
      proc.on("error", (error) => resolve((this.exitInfo = { code: null, signal: null, error })));
    });
    this.h.defer(() => this.stop());
    const deadline = Date.now() + 10000;
    for (;;) {
      if (this.exitInfo) throw new Error(`nginx exited (${JSON.stringify(this.exitInfo)}); log ${this.logPath}:\n${readTail(this.logPath)}`);
      const ok = await new Promise((resolve) => {
        const s = net.connect(this.port, HOST, () => {
          s.destroy();
          resolve(true);
        });
        s.on("error", () => resolve(false));
      });
      if (ok) return this;
      if (Date.now() > deadline) throw new Error(`nginx not listening after 10 s; log ${this.logPath}:\n${readTail(this.logPath)}`);
      await sleep(20);
    }
  }

  // SIGQUIT would wait for open streams; SIGTERM is nginx's fast shutdown.
  async stop() {
    if (this.proc && !this.exitInfo) {
      this.proc.kill("SIGTERM");
      try {
        await withTimeout(this.exited, 5000, "nginx exit");
      } catch (_) {
        this.proc.kill("SIGKILL");
        await this.exited;
      }
    }
    this.proc = null;
    if (this.dir) fs.rmSync(this.dir, { recursive: true, force: true });
    this.dir = null;
  }
}

function readTail(file) {
  try {
    return fs.readFileSync(file, "utf8").split("\n").slice(-15).map((l) => `  | ${l}`).join("\n");
  } catch (_) {
    return "  | (no log)";
  }
}

module.exports = { Nginx, Relay, httpProxy, nginxPath, parseHead, siohubConf, topSrcdir };
