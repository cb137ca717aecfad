// The SSE transport of the openwebui app (GET /ws/socket.io/sse, POST
// /ws/socket.io/sse/<sid>) with the npm `eventsource` client and a raw
// HTTP reader: credentials (401 and nothing else), the stream's headers,
// an SSE client as a full session (pools, user room, presence), chat
// events in order, a stream dropped mid-way and resumed with Last-Event-ID
// (every event exactly once, in order), `reset` past a small buffer, the
// grace period and its expiry, typing both ways between SSE and WebSocket
// clients, the POST endpoint with and without ack, a slow SSE client
// dropped, and no token in the daemon's debug log.
"use strict";

const fs = require("node:fs");
const net = require("node:net");

const { HOST, assert, request, run, sleep } = require("./lib/harness");
const { hostileTokens, openTab, owuiServer, serialAgent, sorted, token, waitFor } = require("./lib/owui");
const { SSE_PATH, openEventSource, openRaw, post } = require("./lib/sse");
const { RawWs } = require("./lib/wire");

const USERS = [
  { id: "u-ann", name: "Ann", email: "ann@example.org", role: "user" },
  { id: "u-bob", name: "Bob", role: "admin" },
  { id: "u-cat", name: "Cat", role: "user" },
  { id: "u-dan", name: "Dan", role: "user" },
  { id: "u-pen", name: "Pen", role: "pending" },
];
const CHANNELS = [{ id: "ch-team", name: "team", members: ["u-ann", "u-bob"] }];

const bearer = (t) => ({ Authorization: `Bearer ${t}` });
const SID_RE = /^[A-Za-z0-9_-]{20}$/;

