// tests/interop/lib/wire.js — protocol-level helpers for the raw tests:
// a message queue over a `ws` WebSocket, Engine.IO polling calls, and a
// hand-made RFC 6455 client over a plain TCP socket (for frames `ws` refuses
// to send: unmasked, truncated, oversize, bad UTF-8).
"use strict";

const crypto = require("node:crypto");
const net = require("node:net");
const { HOST, request, withTimeout } = require("./harness");

// ---------------------------------------------------------------- ws message queue

// Wraps a `ws` WebSocket: every message is queued (text as a string, binary
// as a Buffer) so a test reads them in order with next(); closed resolves
// with { code, reason } when the connection ends.
class WsQueue {
  // opts.autoPong: answer Engine.IO pings ("2") by itself and hide them,
  // for cases that wait on something else while the session must live.
  constructor(WebSocket, url, opts = {}) {
    const { autoPong, ...wsOpts } = opts;
    this.ws = new WebSocket(url, wsOpts);
    this.items = [];
    this.waiters = [];
    this.ws.on("message", (data, isBinary) => {
      const m = isBinary ? Buffer.from(data) : data.toString("utf8");
      if (autoPong && m === "2") this.ws.send("3");
      else this.push(m);
    });
    this.ws.on("error", (e) => {
      this.error = e;
    });
    this.opened = new Promise((resolve, reject) => {
      this.ws.once("open", resolve);
      this.ws.once("close", () => reject(new Error("closed before open")));
    });
    this.opened.catch(() => {});
    this.closed = new Promise((resolve) => {
      this.ws.once("close", (code, reason) => {
        this.isClosed = true;
        resolve({ code, reason: reason.toString() });
        for (const w of this.waiters.splice(0)) w.reject(new Error(`connection closed (code ${code})`));
      });
    });
  }

  push(m) {
    const w = this.waiters.shift();
    if (w) w.resolve(m);
    else this.items.push(m);
  }

  // The next message; rejects on timeout or when the connection closes.
  next(ms = 3000) {
    if (this.items.length) return Promise.resolve(this.items.shift());
    if (this.isClosed) return Promise.reject(new Error("connection closed"));
    let waiter;
    const p = new Promise((resolve, reject) => {
      waiter = { resolve, reject };
      this.waiters.push(waiter);
    });
    return withTimeout(p, ms, "WebSocket message").catch((e) => {
      this.waiters = this.waiters.filter((w) => w !== waiter);
      throw e;
    });
  }

  // The next message that is not an Engine.IO ping ("2"), answering pings
  // with pongs on the way so the session stays open.
  async nextNonPing(ms = 3000) {
    for (;;) {
      const m = await this.next(ms);
      if (m === "2") {
        this.send("3");
        continue;
      }
      return m;
    }
  }

  // Resolves true when the connection closes within ms, false otherwise.
  async closesWithin(ms) {
    try {
      await withTimeout(this.closed, ms, "close");
      return true;
    } catch (_) {
      return false;
    }
  }

  send(m) {
    this.ws.send(m);
  }

  close() {
    try {
      this.ws.terminate();
    } catch (_) {
      /* already gone */
    }
  }
}

// ---------------------------------------------------------------- Engine.IO over polling

function eioPath(base, query) {
  return `${base}?EIO=4&transport=polling${query ? `&${query}` : ""}`;
}

// Opens a polling session at base ("/engine.io/" or "/socket.io/") and
// returns its handshake object.
async function pollingHandshake(port, base) {
  const r = await request(port, { path: eioPath(base) });
  if (r.status !== 200 || r.text[0] !== "0") throw new Error(`handshake failed: ${r.status} ${r.text}`);
  return JSON.parse(r.text.slice(1));
}

function poll(port, base, sid, opts = {}) {
  return request(port, { path: eioPath(base, `sid=${sid}${opts.query ? `&${opts.query}` : ""}`), timeout: opts.timeout || 5000 });
}

function post(port, base, sid, body, opts = {}) {
  return request(port, {
    method: "POST",
    path: eioPath(base, `sid=${sid}`),
    body,
    headers: { "Content-Type": "text/plain;charset=UTF-8", ...(opts.headers || {}) },
    timeout: opts.timeout || 5000,
  });
}

