// tests/interop/lib/sse.js — SSE clients for the interop tests: a raw
// reader over node:http (every byte and header visible, the connection
// dropped at will) and the npm `eventsource` package (what a Node or
// browser EventSource does: Last-Event-ID and retry handled by the
// library) behind a fetch that can drop the stream mid-way.
"use strict";

const http = require("node:http");

const { HOST, need, sleep } = require("./harness");

const SSE_PATH = "/ws/socket.io/sse";

// A minimal SSE parser (the HTML standard's rules): fields up to the
// first ':', one optional space after it, events dispatched at a blank
// line when they have data; comments counted.
class SseParser {
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.buf = "";
    this.reset();
    this.comments = 0;
    this.retry = null;
  }

  reset() {
    this.data = [];
    this.event = "";
    this.id = undefined;
  }

  feed(text) {
    this.buf += text;
    let nl;
    while ((nl = this.buf.search(/\r\n|\r|\n/)) >= 0) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + (this.buf.startsWith("\r\n", nl) ? 2 : 1));
      this.line(line);
    }
  }

  line(line) {
    if (line === "") {
      if (this.data.length) {
        this.onEvent({ event: this.event || "message", data: this.data.join("\n"), id: this.id });
      }
      this.reset();
      return;
    }
    if (line.startsWith(":")) {
      this.comments++;
      return;
    }
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") this.data.push(value);
    else if (field === "event") this.event = value;
    else if (field === "id") this.id = value;
    else if (field === "retry") this.retry = Number(value);
  }
}

// Opens a raw SSE stream. Resolves once the response headers are in:
// { status, headers, events: [{event, data, id, json}], text (all bytes so
// far), parser, ended, next(pred, ms), close() }. A non-200 answer is
// read to its end first (text holds the body).
function openRaw(port, { path = SSE_PATH, headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: HOST, port, method: "GET", path, headers, agent: false }, (res) => {
      const s = {
        status: res.statusCode,
        headers: res.headers,
        events: [],
        text: "",
        ended: false,
        waiters: [],
        close() {
          req.destroy();
          res.destroy();
        },
        // Resolves with the first event (from index `from`) matching pred.
        async next(pred, ms = 5000, from = 0) {
          const deadline = Date.now() + ms;
          for (;;) {
            const e = s.events.slice(from).find(pred);
            if (e) return e;
            if (Date.now() > deadline) throw new Error(`timeout after ${ms} ms waiting for an SSE event; got ${JSON.stringify(s.events.map((x) => x.event))}`);
            await sleep(5);
          }
        },
      };
      s.parser = new SseParser((e) => {
        try {
          e.json = JSON.parse(e.data);
        } catch (_) {
          e.json = undefined;
        }
        s.events.push(e);
      });
      res.setEncoding("utf8");
      res.on("data", (c) => {
        s.text += c;
        s.parser.feed(c);
      });
      res.on("end", () => {
        s.ended = true;
      });
      res.on("error", () => {
        s.ended = true;
      });
      res.on("close", () => {
        s.ended = true;
      });
      if (res.statusCode !== 200) res.on("end", () => resolve(s));
      else resolve(s);
    });
    req.setTimeout(10000, () => req.destroy(new Error("SSE: no answer in 10 s")));
    req.on("error", reject);
    req.end();
  });
}

// A fetch for the `eventsource` package that adds headers to every
// request (Authorization, Cookie), records each request's headers, and
// can drop the current stream: the body the library reads ends as if the
// network cut it (the library then reconnects after `retry` with
// Last-Event-ID), and the real connection is torn down.
function droppableFetch(extraHeaders = {}) {
  const f = {
    requests: [],
    current: null,
    gate: null,
    async fetch(url, init) {
      const headers = { ...(init.headers || {}), ...extraHeaders };
      f.requests.push(headers);
      if (f.gate) await f.gate;
      const res = await fetch(url, { ...init, headers });
      if (!res.body) return res;
      const reader = res.body.getReader();
      let ctl;
      let closed = false;
      const body = new ReadableStream({
        start(c) {
          ctl = c;
        },
        async pull(c) {
          try {
            const { done, value } = await reader.read();
            if (closed) return;
            if (done) {
              closed = true;
              c.close();
            } else {
              c.enqueue(value);
            }
          } catch (e) {
            if (!closed) {
              closed = true;
              c.error(e);
            }
          }
        },
        cancel(reason) {
          closed = true;
          reader.cancel(reason).catch(() => {});
        },
      });
      const conn = {
        drop() {
          if (!closed) {
            closed = true;
            ctl.close();
          }
          reader.cancel().catch(() => {});
        },
      };
      f.current = conn;
      return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
    },
    drop() {
      if (f.current) f.current.drop();
    },
    // Holds every new request until the returned function is called.
    hold() {
      let release;
      f.gate = new Promise((resolve) => {
        release = resolve;
      });
      return () => {
        f.gate = null;
        release();
      };
    },
  };
  return f;
}

// An EventSource (npm `eventsource`) that records the named events it is
// told about: .events [{event, data, json, id}], .opens, .errors.
function openEventSource(url, { headers = {}, events = [] } = {}) {
  const { EventSource } = need("eventsource");
  const dropper = droppableFetch(headers);
  const es = new EventSource(url, { fetch: dropper.fetch });
  const rec = { es, dropper, events: [], opens: 0, errors: [] };
  es.addEventListener("open", () => rec.opens++);
  es.addEventListener("error", (e) => rec.errors.push(e && e.message));
  for (const name of events) {
    es.addEventListener(name, (e) => {
      let json;
      try {
        json = JSON.parse(e.data);
      } catch (_) {
        json = undefined;
      }
      rec.events.push({ event: name, data: e.data, json, id: e.lastEventId });
    });
  }
  rec.of = (name) => rec.events.filter((e) => e.event === name);
  rec.close = () => es.close();
  return rec;
}

// POST <path>sse/<sid>: resolves {status, headers, text, json}.
function post(port, sid, body, { headers = {}, timeout = 10000 } = {}) {
  const payload = typeof body === "string" ? body : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: HOST,
        port,
        method: "POST",
        path: `${SSE_PATH}/${sid}`,
        headers: { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(payload), ...headers },
        agent: false,
      },
      (res) => {
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
      }
    );
    req.setTimeout(timeout, () => req.destroy(new Error(`POST ${sid}: no answer in ${timeout} ms`)));
    req.on("error", reject);
    req.end(payload);
  });
}

module.exports = { SSE_PATH, SseParser, droppableFetch, openEventSource, openRaw, post };
