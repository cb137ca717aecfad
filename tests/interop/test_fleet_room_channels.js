// --room-channels (Open WebUI 0.11.5+): emits to one room go out on
// socketio#/#ROOM, which nodes take in through a pattern subscription.
// Across two nodes: chat-events to a user's tabs in order and once, typing
// in a channel, /api/v1/call and its ack, presence broadcasts (on the main
// channel); a message hand-published on a room channel reaches the room.
"use strict";

const { assert, run, sleep } = require("./lib/harness");
const { startFleet, waitUntil } = require("./lib/fleet");

run({ timeoutMs: 90000, caseTimeoutMs: 30000 }, async (h) => {
  const f = await startFleet(h, { nodes: 2, args: ["--room-channels"] });
  const [A, B] = f.nodes;
  const rc = await f.client();

  await h.case("room emits travel on CHANNEL#/#ROOM: chat-events in order and once, typing, call", async (defer) => {
    const tabA = await f.connect(A, "u1");
    const tabB = await f.connect(B, "u1");
    const bob = await f.connect(B, "u2");
    defer(() => [tabA, tabB, bob].forEach((s) => s.disconnect()));
    await f.waitInPools([tabA, tabB, bob]);
    // Watch the channels: room emits must not use the main channel.
    const watch = await f.redis.client();
    const seen = [];
    await watch.subscribe(["socketio", "socketio#*"], (channel, payload) => seen.push({ channel, payload }), { psubscribe: true });
    defer(() => watch.close());
    const got = { A: f.record(tabA, "chat-events"), B: f.record(tabB, "chat-events") };
    const N = 200;
    for (let i = 0; i < N; i++) {
      const r = await f.api(A, "POST", "chat-events", { user_id: "u1", chat_id: "rc", message_id: `m${i}`, data: { type: "seq", data: { i } } });
      assert.equal(r.status, 200);
    }
    await waitUntil(() => got.A.length >= N && got.B.length >= N, 10000, () => `A=${got.A.length} B=${got.B.length}`);
    await sleep(200);
    for (const k of ["A", "B"]) assert.deepEqual(got[k].map((e) => e.data.data.i), [...Array(N).keys()], `tab on ${k}`);
    const chatMsgs = seen.filter((m) => m.payload.includes('"chat-events"'));
    assert.equal(chatMsgs.length, N, "one message per emit");
    assert.ok(chatMsgs.every((m) => m.channel === "socketio#/#user:u1"), `channels: ${[...new Set(chatMsgs.map((m) => m.channel))]}`);

    const typing = f.record(tabA, "events:channel");
    bob.emit("events:channel", { channel_id: "c1", message_id: "t", data: { type: "typing", data: { typing: true } } });
    await waitUntil(() => typing.length === 1, 5000, "typing from node B");
    assert.equal(typing[0].user.id, "u2");

    tabA.on("ask", (q, ack) => ack({ q }));
    const r = await f.api(B, "POST", "call", { sid: tabA.id, event: "ask", data: 7, timeout_ms: 8000 });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body, { args: [{ q: 7 }] });
  });

  await h.case("a message hand-published on socketio#/#user:u3 reaches that room on both nodes", async (defer) => {
    const t1 = await f.connect(A, "u3");
    const t2 = await f.connect(B, "u3");
    const other = await f.connect(B, "u4");
    defer(() => [t1, t2, other].forEach((s) => s.disconnect()));
    const got = [f.record(t1, "hand"), f.record(t2, "hand"), f.record(other, "hand")];
    const msg = { method: "emit", event: "hand", data: { x: 1 }, namespace: "/", room: "user:u3", skip_sid: null, callback: null, host_id: "feedface", binary: false };
    assert.equal(await rc.command("PUBLISH", "socketio#/#user:u3", JSON.stringify(msg)), 2, "both nodes subscribed by pattern");
    await waitUntil(() => got[0].length === 1 && got[1].length === 1, 5000, "delivered to both tabs of u3");
    await sleep(200);
    assert.deepEqual(got.map((g) => g.length), [1, 1, 0]);
    assert.deepEqual(got[0][0], { x: 1 });
  });

  await h.case("presence broadcasts (no room) still use the main channel", async (defer) => {
    const t = await f.connect(A, "u5");
    const o = await f.connect(B, "u6");
    defer(() => [t, o].forEach((s) => s.disconnect()));
    const lists = f.record(o, "user-list");
    o.emit("user-list");
    await waitUntil(() => lists.length && lists[lists.length - 1].user_ids.includes("u5"), 5000, () => JSON.stringify(lists));
  });
});