// ---------------------------------------------------------------- raw RFC 6455 client

// Encodes one frame. opts: opcode (1 text, 2 binary, 8 close, 9 ping),
// fin (default true), mask (default true), rsv (bits 4-6 value, default 0),
// len (claimed payload length, default the real one).
function frame(payload, opts = {}) {
  const data = Buffer.isBuffer(payload) ? payload : Buffer.from(payload, "utf8");
  const opcode = opts.opcode ?? 1;
  const fin = opts.fin ?? true;
  const mask = opts.mask ?? true;
  const len = opts.len ?? data.length;
  let head;
  if (len < 126) {
    head = Buffer.alloc(2);
    head[1] = len;
  } else if (len < 65536) {
    head = Buffer.alloc(4);
    head[1] = 126;
    head.writeUInt16BE(len, 2);
  } else {
    head = Buffer.alloc(10);
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(len), 2);
  }
  head[0] = (fin ? 0x80 : 0) | ((opts.rsv ?? 0) << 4) | opcode;
  if (!mask) return Buffer.concat([head, data]);
  head[1] |= 0x80;
  const key = crypto.randomBytes(4);
  const body = Buffer.alloc(data.length);
  for (let i = 0; i < data.length; i++) body[i] = data[i] ^ key[i & 3];
  return Buffer.concat([head, key, body]);
}

// A WebSocket client over net.Socket: connect() does the HTTP upgrade and
// then parses the server's frames into `frames` ({ opcode, fin, payload }).
class RawWs {
  constructor(port, path) {
    this.port = port;
    this.path = path;
    this.buf = Buffer.alloc(0);
    this.frames = [];
    this.waiters = [];
    this.upgraded = false;
    this.ended = false;
  }

  connect(ms = 3000) {
    return withTimeout(
      new Promise((resolve, reject) => {
        const key = crypto.randomBytes(16).toString("base64");
        const sock = net.connect(this.port, HOST);
        this.sock = sock;
        this.endedP = new Promise((r) => sock.once("close", r));
        sock.on("error", () => {});
        sock.once("connect", () => {
          sock.write(
            `GET ${this.path} HTTP/1.1\r\nHost: ${HOST}:${this.port}\r\nUpgrade: websocket\r\n` +
              `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`
          );
        });
        sock.on("data", (chunk) => {
          this.buf = Buffer.concat([this.buf, chunk]);
          if (!this.upgraded) {
            const end = this.buf.indexOf("\r\n\r\n");
            if (end < 0) return;
            const head = this.buf.subarray(0, end).toString("latin1");
            this.buf = this.buf.subarray(end + 4);
            if (!/^HTTP\/1\.1 101/.test(head)) {
              reject(new Error(`no upgrade: ${head.split("\r\n")[0]}`));
              sock.destroy();
              return;
            }
            this.upgraded = true;
            resolve(this);
          }
          this.parse();
        });
        sock.once("close", () => {
          this.ended = true;
          if (!this.upgraded) reject(new Error("closed during upgrade"));
          for (const w of this.waiters.splice(0)) w(null);
        });
      }),
      ms,
      "WebSocket upgrade"
    );
  }

  parse() {
    for (;;) {
      const b = this.buf;
      if (b.length < 2) return;
      let len = b[1] & 0x7f;
      let off = 2;
      if (len === 126) {
        if (b.length < 4) return;
        len = b.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (b.length < 10) return;
        len = Number(b.readBigUInt64BE(2));
        off = 10;
      }
      if (b[1] & 0x80) off += 4; // servers never mask; tolerate it anyway
      if (b.length < off + len) return;
      const f = { fin: !!(b[0] & 0x80), opcode: b[0] & 0x0f, payload: Buffer.from(b.subarray(off, off + len)) };
      this.buf = b.subarray(off + len);
      const w = this.waiters.shift();
      if (w) w(f);
      else this.frames.push(f);
    }
  }

  // Next frame from the server, or null once the TCP connection ended.
  nextFrame(ms = 3000) {
    if (this.frames.length) return Promise.resolve(this.frames.shift());
    if (this.ended) return Promise.resolve(null);
    let waiter;
    const p = new Promise((r) => {
      waiter = r;
      this.waiters.push(r);
    });
    return withTimeout(p, ms, "WebSocket frame").catch((e) => {
      this.waiters = this.waiters.filter((w) => w !== waiter);
      throw e;
    });
  }

