// Headless Chromium (Debian's chromium, driven by npm playwright-core with
// executablePath) against the openwebui app, through a same-origin front:
// Debian's nginx running contrib/nginx/siohub.conf (or, without nginx, a
// Node reverse proxy) routes /ws/socket.io/ to siohubd and everything else
// to a small test web server standing in for Open WebUI (pages, the real
// socket.io-client browser bundle, the `token` cookie). Between the front
// and siohubd a TCP relay sees every request and can cut a stream.
//
// (1) Open WebUI's options (path /ws/socket.io, transports ['websocket'],
//     auth {token}): the page connects over WebSocket and gets chat events.
// (2) window.WebSocket removed before socket.io-client loads, transports
//     ['polling', 'websocket']: the page connects over polling, never
//     upgrades, and gets chat events.
// (3) An EventSource page authenticated by the `token` cookie alone gets
//     chat events; the relay cuts its stream and holds the browser's
//     reconnection while more events are posted; released, the browser
//     resumes by itself with Last-Event-ID and has every event once, in
//     order.
//
// Skips (77) without chromium or playwright-core, unless
// SIOHUB_REQUIRE_INTEROP is set (then it fails, and a missing nginx too).
// SIOHUB_BROWSER_PROXY=node uses the Node proxy even where nginx exists;
// CHROMIUM names another browser binary.
"use strict";

const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { createRequire } = require("node:module");

const { HOST, assert, need, run, skip, sleep } = require("./lib/harness");
const { owuiServer, serialAgent, token, waitFor } = require("./lib/owui");
const { Nginx, Relay, httpProxy, nginxPath } = require("./lib/proxy");

const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--no-first-run",
  "--disable-quic",
  "--disable-sync",
];

const USERS = [
  { id: "u-ann", name: "Ann", role: "user" },
  { id: "u-bob", name: "Bob", role: "user" },
  { id: "u-cat", name: "Cat", role: "user" },
];

const EVENTS = 20;

