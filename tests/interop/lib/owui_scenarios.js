// tests/interop/lib/owui_scenarios.js — Open WebUI's browser client
// (socket.io-client with the options of src/routes/+layout.svelte) against
// `siohubd --app openwebui`, the scenarios of the realtime contract
// (the project notes' openwebui-contract.md). `mode` picks Open WebUI's
// transports (lib/owui.js TRANSPORTS): "websocket" (ENABLE_WEBSOCKET_SUPPORT),
// "upgrade" (["polling", "websocket"]: polling first, then the upgrade
// siohub offers by default) or "polling" (the same client against a daemon
// with ENABLE_WEBSOCKET_SUPPORT=false: it stays on polling).
"use strict";

const { assert, run, sleep } = require("./harness");
const {
  expectNone,
  hostileTokens,
  nowS,
  openTab,
  owuiServer,
  serialAgent,
  sorted,
  token,
  waitFor,
} = require("./owui");

// The directory: ids, names and roles the assertions name.
const USERS = [
  { id: "u-ann", name: "Ann", email: "ann@example.org", role: "user" },
  { id: "u-bob", name: "Bob", email: "bob@example.org", role: "admin" },
  { id: "u-cat", name: "Cat", email: "cat@example.org", role: "user" },
  { id: "u-dan", name: "Dan", role: "user" },
  { id: "u-eve", name: "Eve", role: "user" },
  { id: "u-fay", name: "Fay", role: "user" },
  { id: "u-gus", name: "Gus", role: "user" },
  { id: "u-hal", name: "Hal", role: "user" },
  { id: "u-pen", name: "Pen", role: "pending" },
];
const CHANNELS = [
  { id: "ch-team", name: "team", members: ["u-ann", "u-bob"] },
  { id: "ch-other", members: ["u-bob", "u-cat"] },
];
const CHAT_EVENTS = 1000;

