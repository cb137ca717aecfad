// Bad input from raw sockets: oversize, unmasked, truncated, non-UTF-8 and
// otherwise broken WebSocket frames, garbage Engine.IO and Socket.IO
// packets, broken HTTP. Each case checks the protocol's answer (close code,
// HTTP status, session closed) and that, while and after it happens, an
// ordinary socket.io-client on another connection still connects and
// round-trips a message, and the daemon keeps running.
//
// The daemon runs with --max-payload 1000.
"use strict";

const fs = require("node:fs");
const net = require("node:net");
const { HOST, assert, need, once, request, run, sleep, withTimeout } = require("./lib/harness");
const { RawWs, WsQueue, frame, poll, post, pollingHandshake } = require("./lib/wire");

const { io } = need("socket.io-client");
const WebSocket = need("ws");
const MAX_PAYLOAD = 1000;

run({ timeoutMs: 90000 }, async (h) => {
  const server = await h.server({ args: ["--max-payload", String(MAX_PAYLOAD)] });
  const port = server.port;
  const EIO_WS = "/engine.io/?EIO=4&transport=websocket";
  const SIO_WS = "/socket.io/?EIO=4&transport=websocket";

  // A long-lived client that must survive every attack.
  const witness = io(server.url, { transports: ["polling"], reconnection: false, forceNew: true });
  h.defer(() => witness.disconnect());
  await once(witness, "connect");
  let witnessCount = 0;

  // A fresh client connects and round-trips; the witness round-trips too.
  async function stillServing(transport = "websocket") {
    const c = io(server.url, { transports: [transport], reconnection: false, forceNew: true, timeout: 4000 });
    try {
      await once(c, "connect", 5000);
      const back = once(c, "message-back", 5000);
      c.emit("message", "fresh", transport);
      assert.deepEqual(await back, ["fresh", transport]);
    } finally {
      c.disconnect();
    }
    const n = ++witnessCount;
    const back = once(witness, "message-back", 5000);
    witness.emit("message", "witness", n);
    assert.deepEqual(await back, ["witness", n], "the long-lived client still works");
    server.assertAlive();
  }

  // Runs an attack and, at the same time, an ordinary client round trip.
  async function during(attack, transport) {
    const [result] = await Promise.all([attack(), stillServing(transport)]);
    return result;
  }

  async function rawSession(path, defer) {
    const raw = new RawWs(port, path);
    defer(() => raw.destroy());
    await raw.connect();
    const open = await raw.nextText();
    assert.equal(open[0], "0", `open packet, got ${JSON.stringify(open)}`);
    return raw;
  }

  // ---------------------------------------------------------------- payload limits

  await h.case("handshake advertises maxPayload 1000", async () => {
    const open = await pollingHandshake(port, "/engine.io/");
    assert.equal(open.maxPayload, MAX_PAYLOAD);
  });

  await h.case("a message under maxPayload is echoed", async (defer) => {
    const raw = await rawSession(EIO_WS, defer);
    const msg = "4" + "x".repeat(899);
    raw.write(frame(msg));
    assert.equal(await raw.nextText(), msg);
  });

  await h.case("a text frame over maxPayload: close 1009", async (defer) => {
    await during(async () => {
      const raw = await rawSession(EIO_WS, defer);
      raw.write(frame("4" + "x".repeat(5000)));
      assert.equal(await raw.closeCode(3000), 1009);
    });
  });

  await h.case("a binary frame over maxPayload on /socket.io/: close 1009", async (defer) => {
    await during(async () => {
      const raw = await rawSession(SIO_WS, defer);
      raw.write(frame(Buffer.alloc(4000, 7), { opcode: 2 }));
      assert.equal(await raw.closeCode(3000), 1009);
    });
  });

  await h.case("a frame header announcing 2^40 bytes: close 1009 at once", async (defer) => {
    await during(async () => {
      const raw = await rawSession(EIO_WS, defer);
      raw.write(frame(Buffer.alloc(16), { len: 2 ** 40 }));
      assert.equal(await raw.closeCode(3000), 1009);
    });
  });

  await h.case("fragments adding up to more than maxPayload: close 1009", async (defer) => {
    await during(async () => {
      const raw = await rawSession(EIO_WS, defer);
      raw.write(frame("4" + "a".repeat(399), { fin: false }));
      raw.write(frame("b".repeat(400), { opcode: 0, fin: false }));
      raw.write(frame("c".repeat(400), { opcode: 0 }));
      assert.equal(await raw.closeCode(3000), 1009);
    });
  });

  await h.case("a polling POST over maxPayload: 413", async () => {
    await during(async () => {
      const { sid } = await pollingHandshake(port, "/engine.io/");
      let status;
      try {
        status = (await post(port, "/engine.io/", sid, "4" + "x".repeat(5000))).status;
      } catch (e) {
        status = `connection error: ${e.message}`;
      }
      assert.equal(status, 413);
    }, "polling");
  });

  // ---------------------------------------------------------------- broken frames

  for (const [what, bytes, code] of [
    ["an unmasked client frame", frame("4hello", { mask: false }), 1002],
    ["invalid UTF-8 in a text frame", frame(Buffer.from([0x34, 0xc3, 0x28, 0xff])), 1007],
    ["a UTF-8 sequence cut at the end of the message", frame(Buffer.from([0x34, 0xe2, 0x82])), 1007],
    [
      "invalid UTF-8 split across fragments",
      Buffer.concat([frame(Buffer.from([0x34, 0xf0, 0x9f]), { fin: false }), frame(Buffer.from([0x41]), { opcode: 0 })]),
      1007,
    ],
    ["RSV1 set without a negotiated extension", frame("4hello", { rsv: 4 }), 1002],
    ["an unknown opcode (0x3)", frame("4hello", { opcode: 3 }), 1002],
    ["a ping frame longer than 125 bytes", frame(Buffer.alloc(126, 1), { opcode: 9 }), 1002],
    ["a fragmented ping frame", frame("x", { opcode: 9, fin: false }), 1002],
    ["a continuation frame with nothing to continue", frame("4hello", { opcode: 0 }), 1002],
    ["a new text frame inside a fragmented message", Buffer.concat([frame("4a", { fin: false }), frame("4b")]), 1002],
  ]) {
    await h.case(`${what}: close ${code}`, async (defer) => {
      await during(async () => {
        const raw = await rawSession(EIO_WS, defer);
        raw.write(bytes);
        assert.equal(await raw.closeCode(3000), code);
        assert.ok(await raw.endsWithin(3000), "then the TCP connection ends");
      });
    });
  }

  await h.case("a close frame from the client is answered and the session ends", async (defer) => {
    const raw = await rawSession(EIO_WS, defer);
    const body = Buffer.alloc(2);
    body.writeUInt16BE(1000, 0);
    raw.write(frame(body, { opcode: 8 }));
    assert.equal(await raw.closeCode(3000), 1000);
    assert.ok(await raw.endsWithin(3000));
  });

  await h.case("a WebSocket ping frame is answered with a pong carrying the same data", async (defer) => {
    const raw = await rawSession(EIO_WS, defer);
    raw.write(frame("are you there", { opcode: 9 }));
    for (;;) {
      const f = await raw.nextFrame(2000);
      assert.ok(f, "connection still open");
      if (f.opcode === 1) continue; // an Engine.IO ping may come first
      assert.equal(f.opcode, 10);
      assert.equal(f.payload.toString(), "are you there");
      break;
    }
  });

  await h.case("truncated frames, then disconnect (x20)", async () => {
    await during(async () => {
      for (let i = 0; i < 20; i++) {
        const raw = new RawWs(port, i % 2 ? EIO_WS : SIO_WS);
        await raw.connect();
        const f = frame("4" + "y".repeat(99));
        raw.write(f.subarray(0, 2 + (i % 12))); // header, mask key or payload cut short
        await sleep(5);
        raw.destroy();
      }
    });
  });

  await h.case("a truncated frame, then silence: the session ends by ping timeout", async (defer) => {
    await during(async () => {
      const raw = await rawSession(EIO_WS, defer);
      const f = frame("4" + "z".repeat(200));
      raw.write(f.subarray(0, 50));
      // The pong can never get through: pingInterval + pingTimeout later the
      // server gives up (close frame or TCP end).
      let ended = false;
      const deadline = Date.now() + 3000;
      while (!ended && Date.now() < deadline) {
        const fr = await raw.nextFrame(3000).catch(() => null);
        if (fr === null || fr.opcode === 8) ended = true;
      }
      assert.ok(ended, "session closed");
    });
  });

  // ---------------------------------------------------------------- garbage Engine.IO packets

  for (const packet of ["x", "9", "7abc", "\u0000\u0001", ""]) {
    await h.case(`garbage Engine.IO packet over websocket closes the session: ${JSON.stringify(packet)}`, async (defer) => {
      await during(async () => {
        // Answering pings, so only the packet can end the session.
        const q = new WsQueue(WebSocket, `${server.wsUrl}${EIO_WS}`, { autoPong: true });
        defer(() => q.close());
        await q.next();
        q.send(packet);
        assert.ok(await q.closesWithin(2000), "closed");
      });
    });
  }

  for (const body of ["zz", "4ok\x1e9", "\x1e\x1e", "\x1e4ok"]) {
    await h.case(`garbage Engine.IO payload over polling closes the session: ${JSON.stringify(body)}`, async () => {
      await during(async () => {
        const { sid } = await pollingHandshake(port, "/engine.io/");
        try {
          const r = await post(port, "/engine.io/", sid, body);
          assert.equal(r.status, 400);
        } catch (_) {
          /* dropping the connection is an answer too */
        }
        const g = await poll(port, "/engine.io/", sid);
        assert.equal(g.status, 400, "session gone");
      }, "polling");
    });
  }

  // ---------------------------------------------------------------- garbage Socket.IO packets

  const sioGarbage = [
    "4abc",
    "42{}",
    '42abc["message"]',
    '42["message",',
    "49",
    '44{"message":"a client may not send CONNECT_ERROR"}',
    '451-["message",{"_placeholder":true,"num":5}]',
    '45x-["message"]',
    '40/custom,{"not":"closed"',
    "4" + "2".repeat(2000),
  ];
  await h.case(`garbage Socket.IO packets (${sioGarbage.length} connections at once) each close their connection`, async (defer) => {
    await during(async () => {
      const qs = [];
      for (const g of sioGarbage) {
        const q = new WsQueue(WebSocket, `${server.wsUrl}${SIO_WS}`, { autoPong: true });
        defer(() => q.close());
        qs.push([g, q]);
      }
      for (const [, q] of qs) await q.next();
      for (const [g, q] of qs) {
        q.send("40");
        await q.next(); // CONNECT answer
        await q.next(); // auth
        q.send(g);
        if (g.startsWith("451-")) q.send(Buffer.from([1])); // the one attachment, wrong index
      }
      for (const [g, q] of qs) assert.ok(await q.closesWithin(3000), `closed after ${JSON.stringify(g.slice(0, 60))}`);
    });
  });

  await h.case("deeply nested JSON in an event does not hurt the daemon", async (defer) => {
    // Node echoes it; a parser with a depth limit may close the connection
    // instead. Either is fine: the daemon must stay up and keep serving.
    await during(async () => {
      const q = new WsQueue(WebSocket, `${server.wsUrl}${SIO_WS}`, { autoPong: true });
      defer(() => q.close());
      await q.next();
      q.send("40");
      await q.next();
      await q.next();
      const depth = 100000;
      q.send('42["message",' + "[".repeat(depth) + "]".repeat(depth) + "]");
      try {
        const m = await q.next(3000);
        assert.ok(typeof m === "string" && m.startsWith('42["message-back",'), "echoed");
      } catch (_) {
        assert.ok(q.isClosed, "or closed");
      }
    });
  });

  // ---------------------------------------------------------------- broken HTTP

  function rawHttp(bytes, ms = 3000) {
    return new Promise((resolve) => {
      const s = net.connect(port, HOST);
      let buf = "";
      const timer = setTimeout(() => {
        s.destroy();
        resolve({ text: buf, closed: false });
      }, ms);
      s.on("data", (d) => (buf += d.toString("latin1")));
      s.on("error", () => {});
      s.on("close", () => {
        clearTimeout(timer);
        resolve({ text: buf, closed: true });
      });
      s.on("connect", () => s.write(bytes));
    });
  }

  await h.case("binary junk instead of HTTP: 4xx or a closed connection", async () => {
    await during(async () => {
      const r = await rawHttp(Buffer.from(Array.from({ length: 512 }, (_, i) => (i * 7919) & 0xff)));
      assert.ok(r.closed || /^HTTP\/1\.[01] 4\d\d/.test(r.text), JSON.stringify(r.text.slice(0, 80)));
      assert.ok(!/^HTTP\/1\.[01] [23]\d\d/.test(r.text), "no success answer");
    });
  });

  await h.case("WebSocket upgrade without a key, with version 7 or a short key: not upgraded", async () => {
    await during(async () => {
      for (const headers of [
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n",
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 7\r\n",
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n",
      ]) {
        const r = await rawHttp(`GET ${EIO_WS} HTTP/1.1\r\nHost: ${HOST}:${port}\r\n${headers}\r\n`, 2000);
        assert.ok(!/^HTTP\/1\.1 101/.test(r.text), `no 101 for ${JSON.stringify(headers)}`);
        assert.ok(r.closed || /^HTTP\/1\.1 4\d\d/.test(r.text), JSON.stringify(r.text.slice(0, 80)));
      }
    });
  });

  await h.case("a 100 KiB request header: refused, daemon unharmed", async () => {
    await during(async () => {
      const r = await rawHttp(`GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nCookie: ${"c".repeat(100 * 1024)}\r\n\r\n`);
      assert.ok(!/^HTTP\/1\.1 200/.test(r.text), "not served");
    });
  });

  await h.case("100 connections cut in the middle of a request", async () => {
    await during(async () => {
      const req = `POST /engine.io/?EIO=4&transport=polling&sid=x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n4abc`;
      await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          withTimeout(
            new Promise((resolve) => {
              const s = net.connect(port, HOST);
              s.on("error", () => resolve());
              s.on("connect", () => {
                s.write(req.slice(0, 10 + i));
                setTimeout(() => {
                  s.resetAndDestroy ? s.resetAndDestroy() : s.destroy();
                  resolve();
                }, 10);
              });
            }),
            5000,
            "connection"
          )
        )
      );
    });
  });

  await h.case("refusals are in the log at info level with their reason, at most one a while per kind", async () => {
    const lines = () => fs.readFileSync(server.logPath, "utf8").split("\n");
    const info = (re) => lines().filter((l) => / INFO /.test(l) && re.test(l));
    // The cases above: a 100 KiB header (libmicrohttpd's own 431), garbage
    // polling payloads (each closes its session).
    assert.ok(info(/http: refused a request with HTTP 431 \(libmicrohttpd: .+\)/).length >= 1, "431 logged");
    assert.ok(info(/eio \S+ from 127\.0\.0\.1:\d+: malformed polling payload; closing the session/).length >= 1,
      "malformed payload logged");
    // Broken WebSocket frames (the cases at the top): why, and the close code.
    assert.ok(info(/eio \S+ from 127\.0\.0\.1:\d+: (protocol error|invalid UTF-8|message too big); closing the websocket with 10(02|07|09)/).length >= 1,
      "a broken frame logged");
    // Twenty stale session ids at once, as after a restart: one line at
    // most, and one there is (this or an earlier one of the kind).
    const unknown = /eio: refused (GET|POST) from 127\.0\.0\.1:\d+: sid \S+ is no session here .*\(400 Session ID unknown\)/;
    const before = info(unknown).length;
    for (let i = 0; i < 20; i++) {
      const r = await request(port, { path: `/engine.io/?EIO=4&transport=polling&sid=stale-${i}` });
      assert.equal(r.status, 400);
    }
    const after = info(unknown).length;
    assert.ok(after - before <= 1, `${after - before} lines for 20 stale sids`);
    assert.ok(after >= 1, "a stale sid is logged");
  });

  await h.case("after all of it: polling and websocket clients still work", async () => {
    await stillServing("polling");
    await stillServing("websocket");
    await request(port, { path: "/socket.io/?EIO=4&transport=polling" });
  });
});
