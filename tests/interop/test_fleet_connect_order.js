// A client that sees `connect` is already in its rooms, in fleet mode too.
//
// python-socketio (what Open WebUI runs) answers a CONNECT once its
// connect handler has decoded the token, looked the user up and entered
// `user:{id}`. With Redis, siohubd checks Open WebUI's revocation keys
// before the socket enters `user:{id}`: that round trip must finish before
// the CONNECT answer, or an emit made the moment the client hears
// `connect` finds the user's room without it and is lost.
//
// Each case connects CLIENTS clients, a few at a time, to node A; the
// moment a client's `connect` fires, the test POSTs /api/v1/emit to its
// user (or its sid) on node A or node B, and the client must receive that
// emit (marked with its own index) within DELIVERY_MS. The same holds for
// the SSE endpoint, whose first event `connect` is the CONNECT answer.
// While clients connect, a helper keeps Redis busy with short Lua stalls
// (a loaded Redis, where the revocation reply is late): answering the
// CONNECT before the socket is in user:{id} lost 9 to 52 of 200 emits per
// case here; none may be lost.
"use strict";

const http = require("node:http");
const { HOST, assert, need, run, sleep } = require("./lib/harness");
const { USERS, startFleet, waitUntil } = require("./lib/fleet");
const { SSE_PATH, SseParser } = require("./lib/sse");

const CLIENTS = Number(process.env.SIOHUB_CONNECT_ORDER_CLIENTS || 200);
const AT_ONCE = 10;
const DELIVERY_MS = 3000;
// Busy-waits inside Redis for ARGV[1] microseconds: nothing else runs
// meanwhile, as when Redis is loaded.
const STALL_LUA =
  "local t = redis.call('TIME') local start = t[1] * 1000000 + t[2] " +
  "repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] - start >= tonumber(ARGV[1]) return 1";

// Runs `stall_us` stalls back to back with `gap_ms` between them until
// stop() is called; resolves the number of stalls run.
function busyRedis(client, stallUs, gapMs) {
  let stopped = false;
  let count = 0;
  const done = (async () => {
    while (!stopped) {
      await client.command("EVAL", STALL_LUA, "0", String(stallUs));
      count++;
      await sleep(gapMs);
    }
    return count;
  })();
  return {
    stop() {
      stopped = true;
      return done;
    },
  };
}

// Runs fn(i) for i in [0, n) with at most `width` at a time.
async function pool(n, width, fn) {
  let next = 0;
  const worker = async () => {
    while (next < n) await fn(next++);
  };
  await Promise.all(Array.from({ length: width }, worker));
}

