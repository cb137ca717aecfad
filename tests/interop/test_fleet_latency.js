// What a cross-node emit costs: /api/v1/chat-events posted to node C for a
// user whose tab is on node A (the emit crosses Redis pub/sub) and for a
// user whose tab is on C itself (local), alternately, one at a time, both
// tabs in this process; latency = delivery time - time just before the
// POST (performance.now(), one clock). Prints p50/p99 of both and the
// difference; asserts only a generous sanity bound (the numbers depend on
// the machine and on what runs beside the test).
//
// SIOHUB_LATENCY_NOISE=R adds the rest of a busy fleet: a process of its
// own PUBLISHes R emits a second (as python-socketio >= 5.15.1 writes
// them, 4 KiB of chat data) to a room with no member on any node, which
// every node receives and must get rid of.
//
//   make check TESTS=tests/interop/test_fleet_latency.js; cat tests/interop/test_fleet_latency.log
//   SIOHUB_LATENCY_EVENTS=5000 top_builddir=$PWD node ../tests/interop/test_fleet_latency.js
//   SIOHUB_LATENCY_NOISE=2000 SIOHUB_LATENCY_EVENTS=5000 top_builddir=$PWD node ../tests/interop/test_fleet_latency.js
"use strict";

const childProcess = require("node:child_process");
const { performance } = require("node:perf_hooks");
const { assert, run } = require("./lib/harness");
const { percentile, startFleet } = require("./lib/fleet");

const N = Number(process.env.SIOHUB_LATENCY_EVENTS || 1000);
const NOISE = Number(process.env.SIOHUB_LATENCY_NOISE || 0);

// The background publisher: RESP PUBLISH commands on a plain socket, in
// batches every 10 ms; prints how many it sent when told to stop (stdin
// closes).
const NOISE_SCRIPT = `
const net = require("node:net");
const [port, rate] = process.argv.slice(1).map(Number);
const data = { chat_id: "noise", message_id: "m", data: { type: "chat:completion", data: { content: "x".repeat(4000) } } };
const msg = JSON.stringify({ method: "emit", event: "chat-events", data: [data], binary: false,
  namespace: "/", room: "user:nobody", skip_sid: null, callback: null, host_id: "noise" });
const cmd = "*3\\r\\n$7\\r\\nPUBLISH\\r\\n$8\\r\\nsocketio\\r\\n$" + Buffer.byteLength(msg) + "\\r\\n" + msg + "\\r\\n";
const sock = net.connect(port, "127.0.0.1");
sock.on("data", () => {});
let sent = 0, due = 0;
const t0 = Date.now();
const timer = setInterval(() => {
  due = Math.floor(((Date.now() - t0) / 1000) * rate);
  let batch = "";
  for (; sent < due; sent++) batch += cmd;
  if (batch) sock.write(batch);
}, 10);
process.stdin.on("end", () => { clearInterval(timer); console.log(sent + " in " + (Date.now() - t0) + " ms"); process.exit(0); });
process.stdin.resume();
`;

run({ timeoutMs: 180000, caseTimeoutMs: 150000 }, async (h) => {
  const f = await startFleet(h, { nodes: 3 });
  const [A, , C] = f.nodes;
  let noise = null;
  if (NOISE > 0) {
    noise = childProcess.spawn(process.execPath, ["-e", NOISE_SCRIPT, String(f.redis.port), String(NOISE)], {
      stdio: ["pipe", "pipe", "inherit"],
    });
    h.defer(() => noise.kill());
  }

  await h.case(`latency of ${N} chat events to a tab on another node vs. one on the same node`, async (defer) => {
    const remote = await f.connect(A, "u1");
    const local = await f.connect(C, "u2");
    defer(() => [remote, local].forEach((s) => s.disconnect()));
    const waiting = new Map();
    for (const s of [remote, local]) {
      s.on("chat-events", (ev) => {
        const w = waiting.get(ev.message_id);
        if (w) {
          waiting.delete(ev.message_id);
          w(performance.now() - ev.data.data.t);
        }
      });
    }
    const one = async (uid, id) => {
      const delivered = new Promise((resolve) => waiting.set(id, resolve));
      const t = performance.now();
      const r = await f.api(C, "POST", "chat-events", { user_id: uid, chat_id: "lat", message_id: id, data: { type: "t", data: { t } } });
      assert.equal(r.status, 200);
      let timer;
      const ms = await Promise.race([delivered, new Promise((_, rej) => (timer = setTimeout(() => rej(new Error(`${id} not delivered in 5 s`)), 5000)))]);
      clearTimeout(timer);
      return ms;
    };
    // Warm-up (connections, caches), not counted.
    for (let i = 0; i < 50; i++) {
      await one("u1", `w-r${i}`);
      await one("u2", `w-l${i}`);
    }
    const lat = { cross: [], local: [] };
    for (let i = 0; i < N; i++) {
      // Alternate, so both see the same machine load.
      lat.cross.push(await one("u1", `r${i}`));
      lat.local.push(await one("u2", `l${i}`));
    }
    const stats = {};
    for (const [k, v] of Object.entries(lat)) {
      const s = [...v].sort((a, b) => a - b);
      stats[k] = { p50: percentile(s, 50), p99: percentile(s, 99), mean: v.reduce((a, b) => a + b, 0) / v.length };
    }
    const fmt = (x) => x.toFixed(3);
    if (noise) {
      const out = new Promise((resolve) => {
        noise.stdout.on("data", (d) => resolve(String(d).trim()));
        noise.on("exit", (code) => resolve(`(publisher exited ${code})`));
      });
      noise.stdin.end();
      console.log(`# background: ${await out} emits of 4 KiB to a room with no member (asked ${NOISE}/s)`);
    }
    console.log(`# ${N} events each, POST /api/v1/chat-events to node C, delivery timed in the client (ms):`);
    console.log(`#   local (tab on C):      p50 ${fmt(stats.local.p50)}  p99 ${fmt(stats.local.p99)}  mean ${fmt(stats.local.mean)}`);
    console.log(`#   cross-node (tab on A): p50 ${fmt(stats.cross.p50)}  p99 ${fmt(stats.cross.p99)}  mean ${fmt(stats.cross.mean)}`);
    console.log(`#   added by the Redis hop: p50 ${fmt(stats.cross.p50 - stats.local.p50)}  p99 ${fmt(stats.cross.p99 - stats.local.p99)}  mean ${fmt(stats.cross.mean - stats.local.mean)}`);
    // Sanity only: a cross-node emit is not a second-scale affair.
    assert.ok(stats.cross.p50 < 250, `cross-node p50 ${stats.cross.p50} ms`);
    assert.ok(stats.cross.p99 < 2000, `cross-node p99 ${stats.cross.p99} ms`);
  });
});