  // Next text frame that is not an Engine.IO ping (answered with a pong).
  async nextText(ms = 3000) {
    for (;;) {
      const f = await this.nextFrame(ms);
      if (f === null) return null;
      if (f.opcode === 9) {
        this.write(frame(f.payload, { opcode: 10 }));
        continue;
      }
      if (f.opcode !== 1) return f;
      const s = f.payload.toString("utf8");
      if (s === "2") {
        this.write(frame("3"));
        continue;
      }
      return s;
    }
  }

  // Reads frames until a close frame (resolves with its status code, or
  // 1005 when it has none) or the end of the connection (resolves null).
  async closeCode(ms = 3000) {
    for (;;) {
      const f = await this.nextFrame(ms);
      if (f === null) return null;
      if (f.opcode === 8) return f.payload.length >= 2 ? f.payload.readUInt16BE(0) : 1005;
    }
  }

  write(bytes) {
    if (!this.sock.destroyed) this.sock.write(bytes);
  }

  // Resolves true when the server closes the TCP connection within ms.
  async endsWithin(ms) {
    try {
      await withTimeout(this.endedP, ms, "TCP close");
      return true;
    } catch (_) {
      return false;
    }
  }

  destroy() {
    this.sock.destroy();
  }
}

// Sends a WebSocket upgrade request for `path` and watches what follows for
// up to ms. Resolves { status, closed, refused, openPacket }:
//   status      the HTTP status of the answer (0 when none came);
//   closed      the TCP connection ended, or a WebSocket close frame came;
//   openPacket  an Engine.IO open packet ("0{...}") arrived;
//   refused     status 400, or (after a 101) closed without an open packet.
function probeUpgrade(port, path, ms = 2000) {
  return new Promise((resolve) => {
    const key = crypto.randomBytes(16).toString("base64");
    const sock = net.connect(port, HOST);
    let buf = Buffer.alloc(0);
    let done = false;
    let status = 0;
    let openPacket = false;
    let closeFrame = false;
    // Looks at what arrived so far; true once the outcome is known.
    const examine = () => {
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) return false;
      const m = /^HTTP\/1\.1 (\d{3})/.exec(buf.toString("latin1", 0, 16));
      status = m ? Number(m[1]) : -1;
      if (status !== 101) return true;
      let rest = buf.subarray(end + 4);
      // Walk the frames; a server that writes an HTTP error after the 101
      // (Node's engine.io does for a bad EIO) stops the walk.
      while (rest.length >= 2 && rest.subarray(0, 5).toString("latin1") !== "HTTP/") {
        let len = rest[1] & 0x7f;
        let off = 2;
        if (len === 126) [len, off] = [rest.length >= 4 ? rest.readUInt16BE(2) : Infinity, 4];
        else if (len === 127) [len, off] = [rest.length >= 10 ? Number(rest.readBigUInt64BE(2)) : Infinity, 10];
        if (rest.length < off + len) break;
        const op = rest[0] & 0x0f;
        if (op === 8) closeFrame = true;
        if (op === 1 && rest[off] === 0x30) openPacket = true;
        rest = rest.subarray(off + len);
      }
      return closeFrame || openPacket;
    };
    const finish = (closed) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      examine();
      const ended = closed || closeFrame;
      resolve({ status, closed: ended, openPacket, refused: status === 400 || (status === 101 && ended && !openPacket) });
    };
    const timer = setTimeout(() => finish(false), ms);
    sock.on("error", () => finish(true));
    sock.on("close", () => finish(true));
    sock.on("data", (d) => {
      buf = Buffer.concat([buf, d]);
      if (examine()) finish(false);
    });
    sock.on("connect", () => {
      sock.write(
        `GET ${path} HTTP/1.1\r\nHost: ${HOST}:${port}\r\nUpgrade: websocket\r\n` +
          `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`
      );
    });
  });
}

module.exports = { WsQueue, RawWs, frame, poll, post, pollingHandshake, probeUpgrade, eioPath };
