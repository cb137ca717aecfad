// Slowloris: 50 connections each dribble an HTTP request header one byte at
// a time and never finish it, plus 20 connections that send nothing. While
// they hang on, ordinary clients (websocket, polling, upgrade) connect and
// round-trip, an established client keeps working, and at the end the
// daemon still shuts down cleanly on SIGTERM with the slow connections open.
"use strict";

const net = require("node:net");
const { HOST, assert, need, once, run, sleep } = require("./lib/harness");

const { io } = need("socket.io-client");
const SLOW = 50;
const IDLE = 20;
const BYTE_EVERY_MS = 150;
const ATTACK_MS = 6000;

run({ timeoutMs: 60000 }, async (h) => {
  const server = await h.server();
  const port = server.port;

  const established = io(server.url, { transports: ["websocket"], reconnection: false, forceNew: true });
  h.defer(() => established.disconnect());
  await once(established, "connect");

  // Never closed by us: they are still open when the harness stops the
  // daemon at the end, and go away with this process.
  const sockets = [];
  const stats = { closedByServer: 0, bytesSent: 0 };
  const header =
    "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slowloris\r\n" +
    "X-Padding: " +
    "a".repeat(4096);

  let stopDribbling = false;
  const dribblers = [];
  function openSlow(i) {
    return new Promise((resolve) => {
      const s = net.connect(port, HOST);
      sockets.push(s);
      s.on("error", () => {});
      s.on("close", () => {
        if (!stopDribbling) stats.closedByServer++;
      });
      s.on("connect", () => {
        resolve();
        let pos = 0;
        const tick = () => {
          if (stopDribbling || s.destroyed || pos >= header.length) return;
          s.write(header[pos++]);
          stats.bytesSent++;
          setTimeout(tick, BYTE_EVERY_MS + (i % 7));
        };
        tick();
      });
    });
  }

  await h.case(`${SLOW} dribbling and ${IDLE} silent connections open`, async () => {
    const opening = [];
    for (let i = 0; i < SLOW; i++) opening.push(openSlow(i));
    for (let i = 0; i < IDLE; i++) {
      opening.push(
        new Promise((resolve) => {
          const s = net.connect(port, HOST, resolve);
          s.on("error", () => {});
          sockets.push(s);
        })
      );
    }
    await Promise.all(opening);
  });

  const started = Date.now();
  let round = 0;
  for (const transports of [["websocket"], ["polling"], undefined, ["websocket"], ["polling"]]) {
    const name = transports ? transports[0] : "default (upgrade)";
    await h.case(`during the attack: a new ${name} client connects and round-trips`, async (defer) => {
      const c = io(server.url, { transports, reconnection: false, forceNew: true, timeout: 4000 });
      defer(() => c.disconnect());
      await once(c, "connect", 5000);
      const back = once(c, "message-back", 5000);
      c.emit("message", "hello during slowloris", ++round);
      assert.deepEqual(await back, ["hello during slowloris", round]);
      const n = round;
      const b2 = once(established, "message-back", 5000);
      established.emit("message", "established", n);
      assert.deepEqual(await b2, ["established", n]);
    });
    await sleep(Math.max(0, Math.min(1200, ATTACK_MS - (Date.now() - started)) / 2));
  }

  await h.case("the attack really ran (bytes were dribbled for seconds)", async () => {
    const left = ATTACK_MS - (Date.now() - started);
    if (left > 0) await sleep(left);
    assert.ok(stats.bytesSent > SLOW * 10, `only ${stats.bytesSent} bytes dribbled`);
    server.assertAlive();
  });

  await h.case("the established client survived the whole attack", async () => {
    assert.equal(established.connected, true);
    const back = once(established, "message-back", 5000);
    established.emit("message", "end");
    assert.deepEqual(await back, ["end"]);
  });

  // The slow connections stay open while the harness stops the daemon: a
  // clean exit on SIGTERM must not wait for them.
  stopDribbling = true;
  console.log(`# ${stats.bytesSent} bytes dribbled; ${stats.closedByServer} slow connections closed by the server`);
});
