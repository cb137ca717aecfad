// kill -9 of a node (--node-ttl 2000): its sessions leave session_pool,
// user_pool and usage_pool, and presence (the user-list broadcast that
// surviving nodes send) no longer lists its users, within 3 x node_ttl.
// The node killed is the one holding the session reaper's lock, the worst
// case: the reaper itself has to move first (the lock timeout is left at
// its default, as an operator who sets only --node-ttl would).
"use strict";

const { assert, run, sleep } = require("./lib/harness");
const { PREFIX, startFleet, waitUntil } = require("./lib/fleet");

const NODE_TTL = 2000;

run({ timeoutMs: 120000, caseTimeoutMs: 60000 }, async (h) => {
  const f = await startFleet(h, { nodes: 3, args: ["--node-ttl", String(NODE_TTL)] });
  const rc = await f.client();
  const ids = new Map();
  for (const n of f.nodes) ids.set((await f.healthz(n)).body.node, n);

  await h.case(`a killed node's sessions leave the pools and presence within 3 x node_ttl (${3 * NODE_TTL} ms)`, async (defer) => {
    // The reaper lock's holder dies: wait until someone holds it.
    let holderId = null;
    await waitUntil(async () => (holderId = await rc.command("GET", `${PREFIX}:session_cleanup_lock`)) !== null, 15000, "session_cleanup_lock taken");
    const victim = ids.get(holderId);
    const [S1, S2] = f.nodes.filter((n) => n !== victim);
    const survivors = [await f.connect(S1, "u1"), await f.connect(S2, "u4")];
    const doomed = [await f.connect(victim, "u1"), await f.connect(victim, "u2"), await f.connect(victim, "u3")];
    defer(() => [...survivors, ...doomed].forEach((s) => s.disconnect()));
    const lists = survivors.map((s) => f.record(s, "user-list"));
    doomed[1].emit("usage", { model: "m-doomed" });
    survivors[0].emit("usage", { model: "m-kept" });
    await f.waitInPools([...survivors, ...doomed]);
    await waitUntil(async () => Object.keys((await f.pools()).usage_pool).length === 2, 5000, "usage entries written");
    const last = (g) => (g.length ? [...g[g.length - 1].user_ids].sort().join(",") : "");
    const ask = () => survivors.forEach((s) => s.emit("user-list"));
    ask();
    await waitUntil(() => lists.every((g) => last(g) === "u1,u2,u3,u4") || (ask(), false), 10000, () => `user-list before: ${lists.map(last)}`);

    // A call without a timeout from a survivor to a tab on the doomed node:
    // it must end when the node's sessions are gone, not hang.
    const asked = new Promise((resolve) => doomed[2].on("ask", () => resolve()));
    const pendingCall = f.api(S1, "POST", "call", { sid: doomed[2].id, event: "ask", data: 1 }, { timeout: 30000 });
    await asked;

    const doomedSids = new Set(doomed.map((s) => s.id));
    await victim.kill9();
    const t0 = Date.now();
    const when = {};
    const bound = 3 * NODE_TTL;
    await waitUntil(
      async () => {
        const p = await f.pools();
        const now = Date.now() - t0;
        if (!when.session && !Object.keys(p.session_pool).some((sid) => doomedSids.has(sid))) when.session = now;
        if (!when.user && !Object.values(p.user_pool).flat().some((sid) => doomedSids.has(sid))) when.user = now;
        if (!when.usage && !p.usage_pool["m-doomed"]) when.usage = now;
        if (!when.presence && lists.every((g) => last(g) === "u1,u4")) when.presence = now;
        return when.session && when.user && when.usage && when.presence;
      },
      bound + 10000,
      async () => `after ${Date.now() - t0} ms: ${JSON.stringify(when)}; pools ${JSON.stringify(await f.pools())}; user-list ${lists.map(last)}`
    );
    console.log(`# node ${holderId} killed: session_pool clean after ${when.session} ms, user_pool ${when.user} ms, usage_pool ${when.usage} ms, presence ${when.presence} ms (bound ${bound} ms)`);
    for (const [what, ms] of Object.entries(when)) assert.ok(ms <= bound, `${what} cleaned after ${ms} ms > ${bound} ms`);
    const call = await pendingCall;
    const callMs = Date.now() - t0;
    console.log(`# the pending call to a tab of the dead node answered ${call.status} after ${callMs} ms`);
    assert.equal(call.status, 404, JSON.stringify(call.body));
    assert.equal(call.body.error, "Client session disconnected.");
    // Within the bound plus a look of the call's watch (1 s) and its
    // confirmation.
    assert.ok(callMs <= bound + 1500, `the call answered after ${callMs} ms`);

    // What stays is exactly the survivors' part.
    const p = await f.pools();
    assert.deepEqual(Object.keys(p.session_pool).sort(), survivors.map((s) => s.id).sort());
    assert.deepEqual(p.user_pool, { u1: [survivors[0].id], u4: [survivors[1].id] });
    assert.deepEqual(Object.keys(p.usage_pool), ["m-kept"]);
    // The reaper lock moved to a survivor.
    const newHolder = await rc.command("GET", `${PREFIX}:session_cleanup_lock`);
    assert.ok(newHolder && newHolder !== holderId && ids.has(newHolder), `session_cleanup_lock: ${newHolder}`);
    // And the node's liveness key is gone.
    assert.equal(await rc.command("EXISTS", `${PREFIX}:siohub:node:${holderId}`), 0);
    await sleep(100);
  });

  await h.case("a node restarted after kill -9 joins again with new sessions", async (defer) => {
    const n = await f.addNode(["--node-ttl", String(NODE_TTL)]);
    const t = await f.connect(n, "u5");
    const other = await f.connect(f.nodes.find((x) => x.alive() && x !== n), "u6");
    defer(() => [t, other].forEach((s) => s.disconnect()));
    await f.waitInPools([t, other]);
    const got = f.record(t, "chat-events");
    const r = await f.api(other.node, "POST", "chat-events", { user_id: "u5", chat_id: "c", message_id: "m", data: { type: "x", data: 1 } });
    assert.equal(r.status, 200);
    await waitUntil(() => got.length === 1, 5000, "cross-node delivery to the new node");
  });
});
