// tests/interop/lib/client_scenarios.js — the scenario set every
// socket.io-client transport runs against the echo app (see the three
// test_client_*.js files). `mode` is "websocket", "polling" or "default"
// (polling first, then the upgrade, which the scenario asserts).
"use strict";

const { assert, need, normalize, once, run, sleep, withTimeout } = require("./harness");

const TRANSPORTS = {
  websocket: ["websocket"],
  polling: ["polling"],
  default: undefined, // the client's own default: ["polling", "websocket"]
};

// Every JSON type, nesting, unicode (BMP and astral), and empty containers.
const MIXED_ARGS = [
  "plain string",
  "",
  0,
  42,
  -7,
  3.25,
  1e21,
  true,
  false,
  null,
  { nested: { list: [1, "two", { three: [3] }], empty: {} } },
  "héllo wörld — 你好，世界 — 🚀✨",
  {},
  [],
  ["a", ["b", ["c"]]],
];

function runScenarios(mode) {
  const { Manager } = need("socket.io-client");

  run({ timeoutMs: 60000 }, async (h) => {
    // A slower heartbeat than the raw tests (300/200 ms, where it is the
    // subject): here a ping answered late because a parallel `make check`
    // starves the client would drop the session mid-burst.
    const server = await h.server({ pingInterval: 1000, pingTimeout: 3000 });
    const transports = TRANSPORTS[mode];

    // One manager (one Engine.IO session) for the whole run; namespaces are
    // multiplexed over it. Reconnection is fast so the restart case is quick.
    const manager = new Manager(server.url, {
      transports,
      reconnectionDelay: 100,
      reconnectionDelayMax: 300,
      randomizationFactor: 0,
      timeout: 5000,
      autoConnect: false,
    });
    const authRoot = { token: "root-token", n: 1, nested: { ok: true } };
    const authCustom = { token: "custom-token", list: [1, 2, 3] };
    const root = manager.socket("/", { auth: authRoot });
    const custom = manager.socket("/custom", { auth: authCustom });
    h.defer(() => {
      root.disconnect();
      custom.disconnect();
      manager.engine && manager.engine.close();
    });

    // The transport each Engine.IO session opened with, and upgrades seen.
    const opened = [];
    const upgrades = [];
    manager.on("open", () => {
      opened.push(manager.engine.transport.name);
      manager.engine.on("upgrade", (t) => upgrades.push(t.name));
    });

    // Connects and disconnects, for failure messages.
    const history = [];
    const t0 = Date.now();
    for (const [name, sock] of [
      ["/", root],
      ["/custom", custom],
    ]) {
      sock.on("connect", () => history.push(`${Date.now() - t0} ms connect ${name}`));
      sock.on("disconnect", (r) => history.push(`${Date.now() - t0} ms disconnect ${name}: ${r}`));
    }

    // Collect `auth` events from the start: the server emits it right after
    // the CONNECT, possibly before a listener added later would see it.
    const auths = { root: [], custom: [] };
    root.on("auth", (a) => auths.root.push(a));
    custom.on("auth", (a) => auths.custom.push(a));
    const waitAuth = async (which, count) => {
      const deadline = Date.now() + 5000;
      while (auths[which].length < count) {
        if (Date.now() > deadline) throw new Error(`no 'auth' #${count} on ${which}`);
        await sleep(10);
      }
      return auths[which][count - 1];
    };

    await h.case("connects to / and /custom over one manager", async () => {
      const both = Promise.all([once(root, "connect"), once(custom, "connect")]);
      root.connect();
      custom.connect();
      await both;
      assert.equal(root.connected, true);
      assert.equal(custom.connected, true);
      assert.equal(root.io, custom.io, "both namespaces share one manager");
      assert.ok(root.id && custom.id && root.id !== custom.id, "each namespace socket has its own id");
    });

    await h.case("receives 'auth' with the auth object on each namespace", async () => {
      assert.deepEqual(await waitAuth("root", 1), authRoot);
      assert.deepEqual(await waitAuth("custom", 1), authCustom);
    });

    await h.case(`transport is ${mode === "polling" ? "polling" : "websocket"}`, async () => {
      const engine = manager.engine;
      if (mode === "default") {
        if (engine.transport.name !== "websocket") await once(engine, "upgrade", 5000);
        assert.equal(opened[0], "polling", "the session opened over polling");
        assert.deepEqual(upgrades, ["websocket"], "then upgraded");
        assert.equal(engine.transport.name, "websocket");
      } else {
        assert.deepEqual(opened, [mode]);
        assert.deepEqual(upgrades, []);
        assert.equal(engine.transport.name, mode);
        await sleep(300); // no upgrade may happen behind our back
        assert.equal(engine.transport.name, mode);
      }
    });

    for (const [name, sock] of [
      ["/", root],
      ["/custom", custom],
    ]) {
      await h.case(`${name}: message -> message-back with mixed arguments`, async () => {
        const back = once(sock, "message-back");
        sock.emit("message", ...MIXED_ARGS);
        assert.deepEqual(await back, MIXED_ARGS);
      });

      await h.case(`${name}: message-with-ack is acked with the same arguments`, async () => {
        const args = await withTimeout(
          new Promise((resolve) => sock.emit("message-with-ack", ...MIXED_ARGS, (...a) => resolve(a))),
          5000,
          "ack"
        );
        assert.deepEqual(args, MIXED_ARGS);
      });

      await h.case(`${name}: emitWithAck resolves with the server's ack`, async () => {
        const reply = await sock.timeout(5000).emitWithAck("message-with-ack", { id: 7, text: "ack me" });
        assert.deepEqual(reply, { id: 7, text: "ack me" });
        const plain = await withTimeout(sock.emitWithAck("message-with-ack", "first", "second"), 5000, "ack");
        assert.equal(plain, "first");
      });

      await h.case(`${name}: binary arguments both ways via message-back`, async () => {
        const bin1 = Buffer.from([0, 1, 2, 253, 254, 255]);
        const bin2 = Buffer.alloc(70000, 0xab); // over 64 KiB: a 64-bit length frame
        const args = ["before", bin1, { inner: bin2, label: "x" }, [Buffer.alloc(0)], "after"];
        const back = once(sock, "message-back");
        sock.emit("message", ...args);
        assert.deepEqual(normalize(await back), args);
      });

      await h.case(`${name}: binary arguments in an ack`, async () => {
        const bin = Buffer.from("binary ack payload \u00ff", "latin1");
        const args = [bin, { b: Buffer.from([9, 8, 7]) }, "text"];
        const got = await withTimeout(
          new Promise((resolve) => sock.emit("message-with-ack", ...args, (...a) => resolve(a))),
          5000,
          "binary ack"
        );
        assert.deepEqual(normalize(got), args);
      });
    }

    await h.case("a namespace that does not exist gives connect_error", async () => {
      const nope = manager.socket("/does-not-exist", { auth: {} });
      try {
        const err = once(nope, "connect_error");
        nope.connect();
        const [e] = await err;
        assert.equal(e.message, "Invalid namespace");
        assert.equal(nope.connected, false);
      } finally {
        nope.disconnect();
      }
      // The other namespaces on the same session are unaffected.
      const back = once(root, "message-back");
      root.emit("message", "still here");
      assert.deepEqual(await back, ["still here"]);
    });

    await h.case("2,000 messages arrive back in order", async () => {
      const N = 2000;
      const got = [];
      const done = new Promise((resolve) => {
        const onBack = (i, tag) => {
          got.push([i, tag]);
          if (got.length === N) {
            root.off("message-back", onBack);
            resolve();
          }
        };
        root.on("message-back", onBack);
      });
      for (let i = 0; i < N; i++) root.emit("message", i, `m${i}`);
      await withTimeout(done, 20000, `${N} message-back events`).catch((e) => {
        throw new Error(`${e.message}: got ${got.length}; ${JSON.stringify(history)}`);
      });
      for (let i = 0; i < N; i++) assert.deepEqual(got[i], [i, `m${i}`], `message ${i} in order`);
    }, { timeout: 25000 });

    await h.case("reconnects by itself after the server restarts", async () => {
      assert.equal(root.connected && custom.connected, true, "connected before the restart");
      const nAuthRoot = auths.root.length;
      const nAuthCustom = auths.custom.length;
      const lost = Promise.all([once(root, "disconnect", 8000), once(custom, "disconnect", 8000)]);
      await server.stop();
      try {
        const [[reasonRoot]] = await lost;
        // "io server disconnect" would mean the server sent a Socket.IO
        // DISCONNECT, after which socket.io-client never reconnects.
        assert.notEqual(reasonRoot, "io server disconnect", "shutdown must not look like a deliberate kick");
      } finally {
        await sleep(200);
        await server.start(); // same port; also when the wait failed, for the cases after
      }
      assert.deepEqual(await waitAuth("root", nAuthRoot + 1), authRoot);
      assert.deepEqual(await waitAuth("custom", nAuthCustom + 1), authCustom);
      assert.equal(root.connected && custom.connected, true);
      const back = once(custom, "message-back");
      custom.emit("message", "after restart", { ok: 1 });
      assert.deepEqual(await back, ["after restart", { ok: 1 }]);
      if (mode === "default") {
        const engine = manager.engine;
        if (engine.transport.name !== "websocket") await once(engine, "upgrade", 5000);
      }
      assert.equal(manager.engine.transport.name, mode === "polling" ? "polling" : "websocket");
    }, { timeout: 20000 });

    await h.case("the daemon is still running", async () => {
      server.assertAlive();
    });
  });
}

module.exports = { runScenarios, MIXED_ARGS };
