// CORS and allowed origins (cors_allow_origin) on the Engine.IO endpoint:
// an allowed Origin is reflected with credentials, a preflight is answered,
// a handshake from another origin is refused with Node's code 4 (403), over
// polling and over the WebSocket upgrade; requests without Origin (non-browser
// clients) pass. siohub-specific: Node's echo server has no origin list.
"use strict";

const { assert, need, request, run, skip } = require("./lib/harness");

if (process.env.SIOHUB_REFERENCE_SERVER) skip("siohub's cors_allow_origin setting");

run({ timeoutMs: 30000 }, async (h) => {
  const WebSocket = need("ws");
  const ok = "https://chat.example.org";
  const server = await h.server({ args: ["--cors-allow-origin", `${ok};http://localhost:5173`] });
  const port = server.port;
  const handshake = "/socket.io/?EIO=4&transport=polling";

  await h.case("an allowed origin is reflected, with credentials", async () => {
    const r = await request(port, { path: handshake, headers: { Origin: ok } });
    assert.equal(r.status, 200);
    assert.equal(r.headers["access-control-allow-origin"], ok);
    assert.equal(r.headers["access-control-allow-credentials"], "true");
    assert.match(r.headers["vary"] || "", /Origin/);
    assert.match(r.text, /^0\{"sid":/);
  });

  await h.case("a preflight from an allowed origin gets 204 with methods and headers", async () => {
    const r = await request(port, {
      method: "OPTIONS",
      path: handshake,
      headers: { Origin: ok, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type" },
    });
    assert.equal(r.status, 204);
    assert.equal(r.headers["access-control-allow-origin"], ok);
    assert.match(r.headers["access-control-allow-methods"], /POST/);
    assert.equal(r.headers["access-control-allow-headers"], "content-type");
  });

  await h.case("another origin is refused with 403 {code:4}", async () => {
    const r = await request(port, { path: handshake, headers: { Origin: "https://evil.example" } });
    assert.equal(r.status, 403);
    assert.deepEqual(JSON.parse(r.text), { code: 4, message: "Forbidden" });
    assert.equal(r.headers["access-control-allow-origin"], undefined);
  });

  await h.case("another origin cannot open a WebSocket either", async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`, {
      headers: { Origin: "https://evil.example" },
    });
    const status = await new Promise((resolve) => {
      ws.on("unexpected-response", (req, res) => resolve(res.statusCode));
      ws.on("open", () => resolve("open"));
      ws.on("error", () => {});
    });
    ws.terminate();
    assert.equal(status, 403);
  });

  await h.case("no Origin header (a non-browser client) is allowed", async () => {
    const r = await request(port, { path: handshake });
    assert.equal(r.status, 200);
    assert.equal(r.headers["access-control-allow-origin"], undefined);
  });

  await h.case("the daemon is still running", () => server.assertAlive());
});
