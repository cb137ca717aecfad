// Presence broadcasts of the openwebui app (user-list, usage): coalesced
// into at most one per window and only when the list changed, none at all
// with --no-presence; usage kept alive by pings and dropped when they stop
// or when the tab leaves.
"use strict";

const { assert, run, sleep } = require("./lib/harness");
const { expectNone, openTab, owuiServer, sorted, token, waitFor } = require("./lib/owui");

const CROWD = 50;
const WINDOW_MS = 500;
const USERS = [
  ...Array.from({ length: CROWD }, (_, i) => ({ id: `load-${String(i).padStart(2, "0")}`, name: `Load ${i}` })),
  { id: "u-ann", name: "Ann" },
  { id: "u-bob", name: "Bob" },
];

run({ timeoutMs: 60000 }, async (h) => {
  const server = await owuiServer(h, {
    users: USERS,
    args: ["--presence-window", `${WINDOW_MS}ms`, "--usage-cleanup-interval", "500ms", "--usage-timeout", "1s"],
  });
  const tab = (opts, defer) => openTab(server, defer || h.defer.bind(h), { mode: "websocket", ...opts });
  const observer = await tab({ name: "observer" });
  const crowdIds = USERS.slice(0, CROWD).map((u) => u.id);
  const userLists = () => observer.events.filter((e) => e.ev === "user-list");

  // Bursts of changes: the broadcasts an observer sees after `start`, up to
  // the one that satisfies done(list). A server that sends at most one per
  // window sends k broadcasts no earlier than start + (k - 1) * window, and
  // each arrives after it was sent, so k <= (last arrival - start) / window
  // + 1 whatever the delivery jitter.
  async function burst(what, start, n0, done) {
    const last = await waitFor(() => userLists().slice(n0).find((e) => done(e.args[0].user_ids)), 15000,
      () => `${what}: ${userLists().length - n0} broadcasts, last ${JSON.stringify(userLists().slice(-1))}`);
    const seen = userLists().slice(n0);
    const k = seen.indexOf(last) + 1;
    const bound = Math.floor((last.at - start) / WINDOW_MS) + 1;
    assert.ok(k <= bound, `${what}: ${k} user-list broadcasts in ${last.at - start} ms (at most ${bound} with a ${WINDOW_MS} ms window)`);
    assert.ok(k < CROWD / 2, `${what}: ${k} broadcasts for ${CROWD} changes is not "far fewer"`);
    // Nothing more once the list is stable.
    await sleep(WINDOW_MS + 300);
    assert.equal(userLists().length - n0, k, `${what}: a broadcast after the list settled`);
    return k;
  }

  const crowd = [];
  await h.case(`${CROWD} tabs connecting at once: at most one user-list per window, the last lists all`, async () => {
    await sleep(WINDOW_MS + 100); // the observer's own connect changed nothing: no broadcast pending
    const n0 = userLists().length;
    const start = Date.now();
    await Promise.all(crowdIds.map(async (id) => crowd.push(await tab({ name: id, token: token(id) }))));
    const k = await burst("connect", start, n0, (ids) => crowdIds.every((id) => ids.includes(id)));
    assert.deepEqual(sorted(observer.last("user-list").user_ids), crowdIds);
    console.log(`# ${CROWD} connects: ${k} user-list broadcasts`);
  }, { timeout: 30000 });

  await h.case("a second tab of a listed user changes nothing: no broadcast", async () => {
    const n = userLists().length;
    await tab({ name: "load-00 again", token: token("load-00") });
    await expectNone([observer], "user-list", WINDOW_MS + 500, "an unchanged list");
    assert.equal(userLists().length, n);
  });

  await h.case(`${CROWD} tabs leaving at once: at most one user-list per window, the last lists none of them`, async () => {
    const n0 = userLists().length;
    const start = Date.now();
    // load-00 keeps its second tab: it stays listed.
    crowd.forEach((t) => t.close());
    const k = await burst("disconnect", start, n0, (ids) => sorted(ids).join() === "load-00");
    console.log(`# ${CROWD} disconnects: ${k} user-list broadcasts`);
  }, { timeout: 30000 });

  await h.case("usage pinged every 300 ms stays past the timeout; after the last ping it goes, with a broadcast", async () => {
    const ann = await tab({ name: "ann", token: token("u-ann") });
    const usages = () => observer.of("usage").map(([u]) => u.models);
    const n = usages().length;
    const t0 = Date.now();
    while (Date.now() - t0 < 3000) {
      ann.sock.emit("usage", { model: "m-kept", action: "generate" });
      await sleep(300);
      if (Date.now() - t0 > 500) {
        const r = await server.api("GET", "/api/v1/usage");
        assert.deepEqual(r.json, { models: ["m-kept"] }, `at ${Date.now() - t0} ms`);
      }
    }
    assert.deepEqual(usages().slice(n), [["m-kept"]], "one broadcast: the model appeared");
    const stop = Date.now();
    await waitFor(() => usages().length > n + 1, 5000, "a broadcast once the pings stopped");
    assert.deepEqual(usages().slice(-1), [[]]);
    assert.ok(Date.now() - stop < 4000, `gone ${Date.now() - stop} ms after the last ping`);
    assert.deepEqual((await server.api("GET", "/api/v1/usage")).json, { models: [] });
  }, { timeout: 15000 });

  // --no-presence: the pools and the API work, no broadcast is sent.
  const quiet = await owuiServer(h, { users: USERS, args: ["--no-presence"] });
  const qtab = (opts) => openTab(quiet, h.defer.bind(h), { mode: "websocket", ...opts });

  await h.case("--no-presence: no user-list or usage broadcast, whatever happens", async () => {
    const obs = await qtab({ name: "quiet observer" });
    const ann = await qtab({ name: "ann", token: token("u-ann") });
    assert.deepEqual(await ann.userJoin(), [{ id: "u-ann", name: "Ann" }], "user-join is still acked");
    ann.sock.emit("usage", { model: "m-quiet" });
    await waitFor(async () => (await quiet.api("GET", "/api/v1/usage")).json.models.includes("m-quiet"), 3000, "m-quiet in use");
    obs.sock.emit("user-list");
    ann.sock.emit("user-list");
    const bob = await qtab({ name: "bob", token: token("u-bob") });
    assert.deepEqual(sorted((await quiet.api("GET", "/api/v1/users")).json.user_ids), ["u-ann", "u-bob"]);
    bob.close();
    await waitFor(async () => (await quiet.api("GET", "/api/v1/users")).json.user_ids.length === 1, 3000, "bob gone");
    await sleep(800);
    for (const t of [obs, ann, bob]) {
      assert.deepEqual(t.of("user-list"), [], `${t.name}: user-list`);
      assert.deepEqual(t.of("usage"), [], `${t.name}: usage`);
    }
  });

  await h.case("a tab that leaves takes its usage with it, at once (not after the timeout)", async () => {
    const cat = await qtab({ name: "cat", token: token("u-bob") });
    cat.sock.emit("usage", { model: "m-leaving" });
    await waitFor(async () => (await quiet.api("GET", "/api/v1/usage")).json.models.includes("m-leaving"), 3000, "m-leaving in use");
    const t0 = Date.now();
    cat.close();
    // The default timeout is 3 s (whole seconds): only the disconnect can
    // remove it this early.
    await waitFor(async () => !(await quiet.api("GET", "/api/v1/usage")).json.models.includes("m-leaving"), 2000, "m-leaving gone");
    assert.ok(Date.now() - t0 < 2000);
  });
});
