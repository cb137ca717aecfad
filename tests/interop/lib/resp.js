// tests/interop/lib/resp.js — a tiny Redis client (RESP2 over one TCP
// connection) for the fleet tests: read the pools and lock keys the
// daemons write, publish hand-written pub/sub messages, watch a channel.
// No npm module: the tests need a handful of commands, and a client written
// here cannot drift with a registry.
//
//   const c = await RespClient.connect(port);
//   await c.command("HGETALL", "open-webui:session_pool");   // -> ["k", "v", ...]
//   await c.subscribe("socketio", (channel, payload) => ...); // then no commands
//   c.close();
//
// Replies: simple and bulk strings as JS strings (or Buffers with
// { buffers: true }), integers as numbers, nil as null, arrays as arrays;
// an error reply rejects with an Error carrying its text.
"use strict";

const net = require("node:net");

const CRLF = Buffer.from("\r\n");

// Parses one reply from buf at off; returns [value, nextOffset] or null
// when more bytes are needed. Errors come back as { error: text }.
function parseReply(buf, off, buffers) {
  if (off >= buf.length) return null;
  const type = String.fromCharCode(buf[off]);
  const eol = buf.indexOf(CRLF, off);
  if (eol < 0) return null;
  const line = buf.toString("utf8", off + 1, eol);
  const next = eol + 2;
  switch (type) {
    case "+":
      return [line, next];
    case "-":
      return [{ error: line }, next];
    case ":":
      return [Number(line), next];
    case "$": {
      const n = Number(line);
      if (n < 0) return [null, next];
      if (buf.length < next + n + 2) return null;
      const v = buf.subarray(next, next + n);
      return [buffers ? Buffer.from(v) : v.toString("utf8"), next + n + 2];
    }
    case "*": {
      const n = Number(line);
      if (n < 0) return [null, next];
      const out = [];
      let p = next;
      for (let i = 0; i < n; i++) {
        const r = parseReply(buf, p, buffers);
        if (!r) return null;
        out.push(r[0]);
        p = r[1];
      }
      return [out, p];
    }
    default:
      throw new Error(`RESP: unexpected type byte 0x${buf[off].toString(16)}`);
  }
}

function encode(args) {
  const parts = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = Buffer.isBuffer(a) ? a : Buffer.from(String(a), "utf8");
    parts.push(Buffer.from(`$${b.length}\r\n`), b, CRLF);
  }
  return Buffer.concat(parts);
}

class RespClient {
  constructor(sock, opts) {
    this.sock = sock;
    this.buffers = !!opts.buffers;
    this.buf = Buffer.alloc(0);
    this.pending = [];
    this.onPush = null;
    this.closed = false;
    sock.on("data", (d) => this.onData(d));
    const fail = (err) => {
      this.closed = true;
      for (const p of this.pending.splice(0)) p.reject(err);
    };
    sock.on("error", (e) => fail(e));
    sock.on("close", () => fail(new Error("Redis connection closed")));
  }

  // Resolves once connected; rejects after `timeout` ms or on a refusal.
  static connect(port, { host = "127.0.0.1", timeout = 2000, buffers = false } = {}) {
    return new Promise((resolve, reject) => {
      const sock = net.connect({ host, port });
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new Error(`Redis ${host}:${port}: no connection in ${timeout} ms`));
      }, timeout);
      sock.once("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
      sock.once("connect", () => {
        clearTimeout(timer);
        sock.setNoDelay(true);
        resolve(new RespClient(sock, { buffers }));
      });
    });
  }

  onData(d) {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    let off = 0;
    for (;;) {
      const r = parseReply(this.buf, off, this.buffers);
      if (!r) break;
      off = r[1];
      this.dispatch(r[0]);
    }
    this.buf = this.buf.subarray(off);
  }

  dispatch(v) {
    // A published message, once subscribed (pmessage carries the pattern).
    if (this.onPush && Array.isArray(v) && (String(v[0]) === "message" || String(v[0]) === "pmessage")) {
      const isP = String(v[0]) === "pmessage";
      this.onPush(String(isP ? v[2] : v[1]), isP ? v[3] : v[2]);
      return;
    }
    const p = this.pending.shift();
    if (!p) return;
    if (v && typeof v === "object" && !Array.isArray(v) && !Buffer.isBuffer(v) && "error" in v) {
      p.reject(new Error(`Redis: ${v.error}`));
    } else {
      p.resolve(v);
    }
  }

  command(...args) {
    if (this.closed) return Promise.reject(new Error("Redis connection closed"));
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject });
      this.sock.write(encode(args));
    });
  }

  // Subscribes to channels (or patterns with psubscribe: true); onMessage
  // gets (channel, payload) for each message. The connection then takes no
  // other command.
  async subscribe(channels, onMessage, { psubscribe = false } = {}) {
    this.onPush = onMessage;
    const list = Array.isArray(channels) ? channels : [channels];
    const p = new Promise((resolve, reject) => {
      // One confirmation per channel.
      for (let i = 0; i < list.length; i++) {
        this.pending.push({ resolve: i === list.length - 1 ? resolve : () => {}, reject });
      }
    });
    this.sock.write(encode([psubscribe ? "PSUBSCRIBE" : "SUBSCRIBE", ...list]));
    return p;
  }

  // HGETALL as an object of field -> JSON.parse(value) (the pools' form).
  async hgetallJson(key) {
    const flat = await this.command("HGETALL", key);
    const out = {};
    for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = JSON.parse(String(flat[i + 1]));
    return out;
  }

  close() {
    this.closed = true;
    this.sock.destroy();
  }
}

module.exports = { RespClient };