run({ timeoutMs: 150000, caseTimeoutMs: 30000 }, async (h) => {
  const server = await owuiServer(h, { users: USERS, channels: CHANNELS, args: ["--log-level", "debug"] });
  const port = server.port;
  const tokens = []; // every token used: none may reach the log
  const tok = (id) => {
    const t = token(id);
    tokens.push(t);
    return t;
  };
  const agent = serialAgent(h);
  const chatEvent = (userId, n, extra = {}) =>
    server.api("POST", "/api/v1/chat-events", { user_id: userId, chat_id: "c-1", message_id: "m-1", data: { type: "x", n, ...extra } }, { agent });
  const roomSids = async (room) => sorted((await server.api("GET", `/api/v1/rooms/${encodeURIComponent(room)}`)).json.sids);
  const metric = async (name) => {
    const r = await request(port, { path: "/metrics" });
    const line = r.text.split("\n").find((l) => l.startsWith(name + " "));
    return line ? Number(line.split(" ").pop()) : undefined;
  };
  const sseGauge = () => metric('siohub_connections{transport="sse"}');
  const observer = await openTab(server, h.defer.bind(h), { name: "observer" });

  await h.case("bad or missing credentials: 401 with a JSON error, and no session", async () => {
    const cases = { "no credentials": {} };
    for (const [what, t] of Object.entries(hostileTokens("u-ann", "u-pen"))) {
      if (typeof t === "string" && t !== "") cases[`Bearer: ${what}`] = { headers: bearer(t) };
    }
    cases["Basic scheme"] = { headers: { Authorization: `Basic ${Buffer.from("ann:pw").toString("base64")}` } };
    cases["Bearer, nothing after it"] = { headers: { Authorization: "Bearer " } };
    cases["token cookie, wrong secret"] = { headers: { Cookie: `token=${hostileTokens("u-ann", "u-pen")["wrong secret"]}` } };
    cases["token query, expired"] = { path: `${SSE_PATH}?token=${encodeURIComponent(hostileTokens("u-ann", "u-pen")["expired an hour ago"])}` };
    for (const opts of Object.values(cases)) {
      for (const v of Object.values(opts.headers || {})) if (v.includes(".")) tokens.push(v.replace(/^(Bearer |token=)/, ""));
    }
    for (const [what, opts] of Object.entries(cases)) {
      const s = await openRaw(port, opts);
      assert.equal(s.status, 401, `${what}: ${s.status} ${s.text}`);
      assert.match(s.headers["content-type"], /^application\/json/, what);
      assert.equal(s.headers["www-authenticate"], "Bearer", what);
      assert.equal(typeof JSON.parse(s.text).error, "string", what);
      assert.ok(!s.text.includes("event:"), `${what}: ${s.text}`);
    }
    const p = await post(port, "whatever", { event: "heartbeat" });
    assert.equal(p.status, 401, p.text);
    assert.deepEqual((await server.api("GET", "/api/v1/users")).json.user_ids, []);
    assert.equal(await sseGauge(), 0, "no SSE session was opened");
  });

  const ann = {};
  await h.case("stream: text/event-stream, no caching or buffering, no compression, CORS; retry, then connect {sid}", async () => {
    ann.token = tok("u-ann");
    ann.raw = await openRaw(port, { headers: { ...bearer(ann.token), "Accept-Encoding": "gzip, deflate, br", Origin: "http://app.example" } });
    h.defer(() => ann.raw.close());
    const s = ann.raw;
    assert.equal(s.status, 200);
    assert.match(s.headers["content-type"], /^text\/event-stream/);
    assert.equal(s.headers["cache-control"], "no-store");
    assert.equal(s.headers["x-accel-buffering"], "no");
    assert.equal(s.headers["content-encoding"], undefined);
    assert.equal(s.headers["access-control-allow-origin"], "http://app.example");
    assert.equal(s.headers["access-control-allow-credentials"], "true");
    const connect = await s.next((e) => e.event === "connect");
    assert.match(s.text, /^retry: \d+\n\n/);
    assert.ok(SID_RE.test(connect.json.sid), JSON.stringify(connect));
    ann.sid = connect.json.sid;
    ann.session = connect.id.split(":")[0];
    assert.equal(connect.id, `${ann.session}:1`);
    assert.ok(SID_RE.test(ann.session) && ann.session !== ann.sid, "event ids name the Engine.IO session");
  });

  await h.case("the SSE client is a full session: SESSION_POOL, room user:{id}, presence, metrics", async () => {
    await waitFor(() => (observer.last("user-list") || { user_ids: [] }).user_ids.includes("u-ann"), 5000, "observer sees u-ann online");
    const r = await server.api("GET", `/api/v1/sessions/${ann.sid}`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.id, "u-ann");
    assert.deepEqual(await roomSids("user:u-ann"), [ann.sid]);
    assert.deepEqual((await server.api("GET", "/api/v1/users")).json.user_ids, ["u-ann"]);
    await ann.raw.next((e) => e.event === "user-list" && e.json[0].user_ids.includes("u-ann"));
    assert.equal(await sseGauge(), 1);
  });

  await h.case("polling answers carry the same anti-buffering headers", async () => {
    const r = await request(port, { path: "/ws/socket.io/?EIO=4&transport=polling" });
    assert.equal(r.status, 200);
    assert.equal(r.headers["cache-control"], "no-store");
    assert.equal(r.headers["x-accel-buffering"], "no");
  });

  await h.case("chat events posted to the API reach the raw reader and an EventSource, in order", async () => {
    const es = openEventSource(`${server.url}${SSE_PATH}`, { headers: bearer(ann.token), events: ["connect", "chat-events", "reset"] });
    h.defer(() => es.close());
    await waitFor(() => es.of("connect").length === 1, 5000, "EventSource connect");
    await waitFor(async () => (await roomSids("user:u-ann")).length === 2, 5000, "both in user:u-ann");
    const from = ann.raw.events.length;
    const N = 200;
    for (let i = 0; i < N; i++) assert.equal((await chatEvent("u-ann", i)).json.recipients, 2);
    await waitFor(() => es.of("chat-events").length === N, 10000, () => `EventSource got ${es.of("chat-events").length}`);
    await waitFor(() => ann.raw.events.slice(from).filter((e) => e.event === "chat-events").length === N, 10000, "raw reader got them all");
    const got = es.of("chat-events").map((e) => e.json[0].data.n);
    assert.deepEqual(got, [...Array(N).keys()]);
    assert.deepEqual(es.of("chat-events")[0].json[0], { chat_id: "c-1", message_id: "m-1", data: { type: "x", n: 0 } });
    const raw = ann.raw.events.slice(from).filter((e) => e.event === "chat-events");
    assert.deepEqual(raw.map((e) => e.json[0].data.n), [...Array(N).keys()]);
    // Ids count up by one per event of the session.
    const seqs = raw.map((e) => Number(e.id.split(":")[1]));
    seqs.forEach((s, i) => i && assert.equal(s, seqs[i - 1] + 1));
    assert.equal(es.of("reset").length, 0);
    es.close();
  });

  await h.case("EventSource: stream dropped mid-way while events keep coming; Last-Event-ID resume, every event once, in order", async () => {
    const t = tok("u-ann");
    const es = openEventSource(`${server.url}${SSE_PATH}`, { headers: bearer(t), events: ["connect", "chat-events", "reset"] });
    h.defer(() => es.close());
    await waitFor(() => es.of("connect").length === 1, 5000, "connect");
    const sid = es.of("connect")[0].json.sid;
    await waitFor(async () => (await roomSids("user:u-ann")).includes(sid), 5000, "in the user room");
    const N = 400;
    let lastBeforeDrop = null;
    const producer = (async () => {
      for (let i = 0; i < N; i++) {
        await chatEvent("u-ann", i, { run: "drop" });
        if (i % 20 === 0) await sleep(15);
      }
    })();
    await waitFor(() => es.of("chat-events").length >= 80, 10000, "80 events before the drop");
    lastBeforeDrop = es.events[es.events.length - 1].id;
    es.dropper.drop();
    await producer;
    await waitFor(() => es.of("chat-events").filter((e) => e.json[0].data.run === "drop").length >= N, 15000,
      () => `got ${es.of("chat-events").length} of ${N}`);
    await sleep(200); // nothing more may come
    const ns = es.of("chat-events").filter((e) => e.json[0].data.run === "drop").map((e) => e.json[0].data.n);
    assert.deepEqual(ns, [...Array(N).keys()], "every event exactly once, in order");
    assert.equal(es.dropper.requests.length, 2, "one reconnection");
    assert.equal(es.dropper.requests[0]["Last-Event-ID"], undefined);
    assert.ok(es.dropper.requests[1]["Last-Event-ID"].startsWith(lastBeforeDrop.split(":")[0] + ":"), JSON.stringify(es.dropper.requests[1]));
    assert.equal(es.of("reset").length, 0, "no reset: the buffer reached back");
    assert.equal(es.of("connect").length, 1, "the same session: no second connect");
    assert.ok((await roomSids("user:u-ann")).includes(sid));
    es.close();
  });

  await h.case("raw reader: dropped, events posted meanwhile, resumed with ?lastEventId", async () => {
    const t = tok("u-ann");
    const a = await openRaw(port, { headers: bearer(t) });
    const connect = await a.next((e) => e.event === "connect");
    await waitFor(async () => (await roomSids("user:u-ann")).includes(connect.json.sid), 5000, "in the room");
    for (let i = 0; i < 5; i++) await chatEvent("u-ann", i, { run: "raw" });
    await a.next((e) => e.event === "chat-events" && e.json[0].data.n === 4 && e.json[0].data.run === "raw");
    const last = a.events[a.events.length - 1].id;
    a.close();
    for (let i = 5; i < 50; i++) await chatEvent("u-ann", i, { run: "raw" });
    const b = await openRaw(port, { path: `${SSE_PATH}?lastEventId=${encodeURIComponent(last)}`, headers: bearer(t) });
    h.defer(() => b.close());
    assert.equal(b.status, 200);
    await b.next((e) => e.event === "chat-events" && e.json[0].data.n === 49);
    const ns = b.events.filter((e) => e.event === "chat-events" && e.json[0].data.run === "raw").map((e) => e.json[0].data.n);
    assert.deepEqual(ns, [...Array(45).keys()].map((i) => i + 5));
    assert.ok(!b.events.some((e) => e.event === "connect" || e.event === "reset"), JSON.stringify(b.events.map((e) => e.event)));
    assert.equal(b.events[0].id.split(":")[0], last.split(":")[0]);
    // Another user's credentials cannot take the session: 401, nothing else.
    const bobTry = await openRaw(port, { headers: { ...bearer(tok("u-bob")), "Last-Event-ID": last } });
    assert.equal(bobTry.status, 401, bobTry.text);
    assert.ok(!bobTry.text.includes("chat-events"));
    b.close();
  });

  await h.case("a Last-Event-ID of a session that is gone: a new session, `reset` first", async () => {
    const s = await openRaw(port, { headers: { ...bearer(tok("u-ann")), "Last-Event-ID": "AAAAAAAAAAAAAAAAAAAA:17" } });
    h.defer(() => s.close());
    await s.next((e) => e.event === "connect");
    assert.deepEqual(s.events.slice(0, 2).map((e) => e.event), ["reset", "connect"]);
    assert.equal(s.events[0].id, undefined, "reset carries no id");
    assert.deepEqual(s.events[0].json, {});
    const garbage = await openRaw(port, { headers: { ...bearer(tok("u-ann")), "Last-Event-ID": "not an id of ours" } });
    h.defer(() => garbage.close());
    await garbage.next((e) => e.event === "connect");
    assert.equal(garbage.events[0].event, "reset");
    s.close();
    garbage.close();
    // Operators see resumes and resets.
    assert.equal(await metric("siohub_sse_resumes_total"), 2, "resumes counted");
    assert.equal(await metric("siohub_sse_resets_total"), 2, "resets counted");
  });

  await h.case("/api/v1/call to an SSE session: 409 at once (it cannot ack)", async () => {
    const r = await server.api("POST", "/api/v1/call", { sid: ann.sid, event: "confirm", data: {} });
    assert.equal(r.status, 409, r.text);
    assert.match(r.json.error, /SSE/);
  });

  await h.case("POST: user-join with ack answers the ack's args; heartbeat 202; 401, 403, 404, 400, 405", async () => {
    const r = await post(port, ann.sid, { event: "user-join", args: [{ auth: { token: ann.token } }], ack: true }, { headers: bearer(ann.token) });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, [{ id: "u-ann", name: "Ann" }]);
    assert.ok((await roomSids("channel:ch-team")).includes(ann.sid), "user-join joined the channel rooms");
    const hb = await post(port, ann.sid, { event: "heartbeat" }, { headers: bearer(ann.token) });
    assert.equal(hb.status, 202, hb.text);
    assert.deepEqual(hb.json, {});
    // The cookie and the query parameter are credentials too.
    assert.equal((await post(port, ann.sid, { event: "heartbeat" }, { headers: { Cookie: `token=${ann.token}` } })).status, 202);
    assert.equal((await post(port, `${ann.sid}?token=${encodeURIComponent(ann.token)}`, { event: "heartbeat" })).status, 202);
    const none = await post(port, ann.sid, { event: "heartbeat" });
    assert.equal(none.status, 401, none.text);
    const other = await post(port, ann.sid, { event: "heartbeat" }, { headers: bearer(tok("u-bob")) });
    assert.equal(other.status, 403, other.text);
    const unknown = await post(port, "AAAAAAAAAAAAAAAAAAAA", { event: "heartbeat" }, { headers: bearer(ann.token) });
    assert.equal(unknown.status, 404, unknown.text);
    // A WebSocket socket is no SSE session.
    const ws = await openTab(server, h.defer.bind(h), { name: "ann-ws", token: ann.token });
    assert.equal((await post(port, ws.id, { event: "heartbeat" }, { headers: bearer(ann.token) })).status, 404);
    ws.close();
    for (const [body, why] of [["{", "not JSON"], ['{"event":"disconnect"}', "reserved"], ['{"event":"x","args":{}}', "args"], ['{"args":[]}', "event"]]) {
      const b = await post(port, ann.sid, body, { headers: bearer(ann.token) });
      assert.equal(b.status, 400, `${body}: ${b.text}`);
      assert.ok(b.json.error.includes(why), `${body}: ${b.text}`);
    }
    const get = await request(port, { path: `${SSE_PATH}/${ann.sid}`, headers: bearer(ann.token) });
    assert.equal(get.status, 405);
    const nested = await request(port, { path: `${SSE_PATH}/a/b`, headers: bearer(ann.token) });
    assert.equal(nested.status, 404);
  });

  await h.case("CORS preflight for the POST endpoint", async () => {
    const r = await request(port, {
      method: "OPTIONS",
      path: `${SSE_PATH}/${ann.sid}`,
      headers: { Origin: "http://app.example", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization, content-type" },
    });
    assert.equal(r.status, 204);
    assert.equal(r.headers["access-control-allow-origin"], "http://app.example");
    assert.match(r.headers["access-control-allow-methods"], /POST/);
    assert.equal(r.headers["access-control-allow-headers"], "authorization, content-type");
  });

  await h.case("typing from an SSE client (POST) reaches the channel's WebSocket members, and the reverse", async () => {
    const bob = await openTab(server, h.defer.bind(h), { name: "bob", token: tok("u-bob") });
    await bob.userJoin();
    assert.deepEqual(await roomSids("channel:ch-team"), sorted([ann.sid, bob.id]));
    const typing = { type: "typing", data: { typing: true } };
    const from = ann.raw.events.length;
    const r = await post(port, ann.sid, { event: "events:channel", args: [{ channel_id: "ch-team", message_id: "m-9", data: typing }] }, { headers: bearer(ann.token) });
    assert.equal(r.status, 202, r.text);
    const want = { channel_id: "ch-team", message_id: "m-9", data: typing, user: { id: "u-ann", name: "Ann", role: "user" } };
    await waitFor(() => bob.of("events:channel").length === 1, 5000, "bob gets ann's typing");
    assert.deepEqual(bob.last("events:channel"), want);
    const echo = await ann.raw.next((e) => e.event === "events:channel", 5000, from);
    assert.deepEqual(echo.json, [want], "the sender (SSE) gets it too");
    bob.sock.emit("events:channel", { channel_id: "ch-team", data: typing });
    const got = await ann.raw.next((e) => e.event === "events:channel" && e.json[0].user.id === "u-bob", 5000, from);
    assert.deepEqual(got.json, [{ channel_id: "ch-team", message_id: null, data: typing, user: { id: "u-bob", name: "Bob", role: "admin" } }]);
    bob.close();
  });

  await h.case("cookie and query credentials open streams (a same-origin browser EventSource needs no code)", async () => {
    const t = tok("u-dan");
    const c = openEventSource(`${server.url}${SSE_PATH}`, { headers: { Cookie: `other=1; token=${t}` }, events: ["connect"] });
    h.defer(() => c.close());
    await waitFor(() => c.of("connect").length === 1, 5000, "cookie stream connects");
    // Behind a proxy's Basic authentication the browser sends both.
    const basic = await openRaw(port, { headers: { Authorization: "Basic YW5uOnB3", Cookie: `token=${t}` } });
    h.defer(() => basic.close());
    await basic.next((e) => e.event === "connect");
    basic.close();
    const q = await openRaw(port, { path: `${SSE_PATH}?token=${encodeURIComponent(t)}` });
    h.defer(() => q.close());
    await q.next((e) => e.event === "connect");
    await waitFor(async () => (await roomSids("user:u-dan")).length >= 2, 5000, "both in user:u-dan");
    c.close();
    q.close();
  });

  await h.case("slow SSE clients are dropped at the output queue limit, counted, and logged once", async () => {
    const slow = await owuiServer(h, { users: USERS, args: ["--output-queue-limit", "256k", "--max-payload", "1000"] });
    const t = token("u-cat");
    tokens.push(t);
    // Three tabs of a user that send their request and never read: all
    // three pass the limit on the same events, as clients behind a stalled
    // proxy would.
    const socks = [];
    for (let i = 0; i < 3; i++) {
      const sock = net.connect(slow.port, HOST);
      h.defer(() => sock.destroy());
      sock.on("error", () => {});
      await new Promise((resolve) => sock.once("connect", resolve));
      sock.pause();
      sock.write(`GET ${SSE_PATH} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${t}\r\n\r\n`);
      socks.push(sock);
    }
    await waitFor(async () => (await slow.api("GET", "/api/v1/rooms/user%3Au-cat")).json.sids.length === 3, 5000, "three u-cat tabs");
    const big = "x".repeat(200 * 1024);
    const agentSlow = serialAgent(h);
    let dropped = false;
    for (let i = 0; i < 200 && !dropped; i++) {
      await slow.api("POST", "/api/v1/chat-events", { user_id: "u-cat", chat_id: "c", message_id: "m", data: { big } }, { agent: agentSlow });
      if (i % 10 === 9) dropped = !(await slow.api("GET", "/api/v1/users")).json.user_ids.includes("u-cat");
    }
    await waitFor(async () => !(await slow.api("GET", "/api/v1/users")).json.user_ids.includes("u-cat"), 5000, "u-cat dropped");
    const m = await request(slow.port, { path: "/metrics" });
    const line = m.text.split("\n").find((l) => l.startsWith("siohub_slow_clients_dropped_total "));
    assert.equal(line, "siohub_slow_clients_dropped_total 3");
    assert.ok(/siohub_connections\{transport="sse"\} 0/.test(m.text));
    // One warning for the three (the log limit, core/log.h), saying who
    // and why; the other two at debug level.
    const warned = fs.readFileSync(slow.logPath, "utf8").split("\n")
      .filter((l) => / WARN /.test(l) && /is not reading/.test(l));
    assert.equal(warned.length, 1, warned.join("\n"));
    assert.match(warned[0], /eio \S+: SSE client 127\.0\.0\.1:\d+ is not reading: \d+ bytes queued, past the 262144 byte limit; dropping it/);
    for (const sock of socks) sock.destroy();
  });

  // ---- a daemon with a short grace period and a small buffer
  const small = await owuiServer(h, { users: USERS, args: ["--sse-grace", "1500", "--sse-buffer", "2k"] });
  const smallRoom = async (room) => sorted((await small.api("GET", `/api/v1/rooms/${encodeURIComponent(room)}`)).json.sids);

  await h.case("grace period: a dropped stream's session keeps its pools and rooms, then leaves like any disconnect", async () => {
    const obs = await openTab(small, h.defer.bind(h), { name: "observer2" });
    const t = tok("u-bob");
    const s = await openRaw(small.port, { headers: bearer(t) });
    const sid = (await s.next((e) => e.event === "connect")).json.sid;
    await waitFor(() => (obs.last("user-list") || { user_ids: [] }).user_ids.includes("u-bob"), 5000, "online");
    s.close();
    const dropped = Date.now();
    await sleep(500);
    // Still a session: in the pool, in the rooms (the drop is seen at the
    // next write at the latest: a keep-alive).
    assert.equal((await small.api("GET", `/api/v1/sessions/${sid}`)).status, 200);
    assert.deepEqual(await smallRoom("user:u-bob"), [sid]);
    await waitFor(async () => (await small.api("GET", `/api/v1/sessions/${sid}`)).status === 404, 8000, "session gone after the grace period");
    assert.ok(Date.now() - dropped >= 1400, `left after ${Date.now() - dropped} ms, before the grace period`);
    assert.deepEqual(await smallRoom("user:u-bob"), []);
    await waitFor(() => !obs.last("user-list").user_ids.includes("u-bob"), 5000, "a user-list without u-bob");
    // Resuming now finds nothing: a new session, with a reset.
    const again = await openRaw(small.port, { headers: { ...bearer(t), "Last-Event-ID": s.events[s.events.length - 1].id } });
    h.defer(() => again.close());
    await again.next((e) => e.event === "connect");
    assert.equal(again.events[0].event, "reset");
    again.close();
    obs.close();
  });

  await h.case("EventSource: `reset` when the buffer no longer reaches back, then what it holds, then live events", async () => {
    const t = tok("u-cat");
    const es = openEventSource(`${small.url}${SSE_PATH}`, { headers: bearer(t), events: ["connect", "chat-events", "reset"] });
    h.defer(() => es.close());
    await waitFor(() => es.of("connect").length === 1, 5000, "connect");
    await waitFor(async () => (await smallRoom("user:u-cat")).length === 1, 5000, "in the room");
    const smallAgent = serialAgent(h);
    const ev = (i) => small.api("POST", "/api/v1/chat-events", { user_id: "u-cat", chat_id: "c", message_id: "m", data: { n: i, pad: "p".repeat(60) } }, { agent: smallAgent });
    for (let i = 0; i < 3; i++) await ev(i);
    await waitFor(() => es.of("chat-events").length === 3, 5000, "3 events");
    // The client stays away until the events are in: ~130 bytes each,
    // far more than the 2k buffer.
    const back = es.dropper.hold();
    es.dropper.drop();
    for (let i = 3; i < 80; i++) await ev(i);
    back();
    await waitFor(() => es.of("reset").length === 1, 10000, "a reset");
    await ev(80);
    await waitFor(() => es.of("chat-events").some((e) => e.json[0].data.n === 80), 5000, "the live event after the reset");
    const resetAt = es.events.findIndex((e) => e.event === "reset");
    const before = es.events.slice(0, resetAt).filter((e) => e.event === "chat-events").map((e) => e.json[0].data.n);
    const after = es.events.slice(resetAt + 1).filter((e) => e.event === "chat-events").map((e) => e.json[0].data.n);
    assert.deepEqual(before, [0, 1, 2]);
    assert.ok(after.length > 0 && after.length < 78, `after the reset: ${after.length} events`);
    // What the buffer held: the newest events, contiguous, up to the live one.
    assert.deepEqual(after, [...Array(after.length).keys()].map((i) => 81 - after.length + i));
    assert.equal(es.of("connect").length, 1, "the same session");
    es.close();
  });

  await h.case("POST with ack that the handler never answers: 504 after http_timeout", async () => {
    const tiny = await owuiServer(h, { users: USERS, args: ["--http-timeout", "1000"] });
    const t = tok("u-dan");
    const s = await openRaw(tiny.port, { headers: bearer(t) });
    h.defer(() => s.close());
    const sid = (await s.next((e) => e.event === "connect")).json.sid;
    const started = Date.now();
    const r = await post(tiny.port, sid, { event: "no-such-handler", ack: true }, { headers: bearer(t) });
    assert.equal(r.status, 504, r.text);
    assert.ok(Date.now() - started >= 900, `${Date.now() - started} ms`);
    // The session lives on.
    assert.equal((await post(tiny.port, sid, { event: "heartbeat" }, { headers: bearer(t) })).status, 202);
    s.close();
  });

  await h.case("while the daemon shuts down, a stream request gets only `retry:` (an EventSource keeps trying)", async () => {
    const d = await owuiServer(h, { users: USERS });
    const t = tok("u-ann");
    // A WebSocket client that never answers the close frame holds the
    // shutdown open for the close linger (1 s).
    const ws = new RawWs(d.port, "/ws/socket.io/?EIO=4&transport=websocket");
    h.defer(() => ws.destroy());
    await ws.connect();
    const stopping = d.stop();
    await sleep(150);
    const s = await openRaw(d.port, { headers: bearer(t) });
    assert.equal(s.status, 200);
    assert.match(s.headers["content-type"], /^text\/event-stream/);
    await waitFor(() => s.ended, 2000, "the stream ends");
    assert.equal(s.text, "retry: 2000\n\n");
    const p = await post(d.port, "AAAAAAAAAAAAAAAAAAAA", { event: "x" }, { headers: bearer(t) });
    assert.equal(p.status, 503);
    ws.destroy();
    await stopping;
  });

  await h.case("no token reached the daemon's debug log", async () => {
    ann.raw.close();
    const log = fs.readFileSync(server.logPath, "utf8") + fs.readFileSync(small.logPath, "utf8");
    assert.ok(log.includes("DEBUG"), "the log is at debug level");
    for (const t of tokens) {
      assert.ok(!log.includes(t), "a token is in the log");
      const signature = t.split(".")[2] || "";
      assert.ok(signature.length < 16 || !log.includes(signature), "a token's signature is in the log");
    }
  });
});