run({ timeoutMs: 240000, caseTimeoutMs: 90000 }, async (h) => {
  const io = need("socket.io-client").io;
  const f = await startFleet(h, { nodes: 2 });
  const [A, B] = f.nodes;
  const redis = await f.redis.client();

  // One client per index: connects to A with user USERS[i % 9]'s token;
  // on `connect` posts the emit (to its user or sid, on node `via`) and
  // resolves true when the emit marked i arrives, false when it does not
  // within DELIVERY_MS.
  const viaSocketIo = (transport, to, via) => async (i) => {
    const uid = USERS[i % USERS.length].id;
    const sock = io(A.url, {
      path: "/ws/socket.io/",
      transports: [transport],
      auth: { token: f.token(uid) },
      forceNew: true,
      reconnection: false,
    });
    try {
      return await new Promise((resolve, reject) => {
        let timer = null;
        sock.on("order-check", (m) => {
          if (m && m.i === i) {
            clearTimeout(timer);
            resolve(true);
          }
        });
        sock.once("connect_error", reject);
        sock.once("connect", () => {
          const target = to === "sid" ? { sid: sock.id } : { user: uid };
          f.api(via, "POST", "emit", { event: "order-check", data: { i }, to: target }).then((r) => {
            if (r.status !== 200) reject(new Error(`emit: ${r.status} ${JSON.stringify(r.body)}`));
            timer = setTimeout(() => resolve(false), DELIVERY_MS);
          }, reject);
        });
      });
    } finally {
      sock.disconnect();
    }
  };

  // The same over the SSE endpoint: a raw stream whose first event is
  // `connect` {sid}; the emit must come down the same stream.
  const viaSse = (to, via) => (i) => {
    const uid = USERS[i % USERS.length].id;
    return new Promise((resolve, reject) => {
      let timer = null;
      const req = http.get(
        { host: HOST, port: A.port, path: SSE_PATH, headers: { Authorization: `Bearer ${f.token(uid)}` }, agent: false },
        (res) => {
          if (res.statusCode !== 200) {
            reject(new Error(`SSE stream: ${res.statusCode}`));
            return;
          }
          const parser = new SseParser((e) => {
            const data = JSON.parse(e.data);
            if (e.event === "connect") {
              const target = to === "sid" ? { sid: data.sid } : { user: uid };
              f.api(via, "POST", "emit", { event: "order-check", data: { i }, to: target }).then((r) => {
                if (r.status !== 200) reject(new Error(`emit: ${r.status} ${JSON.stringify(r.body)}`));
                timer = setTimeout(() => finish(false), DELIVERY_MS);
              }, reject);
            } else if (e.event === "order-check" && data[0] && data[0].i === i) {
              finish(true);
            }
          });
          res.setEncoding("utf8");
          res.on("data", (c) => parser.feed(c));
          res.on("error", () => {});
        }
      );
      const finish = (ok) => {
        clearTimeout(timer);
        req.destroy();
        resolve(ok);
      };
      req.on("error", (e) => (timer === null ? reject(e) : undefined));
    });
  };

  const check = async (what, one) => {
    const stalls = busyRedis(redis, 3000, 2);
    const lost = [];
    try {
      await pool(CLIENTS, AT_ONCE, async (i) => {
        if (!(await one(i))) lost.push(i);
      });
    } finally {
      const n = await stalls.stop();
      console.log(`# ${what}: ${CLIENTS - lost.length}/${CLIENTS} delivered, ${n} Redis stalls of 3 ms meanwhile`);
    }
    assert.equal(lost.length, 0, `${what}: ${lost.length} emits lost, for clients ${lost.slice(0, 20).join(", ")}${lost.length > 20 ? ", ..." : ""}`);
  };

  for (const transport of ["websocket", "polling"]) {
    await h.case(`${transport}: an emit to user:<id> on the same node, made on connect, arrives (${CLIENTS} clients)`, () =>
      check(`${transport} user A`, viaSocketIo(transport, "user", A))
    );
  }

  await h.case(`websocket: an emit to user:<id> through another node, made on connect, arrives (${CLIENTS} clients)`, () =>
    check("websocket user B", viaSocketIo("websocket", "user", B))
  );

  await h.case(`websocket: an emit to the sid, made on connect, arrives (${CLIENTS} clients)`, () =>
    check("websocket sid A", viaSocketIo("websocket", "sid", A))
  );

  await h.case(`SSE: an emit to user:<id>, made on the stream's connect event, arrives (${CLIENTS} clients)`, () =>
    check("sse user A", viaSse("user", A))
  );

  await h.case("the pools hold every session that heard connect", async (defer) => {
    // The pool write is made before the answer is queued: by the time a
    // client has connected and asked Redis, its entry is there.
    const socks = [];
    defer(() => socks.forEach((s) => s.disconnect()));
    for (let i = 0; i < 20; i++) {
      const uid = USERS[i % USERS.length].id;
      const s = await f.connect(A, uid, { join: false });
      socks.push(s);
      const pools = await f.pools();
      assert.equal(pools.session_pool[s.id]?.id, uid, `session ${s.id} of ${uid} in session_pool right after connect`);
    }
  });

  await h.case("Redis stalled past its command timeout: the CONNECT is still answered, the tab in its room", async (defer) => {
    // The revocation reply never comes in time: it fails open after the
    // command timeout (2 s), the pool write finds Redis away, and the
    // answer goes out all the same; local delivery does not need Redis.
    const staller = await f.redis.client();
    const stall = staller.command("EVAL", STALL_LUA, "0", "3500000");
    await sleep(100);
    const started = Date.now();
    const s = await f.connect(A, "u1", { join: false });
    defer(() => s.disconnect());
    const waited = Date.now() - started;
    console.log(`# connect answered after ${waited} ms with Redis stalled`);
    assert.ok(waited < 3300, `answered within the command timeout, not after the stall (${waited} ms)`);
    const got = f.record(s, "order-check");
    const r = await f.api(A, "POST", "emit", { event: "order-check", data: { i: -1 }, to: { user: "u1" } });
    assert.equal(r.status, 200);
    await waitUntil(() => got.length === 1, 5000, "the emit to user:u1 made with Redis stalled");
    await stall;
  });
});
