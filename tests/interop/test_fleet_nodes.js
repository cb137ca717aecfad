// Three siohubd nodes (Open WebUI app) on one redis-server, clients spread
// over them: typing in a channel crosses nodes, /api/v1/chat-events posted
// to one node reaches every tab of the user on every node in order and
// once, presence (user-list) agrees on all nodes, /api/v1/call reaches a
// browser on another node and returns its ack, and DELETE
// /api/v1/users/ID/sessions disconnects the user's tabs on every node.
"use strict";

const { assert, run, sleep } = require("./lib/harness");
const { startFleet, user, waitUntil } = require("./lib/fleet");

run({ timeoutMs: 150000, caseTimeoutMs: 40000 }, async (h) => {
  const f = await startFleet(h, { nodes: 3 });
  const [A, B, C] = f.nodes;

  await h.case("typing in a channel reaches members on other nodes (events:channel and channel-events)", async (defer) => {
    const ann = await f.connect(A, "u1");
    const bob = await f.connect(B, "u2");
    const cy = await f.connect(C, "u3");
    const ida = await f.connect(C, "u9"); // in no channel
    defer(() => [ann, bob, cy, ida].forEach((s) => s.disconnect()));
    assert.deepEqual(bob.userJoin, { id: "u2", name: "Bob Ode" });
    for (const event of ["events:channel", "channel-events"]) {
      const got = { ann: f.record(ann, event), bob: f.record(bob, event), cy: f.record(cy, event), ida: f.record(ida, event) };
      // A non-member's typing is dropped on its own node.
      ida.emit(event, { channel_id: "c1", message_id: "m-intruder", data: { type: "typing", data: { typing: true } } });
      bob.emit(event, { channel_id: "c1", message_id: "m1", data: { type: "typing", data: { typing: true } } });
      await waitUntil(() => got.ann.length >= 1 && got.cy.length >= 1 && got.bob.length >= 1, 10000, () => `${event}: ${JSON.stringify(got)}`);
      await sleep(300); // anything extra (a duplicate, the intruder) would land by now
      const want = {
        channel_id: "c1",
        message_id: "m1",
        data: { type: "typing", data: { typing: true } },
        user: { id: "u2", name: user("u2").name, role: "admin" },
      };
      assert.deepEqual(got.ann, [want], `${event} on node A`);
      assert.deepEqual(got.cy, [want], `${event} on node C`);
      assert.deepEqual(got.bob, [want], `${event} back to the sender on node B`);
      assert.deepEqual(got.ida, [], `${event} to a non-member`);
    }
  });

  await h.case("chat-events posted to node C reach every tab of the user on A, B and C: 500 in order, once", async (defer) => {
    const tabA = await f.connect(A, "u1");
    const tabB = await f.connect(B, "u1");
    const tabC = await f.connect(C, "u1");
    const other = await f.connect(A, "u2");
    defer(() => [tabA, tabB, tabC, other].forEach((s) => s.disconnect()));
    const tabs = { A: tabA, B: tabB, C: tabC };
    const got = {};
    for (const [k, s] of Object.entries(tabs)) got[k] = f.record(s, "chat-events");
    const otherGot = f.record(other, "chat-events");
    const N = 500;
    for (let i = 0; i < N; i++) {
      const r = await f.api(C, "POST", "chat-events", { user_id: "u1", chat_id: "chat-1", message_id: `m${i}`, data: { type: "seq", data: { i } } });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.recipients, 1, "node C's own tab is the one local recipient");
    }
    await waitUntil(() => Object.values(got).every((g) => g.length >= N), 20000, () => `counts ${Object.entries(got).map(([k, g]) => `${k}=${g.length}`).join(" ")}`);
    await sleep(300);
    for (const [k, g] of Object.entries(got)) {
      assert.equal(g.length, N, `tab on node ${k}: each event once`);
      for (let i = 0; i < N; i++) {
        assert.deepEqual(g[i], { chat_id: "chat-1", message_id: `m${i}`, data: { type: "seq", data: { i } } }, `tab on node ${k}, event ${i}`);
      }
    }
    assert.equal(otherGot.length, 0, "another user's tab gets none");

    // The current shape's event name goes the same way.
    const cur = { A: f.record(tabA, "events"), B: f.record(tabB, "events") };
    for (let i = 0; i < 20; i++) {
      const r = await f.api(C, "POST", "chat-events", { user_id: "u1", chat_id: "chat-2", message_id: `e${i}`, data: { type: "x", data: i }, event: "events" });
      assert.equal(r.status, 200);
    }
    await waitUntil(() => cur.A.length >= 20 && cur.B.length >= 20, 10000, () => `events: A=${cur.A.length} B=${cur.B.length}`);
    assert.deepEqual(cur.A.map((e) => e.message_id), [...Array(20).keys()].map((i) => `e${i}`));
    assert.deepEqual(cur.B.map((e) => e.message_id), [...Array(20).keys()].map((i) => `e${i}`));
  });

  await h.case("presence: user-list broadcasts and GET /api/v1/users agree on all nodes", async (defer) => {
    const tabs = [await f.connect(A, "u4"), await f.connect(B, "u5"), await f.connect(C, "u6")];
    defer(() => tabs.forEach((s) => s.disconnect()));
    const lists = tabs.map((s) => {
      const g = f.record(s, "user-list");
      return g;
    });
    const last = (g) => (g.length ? [...g[g.length - 1].user_ids].sort() : null);
    const want = ["u4", "u5", "u6"];
    // A user-list request always gets the node's current list back.
    const ask = () => tabs.forEach((s) => s.emit("user-list"));
    ask();
    await waitUntil(
      () => {
        if (!lists.every((g) => JSON.stringify(last(g)) === JSON.stringify(want))) {
          ask();
          return false;
        }
        return true;
      },
      10000,
      () => `last user-list per node: ${JSON.stringify(lists.map(last))}`
    );
    for (const n of f.nodes) {
      const r = await f.api(n, "GET", "users");
      assert.equal(r.status, 200);
      assert.deepEqual([...r.body.user_ids].sort(), want, `GET /api/v1/users on :${n.port}`);
    }
    // One leaves: every remaining tab hears the shorter list, from
    // whichever node broadcast it.
    tabs[2].disconnect();
    const want2 = ["u4", "u5"];
    await waitUntil(
      () => lists.slice(0, 2).every((g) => JSON.stringify(last(g)) === JSON.stringify(want2)),
      10000,
      () => `after u6 left: ${JSON.stringify(lists.map(last))}`
    );
    for (const n of f.nodes) {
      const r = await f.api(n, "GET", "users");
      assert.deepEqual([...r.body.user_ids].sort(), want2, `GET /api/v1/users on :${n.port} after u6 left`);
    }
  });

  await h.case("/api/v1/call on node C to a tab on node A returns the browser's ack", async (defer) => {
    const tab = await f.connect(A, "u1");
    const silent = await f.connect(A, "u1");
    defer(() => [tab, silent].forEach((s) => s.disconnect()));
    tab.on("ask", (arg, ack) => ack({ answer: 42, echo: arg }));
    silent.on("ask", () => {}); // never acks
    await f.waitInPools([tab, silent]);

    const r = await f.api(C, "POST", "call", { sid: tab.id, user_id: "u1", event: "ask", data: { q: "life" }, timeout_ms: 8000 });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body, { args: [{ answer: 42, echo: { q: "life" } }] });

    // Several at once, from two nodes.
    const many = await Promise.all(
      [...Array(20).keys()].map((i) => f.api(i % 2 ? B : C, "POST", "call", { sid: tab.id, event: "ask", data: i, timeout_ms: 8000 }))
    );
    many.forEach((m, i) => assert.deepEqual(m.body, { args: [{ answer: 42, echo: i }] }, `call ${i}`));

    const wrongUser = await f.api(C, "POST", "call", { sid: tab.id, user_id: "u2", event: "ask", data: 1, timeout_ms: 3000 });
    assert.equal(wrongUser.status, 404);
    assert.equal(wrongUser.body.error, "Client session disconnected.");
    const nobody = await f.api(C, "POST", "call", { sid: "no-such-sid", event: "ask", data: 1, timeout_ms: 3000 });
    assert.equal(nobody.status, 404);
    assert.equal(nobody.body.error, "Client session disconnected.");
    const t0 = Date.now();
    const timeout = await f.api(C, "POST", "call", { sid: silent.id, event: "ask", data: 1, timeout_ms: 500 });
    assert.equal(timeout.status, 504, JSON.stringify(timeout.body));
    assert.ok(Date.now() - t0 < 5000, "the timeout answered in time");
  });

  await h.case("/api/v1/call without a timeout ends when the tab on the other node leaves", async (defer) => {
    const tab = await f.connect(A, "u1");
    defer(() => tab.disconnect());
    const asked = new Promise((resolve) => tab.on("ask", () => resolve())); // never acks
    await f.waitInPools([tab]);
    const pending = f.api(C, "POST", "call", { sid: tab.id, user_id: "u1", event: "ask", data: 1 }, { timeout: 20000 });
    await asked;
    await sleep(200);
    const t0 = Date.now();
    tab.disconnect();
    const r = await pending;
    const ms = Date.now() - t0;
    console.log(`# the call answered ${ms} ms after its tab on another node left`);
    assert.equal(r.status, 404, JSON.stringify(r.body));
    assert.equal(r.body.error, "Client session disconnected.");
    assert.ok(ms < 5000, `answered after ${ms} ms`);
  });

  await h.case("DELETE /api/v1/users/ID/sessions on one node disconnects the user's tabs on every node", async (defer) => {
    const victims = [await f.connect(A, "u3"), await f.connect(B, "u3"), await f.connect(C, "u3")];
    const bystander = await f.connect(A, "u1");
    defer(() => [...victims, bystander].forEach((s) => s.disconnect()));
    await f.waitInPools([...victims, bystander]);
    const reasons = victims.map((s) => new Promise((resolve) => s.once("disconnect", resolve)));
    const r = await f.api(B, "DELETE", "users/u3/sessions");
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body, { disconnected: 3 });
    const got = await Promise.race([Promise.all(reasons), sleep(10000).then(() => null)]);
    assert.ok(got, "every tab of u3 disconnected within 10 s");
    assert.deepEqual(got, ["io server disconnect", "io server disconnect", "io server disconnect"]);
    await sleep(300);
    assert.ok(bystander.connected, "another user's tab stays");
    // Their pool entries go with them.
    await waitUntil(
      async () => {
        const p = await f.pools();
        return !p.user_pool.u3 && !Object.values(p.session_pool).some((u) => u.id === "u3");
      },
      10000,
      async () => `u3 still in the pools: ${JSON.stringify(await f.pools())}`
    );
  });

  for (const n of f.nodes) n.assertAlive();
});