function runOwuiScenarios(mode) {
  run({ timeoutMs: 90000, caseTimeoutMs: 20000 }, async (h) => {
    const env = mode === "polling" ? { ENABLE_WEBSOCKET_SUPPORT: "false" } : {};
    const server = await owuiServer(h, { users: USERS, channels: CHANNELS, env });
    const transport = mode === "polling" ? "polling" : "websocket";
    const tab = (opts, defer) => openTab(server, defer || h.defer.bind(h), { mode, ...opts });
    const get = async (p) => {
      const r = await server.api("GET", p);
      assert.equal(r.status, 200, `GET ${p}: ${r.status} ${r.text}`);
      return r.json;
    };
    const users = async () => (await get("/api/v1/users")).user_ids;
    const roomSids = async (room) => sorted((await get(`/api/v1/rooms/${encodeURIComponent(room)}`)).sids);

    // An anonymous tab (no token): always_connect lets it in, it is in no
    // pool, and it hears every presence broadcast (they go to everyone).
    const observer = await tab({ name: "observer" });

    const ann = {};
    await h.case("CONNECT with auth {token}: a user-list broadcast lists the user, a usage one follows", async () => {
      ann.t1 = await tab({ name: "ann1", token: token("u-ann") });
      await waitFor(() => (observer.last("user-list") || { user_ids: [] }).user_ids.includes("u-ann"), 5000,
        () => `observer's user-list events: ${JSON.stringify(observer.of("user-list"))}`);
      assert.deepEqual(observer.last("user-list"), { user_ids: ["u-ann"] });
      await waitFor(() => ann.t1.of("user-list").length > 0, 5000, "ann1 gets the broadcast too");
      assert.deepEqual(ann.t1.last("user-list"), { user_ids: ["u-ann"] });
      // Seed shape: connect also broadcasts `usage` (nobody uses a model).
      await waitFor(() => observer.of("usage").length > 0, 5000, "a usage broadcast");
      assert.deepEqual(observer.last("usage"), { models: [] });
      assert.deepEqual(await users(), ["u-ann"]);
      assert.equal(observer.connectErrors.length + ann.t1.connectErrors.length, 0);
    });

    await h.case(`transport: ${mode === "upgrade" ? "polling, then the upgrade to websocket" : transport}`, async () => {
      const engine = ann.t1.sock.io.engine;
      if (mode === "upgrade") {
        await waitFor(() => engine.transport.name === "websocket", 5000, () => `transport ${engine.transport.name}`);
        assert.deepEqual([ann.t1.opened, ann.t1.upgrades], [["polling"], ["websocket"]]);
      } else {
        await sleep(300); // no upgrade behind our back
        assert.deepEqual([ann.t1.opened, ann.t1.upgrades, engine.transport.name], [[transport], [], transport]);
      }
    });

    await h.case("SESSION_POOL holds the user dict with last_seen_at; the tab is in room user:{id}", async () => {
      const r = await server.api("GET", `/api/v1/sessions/${ann.t1.id}`);
      assert.equal(r.status, 200, r.text);
      const { last_seen_at: seen, ...dict } = r.json;
      assert.deepEqual(dict, { id: "u-ann", name: "Ann", email: "ann@example.org", role: "user" });
      assert.ok(Number.isInteger(seen) && Math.abs(seen - nowS()) <= 5, `last_seen_at ${seen}`);
      assert.deepEqual(await get("/api/v1/rooms/user:u-ann"), { room: "user:u-ann", sids: [ann.t1.id], user_ids: ["u-ann"] });
    });

    await h.case("two tabs of one user: one closes (still listed), then both (gone, broadcast seen)", async () => {
      ann.t2 = await tab({ name: "ann2", token: token("u-ann") });
      await waitFor(async () => (await roomSids("user:u-ann")).length === 2, 5000, "both tabs in user:u-ann");
      assert.deepEqual(await roomSids("user:u-ann"), sorted([ann.t1.id, ann.t2.id]));
      const sid1 = ann.t1.id;
      ann.t1.close();
      await waitFor(async () => (await roomSids("user:u-ann")).length === 1, 5000, "one tab left");
      assert.deepEqual(await roomSids("user:u-ann"), [ann.t2.id]);
      assert.equal((await server.api("GET", `/api/v1/sessions/${sid1}`)).status, 404, "the closed tab left SESSION_POOL");
      assert.deepEqual(await users(), ["u-ann"], "the user is still online");
      // No broadcast says otherwise (one is sent only when the list changes).
      await sleep(600);
      assert.ok(observer.last("user-list").user_ids.includes("u-ann"), JSON.stringify(observer.of("user-list")));
      const n = observer.of("user-list").length;
      ann.t2.close();
      await waitFor(() => observer.of("user-list").length > n, 5000, "a user-list broadcast after the last tab closed");
      assert.deepEqual(observer.last("user-list"), { user_ids: [] });
      assert.deepEqual(await users(), []);
    });

    const bob = {};
    const cat = {};
    await h.case("user-join acks {id, name} and joins the user's channel rooms", async () => {
      bob.t = await tab({ name: "bob", token: token("u-bob") });
      const [reply] = await bob.t.userJoin();
      assert.deepEqual(reply, { id: "u-bob", name: "Bob" });
      assert.deepEqual(await roomSids("channel:ch-team"), [bob.t.id]);
      assert.deepEqual(await roomSids("channel:ch-other"), [bob.t.id]);
      // Authenticated by user-join alone (no CONNECT token), as older clients do.
      cat.t = await tab({ name: "cat" });
      cat.t.token = token("u-cat");
      assert.deepEqual((await cat.t.userJoin())[0], { id: "u-cat", name: "Cat" });
      assert.deepEqual(await roomSids("channel:ch-other"), sorted([bob.t.id, cat.t.id]));
      assert.deepEqual(await roomSids("channel:ch-team"), [bob.t.id], "cat is not in ch-team");
      await waitFor(() => (observer.last("user-list") || { user_ids: [] }).user_ids.includes("u-cat"), 5000, "user-list lists u-cat");
      assert.deepEqual(sorted(await users()), ["u-bob", "u-cat"]);
    });

    await h.case("user-join with a bad token answers nothing and authenticates nobody", async () => {
      const t = await tab({ name: "anon-join" });
      await assert.rejects(t.ack("user-join", { auth: { token: hostileTokens("u-fay", "u-pen")["wrong secret"] } }, 1000), /timeout/);
      await assert.rejects(t.ack("user-join", {}, 500), /timeout/, "no auth at all");
      assert.equal((await server.api("GET", `/api/v1/sessions/${t.id}`)).status, 404);
      assert.ok(!(await users()).includes("u-fay"));
      assert.ok(t.sock.connected, "still connected");
    });

    await h.case("join-channels joins the rooms of a tab authenticated at CONNECT", async () => {
      ann.t3 = await tab({ name: "ann3", token: token("u-ann") });
      assert.deepEqual(await roomSids("channel:ch-team"), [bob.t.id]);
      ann.t3.sock.emit("join-channels", { auth: { token: ann.t3.token } });
      await waitFor(async () => (await roomSids("channel:ch-team")).includes(ann.t3.id), 5000, "ann3 in ch-team");
      assert.deepEqual(await roomSids("channel:ch-team"), sorted([bob.t.id, ann.t3.id]));
      assert.ok(!(await roomSids("channel:ch-other")).includes(ann.t3.id));
    });

    for (const event of ["channel-events", "events:channel"]) {
      await h.case(`typing (${event}) reaches the channel's members, sender included, and nobody else`, async () => {
        const typing = { type: "typing", data: { typing: true } };
        const n = [ann.t3, bob.t].map((t) => t.of(event).length);
        ann.t3.sock.emit(event, { channel_id: "ch-team", message_id: "m-1", data: typing });
        const want = { channel_id: "ch-team", message_id: "m-1", data: typing, user: { id: "u-ann", name: "Ann", role: "user" } };
        for (const [i, t] of [ann.t3, bob.t].entries()) {
          await waitFor(() => t.of(event).length > n[i], 5000, `${t.name} gets ${event}`);
          assert.deepEqual(t.of(event).slice(n[i]), [[want]]);
        }
        // From bob (admin), without message_id: null, as Open WebUI's data.get().
        bob.t.sock.emit(event, { channel_id: "ch-team", data: typing });
        const want2 = { channel_id: "ch-team", message_id: null, data: typing, user: { id: "u-bob", name: "Bob", role: "admin" } };
        await waitFor(() => ann.t3.of(event).length > n[0] + 1, 5000, "ann3 gets bob's typing");
        assert.deepEqual(ann.t3.last(event), want2);
        await expectNone([cat.t, observer], event, 300, "a non-member");
        const other = event === "channel-events" ? "events:channel" : "channel-events";
        assert.equal(ann.t3.of(other).length, event === "channel-events" ? 0 : 2, `no ${other} echo`);
      });
    }

    await h.case("typing in a channel whose id JSON escapes, and with data as written", async () => {
      // The id needs an escape in JSON: the server reads this event the
      // tree way rather than from its text; the result is the same.
      const id = 'ch"q\\u';
      const room = `channel:${id}`;
      const j = await server.api("POST", `/api/v1/rooms/${encodeURIComponent(room)}/join`, { sids: [ann.t3.id, bob.t.id] });
      assert.deepEqual(j.json, { joined: 2 });
      const typing = { type: "typing", data: { typing: true, note: "é \u2028 \"" } };
      const n = bob.t.of("channel-events").length;
      ann.t3.sock.emit("channel-events", { channel_id: id, message_id: 7, data: typing });
      await waitFor(() => bob.t.of("channel-events").length > n, 5000, "bob gets typing in the escaped channel");
      assert.deepEqual(bob.t.last("channel-events"), { channel_id: id, message_id: 7, data: typing, user: { id: "u-ann", name: "Ann", role: "user" } });
      const l = await server.api("POST", `/api/v1/rooms/${encodeURIComponent(room)}/leave`, { sids: [ann.t3.id, bob.t.id] });
      assert.deepEqual(l.json, { left: 2 });
    });

    await h.case("a non-member's typing is dropped, as is an anonymous tab's and a member's non-typing event", async () => {
      const typing = { type: "typing", data: { typing: true } };
      const all = [ann.t3, bob.t, cat.t, observer];
      cat.t.sock.emit("channel-events", { channel_id: "ch-team", message_id: "m-2", data: typing });
      cat.t.sock.emit("events:channel", { channel_id: "ch-team", data: typing });
      observer.sock.emit("channel-events", { channel_id: "ch-team", data: typing });
      ann.t3.sock.emit("channel-events", { channel_id: "ch-team", data: { type: "last_read_at", data: {} } });
      ann.t3.sock.emit("channel-events", { channel_id: "ch-team" }); // no data at all
      ann.t3.sock.emit("channel-events", "not an object");
      await Promise.all([expectNone(all, "channel-events", 500, "dropped typing"), expectNone(all, "events:channel", 500, "dropped typing")]);
      assert.ok(ann.t3.sock.connected && cat.t.sock.connected, "malformed events cost no connection");
      // In the room (through the API) but not authenticated: still dropped.
      const j = await server.api("POST", "/api/v1/rooms/channel:ch-team/join", { sids: [observer.id] });
      assert.deepEqual(j.json, { joined: 1 });
      observer.sock.emit("channel-events", { channel_id: "ch-team", data: typing });
      await expectNone(all, "channel-events", 400, "an anonymous room member's typing");
      const l = await server.api("POST", "/api/v1/rooms/channel:ch-team/leave", { sids: [observer.id] });
      assert.deepEqual(l.json, { left: 1 });
    });

    await h.case("usage: in a usage broadcast and GET /api/v1/usage, gone within ~7 s with a broadcast", async () => {
      observer.sock.emit("usage", { model: "m-anonymous" }); // not authenticated: ignored
      await sleep(200);
      const n = observer.of("usage").length;
      const t0 = Date.now();
      ann.t3.sock.emit("usage", { model: "m-llama", action: "chat", chat_id: "chat-9" });
      await waitFor(() => observer.of("usage").slice(n).some(([u]) => u.models.includes("m-llama")), 3000, "usage broadcast with m-llama");
      assert.deepEqual(observer.last("usage"), { models: ["m-llama"] });
      assert.deepEqual((await get("/api/v1/usage")).models, ["m-llama"]);
      // Cleanup every 3 s drops entries older than 3 s (whole seconds, as
      // Open WebUI counts them): gone after more than 3 s, at most ~7.25 s.
      await waitFor(() => observer.last("usage").models.length === 0, 10000,
        () => `usage events: ${JSON.stringify(observer.of("usage"))}`);
      const took = Date.now() - t0;
      assert.ok(took > 2900 && took < 8500, `expired after ${took} ms`);
      assert.deepEqual((await get("/api/v1/usage")).models, []);
    }, { timeout: 20000 });

    // dan has two tabs; eve is another user; the observer is anonymous.
    const dan = {};
    let eve;
    for (const event of ["chat-events", "events"]) {
      await h.case(`${CHAT_EVENTS} chat events (${event}) reach every tab of the user in order, and nobody else`, async () => {
        if (!dan.t1) {
          dan.t1 = await tab({ name: "dan1", token: token("u-dan") });
          dan.t2 = await tab({ name: "dan2", token: token("u-dan") });
          eve = await tab({ name: "eve", token: token("u-eve") });
          await waitFor(async () => (await roomSids("user:u-dan")).length === 2, 5000, "dan's tabs in user:u-dan");
        }
        const agent = serialAgent(h);
        const posts = [];
        for (let i = 0; i < CHAT_EVENTS; i++) {
          const body = { user_id: "u-dan", chat_id: "chat-1", message_id: "msg-1", data: { type: "chat:completion", data: { seq: i, content: `token ${i}` } } };
          if (event !== "chat-events" || i % 2) body.event = event; // the default is chat-events
          posts.push(server.api("POST", "/api/v1/chat-events", body, { agent }));
        }
        const answers = await Promise.all(posts);
        answers.forEach((r, i) => assert.deepEqual([r.status, r.json], [200, { recipients: 2 }], `POST #${i}`));
        for (const t of [dan.t1, dan.t2]) {
          await waitFor(() => t.of(event).length >= CHAT_EVENTS, 15000, () => `${t.name}: ${t.of(event).length} ${event}`);
          const got = t.of(event);
          assert.equal(got.length, CHAT_EVENTS);
          got.forEach((args, i) => {
            if (args.length !== 1 || args[0].chat_id !== "chat-1" || args[0].message_id !== "msg-1" || args[0].data.data.seq !== i)
              throw new Error(`${t.name}: ${event} #${i} is ${JSON.stringify(args)}`);
          });
          assert.deepEqual(got[7][0], { chat_id: "chat-1", message_id: "msg-1", data: { type: "chat:completion", data: { seq: 7, content: "token 7" } } });
        }
        await expectNone([eve, observer, ann.t3, bob.t], event, 300, "another user's chat events");
        assert.equal(eve.of(event).length + observer.of(event).length, 0);
        const other = event === "chat-events" ? "events" : "chat-events";
        assert.equal(dan.t1.of(other).length, event === "chat-events" ? 0 : CHAT_EVENTS, `${other} untouched`);
      }, { timeout: 60000 });
    }

    await h.case("chat events also reach the request's session_id, once", async () => {
      const send = (session_id) => server.api("POST", "/api/v1/chat-events",
        { user_id: "u-dan", session_id, chat_id: "chat-2", message_id: "m", data: { type: "status", data: { done: true } } });
      assert.deepEqual((await send(observer.id)).json, { recipients: 3 });
      await waitFor(() => observer.of("chat-events").length === 1, 5000, "observer gets the session_id copy");
      assert.deepEqual(observer.last("chat-events"), { chat_id: "chat-2", message_id: "m", data: { type: "status", data: { done: true } } });
      assert.deepEqual((await send(dan.t1.id)).json, { recipients: 2 }, "a tab of the user counts once");
      const nobody = await server.api("POST", "/api/v1/chat-events", { user_id: "u-nobody", chat_id: "c", message_id: "m", data: {} });
      assert.deepEqual([nobody.status, nobody.json], [200, { recipients: 0 }]);
    });

    await h.case("a call is answered by the client's ack", async () => {
      dan.t1.sock.on("chat-events", (msg, ack) => {
        if (typeof ack === "function") ack({ confirmed: true, echo: msg });
      });
      dan.t1.sock.on("events", (a, b, ack) => {
        if (typeof ack === "function") ack("two args", a, b);
      });
      const envelope = { chat_id: "chat-1", message_id: "msg-2", data: { type: "confirmation", data: { title: "Sure?" } } };
      const r = await server.api("POST", "/api/v1/call", { sid: dan.t1.id, user_id: "u-dan", data: envelope, timeout_ms: 5000 });
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.json, { args: [{ confirmed: true, echo: envelope }] });
      // event "events" and several arguments; no user_id (any authenticated sid).
      const r2 = await server.api("POST", "/api/v1/call", { sid: dan.t1.id, event: "events", args: [1, { x: [2] }], timeout_ms: 5000 });
      assert.deepEqual([r2.status, r2.json], [200, { args: ["two args", 1, { x: [2] }] }]);
    });

    await h.case("a call times out (504) when the client does not answer", async () => {
      // dan2 listens to nothing that acks: the ack never comes.
      const t0 = Date.now();
      const r = await server.api("POST", "/api/v1/call", { sid: dan.t2.id, user_id: "u-dan", data: { q: 1 }, timeout_ms: 500 });
      const took = Date.now() - t0;
      assert.equal(r.status, 504, r.text);
      assert.equal(typeof r.json.error, "string");
      assert.ok(took >= 450 && took < 5000, `answered after ${took} ms`);
      await waitFor(() => dan.t2.of("chat-events").some(([m]) => m && m.q === 1), 2000, "the client got the call");
    });

    await h.case("a call is refused (404) for another user's sid, an unknown sid and an anonymous one", async () => {
      const refused = { error: "Client session disconnected." };
      for (const [what, body] of [
        ["another user's sid", { sid: dan.t1.id, user_id: "u-eve", data: {} }],
        ["unknown sid", { sid: "no-such-sid", data: {} }],
        ["anonymous sid", { sid: observer.id, data: {} }],
        ["eve's sid for dan", { sid: eve.id, user_id: "u-dan", data: {} }],
      ]) {
        const r = await server.api("POST", "/api/v1/call", { ...body, timeout_ms: 2000 });
        assert.deepEqual([r.status, r.json], [404, refused], what);
      }
      assert.equal(eve.of("chat-events").length, 0, "the refused call reached nobody");
    });

    await h.case("a held call does not block the daemon, and fails with 404 when the tab leaves", async () => {
      // No timeout: held until the ack or the session's end.
      const pending = server.api("POST", "/api/v1/call", { sid: dan.t2.id, user_id: "u-dan", data: { q: 2 } }, { timeout: 15000 });
      await waitFor(() => dan.t2.of("chat-events").some(([m]) => m && m.q === 2), 5000, "the client got the call");
      const hz = await server.api("GET", "/healthz");
      assert.equal(hz.status, 200, "the daemon answers while a call is held");
      dan.t2.close();
      const r = await pending;
      assert.deepEqual([r.status, r.json], [404, { error: "Client session disconnected." }]);
    });

    await h.case("hostile tokens connect (always_connect, no connect_error) but are in no pool and no user room", async () => {
      const tabs = [];
      const defers = [];
      try {
        await Promise.all(Object.entries(hostileTokens("u-fay", "u-pen")).map(async ([what, tok]) => {
          const t = await tab({ name: what, auth: { token: tok } }, (f) => defers.push(f));
          t.what = what;
          t.token = tok;
          tabs.push(t);
        }));
        for (const t of tabs) {
          assert.ok(t.sock.connected && t.id, `${t.what}: connected`);
          assert.deepEqual(t.connectErrors, [], `${t.what}: no connect_error`);
          const s = await server.api("GET", `/api/v1/sessions/${t.id}`);
          assert.equal(s.status, 404, `${t.what}: not in SESSION_POOL`);
          assert.deepEqual((await get(`/api/v1/rooms/${t.id}`)).user_ids, [], `${t.what}: anonymous in its own room`);
        }
        const online = await users();
        for (const u of ["u-fay", "u-pen", "u-not-in-directory", "u-other"]) assert.ok(!online.includes(u), `${u} not online: ${online}`);
        for (const u of ["u-fay", "u-pen"]) assert.deepEqual(await roomSids(`user:${u}`), [], `nobody in user:${u}`);
        // user-join with the same token: no ack, still nobody.
        await Promise.all(tabs.map((t) => assert.rejects(t.ack("user-join", { auth: { token: t.token } }, 1000), /timeout/, t.what)));
        const r = await server.api("POST", "/api/v1/chat-events", { user_id: "u-fay", chat_id: "c", message_id: "m", data: {} });
        assert.deepEqual(r.json, { recipients: 0 });
        assert.ok(!(await users()).includes("u-fay"));
        assert.ok(tabs.every((t) => t.sock.connected), "all still connected");
      } finally {
        defers.forEach((f) => f());
      }
    });

    await h.case("DELETE /api/v1/users/ID/sessions disconnects every tab of that user, others stay", async () => {
      const g1 = await tab({ name: "gus1", token: token("u-gus") });
      const g2 = await tab({ name: "gus2", token: token("u-gus") });
      await waitFor(async () => (await roomSids("user:u-gus")).length === 2, 5000, "gus's tabs");
      const r = await server.api("DELETE", "/api/v1/users/u-gus/sessions");
      assert.deepEqual([r.status, r.json], [200, { disconnected: 2 }]);
      await waitFor(() => g1.disconnects.length && g2.disconnects.length, 5000, "both gus tabs disconnected");
      assert.deepEqual([g1.disconnects, g2.disconnects], [["io server disconnect"], ["io server disconnect"]]);
      await waitFor(async () => !(await users()).includes("u-gus"), 5000, "u-gus offline");
      await waitFor(() => !observer.last("user-list").user_ids.includes("u-gus"), 5000, "a user-list without u-gus");
      // The others stay and still get their events.
      assert.ok(eve.sock.connected && dan.t1.sock.connected);
      const e = await server.api("POST", "/api/v1/chat-events", { user_id: "u-eve", chat_id: "c", message_id: "m", data: { n: 1 } });
      assert.deepEqual(e.json, { recipients: 1 });
      await waitFor(() => eve.of("chat-events").length === 1, 5000, "eve still gets chat events");
      // A server disconnect is final for socket.io-client: no reconnection.
      await sleep(1500);
      assert.ok(!g1.sock.connected && !g2.sock.connected, "gus's tabs stay disconnected");
      assert.equal(g1.connects + g2.connects, 2);
      const again = await server.api("DELETE", "/api/v1/users/u-gus/sessions");
      assert.deepEqual(again.json, { disconnected: 0 });
    });

    await h.case("reconnection: after a daemon restart the tab comes back, authenticated again", async () => {
      const hal = await tab({ name: "hal", token: token("u-hal") });
      await waitFor(async () => (await users()).includes("u-hal"), 5000, "u-hal online");
      await server.stop(); // SIGTERM, exit 0 within 5 s
      await waitFor(() => hal.disconnects.length > 0, 5000, "hal saw the daemon go");
      assert.ok(!hal.disconnects.includes("io server disconnect"), `a transport loss, not a server disconnect: ${hal.disconnects}`);
      await server.start(); // same port
      await waitFor(() => hal.connects >= 2 && hal.sock.connected, 15000, () => `hal reconnects (${hal.connects} connects, ${hal.connectErrors})`);
      await waitFor(async () => (await users()).includes("u-hal"), 5000, "u-hal online again (auth sent on reconnect)");
      const s = await server.api("GET", `/api/v1/sessions/${hal.id}`);
      assert.equal(s.status, 200);
      assert.equal(s.json.id, "u-hal");
      await waitFor(() => hal.of("user-list").some(([l]) => l.user_ids.includes("u-hal")), 5000, "a user-list after the reconnect");
    }, { timeout: 30000 });
  });
}

module.exports = { runOwuiScenarios };
