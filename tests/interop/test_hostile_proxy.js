// Hostile networks, with Node's socket.io-client and raw HTTP (no browser):
//
// - A proxy that refuses the WebSocket upgrade (400, or the connection
//   closed on it): socket.io-client with its default transports tries the
//   upgrade, stays on polling and keeps working (events both ways, a call
//   answered by the client's ack, chat events in order).
// - Straight from siohubd: every long-poll answer and the SSE stream carry
//   Cache-Control: no-store and X-Accel-Buffering: no, none is compressed
//   (even when asked for gzip), and a poll held with nothing to send is
//   answered at the next ping, within the ping interval.
// - Debian's nginx with contrib/nginx/siohub.conf (in an http {} block that
//   turns gzip on for every type siohub sends): the WebSocket upgrade
//   passes, SSE events arrive uncompressed and unbuffered (each one seen by
//   the client before the next is posted), held polls answer in time; and
//   the same nginx with the Upgrade header stripped: the default client
//   stays on polling and gets every event.
//
// The nginx cases skip without nginx, or fail under SIOHUB_REQUIRE_INTEROP.
"use strict";

const zlib = require("node:zlib");

const { assert, request, run, sleep } = require("./lib/harness");
const { Tab, owuiServer, serialAgent, token, waitFor } = require("./lib/owui");
const { Nginx, Relay, httpProxy, nginxPath } = require("./lib/proxy");
const { openRaw } = require("./lib/sse");

const USERS = ["ann", "bob", "cat", "dan", "eve", "fay", "gus"].map((n) => ({ id: `u-${n}`, name: n, role: "user" }));
const PING_INTERVAL = 1000;
// How late a held poll may be answered past the ping interval (a loaded
// machine running make check -j2).
const MARGIN = 700;
const CHAT_EVENTS = 200;
const GZIP = { "Accept-Encoding": "gzip, deflate, br" };

