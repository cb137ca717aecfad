// siohub-bench against the built siohubd: every scenario at tiny sizes
// (20 clients, about a second), over each transport, with the checks the
// tool makes itself (exit 0) and ours on its RESULT JSON (every message
// delivered once, the counts adding up, the figures present); raw-ws
// against a plain WebSocket server made here with `ws`; chat's counts
// worked out here from its users, tabs and channels; runs that must fail
// exit 1 (clients refused, tabs in no room, two chat runs crossing, round
// trips never acked); bad usage exits 2. These are not timings: nothing
// here depends on how fast the machine is.
"use strict";

const childProcess = require("node:child_process");
const fs = require("node:fs");
const http = require("node:http");
const os = require("node:os");
const path = require("node:path");

const { HOST, assert, need, run } = require("./lib/harness");
const { API_KEY, SECRET, owuiServer } = require("./lib/owui");

const WebSocket = need("ws");

function benchPath() {
  return process.env.SIOHUB_BENCH || path.join(process.env.top_builddir || process.cwd(), "siohub-bench");
}

// Runs siohub-bench; resolves {code, stdout, stderr, result} (result: the
// parsed RESULT object, or null).
function bench(args, { timeoutMs = 60000 } = {}) {
  return new Promise((resolve, reject) => {
    childProcess.execFile(benchPath(), args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err && typeof err.code !== "number") return reject(err);
      const lines = stdout.split("\n").filter((l) => l.startsWith("RESULT "));
      let result = null;
      if (lines.length === 1) result = JSON.parse(lines[0].slice(7));
      resolve({ code: err ? err.code : 0, stdout, stderr, result, lines: lines.length });
    });
  });
}