function chromiumPath() {
  const candidates = process.env.CHROMIUM ? [process.env.CHROMIUM] : ["/usr/bin/chromium", "/usr/bin/chromium-browser"];
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

// The installed socket.io-client's browser bundle (the file a page loads
// from a CDN or Open WebUI's build).
function socketIoBundle() {
  const bases = [];
  if (process.env.top_builddir) bases.push(path.join(process.env.top_builddir, "tests", "interop"));
  bases.push(path.join(__dirname));
  for (const base of bases) {
    try {
      const pkg = createRequire(path.join(base, "package.json")).resolve("socket.io-client/package.json");
      return fs.readFileSync(path.join(path.dirname(pkg), "dist", "socket.io.min.js"));
    } catch (e) {
      if (e.code !== "MODULE_NOT_FOUND" && e.code !== "ENOENT") throw e;
    }
  }
  return null;
}

// ---------------------------------------------------------------- the pages

// Open WebUI's client, as in src/routes/+layout.svelte: io() on the page's
// origin with its path, transports, auth and reconnection settings. What
// happens is recorded in window.T for the test to read.
const SIO_PAGE_JS = `"use strict";
(function () {
  const cfg = window.CFG;
  const st = (window.T = { events: [], connects: 0, disconnects: [], errors: [], opened: [], upgrades: [],
    transport: null, sid: null, joined: null, webSocket: typeof WebSocket });
  const socket = io({ path: "/ws/socket.io", transports: cfg.transports, auth: { token: cfg.token },
    reconnection: true, reconnectionDelay: 1000, reconnectionDelayMax: 5000, randomizationFactor: 0.5 });
  window.socket = socket;
  socket.io.on("open", () => {
    const engine = socket.io.engine;
    st.opened.push(engine.transport.name);
    engine.on("upgrade", (t) => st.upgrades.push(t.name));
  });
  socket.on("connect", () => {
    st.connects++;
    st.sid = socket.id;
    st.transport = socket.io.engine.transport.name;
    socket.emit("user-join", { auth: { token: cfg.token } }, (ack) => { st.joined = ack === undefined ? "no args" : ack; });
  });
  socket.on("disconnect", (reason) => st.disconnects.push(reason));
  socket.on("connect_error", (e) => st.errors.push(String(e && e.message)));
  socket.onAny((ev, ...args) => st.events.push({ ev, args }));
  st.now = () => socket.io.engine && socket.io.engine.transport.name;
})();
`;

// A same-origin EventSource: no code for credentials, the browser sends
// the token cookie; Last-Event-ID and the retry delay are its own.
const SSE_PAGE_JS = `"use strict";
(function () {
  const st = (window.T = { events: [], opens: 0, errors: 0, states: [] });
  const es = new EventSource("/ws/socket.io/sse");
  window.es = es;
  es.onopen = () => st.opens++;
  es.onerror = () => { st.errors++; st.states.push(es.readyState); };
  for (const name of ["connect", "chat-events", "reset"]) {
    es.addEventListener(name, (e) => st.events.push({ ev: name, id: e.lastEventId, data: e.data }));
  }
})();
`;

function sioPage(cfg) {
  const noWs = cfg.noWebSocket ? "<script>delete window.WebSocket; window.WebSocket = undefined;</script>\n" : "";
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>siohub: socket.io-client</title>
<script>window.CFG = ${JSON.stringify(cfg)};</script>
${noWs}<script src="/static/socket.io.min.js"></script>
<script src="/static/sio-page.js"></script>
</head><body>socket.io-client</body></html>
`;
}

const SSE_PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>siohub: EventSource</title>
<script src="/static/sse-page.js"></script>
</head><body>EventSource</body></html>
`;

// ---------------------------------------------------------------- the test

run({ timeoutMs: 90000, caseTimeoutMs: 30000 }, async (h) => {
  const { chromium } = need("playwright-core");
  const exe = chromiumPath();
  if (!exe) skip("chromium not found (Debian's package chromium; or set CHROMIUM)");
  const bundle = socketIoBundle();
  if (!bundle) skip("socket.io-client's dist/socket.io.min.js is not installed");
  const useNginx = process.env.SIOHUB_BROWSER_PROXY !== "node" && nginxPath() !== null;
  if (!useNginx && process.env.SIOHUB_REQUIRE_INTEROP && process.env.SIOHUB_BROWSER_PROXY !== "node") {
    skip("nginx not found (Debian's package nginx-light), needed to test contrib/nginx/siohub.conf");
  }

  const server = await owuiServer(h, { users: USERS, pingInterval: 1000, pingTimeout: 3000 });
  const relay = await new Relay(server.port).start();
  h.defer(() => relay.stop());
  const agent = serialAgent(h);
  const tokens = { ann: token("u-ann"), bob: token("u-bob"), cat: token("u-cat") };

  // The stand-in for Open WebUI: pages, scripts, and the token cookie with
  // the EventSource page (as Open WebUI sets it at sign-in).
  const statics = {
    "/static/socket.io.min.js": ["text/javascript", bundle],
    "/static/sio-page.js": ["text/javascript", SIO_PAGE_JS],
    "/static/sse-page.js": ["text/javascript", SSE_PAGE_JS],
  };
  const serve = (req, res) => {
    const url = new URL(req.url, "http://x");
    if (statics[url.pathname]) {
      const [type, body] = statics[url.pathname];
      res.writeHead(200, { "Content-Type": type, "Cache-Control": "no-store" });
      res.end(body);
    } else if (url.pathname === "/sio.html") {
      const who = url.searchParams.get("user");
      const cfg = { token: tokens[who], transports: url.searchParams.get("transports").split(","), noWebSocket: url.searchParams.has("nows") };
      res.writeHead(200, { "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store" });
      res.end(sioPage(cfg));
    } else if (url.pathname === "/sse.html") {
      res.writeHead(200, {
        "Content-Type": "text/html; charset=utf-8",
        "Cache-Control": "no-store",
        "Set-Cookie": `token=${tokens[url.searchParams.get("user")]}; Path=/; HttpOnly; SameSite=Lax`,
      });
      res.end(SSE_PAGE);
    } else if (url.pathname === "/favicon.ico") {
      res.writeHead(204).end();
    } else {
      res.writeHead(404, { "Content-Type": "text/plain" }).end("not found\n");
    }
  };
  const isRealtime = (req) => req.url.startsWith("/ws/socket.io/");
  const web = await httpProxy({ targetPort: relay.port, route: useNginx ? () => false : isRealtime, fallback: serve });
  h.defer(() => web.stop());
  let front = web;
  if (useNginx) front = await new Nginx(h, { siohubPort: relay.port, webPort: web.port }).start();
  const origin = `http://${HOST}:${front.port}`;
  console.log(`# front: ${useNginx ? `nginx (contrib/nginx/siohub.conf) on ${front.port}` : `Node proxy on ${front.port}`}; relay ${relay.port} -> siohubd ${server.port}`);

  // Chromium with a profile of its own, removed at the end (after close).
  const profile = fs.mkdtempSync(path.join(process.env.TMPDIR || os.tmpdir(), "siohub-chromium-"));
  const dropProfile = () => {
    try {
      fs.rmSync(profile, { recursive: true, force: true, maxRetries: 3 });
    } catch (_) {
      /* best effort */
    }
  };
  h.defer(dropProfile);
  // Also on a hard exit (the file's timeout): playwright kills the browser
  // in its own exit handler, registered before this one.
  process.on("exit", dropProfile);
  const browserLog = fs.openSync(h.logPath("browser"), "w");
  h.defer(() => fs.closeSync(browserLog));
  const logLine = (s) => fs.writeSync(browserLog, `${new Date().toISOString()} ${s}\n`);
  const t0 = Date.now();
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: exe,
    headless: true,
    args: CHROMIUM_FLAGS,
    timeout: 30000,
  });
  h.defer(() => context.close());
  console.log(`# ${exe} ${context.browser() ? context.browser().version() : ""} started in ${Date.now() - t0} ms`);

  async function openPage(url, defer) {
    const page = await context.newPage();
    defer(() => page.close());
    page.on("console", (m) => logLine(`[${url}] console.${m.type()}: ${m.text()}`));
    page.on("pageerror", (e) => logLine(`[${url}] pageerror: ${e && e.stack}`));
    page.on("requestfailed", (r) => logLine(`[${url}] request failed: ${r.url()} ${r.failure() && r.failure().errorText}`));
    await page.goto(`${origin}${url}`, { timeout: 10000 });
    return page;
  }
  const state = (page) => page.evaluate(() => JSON.parse(JSON.stringify(window.T)));

  const chat = (userId, n, tag) =>
    server.api("POST", "/api/v1/chat-events", { user_id: userId, chat_id: `chat-${tag}`, message_id: "m-1", data: { type: "chat:completion", data: { n, content: `token ${n}` } } }, { agent });
  async function postChats(userId, from, to, tag) {
    const answers = await Promise.all(Array.from({ length: to - from }, (_, i) => chat(userId, from + i, tag)));
    answers.forEach((r, i) => assert.deepEqual([r.status, r.json], [200, { recipients: 1 }], `chat event ${from + i}`));
  }
  // The page's chat-events, checked to be exactly 0..n-1 in order.
  function checkChats(events, n, tag) {
    const got = events.filter((e) => e.ev === "chat-events").map((e) => e.args[0]);
    assert.equal(got.length, n, `${got.length} chat events, expected ${n}`);
    got.forEach((m, i) => assert.deepEqual(m, { chat_id: `chat-${tag}`, message_id: "m-1", data: { type: "chat:completion", data: { n: i, content: `token ${i}` } } }, `chat event #${i}`));
  }
  const wsRequests = () => relay.requests.filter((r) => /[?&]transport=websocket/.test(r.path)).length;

  await h.case("(1) Open WebUI's options (transports ['websocket'], auth {token}): WebSocket through the proxy, chat events in order", async (defer) => {
    const before = wsRequests();
    const page = await openPage("/sio.html?user=ann&transports=websocket", defer);
    const st = await waitFor(async () => {
      const s = await state(page);
      return s.connects > 0 && s.joined !== null && s.events.some((e) => e.ev === "user-list") && s;
    }, 10000, "page connected, user-join acked, user-list received");
    assert.equal(st.webSocket, "function");
    assert.deepEqual(st.opened, ["websocket"]);
    assert.equal(st.transport, "websocket");
    assert.deepEqual(st.errors, []);
    assert.equal(wsRequests() - before, 1, "one WebSocket upgrade went through the proxy");
    const upgrade = relay.requests.filter((r) => /[?&]transport=websocket/.test(r.path)).pop();
    assert.equal((upgrade.headers.upgrade || "").toLowerCase(), "websocket", "the proxy passed the Upgrade header");
    const who = await server.api("GET", `/api/v1/sessions/${st.sid}`);
    assert.equal(who.status, 200, who.text);
    assert.equal(who.json.id, "u-ann");
    assert.deepEqual(st.events.find((e) => e.ev === "user-list").args[0].user_ids.includes("u-ann"), true);
    await postChats("u-ann", 0, EVENTS, "ws");
    const end = await waitFor(async () => {
      const s = await state(page);
      return s.events.filter((e) => e.ev === "chat-events").length >= EVENTS && s;
    }, 10000, "the chat events reach the page");
    checkChats(end.events, EVENTS, "ws");
    assert.deepEqual(end.disconnects, []);
  });

  await h.case("(2) window.WebSocket removed: the same page connects over polling, never upgrades, gets chat events", async (defer) => {
    const before = wsRequests();
    const page = await openPage("/sio.html?user=bob&transports=polling,websocket&nows=1", defer);
    const st = await waitFor(async () => {
      const s = await state(page);
      return s.connects > 0 && s.joined !== null && s;
    }, 10000, "page connected over polling, user-join acked");
    assert.equal(st.webSocket, "undefined", "the page has no WebSocket");
    assert.deepEqual(st.opened, ["polling"]);
    assert.equal(st.transport, "polling");
    const who = await server.api("GET", `/api/v1/sessions/${st.sid}`);
    assert.equal(who.json && who.json.id, "u-bob", who.text);
    await postChats("u-bob", 0, EVENTS, "poll");
    await waitFor(async () => (await state(page)).events.filter((e) => e.ev === "chat-events").length >= EVENTS, 10000, "the chat events reach the page");
    // Several ping intervals (1 s): held polls answered, pongs sent, the
    // upgrade the server offers never taken.
    await sleep(3500);
    const end = await state(page);
    checkChats(end.events, EVENTS, "poll");
    assert.equal(await page.evaluate(() => window.socket.io.engine.transport.name), "polling");
    assert.deepEqual(end.upgrades, []);
    assert.deepEqual(end.disconnects, []);
    assert.equal(end.connects, 1);
    assert.equal(wsRequests() - before, 0, "no WebSocket request ever left the page");
    const polls = relay.requests.filter((r) => r.method === "GET" && r.path.includes(`sid=`) && r.path.includes("transport=polling") && r.at >= Date.now() - 3500);
    assert.ok(polls.length >= 3, `${polls.length} long-polls in 3.5 s (the server answers a held poll at each ping)`);
  });

  await h.case("(3) EventSource with the token cookie: chat events; stream cut, resumed by the browser with Last-Event-ID, every event once and in order", async (defer) => {
    const isSse = (r) => r.method === "GET" && r.path.startsWith("/ws/socket.io/sse");
    const page = await openPage("/sse.html?user=cat", defer);
    const first = await waitFor(async () => {
      const s = await state(page);
      return s.events.some((e) => e.ev === "connect") && s;
    }, 10000, "the EventSource opened and got its connect event");
    const streams = relay.requests.filter(isSse);
    assert.equal(streams.length, 1);
    assert.equal(streams[0].path, "/ws/socket.io/sse", "no token in the URL");
    assert.equal(streams[0].headers.authorization, undefined, "no Authorization header");
    assert.match(streams[0].headers.cookie || "", new RegExp(`(^|; )token=${tokens.cat.replace(/\./g, "\\.")}(;|$)`));
    assert.equal(streams[0].headers["last-event-id"], undefined);
    const connect = first.events.find((e) => e.ev === "connect");
    const sid = JSON.parse(connect.data).sid;
    const session = connect.id.split(":")[0];
    assert.equal((await server.api("GET", `/api/v1/sessions/${sid}`)).json.id, "u-cat");

    const N = 10;
    await postChats("u-cat", 0, N, "sse");
    const before = await waitFor(async () => {
      const s = await state(page);
      return s.events.filter((e) => e.ev === "chat-events").length >= N && s;
    }, 10000, "the first chat events");
    const lastId = before.events[before.events.length - 1].id;

    // The network drops the stream; the browser's comeback is held at the
    // relay while more events are posted.
    relay.hold(isSse);
    const tCut = Date.now();
    assert.equal(relay.cut(isSse), 1, "one SSE stream cut");
    await waitFor(async () => (await state(page)).errors >= 1, 5000, "the page sees the stream fail");
    const comeback = await waitFor(() => relay.heldRequests()[0], 5000, "the browser reconnects by itself");
    const tBack = Date.now();
    assert.equal(comeback.headers["last-event-id"], lastId, "the reconnection carries Last-Event-ID");
    assert.match(comeback.headers.cookie || "", /(^|; )token=/);
    await postChats("u-cat", N, 2 * N, "sse");
    await sleep(200);
    assert.equal((await state(page)).events.filter((e) => e.ev === "chat-events").length, N, "nothing arrives while cut");
    relay.release();
    await waitFor(async () => (await state(page)).events.filter((e) => e.ev === "chat-events").length >= 2 * N, 10000, "the missed events after the resume");
    await postChats("u-cat", 2 * N, 3 * N, "sse");
    await waitFor(async () => (await state(page)).events.filter((e) => e.ev === "chat-events").length >= 3 * N, 10000, "live events after the resume");
    await sleep(300);
    const end = await state(page);
    const chats = end.events.filter((e) => e.ev === "chat-events");
    assert.equal(chats.length, 3 * N, "every event exactly once");
    chats.forEach((e, i) => assert.deepEqual(JSON.parse(e.data), [{ chat_id: "chat-sse", message_id: "m-1", data: { type: "chat:completion", data: { n: i, content: `token ${i}` } } }], `event #${i}`));
    const seqs = chats.map((e) => {
      const [s, q] = e.id.split(":");
      assert.equal(s, session, `event id ${e.id} names the session`);
      return Number(q);
    });
    seqs.forEach((q, i) => i && assert.ok(q > seqs[i - 1], `ids in order: ${seqs.join(",")}`));
    assert.equal(end.events.filter((e) => e.ev === "reset").length, 0, "no reset");
    for (const c of end.events.filter((e) => e.ev === "connect")) assert.equal(JSON.parse(c.data).sid, sid, "the same socket");
    assert.equal(end.opens, 2, "opened, then reopened once");
    assert.equal(relay.requests.filter(isSse).length, 2);
    assert.equal((await server.api("GET", `/api/v1/sessions/${sid}`)).json.id, "u-cat", "the session survived the cut");
    console.log(`# SSE: the browser came back ${tBack - tCut} ms after the cut`);
  });

  await h.case("the daemon is still running", () => server.assertAlive());
});
