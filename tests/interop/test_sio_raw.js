// Socket.IO v5 at the wire level, against the echo app at /socket.io/:
// CONNECT with and without auth, namespaces, CONNECT_ERROR, DISCONNECT,
// EVENT / ACK / BINARY_EVENT / BINARY_ACK, the connect timeout, and the
// malformed packets that must close the connection. The behaviours the
// official socket.io-protocol test suite checks, written as our own cases
// (see the Socket.IO v5 spec, socketio/socket.io-protocol).
"use strict";

const { assert, need, run, sleep } = require("./lib/harness");
const { WsQueue, poll, post, pollingHandshake } = require("./lib/wire");

const WebSocket = need("ws");
const BASE = "/socket.io/";

function sidOf(packet, prefix) {
  assert.ok(packet.startsWith(prefix), `${JSON.stringify(packet)} starts with ${prefix}`);
  const body = JSON.parse(packet.slice(prefix.length));
  assert.deepEqual(Object.keys(body), ["sid"]);
  assert.equal(typeof body.sid, "string");
  assert.ok(body.sid.length > 0);
  return body.sid;
}

run({ timeoutMs: 60000 }, async (h) => {
  const server = await h.server();
  const port = server.port;

  // A websocket Engine.IO session at /socket.io/, open packet consumed.
  async function session(defer, opts = {}) {
    const q = new WsQueue(WebSocket, `${server.wsUrl}${BASE}?EIO=4&transport=websocket`, opts);
    defer(() => q.close());
    const open = await q.next();
    assert.equal(open[0], "0");
    return q;
  }

  // A session connected to the main namespace ("auth" consumed).
  async function connected(defer) {
    const q = await session(defer, { autoPong: true });
    q.send("40");
    sidOf(await q.next(), "40");
    assert.equal(await q.next(), '42["auth",{}]');
    return q;
  }

  // ---------------------------------------------------------------- connect

  await h.case("CONNECT to / answers with a sid, then 'auth' with {}", async (defer) => {
    const q = await session(defer);
    q.send("40");
    sidOf(await q.next(), "40");
    assert.equal(await q.next(), '42["auth",{}]');
  });

  await h.case("CONNECT to / with an auth payload: 'auth' echoes it", async (defer) => {
    const q = await session(defer);
    q.send('40{"token":"123","nested":{"a":[1,2]}}');
    sidOf(await q.next(), "40");
    assert.equal(await q.next(), '42["auth",{"token":"123","nested":{"a":[1,2]}}]');
  });

  await h.case("CONNECT to /custom (with and without auth)", async (defer) => {
    const q = await session(defer);
    q.send("40/custom,");
    sidOf(await q.next(), "40/custom,");
    assert.equal(await q.next(), '42/custom,["auth",{}]');
    const q2 = await session(defer);
    q2.send('40/custom,{"token":"abc"}');
    sidOf(await q2.next(), "40/custom,");
    assert.equal(await q2.next(), '42/custom,["auth",{"token":"abc"}]');
  });

  await h.case("the Socket.IO sid differs from the Engine.IO sid and per namespace", async (defer) => {
    const q = new WsQueue(WebSocket, `${server.wsUrl}${BASE}?EIO=4&transport=websocket`, { autoPong: true });
    defer(() => q.close());
    const eioSid = JSON.parse((await q.next()).slice(1)).sid;
    q.send("40");
    const root = sidOf(await q.next(), "40");
    await q.next();
    q.send("40/custom,");
    const custom = sidOf(await q.next(), "40/custom,");
    await q.next();
    assert.notEqual(root, eioSid);
    assert.notEqual(root, custom);
  });

  await h.case("CONNECT to an unknown namespace: CONNECT_ERROR 'Invalid namespace'", async (defer) => {
    const q = await session(defer, { autoPong: true });
    q.send("40/random");
    assert.equal(await q.next(), '44/random,{"message":"Invalid namespace"}');
    // The Engine.IO session survives: the main namespace still works.
    q.send("40");
    sidOf(await q.next(), "40");
    assert.equal(await q.next(), '42["auth",{}]');
  });

  await h.case("an invalid first packet closes the connection", async (defer) => {
    const q = await session(defer);
    q.send("4abc");
    assert.ok(await q.closesWithin(2000));
  });

  await h.case("no CONNECT at all: the connection is closed", async (defer) => {
    // Not answering pings either, as in the official suite: whichever
    // comes first, ping timeout or connect timeout, closes it.
    const q = await session(defer);
    assert.ok(await q.closesWithin(3000));
  });

  await h.case("connect timeout: a live session that never sends CONNECT is closed", async (defer) => {
    // siohub-specific option: --connect-timeout MS (Node: connectTimeout).
    // A second daemon, so the 1 s timeout does not apply to other cases.
    const d = await h.server({ args: ["--connect-timeout", "1000"] });
    const q = new WsQueue(WebSocket, `${d.wsUrl}${BASE}?EIO=4&transport=websocket`, { autoPong: true });
    defer(() => q.close());
    const started = Date.now();
    assert.equal((await q.next())[0], "0");
    assert.ok(await q.closesWithin(3000), "closed");
    const took = Date.now() - started;
    assert.ok(took >= 800, `closed after ${took} ms, not by the connect timeout`);
    await d.stop(); // on failure, the harness stops (and checks) it at the end
  });

  await h.case("an EVENT to a namespace never connected closes the connection", async (defer) => {
    // As Node's socket.io does ("invalid state"): only CONNECT may name a
    // namespace the session has not joined.
    const q = await connected(defer);
    q.send('42/custom,["message","nope"]');
    assert.ok(await q.closesWithin(2000));
  });

  // ---------------------------------------------------------------- disconnect

  await h.case("DISCONNECT from / keeps the Engine.IO session (next packet is a ping)", async (defer) => {
    const q = await session(defer);
    q.send("40");
    sidOf(await q.next(), "40");
    await q.next();
    q.send("41");
    assert.equal(await q.next(1000), "2");
  });

  await h.case("CONNECT then DISCONNECT /custom; / keeps working", async (defer) => {
    const q = await connected(defer);
    q.send("40/custom");
    sidOf(await q.next(), "40/custom,");
    assert.equal(await q.next(), '42/custom,["auth",{}]');
    q.send("41/custom");
    q.send('42["message","message to main namespace"]');
    assert.equal(await q.next(), '42["message-back","message to main namespace"]');
  });

  // ---------------------------------------------------------------- events and acks

  await h.case("EVENT: 'message' answered by 'message-back' with the same arguments", async (defer) => {
    const q = await connected(defer);
    q.send('42["message",1,"2",{"3":[true]}]');
    assert.equal(await q.next(), '42["message-back",1,"2",{"3":[true]}]');
    q.send('42["message"]');
    assert.equal(await q.next(), '42["message-back"]');
    q.send('42["message","héllo 🚀",null,[],{}]');
    assert.equal(await q.next(), '42["message-back","héllo 🚀",null,[],{}]');
  });

  await h.case("EVENT with an ack id: ACK with the same arguments", async (defer) => {
    const q = await connected(defer);
    q.send('42456["message-with-ack",1,"2",{"3":[false]}]');
    assert.equal(await q.next(), '43456[1,"2",{"3":[false]}]');
    q.send('420["message-with-ack"]');
    assert.equal(await q.next(), "430[]");
  });

  await h.case("events and acks in /custom carry the namespace", async (defer) => {
    const q = await connected(defer);
    q.send("40/custom,");
    sidOf(await q.next(), "40/custom,");
    await q.next();
    q.send('42/custom,["message","x"]');
    assert.equal(await q.next(), '42/custom,["message-back","x"]');
    q.send('42/custom,7["message-with-ack",1]');
    assert.equal(await q.next(), "43/custom,7[1]");
  });

  await h.case("BINARY_EVENT with two attachments is echoed with both", async (defer) => {
    const q = await connected(defer);
    q.send('452-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]');
    q.send(Buffer.from([1, 2, 3]));
    q.send(Buffer.from([4, 5, 6]));
    assert.equal(await q.next(), '452-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]');
    assert.deepEqual(await q.next(), Buffer.from([1, 2, 3]));
    assert.deepEqual(await q.next(), Buffer.from([4, 5, 6]));
  });

  await h.case("BINARY_EVENT with an ack id: BINARY_ACK with the attachments", async (defer) => {
    const q = await connected(defer);
    q.send('452-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]');
    q.send(Buffer.from([1, 2, 3]));
    q.send(Buffer.from([4, 5, 6]));
    assert.equal(await q.next(), '462-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]');
    assert.deepEqual(await q.next(), Buffer.from([1, 2, 3]));
    assert.deepEqual(await q.next(), Buffer.from([4, 5, 6]));
  });

  await h.case("BINARY_EVENT in /custom, attachment nested in an object", async (defer) => {
    const q = await connected(defer);
    q.send("40/custom,");
    sidOf(await q.next(), "40/custom,");
    await q.next();
    q.send('451-/custom,["message",{"file":{"_placeholder":true,"num":0},"name":"a.bin"}]');
    q.send(Buffer.alloc(0));
    assert.equal(await q.next(), '451-/custom,["message-back",{"file":{"_placeholder":true,"num":0},"name":"a.bin"}]');
    assert.deepEqual(await q.next(), Buffer.alloc(0));
  });

  // ---------------------------------------------------------------- over polling

  await h.case("polling: CONNECT, auth, event, binary event as base64", async () => {
    const { sid } = await pollingHandshake(port, BASE);
    assert.equal((await post(port, BASE, sid, '40{"t":1}')).text, "ok");
    const g = await poll(port, BASE, sid);
    const packets = g.text.split("\x1e");
    sidOf(packets[0], "40");
    let rest = packets.slice(1);
    if (rest.length === 0) rest = (await poll(port, BASE, sid)).text.split("\x1e");
    assert.deepEqual(rest, ['42["auth",{"t":1}]']);
    assert.equal((await post(port, BASE, sid, '42["message","a"]\x1e42["message","b"]')).text, "ok");
    assert.equal((await poll(port, BASE, sid)).text, '42["message-back","a"]\x1e42["message-back","b"]');
    assert.equal((await post(port, BASE, sid, '451-["message",{"_placeholder":true,"num":0}]\x1ebAQID')).text, "ok");
    assert.equal((await poll(port, BASE, sid)).text, '451-["message-back",{"_placeholder":true,"num":0}]\x1ebAQID');
    assert.equal((await post(port, BASE, sid, "1")).status, 200);
  });

  // ---------------------------------------------------------------- malformed packets

  for (const [what, packet] of [
    ["unknown packet type", "4abc"],
    ["payload that is not an array", "42{}"],
    ["non-numeric ack id", '42abc["message-with-ack",1,"2",{"3":[false]}]'],
    ["truncated JSON", '42["message",'],
    ["packet type out of range", "49"],
    ["event name that is an object", '42[{"a":1},2]'],
    ["empty event array", "42[]"],
  ]) {
    await h.case(`malformed packet closes the connection: ${what}`, async (defer) => {
      const q = await connected(defer);
      q.send(packet);
      assert.ok(await q.closesWithin(2000), `closed after ${JSON.stringify(packet)}`);
    });
  }

  await h.case("a binary frame nobody announced closes the connection", async (defer) => {
    const q = await connected(defer);
    q.send(Buffer.from([1, 2, 3]));
    assert.ok(await q.closesWithin(2000));
  });

  await h.case("the daemon is still running", async () => {
    await sleep(10);
    server.assertAlive();
  });
});