// Fails with the tool's output when a run did not exit as expected.
function expectExit(r, code, what) {
  assert.equal(r.code, code, `${what}: exit ${r.code}, want ${code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
}

function checkHead(res, scenario, clients) {
  assert.equal(res.scenario, scenario);
  assert.equal(res.clients, clients);
  for (const k of ["protocol", "connected", "procs", "sources", "errors"]) assert.ok(k in res, `no ${k}`);
}

// A fanout result in which every client got every message.
function checkFanout(res, clients, rate, duration, scenario = "fanout") {
  checkHead(res, scenario, clients);
  assert.equal(res.connected, clients);
  assert.equal(res.sent, Math.round(rate * duration));
  assert.equal(res.expected, res.sent * clients);
  assert.equal(res.delivered, res.expected);
  assert.equal(res.errors, 0);
  assert.equal(res.missing, 0);
  assert.equal(res.disordered, 0);
  assert.equal(res.ok, true);
  const l = res.latency_ms;
  assert.ok(l.p50 >= 0 && l.p50 <= l.p99 && l.p99 <= l.p999 && l.p999 <= l.max, JSON.stringify(l));
  assert.ok(res.delivery_rate > 0);
}

// A plain server of the raw-ws and raw-sse contracts (nchan's shape):
// WebSocket clients of GET /sub/bench get each body POSTed to /pub/bench as
// one text frame; EventSource clients there (Accept: text/event-stream) get
// it as one event, after a comment and with an id line as nchan sends them.
async function rawServer(h) {
  const subs = new Set();
  const streams = new Set();
  let id = 0;
  const server = http.createServer((req, res) => {
    if (req.method === "GET" && req.url === "/sub/bench" &&
        /text\/event-stream/.test(req.headers.accept || "")) {
      res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" });
      res.write(": hi\n\n");
      streams.add(res);
      req.on("close", () => streams.delete(res));
      return;
    }
    if (req.method !== "POST" || req.url !== "/pub/bench") {
      res.writeHead(404).end();
      return;
    }
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString();
      for (const ws of subs) ws.send(body);
      id++;
      for (const stream of streams) stream.write(`id: ${id}\nevent: message\ndata: ${body}\n\n`);
      res.writeHead(202, { "Content-Type": "text/plain", "Content-Length": 2 }).end("ok");
    });
  });
  const wss = new WebSocket.Server({ server, path: "/sub/bench" });
  wss.on("connection", (ws) => {
    subs.add(ws);
    ws.on("close", () => subs.delete(ws));
  });
  await new Promise((resolve) => server.listen(0, HOST, resolve));
  h.defer(() => {
    for (const ws of subs) ws.terminate();
    for (const stream of streams) stream.destroy();
    wss.close();
    return new Promise((resolve) => server.close(resolve));
  });
  return server.address().port;
}

run({ timeoutMs: 240000 }, async (h) => {
  const server = await owuiServer(h, { directory: "claims", args: ["--no-presence"] });
  const target = ["--port", String(server.port), "--pid", String(server.proc.pid)];
  const auth = ["--secret", SECRET, "--api-key", API_KEY];

  await h.case("bad usage exits 2", async () => {
    const cases = [
      [],
      ["nosuch", "--port", "1"],
      ["fanout"],
      ["fanout", "--port", "0"],
      ["fanout", "--port", "1", "--host", "10.0.0.1"],
      ["fanout", "--port", "1", "--transport", "carrier-pigeon"],
      ["fanout", "--port", "1", "--protocol", "raw-ws", "--transport", "polling"],
      ["fanout", "--port", "1", "--size", "10"],
      ["fanout", "--port", "1", "--rate", "-1"],
      ["fanout", "--port", "1", "--no-such-option"],
      ["idle", "fanout", "--port", "1"],
      ["idle", "--port", "1", "--procs", "0"],
      ["chat", "--port", "1"], // no --secret: chat mints a token per user
      ["chat", "--port", "1", "--secret", "s", "-n", "5"], // the clients are users x tabs
      ["chat", "--port", "1", "--secret", "s", "--channel-size", "5000"],
      ["chat", "--port", "1", "--secret", "s", "--batch", "0"],
      ["chat", "--port", "1", "--secret", "s", "--redis", "10.0.0.1:6379"], // loopback only
      ["chat", "--port", "1", "--secret", "s", "--redis", "127.0.0.1"], // ADDR:PORT
      ["idle", "--port", "1", "--redis", "127.0.0.1:6379"], // publishes nothing
      ["polling", "--port", "1", "--transport", "sse"],
      ["polling", "--port", "1", "--concurrency", "0", "-n", "0"],
      ["sse", "--port", "1", "--transport", "polling"],
      ["sse", "--port", "1", "--protocol", "raw-ws"],
      ["fanout", "--port", "1", "--protocol", "raw-sse"], // WebSocket transport
      ["idle", "--port", "1", "--protocol", "raw-sse", "--transport", "sse"],
      ["fanout", "--port", "1", "--protocol", "raw-websocket"],
    ];
    for (const args of cases) {
      const r = await bench(args);
      expectExit(r, 2, `siohub-bench ${args.join(" ")}`);
      assert.equal(r.lines, 0, "no RESULT line on bad usage");
      assert.match(r.stderr, /siohub-bench/);
    }
  });

  await h.case("--help lists every scenario and exits 0", async () => {
    const r = await bench(["--help"]);
    expectExit(r, 0, "--help");
    for (const s of ["idle", "fanout", "churn", "chat", "polling", "sse", "--find-max", "--procs", "--sources", "--protocol",
      "--json", "--batch", "--burst", "--concurrency"]) {
      assert.ok(r.stdout.includes(s), `--help lacks ${s}`);
    }
  });

  for (const transport of ["websocket", "polling", "sse"]) {
    await h.case(`idle, 20 ${transport} clients`, async () => {
      const r = await bench(["idle", ...target, ...auth, "-n", "20", "--transport", transport, "--duration", "1", "--settle", "0.2"]);
      expectExit(r, 0, "idle");
      const res = r.result;
      checkHead(res, "idle", 20);
      assert.equal(res.transport, transport);
      assert.equal(res.connected, 20);
      assert.equal(res.errors, 0);
      assert.equal(res.ok, true);
      assert.ok(res.server_rss_kib_before > 0 && res.server_rss_kib_after > 0, JSON.stringify(res));
      assert.equal(typeof res.rss_kib_per_conn, "number");
      assert.ok(res.kernel_sock_kib_before >= 0 && res.kernel_sock_kib_after >= 0);
      assert.equal(typeof res.kernel_kib_per_conn, "number");
    });

    await h.case(`fanout, 20 ${transport} clients, 20 messages/s for 1 s`, async () => {
      const r = await bench(["fanout", ...target, ...auth, "-n", "20", "--transport", transport, "--rate", "20", "--duration", "1"]);
      expectExit(r, 0, "fanout");
      checkFanout(r.result, 20, 20, 1);
      assert.equal(r.result.transport, transport);
      assert.ok(r.result.server_cpu_s >= 0 && "server_cpu_us_per_delivery" in r.result);
    });
  }

  await h.case("fanout through /api/v1/chat-events, 2 processes, 2 source addresses, --json", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "siohub-bench-test-"));
    h.defer(() => fs.rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, "result.json");
    const r = await bench(["fanout", ...target, ...auth, "-n", "20", "--emit-api", "chat-events", "--procs", "2", "--sources", "2",
      "--publishers", "2", "--rate", "20", "--duration", "1", "--size", "500", "--json", file]);
    expectExit(r, 0, "fanout");
    checkFanout(r.result, 20, 20, 1);
    assert.equal(r.result.procs, 2);
    assert.equal(r.result.sources, 2);
    assert.deepEqual(JSON.parse(fs.readFileSync(file, "utf8")), r.result);
  });

  // ~90 six-byte escapes in a message of 600 bytes, three bytes each as
  // characters: about 330 bytes, plus what the event wraps it in.
  for (const api of ["emit", "chat-events"]) {
    await h.case(`fanout --pad-language zh through /api/v1/${api}: the escapes reach the tabs as characters`, async () => {
      const r = await bench(["fanout", ...target, ...auth, "-n", "5", "--rate", "20", "--duration", "1", "--size", "600",
        "--pad-language", "zh", "--emit-api", api]);
      expectExit(r, 0, "fanout --pad-language zh");
      checkFanout(r.result, 5, 20, 1);
      assert.equal(r.result.pad_language, "zh");
      assert.ok(r.result.data_bytes_per_delivery > 300 && r.result.data_bytes_per_delivery < 400,
        `data bytes per delivery ${r.result.data_bytes_per_delivery}`);
    });
  }

  await h.case("fanout --find-max steps the rate up to --max-rate", async () => {
    const r = await bench(["fanout", ...target, ...auth, "-n", "10", "--find-max", "--rate", "10", "--max-rate", "40",
      "--p99-limit", "2000", "--duration", "0.5"]);
    expectExit(r, 0, "find-max");
    const res = r.result;
    // A warm-up window at --rate first, outside the search.
    assert.deepEqual(res.rounds.map((x) => x.rate), [10, 10, 20, 40]);
    assert.deepEqual(res.rounds.map((x) => x.warmup === true), [true, false, false, false]);
    for (const round of res.rounds) {
      assert.equal(round.pass, true);
      assert.equal(round.delivered, round.expected);
    }
    assert.equal(res.max_rate_p99_under_50ms, 40);
  });

  await h.case("fanout --find-max tries a rate that misses once more, then stops", async () => {
    // No delivery is that fast: every window misses the bound.
    const r = await bench(["fanout", ...target, ...auth, "-n", "10", "--find-max", "--rate", "10",
      "--p99-limit", "0.001", "--duration", "0.5"]);
    expectExit(r, 1, "find-max with nothing held");
    const res = r.result;
    assert.deepEqual(res.rounds.map((x) => [x.rate, x.pass, x.warmup === true]),
      [[10, false, true], [10, false, false], [10, false, false]]);
    for (const round of res.rounds) assert.equal(round.delivered, round.expected);
    assert.equal(res.max_rate_p99_under_50ms, 0);
    assert.match(r.stdout, /no rate held/);
  });

  await h.case("churn: 4 slots for 1 s", async () => {
    const r = await bench(["churn", ...target, ...auth, "-n", "4", "--duration", "1"]);
    expectExit(r, 0, "churn");
    checkHead(r.result, "churn", 4);
    assert.ok(r.result.handshakes > 0 && r.result.handshakes_per_s > 0, JSON.stringify(r.result));
    assert.equal(r.result.errors, 0);
  });

  // What a chat run owes each tab (see sc_chat.c): user u has 1 + u % 3
  // tabs; each gets its user's T x D tokens and every typing event of its
  // channel (R x D per member).
  function chatExpected(users, channelSize, tokensPerSecond, typingRate, duration) {
    const tabs = (u) => 1 + (u % 3);
    let clients = 0, chat = 0, typing = 0;
    for (let u = 0; u < users; u++) {
      const c0 = Math.floor(u / channelSize) * channelSize;
      const members = Math.min(users, c0 + channelSize) - c0;
      clients += tabs(u);
      chat += tabs(u) * tokensPerSecond * duration;
      typing += tabs(u) * members * typingRate * duration;
    }
    return { clients, chat, typing };
  }

  function checkChat(res, want) {
    checkHead(res, "chat", want.clients);
    assert.equal(res.connected, want.clients);
    assert.equal(res.chat_expected, want.chat, "chat_expected");
    assert.equal(res.typing_expected, want.typing, "typing_expected");
    assert.equal(res.chat_delivered, want.chat);
    assert.equal(res.typing_delivered, want.typing);
    assert.equal(res.delivered, want.chat + want.typing);
    assert.equal(res.expected, res.delivered);
    for (const k of ["errors", "missing", "disordered", "chat_missing", "typing_missing"]) assert.equal(res[k], 0, k);
    assert.equal(res.ok, true);
    for (const k of ["latency_ms", "typing_latency_ms"]) {
      const l = res[k];
      assert.ok(l.p50 >= 0 && l.p50 <= l.p99 && l.p99 <= l.p999 && l.p999 <= l.max, `${k} ${JSON.stringify(l)}`);
    }
    assert.ok(res.delivery_rate > 0 && "server_cpu_us_per_delivery" in res);
  }

  await h.case("chat: 12 users x 1-3 tabs, tokens in bursts posted as arrays, typing in channels of 5, replies of 7 tokens", async () => {
    const r = await bench(["chat", ...target, ...auth, "--users", "12", "--channel-size", "5", "--tokens-per-second", "10",
      "--burst", "5", "--typing-rate", "2", "--duration", "1", "--reply-tokens", "7"]);
    expectExit(r, 0, "chat");
    const want = chatExpected(12, 5, 10, 2, 1);
    checkChat(r.result, want);
    // Each tab checked every token's content, the reply so far, byte for
    // byte; 10 tokens a user is one reply of 7 and the start of the next.
    assert.equal(r.result.reply_tokens, 7);
    assert.ok(r.result.reply_bytes > 7 && r.result.reply_bytes < 7 * 16, `${r.result.reply_bytes} bytes`);
    assert.equal(r.result.chat_sent, 12 * 10);
    assert.equal(r.result.typing_sent, 12 * 2);
    assert.equal(r.result.channels, 3);
    // Bursts of 5 go together: never more requests than bursts.
    assert.ok(r.result.requests > 0 && r.result.requests <= (12 * 10) / 5, `${r.result.requests} requests`);
  });

  await h.case("chat: a reply in Chinese (every character a \\u escape, emoji as surrogate pairs) reaches every tab as sent", async () => {
    const r = await bench(["chat", ...target, ...auth, "--users", "12", "--channel-size", "5", "--tokens-per-second", "20",
      "--burst", "5", "--typing-rate", "1", "--duration", "1", "--reply-tokens", "300", "--reply-language", "zh"]);
    expectExit(r, 0, "chat --reply-language zh");
    checkChat(r.result, chatExpected(12, 5, 20, 1, 1));
    assert.equal(r.result.reply_language, "zh");
    // ~12 escaped bytes a token (a character is 6).
    assert.ok(r.result.reply_bytes > 300 * 8 && r.result.reply_bytes < 300 * 18, `${r.result.reply_bytes} bytes`);
    const bad = await bench(["chat", ...target, ...auth, "--users", "1", "--duration", "1", "--reply-language", "fr"]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /bad --reply-language 'fr' \(en or zh\)/);
  });

  await h.case("chat: one object per request (--batch 1), 3 processes (users split across them), 1 publisher", async () => {
    const r = await bench(["chat", ...target, ...auth, "--users", "12", "--channel-size", "5", "--tokens-per-second", "10",
      "--typing-rate", "2", "--duration", "1", "--batch", "1", "--procs", "3", "--publishers", "1"]);
    expectExit(r, 0, "chat --batch 1");
    checkChat(r.result, chatExpected(12, 5, 10, 2, 1));
    assert.equal(r.result.requests, 12 * 10);
    assert.equal(r.result.procs, 3);
  });

  await h.case("chat: tabs that join no room (a token with another secret) fail the probes: exit 1", async () => {
    const r = await bench(["chat", ...target, "--secret", "not-the-secret", "--api-key", API_KEY, "--users", "4",
      "--duration", "0.5", "--connect-timeout", "2"]);
    expectExit(r, 1, "chat, wrong secret");
    assert.equal(r.result.ok, false);
    assert.equal(r.result.delivered, undefined, "no window ran");
    assert.ok(r.result.errors > 0);
    assert.match(r.stdout, /probes/);
  });

  await h.case("chat: two runs with the same user names at once see each other's tokens: both exit 1", async () => {
    const args = ["chat", ...target, ...auth, "--users", "6", "--tokens-per-second", "20", "--typing-rate", "5",
      "--duration", "1.5", "--drain-timeout", "1"];
    const [a, b] = await Promise.all([bench(args), bench(args)]);
    for (const r of [a, b]) {
      expectExit(r, 1, "overlapping chat runs");
      assert.equal(r.result.ok, false);
      assert.ok(r.result.errors > 0, JSON.stringify(r.result));
    }
  });

  await h.case("polling: 4 handshake slots, then 10 clients doing user-join round trips", async () => {
    const r = await bench(["polling", ...target, ...auth, "-n", "10", "--concurrency", "4", "--duration", "1"]);
    expectExit(r, 0, "polling");
    const res = r.result;
    checkHead(res, "polling", 10);
    assert.equal(res.transport, "polling");
    assert.equal(res.connected, 10);
    assert.ok(res.handshakes > 0 && res.handshakes_per_s > 0, JSON.stringify(res));
    assert.ok(res.round_trips > 0 && res.round_trips_per_s > 0, JSON.stringify(res));
    for (const k of ["connect_latency_ms", "round_trip_latency_ms"]) assert.ok(res[k].p50 > 0 && res[k].p50 <= res[k].max, k);
    assert.equal(res.errors, 0);
    assert.ok("server_cpu_us_per_handshake" in res && "server_cpu_us_per_round_trip" in res);
    assert.equal(res.ok, true);
    // Every slot left with the close packet: only the 10 round-trip clients' sessions were left open.
    const metrics = (await server.api("GET", "/metrics", undefined, { key: null })).text;
    assert.ok(Number(/^siohub_connections\{transport="polling"\} (\d+)$/m.exec(metrics)[1]) <= 10, "sessions left behind");
  });

  await h.case("polling: user-join with a token of another secret is never acked: exit 1", async () => {
    const r = await bench(["polling", ...target, "--secret", "not-the-secret", "--api-key", API_KEY, "-n", "3",
      "--concurrency", "0", "--duration", "0.3", "--drain-timeout", "0.5"]);
    expectExit(r, 1, "polling, wrong secret");
    assert.equal(r.result.round_trips, 0);
    assert.ok(r.result.errors > 0);
  });

  await h.case("sse: 20 SSE streams, 20 messages/s for 1 s; a refused token exits 1", async () => {
    let r = await bench(["sse", ...target, ...auth, "-n", "20", "--rate", "20", "--duration", "1"]);
    expectExit(r, 0, "sse");
    checkFanout(r.result, 20, 20, 1, "sse");
    assert.equal(r.result.transport, "sse");
    r = await bench(["sse", ...target, "--secret", "not-the-secret", "--api-key", API_KEY, "-n", "3", "--duration", "0.3"]);
    expectExit(r, 1, "sse, wrong secret");
    assert.match(r.stdout, /not every client connected: .*401/);
  });

  await h.case("a token with another secret: connected (Open WebUI's always_connect) but in no room: exit 1", async () => {
    const r = await bench(["fanout", ...target, "--secret", "not-the-secret", "--api-key", API_KEY, "-n", "5",
      "--duration", "0.5", "--drain-timeout", "1"]);
    expectExit(r, 1, "wrong secret");
    assert.equal(r.result.ok, false);
    assert.equal(r.result.delivered, 0);
    assert.equal(r.result.missing, r.result.expected);
    assert.ok(r.result.expected > 0);
  });

  await h.case("clients refused (wrong path): exit 1 with the reason", async () => {
    const r = await bench(["idle", ...target, ...auth, "--path", "/nowhere/", "-n", "5", "--duration", "0.2"]);
    expectExit(r, 1, "wrong path");
    assert.equal(r.result.ok, false);
    assert.ok(r.result.errors >= 5, JSON.stringify(r.result));
    assert.match(r.stdout, /first error: .*(HTTP|refused)/);
  });

  if (process.env.REDIS_SERVER) {
    await h.case("a fleet of two nodes: subscribers round-robin over both ports", async () => {
      const redis = await h.redis();
      const fleetArgs = ["--no-presence", "--websocket-manager", "redis", "--redis-url", redis.url()];
      const a = await owuiServer(h, { directory: "claims", args: fleetArgs });
      const b = await owuiServer(h, { directory: "claims", args: fleetArgs });
      const opened = async (node) => {
        const metrics = (await node.api("GET", "/metrics", undefined, { key: null })).text;
        return Number(/^siohub_sessions_opened_total (\d+)$/m.exec(metrics)[1]);
      };
      const before = [await opened(a), await opened(b)];
      const r = await bench(["fanout", "--port", `${a.port},${b.port}`, "--pid", `${a.proc.pid},${b.proc.pid}`, ...auth,
        "-n", "20", "--rate", "20", "--duration", "1", "--emit-port", String(b.port)]);
      expectExit(r, 0, "fleet fanout");
      checkFanout(r.result, 20, 20, 1);
      // Each node served half of the clients.
      assert.deepEqual([(await opened(a)) - before[0], (await opened(b)) - before[1]], [10, 10]);
    });
  }

  if (process.env.REDIS_SERVER) {
    await h.case("--redis: chat and fanout published as python-socketio pub/sub emits to a siohubd fleet member", async () => {
      const redis = await h.redis();
      const fleetArgs = ["--no-presence", "--websocket-manager", "redis", "--redis-url", redis.url()];
      const node = await owuiServer(h, { directory: "claims", args: fleetArgs });
      const via = ["--redis", `127.0.0.1:${redis.port}`];
      const mine = ["--port", String(node.port), "--pid", String(node.proc.pid), ...auth];
      let r = await bench(["chat", ...mine, ...via, "--users", "12", "--channel-size", "5", "--tokens-per-second", "10",
        "--burst", "5", "--typing-rate", "2", "--duration", "1", "--reply-tokens", "300"]);
      expectExit(r, 0, "chat --redis");
      checkChat(r.result, chatExpected(12, 5, 10, 2, 1));
      assert.equal(r.result.reply_tokens, 300);
      assert.match(r.result.publish_via, /^redis/);
      assert.equal(r.result.requests, 12 * 10); // one PUBLISH per token
      r = await bench(["fanout", ...mine, ...via, "-n", "10", "--rate", "20", "--duration", "1", "--size", "600",
        "--pad-language", "zh"]);
      expectExit(r, 0, "fanout --redis");
      checkFanout(r.result, 10, 20, 1);
      // Passed on from its text, the escapes as characters (as above).
      assert.ok(r.result.data_bytes_per_delivery > 300 && r.result.data_bytes_per_delivery < 400,
        `data bytes per delivery ${r.result.data_bytes_per_delivery}`);
      // A channel no server listens on: every PUBLISH reaches no one.
      r = await bench(["fanout", ...mine, ...via, "--redis-channel", "nobody-here", "-n", "3", "--rate", "10",
        "--duration", "0.5", "--drain-timeout", "0.5"]);
      expectExit(r, 1, "fanout --redis to an empty channel");
      assert.match(r.stdout, /PUBLISH reached no subscriber of 'nobody-here'/);
    });
  }

  await h.case("raw-ws: fanout and idle against a plain WebSocket server", async () => {
    const port = await rawServer(h);
    const raw = ["--protocol", "raw-ws", "--port", String(port)];
    let r = await bench(["fanout", ...raw, "-n", "20", "--rate", "20", "--duration", "1"]);
    expectExit(r, 0, "raw-ws fanout");
    checkFanout(r.result, 20, 20, 1);
    assert.equal(r.result.protocol, "raw-ws");
    r = await bench(["idle", ...raw, "-n", "20", "--duration", "0.5", "--settle", "0"]);
    expectExit(r, 0, "raw-ws idle");
    assert.equal(r.result.connected, 20);
  });

  await h.case("raw-sse: sse and fanout --transport sse against a plain SSE server", async () => {
    const port = await rawServer(h);
    const raw = ["--protocol", "raw-sse", "--port", String(port)];
    let r = await bench(["sse", ...raw, "-n", "20", "--rate", "20", "--duration", "1"]);
    expectExit(r, 0, "raw-sse sse");
    checkFanout(r.result, 20, 20, 1, "sse");
    assert.equal(r.result.protocol, "raw-sse");
    r = await bench(["fanout", ...raw, "--transport", "sse", "-n", "10", "--rate", "10", "--duration", "1"]);
    expectExit(r, 0, "raw-sse fanout --transport sse");
    checkFanout(r.result, 10, 10, 1);
  });
});
