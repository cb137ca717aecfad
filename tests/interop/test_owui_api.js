// The openwebui app's backend HTTP API (/api/v1, bearer key) and operator
// endpoints (/healthz, /metrics), driven over plain HTTP while
// socket.io-client tabs are connected: refusals (401, 400, 404, 405, 413),
// emit to a sid / user / room, rooms join/leave, heartbeat, the user-list
// request, batches (arrays) on emit and chat-events, and the metrics.
"use strict";

const { assert, run, sleep } = require("./lib/harness");
const { API_KEY, expectNone, openTab, owuiServer, sorted, token, waitFor } = require("./lib/owui");

const USERS = [
  { id: "u-ann", name: "Ann", role: "user" },
  { id: "u-bob", name: "Bob", role: "admin" },
];
const BODY_LIMIT = 4096;

run({ timeoutMs: 60000 }, async (h) => {
  const server = await owuiServer(h, { users: USERS, args: ["--api-body-limit", String(BODY_LIMIT)] });
  const api = server.api;
  const tab = (opts) => openTab(server, h.defer.bind(h), { mode: "websocket", ...opts });
  const errorOf = (r) => (r.json && typeof r.json.error === "string" ? r.json.error : `not an error body: ${r.text}`);
  let unauthorized = 0;

  await h.case("401 without a key, with a wrong key or another scheme, on every kind of route", async () => {
    const attempts = [
      ["GET", "/api/v1/users", undefined, { key: null }],
      ["GET", "/api/v1/users", undefined, { key: "wrong-key" }],
      ["GET", "/api/v1/users", undefined, { key: API_KEY.toUpperCase() }],
      ["GET", "/api/v1/users", undefined, { key: `${API_KEY}x` }],
      ["GET", "/api/v1/users", undefined, { key: API_KEY.slice(0, -1) }],
      ["GET", "/api/v1/users", undefined, { key: null, headers: { Authorization: `Basic ${API_KEY}` } }],
      ["GET", "/api/v1/users", undefined, { key: null, headers: { Authorization: API_KEY } }],
      ["POST", "/api/v1/emit", { event: "x", to: { room: "r" } }, { key: null }],
      ["POST", "/api/v1/chat-events", "{not json", { key: "wrong-key" }],
      ["POST", "/api/v1/call", { sid: "x" }, { key: null }],
      ["DELETE", "/api/v1/users/u-ann/sessions", undefined, { key: null }],
      ["GET", "/api/v1/no-such-route", undefined, { key: null }],
    ];
    for (const [method, p, body, opts] of attempts) {
      const r = await api(method, p, body, opts);
      assert.equal(r.status, 401, `${method} ${p} ${JSON.stringify(opts)}: ${r.status} ${r.text}`);
      assert.match(errorOf(r), /key/i);
      assert.equal(r.headers["www-authenticate"], "Bearer");
      assert.match(r.headers["content-type"], /^application\/json/);
      unauthorized++;
    }
  });

  await h.case("400 for malformed JSON, a body that is not an object, and missing or bad fields", async () => {
    const bad = [
      ["/api/v1/emit", "{\"event\": \"x\", "],
      ["/api/v1/emit", ""],
      ["/api/v1/call", "[]"], // arrays only where batches are allowed
      ["/api/v1/rooms/r1/join", [{ sids: [] }]],
      ["/api/v1/emit", "\"a string\""],
      ["/api/v1/emit", "{\"event\":\"x\",\"event\":\"y\",\"to\":{\"room\":\"r\"}}"], // repeated key
      ["/api/v1/emit", { to: { room: "r" }, data: 1 }], // no event
      ["/api/v1/emit", { event: "", to: { room: "r" } }],
      ["/api/v1/emit", { event: "x", data: 1 }], // no to
      ["/api/v1/emit", { event: "x", to: "room" }],
      ["/api/v1/emit", { event: "x", to: {} }],
      ["/api/v1/emit", { event: "x", to: { room: "r", user: "u" } }],
      ["/api/v1/emit", { event: "x", to: { room: 7 } }],
      ["/api/v1/chat-events", "not json"],
      ["/api/v1/chat-events", { chat_id: "c", message_id: "m", data: {} }], // no user_id
      ["/api/v1/chat-events", { user_id: "u", message_id: "m", data: {} }], // no chat_id
      ["/api/v1/chat-events", { user_id: "u", chat_id: "c", data: {} }], // no message_id
      ["/api/v1/chat-events", { user_id: "u", chat_id: "c", message_id: "m" }], // no data
      ["/api/v1/chat-events", { user_id: "u", chat_id: "c", message_id: "m", data: {}, event: "other" }],
      ["/api/v1/call", "{"],
      ["/api/v1/call", { data: {} }], // no sid
      ["/api/v1/call", { sid: "s", timeout_ms: -1 }],
      ["/api/v1/call", { sid: "s", timeout_ms: "500" }],
      ["/api/v1/rooms/r1/join", "{]"],
      ["/api/v1/rooms/r1/join", {}],
      ["/api/v1/rooms/r1/join", { sids: "not-an-array" }],
      ["/api/v1/rooms/r1/leave", {}],
    ];
    for (const [p, body] of bad) {
      const r = await api("POST", p, body);
      assert.equal(r.status, 400, `POST ${p} ${JSON.stringify(body)}: ${r.status} ${r.text}`);
      assert.ok(errorOf(r).length > 5, r.text);
    }
  });

  await h.case("404 for unknown routes and objects, 405 for a wrong method", async () => {
    for (const [method, p] of [
      ["GET", "/api/v1/no-such-route"],
      ["GET", "/api/v1/users/u-ann"],
      ["GET", "/api/v1/sessions/no-such-sid"],
      ["GET", "/api/v1/sessions/"],
      ["POST", "/api/v1/rooms/r1/explode"],
    ]) {
      const r = await api(method, p, method === "POST" ? {} : undefined);
      assert.equal(r.status, 404, `${method} ${p}: ${r.status} ${r.text}`);
      assert.ok(errorOf(r));
    }
    const ns = await api("POST", "/api/v1/emit", { event: "x", to: { room: "r" }, namespace: "/nope" });
    assert.equal(ns.status, 404, ns.text);
    for (const [method, p] of [
      ["GET", "/api/v1/emit"],
      ["GET", "/api/v1/chat-events"],
      ["PUT", "/api/v1/call"],
      ["POST", "/api/v1/users"],
      ["DELETE", "/api/v1/usage"],
      ["GET", "/api/v1/rooms/r1/join"],
      ["GET", "/api/v1/users/u-ann/sessions"],
    ]) {
      const r = await api(method, p, method === "POST" || method === "PUT" ? {} : undefined);
      assert.equal(r.status, 405, `${method} ${p}: ${r.status} ${r.text}`);
      assert.ok(errorOf(r));
    }
  });

  await h.case(`413 for a body over --api-body-limit (${BODY_LIMIT} bytes); one under it passes`, async () => {
    const filler = (n) => ({ event: "x", to: { room: "nobody-here" }, data: "y".repeat(n) });
    const small = await api("POST", "/api/v1/emit", filler(BODY_LIMIT - 200));
    assert.deepEqual([small.status, small.json], [200, { recipients: 0 }]);
    for (const n of [BODY_LIMIT + 1, 64 * 1024, 2 * 1024 * 1024]) {
      const r = await api("POST", "/api/v1/emit", filler(n));
      assert.equal(r.status, 413, `${n}: ${r.status} ${r.text}`);
      assert.ok(errorOf(r));
    }
    // The daemon still answers.
    assert.equal((await api("GET", "/api/v1/users")).status, 200);
  });

  const t = {};
  await h.case("emit to a sid, a user and a room, with data or args; recipients counted", async () => {
    t.ann1 = await tab({ name: "ann1", token: token("u-ann") });
    t.ann2 = await tab({ name: "ann2", token: token("u-ann") });
    t.bob = await tab({ name: "bob", token: token("u-bob") });
    t.anon = await tab({ name: "anon" });
    const all = [t.ann1, t.ann2, t.bob, t.anon];
    await waitFor(async () => (await api("GET", "/api/v1/rooms/user:u-ann")).json.sids.length === 2, 5000, "ann's tabs");

    let r = await api("POST", "/api/v1/emit", { event: "to-sid", data: { a: 1 }, to: { sid: t.bob.id } });
    assert.deepEqual([r.status, r.json], [200, { recipients: 1 }]);
    r = await api("POST", "/api/v1/emit", { event: "to-user", args: ["x", 2, null, { y: [] }], to: { user: "u-ann" } });
    assert.deepEqual(r.json, { recipients: 2 });
    r = await api("POST", "/api/v1/emit", { event: "to-anon", data: "just a string", to: { sid: t.anon.id }, namespace: "/" });
    assert.deepEqual(r.json, { recipients: 1 });
    r = await api("POST", "/api/v1/emit", { event: "no-args", to: { user: "u-bob" } });
    assert.deepEqual(r.json, { recipients: 1 });
    r = await api("POST", "/api/v1/emit", { event: "to-nobody", data: 1, to: { user: "u-nobody" } });
    assert.deepEqual(r.json, { recipients: 0 });

    await waitFor(() => t.bob.of("no-args").length === 1, 5000, "bob gets no-args");
    assert.deepEqual(t.bob.of("to-sid"), [[{ a: 1 }]]);
    assert.deepEqual(t.bob.of("no-args"), [[]]);
    for (const x of [t.ann1, t.ann2]) {
      await waitFor(() => x.of("to-user").length === 1, 5000, `${x.name} gets to-user`);
      assert.deepEqual(x.of("to-user"), [["x", 2, null, { y: [] }]]);
    }
    await waitFor(() => t.anon.of("to-anon").length === 1, 5000, "anon gets to-anon");
    assert.deepEqual(t.anon.of("to-anon"), [["just a string"]]);
    await sleep(200);
    for (const x of all) {
      const evs = x.events.filter((e) => e.ev.startsWith("to-") || e.ev === "no-args").map((e) => e.ev);
      const want = { ann1: ["to-user"], ann2: ["to-user"], bob: ["to-sid", "no-args"], anon: ["to-anon"] }[x.name];
      assert.deepEqual(evs, want, x.name);
    }
  });

  await h.case("batches: an array to chat-events and to emit runs each item in order, answers each", async () => {
    const chat = (user, n) => ({ user_id: user, chat_id: "c-batch", message_id: "m-batch", data: { type: "chat:completion", data: { n } } });
    let r = await api("POST", "/api/v1/chat-events", [
      chat("u-ann", 0),
      chat("u-bob", 0),
      chat("u-ann", 1),
      { user_id: "u-ann", chat_id: "c-batch", message_id: "m-batch" }, // no data
      7,
      chat("u-ann", 2),
      chat("u-nobody", 0),
    ]);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.length, 7, r.text);
    assert.deepEqual(r.json.filter((_, i) => i !== 3 && i !== 4), [{ recipients: 2 }, { recipients: 1 }, { recipients: 2 }, { recipients: 2 }, { recipients: 0 }]);
    for (const i of [3, 4]) {
      assert.equal(r.json[i].status, 400, r.text);
      assert.ok(r.json[i].error.length > 5, r.text);
    }
    const numbers = (x) => x.of("chat-events").filter((a) => a[0].chat_id === "c-batch").map((a) => a[0].data.data.n);
    for (const x of [t.ann1, t.ann2]) {
      await waitFor(() => numbers(x).length === 3, 5000, `${x.name} gets the batch`);
      assert.deepEqual(numbers(x), [0, 1, 2], x.name);
      const first = x.of("chat-events").find((a) => a[0].chat_id === "c-batch");
      assert.deepEqual(first, [{ chat_id: "c-batch", message_id: "m-batch", data: chat("u-ann", 0).data }]);
    }
    await waitFor(() => numbers(t.bob).length === 1, 5000, "bob gets his item");

    // A batch longer than the items the API walks by the validator's spans
    // (32) goes by a cursor: the same answers and events, in order.
    const many = Array.from({ length: 40 }, (_, n) => ({ user_id: "u-ann", chat_id: "c-long", message_id: "m", data: n }));
    r = await api("POST", "/api/v1/chat-events", many);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, Array(many.length).fill({ recipients: 2 }));
    const longOnes = (x) => x.of("chat-events").filter((a) => a[0].chat_id === "c-long").map((a) => a[0].data);
    for (const x of [t.ann1, t.ann2]) {
      await waitFor(() => longOnes(x).length === many.length, 5000, `${x.name} gets the long batch`);
      assert.deepEqual(longOnes(x), many.map((m) => m.data), x.name);
    }

    r = await api("POST", "/api/v1/emit", [
      { event: "batch-a", data: 1, to: { user: "u-bob" } },
      { event: "batch-b", args: [2, 3], to: { sid: t.bob.id } },
      { event: "batch-c", to: "nowhere" },
      { event: "batch-d", data: 4, to: { user: "u-bob" } },
    ]);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual([r.json[0], r.json[1], r.json[3]], [{ recipients: 1 }, { recipients: 1 }, { recipients: 1 }]);
    assert.equal(r.json[2].status, 400, r.text);
    await waitFor(() => t.bob.of("batch-d").length === 1, 5000, "bob gets batch-d");
    const order = t.bob.events.filter((e) => e.ev.startsWith("batch-")).map((e) => [e.ev, ...e.args]);
    assert.deepEqual(order, [["batch-a", 1], ["batch-b", 2, 3], ["batch-d", 4]]);

    r = await api("POST", "/api/v1/emit", []);
    assert.deepEqual([r.status, r.json], [200, []]);
  });

  await h.case("chat-events as forwarded text and as a parsed tree reach the tabs as the same values", async () => {
    // Each body is sent twice: as written (the bytes are forwarded) and with
    // its chat_id key escaped, which sends it the parsed way; the tabs must
    // decode the same payload from both, whatever the spacing, number forms
    // and string escapes.
    const bodies = [
      '{"user_id":"u-ann","chat_id":"c-text","message_id":"m0","data":{"type":"chat:completion","data":{"content":"Hi","done":false}}}',
      ' { "user_id" : "u-ann" ,\n "chat_id" : "c-text" , "message_id" : "m1" ,\n "data" : { "n" : 1.50 , "e" : 1e2 , "z" : -0.0 , "a" : [ 1 , [ ] , { } ] } } ',
      '{"user_id":"u-ann","chat_id":"c-text","message_id":"m2","data":"\\u00e9\\/\\uD83D\\uDE00 \u00e9 \\"q\\" \\\\ \\n \\t"}',
      '{"event":"events","user_id":"u-ann","session_id":"","chat_id":"c-text","message_id":"m3","data":null}',
      '{"user_id":"u-ann","chat_id":"c-text","message_id":{"deep":[{"k":"v"}]},"data":[true,false,null,123456789]}',
    ];
    const viaTree = (b) => b.replace('"chat_id"', '"chat\\u005fid"');
    const got = (x) =>
      x.events.filter((e) => (e.ev === "chat-events" || e.ev === "events") && e.args[0] && e.args[0].chat_id === "c-text").map((e) => e.args);
    for (const body of bodies) {
      for (const text of [body, viaTree(body)]) {
        const r = await api("POST", "/api/v1/chat-events", text);
        assert.deepEqual([r.status, r.json], [200, { recipients: 2 }], text);
      }
    }
    const batch = await api("POST", "/api/v1/chat-events", `[${bodies.join(",")},${bodies.map(viaTree).join(",")}]`);
    assert.equal(batch.status, 200, batch.text);
    assert.deepEqual(batch.json, Array(bodies.length * 2).fill({ recipients: 2 }));
    for (const x of [t.ann1, t.ann2]) {
      await waitFor(() => got(x).length === bodies.length * 4, 5000, `${x.name} gets both forms`);
      const evs = got(x);
      for (let i = 0; i < bodies.length; i++) {
        const want = JSON.parse(bodies[i]);
        const payload = { chat_id: want.chat_id, message_id: want.message_id, data: want.data };
        assert.deepEqual(evs[2 * i], [payload], `${x.name} text ${i}`);
        assert.deepEqual(evs[2 * i + 1], [payload], `${x.name} tree ${i}`);
      }
      assert.deepEqual(evs.slice(bodies.length * 2), [...evs.slice(0, bodies.length * 2).filter((_, k) => k % 2 === 0), ...evs.slice(0, bodies.length * 2).filter((_, k) => k % 2 === 1)]);
    }
    // What the parsed way refuses is still refused, with its reasons.
    for (const text of [
      '{"user_id":"u-ann","chat_id":"c","message_id":"m","data":{"a":1,"a":2}}',
      '{"user_id":"u-ann","chat_id":"c","message_id":"m","data":1e999}',
      '{"user_id":"u-ann","chat_id":"c","message_id":"m","data":"\\u0000"}',
      '{"user_id":"u-ann","chat_id":"c","message_id":"m","data":"\\uD800"}',
      '{"user_id":"u-ann","chat_id":"c","message_id":"m","data":01}',
    ]) {
      const r = await api("POST", "/api/v1/chat-events", text);
      assert.equal(r.status, 400, text);
      assert.match(errorOf(r), /^invalid JSON body: /, text);
    }
  });

  await h.case("rooms: join and leave by sids or by user, GET lists sids and user ids, emit reaches members", async () => {
    const room = (name) => api("GET", `/api/v1/rooms/${name}`).then((r) => {
      assert.equal(r.status, 200, r.text);
      return { ...r.json, sids: sorted(r.json.sids), user_ids: sorted(r.json.user_ids) };
    });
    assert.deepEqual(await room("team"), { room: "team", sids: [], user_ids: [] });
    let r = await api("POST", "/api/v1/rooms/team/join", { sids: [t.bob.id, t.anon.id, "no-such-sid"] });
    assert.deepEqual([r.status, r.json], [200, { joined: 2 }]);
    r = await api("POST", "/api/v1/rooms/team/join", { sids: [t.bob.id] });
    assert.deepEqual(r.json, { joined: 0 }, "already a member");
    assert.deepEqual(await room("team"), { room: "team", sids: sorted([t.bob.id, t.anon.id]), user_ids: ["u-bob"] });
    r = await api("POST", "/api/v1/rooms/team/join", { user_id: "u-ann" });
    assert.deepEqual(r.json, { joined: 2 });
    assert.deepEqual(await room("team"), {
      room: "team",
      sids: sorted([t.bob.id, t.anon.id, t.ann1.id, t.ann2.id]),
      user_ids: ["u-ann", "u-bob"],
    });
    r = await api("POST", "/api/v1/emit", { event: "team-news", data: { n: 1 }, to: { room: "team" } });
    assert.deepEqual(r.json, { recipients: 4 });
    for (const x of [t.ann1, t.ann2, t.bob, t.anon]) await waitFor(() => x.of("team-news").length === 1, 5000, `${x.name} team-news`);
    r = await api("POST", "/api/v1/rooms/team/leave", { user_id: "u-ann" });
    assert.deepEqual(r.json, { left: 2 });
    r = await api("POST", "/api/v1/rooms/team/leave", { sids: [t.anon.id, t.ann1.id] });
    assert.deepEqual(r.json, { left: 1 }, "ann1 had left already");
    assert.deepEqual(await room("team"), { room: "team", sids: [t.bob.id], user_ids: ["u-bob"] });
    r = await api("POST", "/api/v1/emit", { event: "team-news", data: { n: 2 }, to: { room: "team" } });
    assert.deepEqual(r.json, { recipients: 1 });
    await waitFor(() => t.bob.of("team-news").length === 2, 5000, "bob's second team-news");
    await expectNone([t.ann1, t.ann2, t.anon], "team-news", 200, "left the room");
    assert.equal(t.ann1.of("team-news").length, 1);
    // Room names are URL-decoded path segments.
    r = await api("POST", `/api/v1/rooms/${encodeURIComponent("channel:x y")}/join`, { sids: [t.anon.id] });
    assert.deepEqual(r.json, { joined: 1 });
    assert.deepEqual((await room(encodeURIComponent("channel:x y"))).sids, [t.anon.id]);
    // Every sid is its own room.
    assert.deepEqual(await room(t.bob.id), { room: t.bob.id, sids: [t.bob.id], user_ids: ["u-bob"] });
  });

  await h.case("heartbeat refreshes last_seen_at in SESSION_POOL", async () => {
    const seen = async () => (await api("GET", `/api/v1/sessions/${t.bob.id}`)).json.last_seen_at;
    const first = await seen();
    // Whole seconds, as Open WebUI keeps them: wait for the next second.
    await sleep(1100);
    assert.equal(await seen(), first, "unchanged without a heartbeat");
    t.bob.sock.emit("heartbeat", {});
    await waitFor(async () => (await seen()) > first, 3000, "last_seen_at moves");
  });

  await h.case("a user-list request is answered with the online users", async () => {
    const n = t.anon.of("user-list").length;
    t.anon.sock.emit("user-list");
    await waitFor(() => t.anon.of("user-list").length > n, 5000, "a user-list answer");
    assert.deepEqual(sorted(t.anon.last("user-list").user_ids), ["u-ann", "u-bob"]);
  });

  await h.case("/healthz answers without a key", async () => {
    const r = await api("GET", "/healthz", undefined, { key: null });
    assert.equal(r.status, 200);
    assert.equal(r.json.status, "ok");
    assert.match(r.headers["content-type"], /^application\/json/);
  });

  // Prometheus text: {samples: "name{labels}" -> value, families: name -> type}.
  const parse = (r) => {
    const samples = new Map();
    const families = new Map();
    for (const line of r.text.split("\n")) {
      if (!line) continue;
      let m = line.match(/^# (HELP|TYPE) (\w+) (.+)$/);
      if (m) {
        if (m[1] === "TYPE") families.set(m[2], m[3]);
        continue;
      }
      m = line.match(/^(\w+(?:\{[^}]*\})?) (\d+(?:\.\d+)?)$/);
      assert.ok(m, `not a Prometheus sample line: ${JSON.stringify(line)}`);
      samples.set(m[1], Number(m[2]));
    }
    return { samples, families };
  };
  const scrape = async () => {
    const r = await api("GET", "/metrics", undefined, { key: null });
    assert.equal(r.status, 200);
    assert.match(r.headers["content-type"], /^text\/plain; version=0\.0\.4/);
    return parse(r);
  };

  await h.case("/metrics is Prometheus text with connections by transport, sockets, rooms, API counters", async () => {
    // The harness' readiness probe left a polling session that has not
    // timed out yet: count polling sessions relative to before.
    const polling = (await scrape()).samples.get('siohub_connections{transport="polling"}');
    // One more tab that stays on polling (ann1, ann2, bob, anon are on WebSocket).
    t.poll = await tab({ name: "poll", token: token("u-bob"), options: { transports: ["polling"] } });
    const { samples, families } = await scrape();
    const want = {
      siohub_connections: "gauge",
      siohub_sockets: "gauge",
      siohub_rooms: "gauge",
      siohub_packets_total: "counter",
      siohub_bytes_total: "counter",
      siohub_slow_clients_dropped_total: "counter",
      siohub_api_requests_total: "counter",
    };
    for (const [f, type] of Object.entries(want)) assert.equal(families.get(f), type, `family ${f}`);
    assert.equal(samples.get('siohub_connections{transport="websocket"}'), 4);
    assert.equal(samples.get('siohub_connections{transport="polling"}'), polling + 1);
    assert.equal(samples.get("siohub_sockets"), 5);
    assert.ok(samples.get("siohub_rooms") >= 5, `rooms ${samples.get("siohub_rooms")}`);
    assert.ok(samples.get('siohub_packets_total{direction="in"}') > 0);
    assert.ok(samples.get('siohub_bytes_total{direction="out"}') > 0);
    assert.equal(samples.get("siohub_slow_clients_dropped_total"), 0);
    assert.equal(samples.get("siohub_api_unauthorized_total"), unauthorized);
    assert.ok(samples.get('siohub_api_requests_total{class="4xx"}') >= 40, "the refusals above");
    assert.ok(samples.get('siohub_api_requests_total{class="2xx"}') > 10);
    assert.equal(samples.get('siohub_api_requests_total{class="5xx"}'), 0);
  });

  await h.case("DELETE /api/v1/users/ID/sessions: every tab of the user, with a server disconnect", async () => {
    const r = await api("DELETE", "/api/v1/users/u-bob/sessions");
    assert.deepEqual([r.status, r.json], [200, { disconnected: 2 }]);
    for (const x of [t.bob, t.poll]) {
      await waitFor(() => x.disconnects.length > 0, 5000, `${x.name} disconnected`);
      assert.deepEqual(x.disconnects, ["io server disconnect"], x.name);
    }
    assert.ok(t.ann1.sock.connected && t.ann2.sock.connected && t.anon.sock.connected);
    await waitFor(async () => !(await api("GET", "/api/v1/users")).json.user_ids.includes("u-bob"), 5000, "u-bob offline");
  });
});
