// Redis stopped (kill -9) and started again on the same port, empty, while
// two nodes serve clients under load: no crash; local delivery goes on
// during the outage (chat-events posted to a node for its own client, in
// order and complete; typing between two tabs on one node); /healthz says
// not ready (503, with a reason) while Redis is away and ready again after;
// then the pools are whole again (every connected session back in
// session_pool and user_pool, including one that connected during the
// outage) and cross-node traffic resumes.
"use strict";

const { assert, run, sleep } = require("./lib/harness");
const { startFleet, waitUntil } = require("./lib/fleet");

run({ timeoutMs: 150000, caseTimeoutMs: 60000 }, async (h) => {
  const f = await startFleet(h, { nodes: 2 });
  const [A, B] = f.nodes;

  // Load: two posters, each sending chat-events to a node for a user whose
  // tab is on that node, one after another, for the whole test.
  const load = { stop: false, sent: { A: 0, B: 0 }, errors: [] };
  async function poster(node, uid, key) {
    while (!load.stop) {
      const i = load.sent[key];
      try {
        const r = await f.api(node, "POST", "chat-events", { user_id: uid, chat_id: "load", message_id: `${key}${i}`, data: { type: "seq", data: { i } } });
        if (r.status !== 200 || r.body.recipients !== 1) load.errors.push(`${key}${i}: ${r.status} ${JSON.stringify(r.body)}`);
      } catch (e) {
        load.errors.push(`${key}${i}: ${e.message}`);
      }
      load.sent[key]++;
      await sleep(2);
    }
  }

  const a1 = await f.connect(A, "u1");
  const a2 = await f.connect(A, "u2");
  const b1 = await f.connect(B, "u3");
  const idle = [];
  for (let i = 0; i < 24; i++) idle.push(await f.connect(i % 2 ? A : B, `u${4 + (i % 5)}`));
  const gotA = f.record(a1, "chat-events");
  const gotB = f.record(b1, "chat-events");
  const late = []; // tabs that connect during the outage
  const everyone = () => [a1, a2, b1, ...idle, ...late];
  await f.waitInPools(everyone());
  const posters = [poster(A, "u1", "A"), poster(B, "u3", "B")];
  h.defer(async () => {
    load.stop = true;
    await Promise.all(posters);
  });

  const healthStates = [];

  // A call from node B to a tab on node A, without a timeout, whose ack
  // the tab holds until Redis is back: the outage must not fail it (the
  // tab never left), and the ack crosses back once Redis returns.
  let heldAck = null;
  let pendingCall = null;
  const callSettled = { done: false };

  await h.case("Redis killed: both nodes stay up, /healthz says 503 with a reason", async () => {
    const asked = new Promise((resolve) => a1.on("hold", (arg, ack) => resolve((heldAck = ack))));
    pendingCall = f.api(B, "POST", "call", { sid: a1.id, event: "hold", data: "q" }, { timeout: 60000 });
    pendingCall.finally(() => (callSettled.done = true));
    await asked;
    await sleep(300); // some load first
    await f.redis.stop();
    for (const n of f.nodes) {
      let r;
      await waitUntil(async () => (r = await f.healthz(n)).status === 503, 10000, () => `healthz on :${n.port}: ${JSON.stringify(r)}`);
      assert.equal(r.body.ready, false);
      assert.equal(r.body.redis, "down");
      assert.equal(typeof r.body.reason, "string");
      assert.ok(r.body.reason.length > 0, "a reason");
      healthStates.push(r.body.reason);
      n.assertAlive();
    }
    console.log(`# /healthz while Redis is down: ${JSON.stringify(healthStates)}`);
  });

  await h.case("during the outage: local chat-events and typing between tabs on one node are delivered", async () => {
    const before = { A: gotA.length, B: gotB.length };
    await sleep(1500); // the posters keep going
    assert.ok(gotA.length > before.A + 10, `node A delivered ${gotA.length - before.A} events to its own tab`);
    assert.ok(gotB.length > before.B + 10, `node B delivered ${gotB.length - before.B} events to its own tab`);
    const typing = f.record(a1, "events:channel");
    a2.emit("events:channel", { channel_id: "c1", message_id: "during", data: { type: "typing", data: { typing: true } } });
    await waitUntil(() => typing.length === 1, 5000, "typing from the other tab on node A");
    assert.equal(typing[0].user.id, "u2");
    // A new tab can connect and authenticate meanwhile (no revocation
    // check without Redis; its pool entry waits for Redis).
    late.push(await f.connect(B, "u9"));
    assert.deepEqual(late[0].userJoin, { id: "u9", name: "Ida Vo" });
    // Nothing piles up for Redis meanwhile: no command waits, publishes
    // fail at once (memory stays bounded).
    for (const n of f.nodes) {
      const m = (await f.api(n, "GET", "/metrics")).body;
      const pending = Number(/^siohub_redis_pending (\d+)/m.exec(m)?.[1]);
      const failed = Number(/^siohub_pubsub_messages_total\{outcome="publish_failed"\} (\d+)/m.exec(m)?.[1]);
      assert.equal(pending, 0, `Redis commands in flight on :${n.port} during the outage`);
      assert.ok(failed > 0, `publishes refused on :${n.port}: ${failed}`);
    }
    for (const n of f.nodes) n.assertAlive();
  });

  await h.case("Redis back on the same port (empty): ready again, the pools whole, cross-node traffic resumes", async () => {
    await sleep(500);
    await f.redis.start();
    const t0 = Date.now();
    for (const n of f.nodes) {
      await waitUntil(async () => (await f.healthz(n)).status === 200, 20000, `healthz 200 on :${n.port}`);
    }
    console.log(`# both nodes ready ${Date.now() - t0} ms after Redis came back`);
    // Every connected session, the late one included, is back.
    await f.waitInPools(everyone(), 15000);
    const p = await f.pools();
    assert.deepEqual(Object.keys(p.session_pool).sort(), everyone().map((s) => s.id).sort(), "session_pool is exactly the connected tabs");
    const want = {};
    for (const s of everyone()) (want[s.uid] = want[s.uid] || []).push(s.id);
    for (const [uid, sids] of Object.entries(want)) assert.deepEqual([...p.user_pool[uid]].sort(), sids.sort(), `user_pool[${uid}]`);
    assert.deepEqual(Object.keys(p.user_pool).sort(), Object.keys(want).sort());
    // Cross-node: chat-events posted to B for a tab on A, typing from B to A.
    const cross = f.record(a1, "events");
    const r = await f.api(B, "POST", "chat-events", { user_id: "u1", chat_id: "x", message_id: "after", data: { type: "t", data: 1 }, event: "events" });
    assert.equal(r.status, 200);
    await waitUntil(() => cross.length === 1, 5000, "cross-node chat event after the restart");
    const typing = f.record(a1, "channel-events");
    b1.emit("channel-events", { channel_id: "c1", message_id: "after", data: { type: "typing", data: { typing: false } } });
    await waitUntil(() => typing.length === 1, 5000, "typing from node B after the restart");
    assert.equal(typing[0].user.id, "u3");
    // The held call is still open; the ack now travels back through Redis.
    assert.equal(callSettled.done, false, "the call to a tab that never left stays open across the outage");
    heldAck({ late: true });
    const r2 = await pendingCall;
    assert.equal(r2.status, 200, JSON.stringify(r2.body));
    assert.deepEqual(r2.body, { args: [{ late: true }] });
  });

  await h.case("no local event was lost or reordered under load, and no post failed", async () => {
    load.stop = true;
    await Promise.all(posters);
    await waitUntil(() => gotA.length >= load.sent.A && gotB.length >= load.sent.B, 10000, () => `A ${gotA.length}/${load.sent.A}, B ${gotB.length}/${load.sent.B}`);
    await sleep(200);
    assert.deepEqual(load.errors, []);
    assert.deepEqual(gotA.map((e) => e.data.data.i), [...Array(load.sent.A).keys()], "node A's tab: every event, in order, once");
    assert.deepEqual(gotB.map((e) => e.data.data.i), [...Array(load.sent.B).keys()], "node B's tab: every event, in order, once");
    console.log(`# ${load.sent.A} + ${load.sent.B} chat events posted and delivered locally across the outage`);
    for (const n of f.nodes) n.assertAlive();
  });
});
