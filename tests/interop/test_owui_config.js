// The openwebui app's configuration seen from outside: the directory file
// re-read on SIGHUP (a broken file keeps the old one), the claims
// directory, `siohubd token`, and the endpoint (path /ws/socket.io/, EIO=3
// and unknown transports refused, CORS_ALLOW_ORIGIN, Open WebUI's
// environment variables, the heartbeat and payload defaults).
"use strict";

const childProcess = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");

const { assert, request, run, sleep } = require("./lib/harness");
const { SECRET, directoryJson, jwt, nowS, openTab, owuiServer, sorted, token, waitFor } = require("./lib/owui");

function daemonPath() {
  return process.env.SIOHUBD || path.join(process.env.top_builddir || process.cwd(), "siohubd");
}

// Waits until the daemon's log has a line matching re after `from` bytes;
// returns that line.
async function logLine(server, from, re, what) {
  return waitFor(() => {
    const text = fs.readFileSync(server.logPath, "utf8").slice(from);
    return text.split("\n").find((l) => re.test(l));
  }, 5000, () => `${what}; log:\n${fs.readFileSync(server.logPath, "utf8").slice(from)}`);
}

const logSize = (server) => fs.statSync(server.logPath).size;

run({ timeoutMs: 60000 }, async (h) => {
  const v1 = {
    users: [
      { id: "u1", name: "One", role: "user" },
      { id: "u2", name: "Two", role: "user" },
      { id: "u3", name: "Three", role: "pending" },
    ],
    channels: [{ id: "ch-h", members: ["u1"] }],
  };
  const server = await owuiServer(h, v1);
  const tab = (opts, defer) => openTab(server, defer || h.defer.bind(h), { mode: "websocket", ...opts });
  const roomSids = async (room) => sorted((await server.api("GET", `/api/v1/rooms/${room}`)).json.sids);
  const online = async () => (await server.api("GET", "/api/v1/users")).json.user_ids;
  // A fresh tab for uid: authenticated or not (the tab is closed again).
  const authenticates = async (uid, tok = token(uid)) => {
    const local = [];
    try {
      const t = await tab({ name: uid, token: tok }, (f) => local.push(f));
      const r = await server.api("GET", `/api/v1/sessions/${t.id}`);
      return r.status === 200 && r.json.id === uid;
    } finally {
      local.forEach((f) => f());
    }
  };
  const sighup = async (re, what) => {
    const from = logSize(server);
    server.proc.kill("SIGHUP");
    return logLine(server, from, re, what);
  };

  const two = {};
  await h.case("SIGHUP re-reads the directory file: channels, roles and users change for the next lookups", async () => {
    two.t = await tab({ name: "two", token: token("u2") });
    assert.deepEqual(await two.t.userJoin(), [{ id: "u2", name: "Two" }]);
    assert.deepEqual(await roomSids("channel:ch-h"), []);
    assert.equal(await authenticates("u3"), false, "u3 is pending");
    assert.equal(await authenticates("u4"), false, "u4 is unknown");
    fs.writeFileSync(server.directoryFile, directoryJson(
      [
        { id: "u2", name: "Two Renamed", role: "user" },
        { id: "u3", name: "Three", role: "user" },
        { id: "u4", name: "Four", role: "admin" },
      ],
      [{ id: "ch-h", members: ["u1", "u2"] }]
    ));
    await sighup(/directory file reloaded/, "a reload message");
    two.t.sock.emit("join-channels", { auth: { token: two.t.token } });
    await waitFor(async () => (await roomSids("channel:ch-h")).includes(two.t.id), 5000, "u2 joins ch-h on the next join-channels");
    assert.equal(await authenticates("u3"), true, "u3 is a user now");
    assert.equal(await authenticates("u4"), true, "u4 was added");
    assert.equal(await authenticates("u1"), false, "u1 was removed");
    assert.deepEqual(await two.t.userJoin(), [{ id: "u2", name: "Two Renamed" }]);
  });

  for (const [what, write] of [
    ["a file that is not JSON", (f) => fs.writeFileSync(f, "{ \"users\": [ {\"id\": \"u9\"} \n")],
    ["a duplicate user id", (f) => fs.writeFileSync(f, directoryJson([{ id: "u9" }, { id: "u9" }]))],
    ["an unknown top-level key", (f) => fs.writeFileSync(f, JSON.stringify({ users: [{ id: "u9" }], groups: [] }))],
    ["a missing file", (f) => fs.rmSync(f)],
  ]) {
    await h.case(`SIGHUP with ${what}: a warning, the previous directory is kept, the daemon keeps working`, async () => {
      write(server.directoryFile);
      const line = await sighup(/directory reload failed/, "a reload warning");
      assert.match(line, /WARN/);
      assert.match(line, /keeping the previous one/);
      assert.ok(line.includes(path.basename(server.directoryFile)), `the warning names the file: ${line}`);
      assert.equal(await authenticates("u4"), true, "u4 from the kept directory");
      assert.equal(await authenticates("u9"), false, "nothing of the broken file");
      assert.deepEqual(await two.t.userJoin(), [{ id: "u2", name: "Two Renamed" }]);
      assert.equal((await server.api("GET", "/healthz")).status, 200);
      server.assertAlive();
    });
  }

  await h.case("a good file after a broken one is read again", async () => {
    fs.writeFileSync(server.directoryFile, directoryJson([{ id: "u1", name: "One Again" }]));
    await sighup(/directory file reloaded/, "a reload message");
    assert.equal(await authenticates("u1"), true);
    assert.equal(await authenticates("u4"), false);
    // Sessions that exist keep their user dict until they re-authenticate.
    assert.ok((await online()).includes("u2"));
  });

  await h.case("a token with only an id (no exp, iat, jti: Open WebUI with JWT_EXPIRES_IN=-1) authenticates", async () => {
    assert.equal(await authenticates("u1", jwt({ id: "u1" })), true);
    assert.equal(await authenticates("u1", jwt({ id: "u1", exp: nowS() + 10 })), true);
    // Within the default 30 s leeway still good, past it not.
    assert.equal(await authenticates("u1", jwt({ id: "u1", exp: nowS() - 5 })), true);
    assert.equal(await authenticates("u1", jwt({ id: "u1", exp: nowS() - 60 })), false);
    assert.equal(await authenticates("u1", jwt({ id: "u1", nbf: nowS() + 600 })), false, "not yet valid");
  });

  await h.case("`siohubd token` mints a token the daemon accepts", async () => {
    const out = childProcess.execFileSync(daemonPath(), ["token", "--user", "u1", "--ttl", "60"], {
      env: { ...process.env, WEBUI_SECRET_KEY: SECRET },
      encoding: "utf8",
    });
    const tok = out.trim();
    assert.match(tok, /^[\w-]+\.[\w-]+\.[\w-]+$/);
    const claims = JSON.parse(Buffer.from(tok.split(".")[1], "base64url").toString());
    assert.equal(claims.id, "u1");
    assert.ok(claims.exp - claims.iat === 60, JSON.stringify(claims));
    assert.equal(await authenticates("u1", tok), true);
  });

  await h.case("directory claims: name, role and channels come from the token", async () => {
    const claimsServer = await owuiServer(h, { directory: "claims" });
    const local = [];
    try {
      const zed = await openTab(claimsServer, (f) => local.push(f), {
        name: "zed",
        token: token("u-zed", { name: "Zed", role: "admin", email: "zed@example.org", channels: ["c9", "c10"] }),
      });
      assert.deepEqual(await zed.userJoin(), [{ id: "u-zed", name: "Zed" }]);
      const get = async (p) => (await claimsServer.api("GET", p)).json;
      const { last_seen_at: _, ...dict } = await get(`/api/v1/sessions/${zed.id}`);
      assert.deepEqual(dict, { id: "u-zed", name: "Zed", email: "zed@example.org", role: "admin" });
      assert.deepEqual((await get("/api/v1/rooms/channel:c9")).sids, [zed.id]);
      assert.deepEqual((await get("/api/v1/rooms/channel:c10")).sids, [zed.id]);
      // Only an id: name = the id, role user.
      const bare = await openTab(claimsServer, (f) => local.push(f), { name: "bare", token: token("u-bare") });
      assert.deepEqual(await bare.userJoin(), [{ id: "u-bare", name: "u-bare" }]);
      // role pending in the claims: nobody.
      const pend = await openTab(claimsServer, (f) => local.push(f), { name: "pend", token: token("u-pend", { role: "pending" }) });
      assert.equal((await claimsServer.api("GET", `/api/v1/sessions/${pend.id}`)).status, 404);
      assert.deepEqual(sorted((await get("/api/v1/users")).user_ids), ["u-bare", "u-zed"]);
    } finally {
      local.forEach((f) => f());
    }
    await claimsServer.stop();
  });

  // ---- the endpoint
  const handshake = (d, query, headers = {}, p = "/ws/socket.io/") =>
    request(d.port, { path: `${p}?${query}`, headers });
  const openPacket = (r) => {
    assert.equal(r.status, 200, r.text);
    assert.equal(r.text[0], "0", r.text);
    return JSON.parse(r.text.slice(1));
  };

  await h.case("defaults: /ws/socket.io/, pingInterval 25000, pingTimeout 20000, maxPayload 1000000, upgrade offered", async () => {
    const d = await owuiServer(h, { users: [{ id: "u1" }], pingInterval: null, pingTimeout: null });
    const open = openPacket(await handshake(d, "EIO=4&transport=polling"));
    assert.deepEqual(
      [open.pingInterval, open.pingTimeout, open.maxPayload, open.upgrades],
      [25000, 20000, 1000000, ["websocket"]]
    );
    for (const [q, p] of [
      ["EIO=3&transport=polling", "/ws/socket.io/"],
      ["EIO=4&transport=carrier-pigeon", "/ws/socket.io/"],
      ["transport=polling", "/ws/socket.io/"],
    ]) {
      const r = await handshake(d, q, {}, p);
      assert.equal(r.status, 400, `${p}?${q}: ${r.status} ${r.text}`);
    }
    const wrongPath = await handshake(d, "EIO=4&transport=polling", {}, "/socket.io/");
    assert.equal(wrongPath.status, 404, "the echo app's path is not served");
    // Any origin is allowed by default, reflected with credentials.
    const r = await handshake(d, "EIO=4&transport=polling", { Origin: "http://anywhere.example" });
    assert.equal(r.status, 200);
    assert.equal(r.headers["access-control-allow-origin"], "http://anywhere.example");
    await d.stop();
  });

  await h.case("Open WebUI's environment: ENABLE_WEBSOCKET_SUPPORT, WEBSOCKET_SERVER_PING_*, CORS_ALLOW_ORIGIN, WEBSOCKET_EVENT_CALLER_TIMEOUT", async (defer) => {
    const d = await owuiServer(h, {
      users: [{ id: "u1" }],
      pingInterval: null,
      pingTimeout: null,
      env: {
        ENABLE_WEBSOCKET_SUPPORT: "false",
        WEBSOCKET_SERVER_PING_INTERVAL: "7",
        WEBSOCKET_SERVER_PING_TIMEOUT: "3",
        CORS_ALLOW_ORIGIN: "http://a.example;http://b.example:8080",
        WEBSOCKET_EVENT_CALLER_TIMEOUT: "1",
      },
    });
    const ok = await handshake(d, "EIO=4&transport=polling", { Origin: "http://b.example:8080" });
    const open = openPacket(ok);
    assert.deepEqual([open.pingInterval, open.pingTimeout, open.upgrades], [7000, 3000, []]);
    assert.equal(ok.headers["access-control-allow-origin"], "http://b.example:8080");
    assert.equal((await handshake(d, "EIO=4&transport=polling")).status, 200, "no Origin: not a browser, allowed");
    const evil = await handshake(d, "EIO=4&transport=polling", { Origin: "http://evil.example" });
    assert.ok(evil.status === 403 || evil.status === 400, `foreign origin: ${evil.status}`);
    assert.equal(evil.headers["access-control-allow-origin"], undefined);
    const ws = await handshake(d, "EIO=4&transport=websocket", { Connection: "Upgrade", Upgrade: "websocket",
      "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13" });
    assert.equal(ws.status, 400, "websocket is not offered");
    // The default call timeout is WEBSOCKET_EVENT_CALLER_TIMEOUT seconds.
    const t = await openTab(d, defer, { mode: "polling", token: token("u1"), options: { transports: ["polling"] } });
    const t0 = Date.now();
    const r = await d.api("POST", "/api/v1/call", { sid: t.id, data: {} });
    assert.equal(r.status, 504, r.text);
    assert.ok(Date.now() - t0 >= 900 && Date.now() - t0 < 5000, `${Date.now() - t0} ms`);
    t.close();
    await sleep(100);
    await d.stop();
  });
});