run({ timeoutMs: 90000, caseTimeoutMs: 30000 }, async (h) => {
  const server = await owuiServer(h, { users: USERS, pingInterval: PING_INTERVAL, pingTimeout: 3000 });
  const agent = serialAgent(h);
  const chat = (userId, n, tag) =>
    server.api("POST", "/api/v1/chat-events", { user_id: userId, chat_id: tag, message_id: "m", data: { type: "chat:completion", data: { n } } }, { agent });

  // socket.io-client with its default transports (polling, then the
  // upgrade) at `url`, whose upgrade cannot go through: it must stay on
  // polling and do everything a tab does. upgradeTried() tells whether the
  // probe left the client.
  async function staysOnPolling(url, userId, upgradeTried, defer) {
    const tok = token(userId);
    const tab = new Tab({ url }, { token: tok, name: userId, options: { transports: undefined } });
    defer(() => tab.close());
    await tab.connected();
    assert.deepEqual(tab.opened, ["polling"]);
    // client -> server, with an ack; and a request answered by an event
    const [joined] = await tab.userJoin();
    assert.equal(joined && joined.id, userId, JSON.stringify(joined));
    tab.sock.emit("user-list");
    await waitFor(() => (tab.last("user-list") || { user_ids: [] }).user_ids.includes(userId), 5000, "user-list asked for");
    await waitFor(upgradeTried, 5000, "the client tries the upgrade");
    // Several ping intervals: held polls answered, pongs posted, the failed
    // probe not retried and the session not dropped.
    await sleep(3 * PING_INTERVAL + 200);
    assert.equal(tab.sock.io.engine.transport.name, "polling");
    assert.deepEqual(tab.upgrades, []);
    assert.deepEqual(tab.disconnects, []);
    assert.equal(tab.connects, 1);
    // server -> client, answered by the client's ack
    tab.sock.on("chat-events", (msg, ack) => typeof ack === "function" && ack({ seen: msg.q }));
    const call = await server.api("POST", "/api/v1/call", { sid: tab.id, user_id: userId, data: { q: 7 }, timeout_ms: 5000 });
    assert.deepEqual([call.status, call.json], [200, { args: [{ seen: 7 }] }], call.text);
    // chat events, in order
    const before = tab.of("chat-events").length;
    const answers = await Promise.all(Array.from({ length: CHAT_EVENTS }, (_, i) => chat(userId, i, "burst")));
    answers.forEach((r, i) => assert.deepEqual([r.status, r.json], [200, { recipients: 1 }], `POST #${i}`));
    await waitFor(() => tab.of("chat-events").length >= before + CHAT_EVENTS, 15000, () => `${tab.of("chat-events").length - before} chat events`);
    const got = tab.of("chat-events").slice(before);
    assert.equal(got.length, CHAT_EVENTS);
    got.forEach(([m], i) => assert.deepEqual(m, { chat_id: "burst", message_id: "m", data: { type: "chat:completion", data: { n: i } } }, `chat event #${i}`));
    assert.equal(tab.sock.io.engine.transport.name, "polling");
    assert.deepEqual(tab.disconnects, []);
  }

  for (const mode of ["400", "close"]) {
    const what = mode === "400" ? "answers 400 to the upgrade" : "closes the connection on the upgrade";
    await h.case(`a proxy that ${what}: the default client stays on polling and keeps working`, async (defer) => {
      const proxy = await httpProxy({ targetPort: server.port, upgrade: mode });
      defer(() => proxy.stop());
      await staysOnPolling(proxy.url, mode === "400" ? "u-ann" : "u-bob", () => proxy.upgrades > 0, defer);
      assert.equal(proxy.upgrades, 1, "one probe, not retried");
    });
  }

  // ---- straight from the daemon

  // Engine.IO polling by hand on port: handshake, then GETs; each answer
  // checked for the anti-buffering headers and the absence of compression.
  function checkPollHeaders(r, what, { direct = true } = {}) {
    assert.equal(r.status, 200, `${what}: ${r.status} ${r.text}`);
    assert.equal(r.headers["cache-control"], "no-store", `${what}: Cache-Control`);
    if (direct) assert.equal(r.headers["x-accel-buffering"], "no", `${what}: X-Accel-Buffering`);
    if (direct) assert.equal(r.headers["content-encoding"], undefined, `${what}: compressed`);
    assert.match(r.headers["content-type"] || "", /^text\/plain/, what);
  }
  // Asks for gzip; an answer compressed by nginx (the example leaves
  // polling to the http {} block's gzip setting) is inflated.
  const poll = async (port, sid, extra = {}) => {
    const r = await request(port, { path: `/ws/socket.io/?EIO=4&transport=polling${sid ? `&sid=${sid}` : ""}`, headers: { ...GZIP, ...extra }, timeout: 3 * PING_INTERVAL + 5000 });
    if (r.headers["content-encoding"] === "gzip") {
      r.gzipped = true;
      r.body = zlib.gunzipSync(r.body);
      r.text = r.body.toString("utf8");
    }
    return r;
  };
  const postPacket = (port, sid, body) =>
    request(port, { method: "POST", path: `/ws/socket.io/?EIO=4&transport=polling&sid=${sid}`, headers: { "Content-Type": "text/plain;charset=UTF-8" }, body });

  // Held polls: each answered with a ping, within the ping interval.
  async function heldPolls(port, opts) {
    const hs = await poll(port);
    checkPollHeaders(hs, "handshake", opts);
    const { sid, pingInterval } = JSON.parse(hs.text.slice(1));
    assert.equal(pingInterval, PING_INTERVAL);
    const took = [];
    for (let round = 0; round < 3; round++) {
      const t0 = Date.now();
      const r = await poll(port, sid);
      took.push(Date.now() - t0);
      checkPollHeaders(r, `held poll #${round}`, opts);
      assert.equal(r.text, "2", `held poll #${round} is answered with a ping`);
      const pong = await postPacket(port, sid, "3");
      assert.equal(pong.text, "ok");
    }
    for (const [i, ms] of took.entries()) {
      assert.ok(ms <= PING_INTERVAL + MARGIN, `held poll #${i} answered after ${ms} ms (ping interval ${PING_INTERVAL})`);
      if (i > 0) assert.ok(ms >= PING_INTERVAL / 2, `held poll #${i} answered after ${ms} ms: it was not held`);
    }
    return { sid, took };
  }

  await h.case("long-poll answers: Cache-Control no-store, X-Accel-Buffering no, never compressed", async () => {
    const hs = await poll(server.port);
    checkPollHeaders(hs, "handshake");
    const sid = JSON.parse(hs.text.slice(1)).sid;
    // A Socket.IO CONNECT with Cat's token; the next GET carries data.
    assert.equal((await postPacket(server.port, sid, `40${JSON.stringify({ token: token("u-cat") })}`)).text, "ok");
    const r = await poll(server.port, sid);
    checkPollHeaders(r, "poll with data");
    assert.match(r.text, /^40\{"sid":"[A-Za-z0-9_-]{20}"\}/);
    // A big answer (where compression would pay): chat events queued
    // while no poll is held.
    for (let i = 0; i < 50; i++) await chat("u-cat", i, "x".repeat(200));
    const big = await poll(server.port, sid);
    checkPollHeaders(big, "poll with 50 chat events");
    assert.ok(big.body.length > 2000, `${big.body.length} bytes`);
    assert.ok(big.text.split("\x1e").length >= 10, big.text.slice(0, 200));
    const end = await postPacket(server.port, sid, "1");
    assert.equal(end.text, "ok");
  });

  await h.case("a poll held with nothing to send is answered at the next ping, within the ping interval", async () => {
    const { took } = await heldPolls(server.port);
    console.log(`# held polls answered after ${took.join(", ")} ms (ping interval ${PING_INTERVAL} ms)`);
  });

  await h.case("SSE stream: no-store, X-Accel-Buffering no, never compressed, a keep-alive comment every ping interval", async (defer) => {
    const s = await openRaw(server.port, { headers: { Authorization: `Bearer ${token("u-dan")}`, ...GZIP } });
    defer(() => s.close());
    assert.equal(s.status, 200, s.text);
    assert.match(s.headers["content-type"], /^text\/event-stream/);
    assert.equal(s.headers["cache-control"], "no-store");
    assert.equal(s.headers["x-accel-buffering"], "no");
    assert.equal(s.headers["content-encoding"], undefined);
    await s.next((e) => e.event === "connect");
    const t0 = Date.now();
    await waitFor(() => s.parser.comments >= 2, 2 * PING_INTERVAL + 2 * MARGIN, "two keep-alive comments");
    assert.ok(Date.now() - t0 <= 2 * PING_INTERVAL + MARGIN, `two comments took ${Date.now() - t0} ms`);
  });

  // ---- nginx with contrib/nginx/siohub.conf

  if (!nginxPath()) {
    if (process.env.SIOHUB_REQUIRE_INTEROP) h.fail("nginx not found (Debian's nginx-light), SIOHUB_REQUIRE_INTEROP is set");
    else console.log("# SKIP: nginx not found: contrib/nginx/siohub.conf not tested");
    return;
  }
  const relay = await new Relay(server.port).start();
  h.defer(() => relay.stop());
  // "Open WebUI" behind the example's location /.
  const web = await httpProxy({ targetPort: 1, route: () => false, fallback: (req, res) => res.writeHead(200, { "Content-Type": "text/plain" }).end("open webui\n") });
  h.defer(() => web.stop());
  const nginx = await new Nginx(h, { siohubPort: relay.port, webPort: web.port }).start();
  const wsRequests = () => relay.requests.filter((r) => /[?&]transport=websocket/.test(r.path));

  await h.case("nginx (contrib example): the rest of the site goes to Open WebUI", async () => {
    const r = await request(nginx.port, { path: "/c/some-chat" });
    assert.deepEqual([r.status, r.text], [200, "open webui\n"]);
  });

  await h.case("nginx (contrib example): the WebSocket upgrade passes; chat events over it", async (defer) => {
    const before = wsRequests().length;
    const tab = new Tab(nginx, { token: token("u-eve"), name: "eve", options: { transports: undefined } });
    defer(() => tab.close());
    await tab.connected();
    await waitFor(() => tab.upgrades.length > 0, 5000, "the upgrade to WebSocket");
    assert.deepEqual(tab.upgrades, ["websocket"]);
    const up = wsRequests().slice(before);
    assert.equal(up.length, 1);
    assert.equal((up[0].headers.upgrade || "").toLowerCase(), "websocket", "Upgrade passed on to siohubd");
    assert.match(up[0].headers.connection || "", /upgrade/i);
    await Promise.all(Array.from({ length: 50 }, (_, i) => chat("u-eve", i, "ws")));
    await waitFor(() => tab.of("chat-events").length >= 50, 10000, "chat events over the WebSocket");
    tab.of("chat-events").forEach(([m], i) => assert.equal(m.data.data.n, i));
    assert.equal(tab.sock.io.engine.transport.name, "websocket");
  });

  await h.case("nginx (contrib example): SSE events arrive uncompressed and unbuffered, each before the next is posted", async (defer) => {
    const s = await openRaw(nginx.port, { headers: { Authorization: `Bearer ${token("u-fay")}`, ...GZIP } });
    defer(() => s.close());
    assert.equal(s.status, 200, s.text);
    assert.match(s.headers["content-type"], /^text\/event-stream/);
    assert.equal(s.headers["cache-control"], "no-store");
    assert.equal(s.headers["content-encoding"], undefined, "nginx compressed the stream");
    await s.next((e) => e.event === "connect");
    const lat = [];
    for (let i = 0; i < 10; i++) {
      const t0 = Date.now();
      const from = s.events.length;
      assert.equal((await chat("u-fay", i, "sse")).status, 200);
      const e = await s.next((x) => x.event === "chat-events", 2000, from);
      lat.push(Date.now() - t0);
      assert.equal(e.json[0].data.data.n, i);
    }
    console.log(`# SSE through nginx: post-to-receive ${lat.join(", ")} ms`);
    // The keep-alive comments pass too (nothing sits in a buffer).
    const c0 = s.parser.comments;
    await waitFor(() => s.parser.comments > c0, PING_INTERVAL + MARGIN + 500, "a keep-alive comment through nginx");
  });

  await h.case("nginx (contrib example): a held long-poll is answered within the ping interval", async () => {
    await heldPolls(nginx.port, { direct: false });
  });

  await h.case("nginx with the Upgrade header stripped: the default client stays on polling and gets every event", async (defer) => {
    const strip = await new Nginx(h, { siohubPort: relay.port, webPort: web.port, stripUpgrade: true }).start();
    defer(() => strip.stop());
    const before = wsRequests().length;
    await staysOnPolling(strip.url, "u-gus", () => wsRequests().length > before, defer);
    const probes = wsRequests().slice(before);
    assert.equal(probes.length, 1, "one probe");
    assert.equal(probes[0].headers.upgrade, undefined, "nginx stripped Upgrade");
  });

  await h.case("the daemon is still running", () => server.assertAlive());
});
