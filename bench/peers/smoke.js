#!/usr/bin/env node
// A smoke check of one bench peer (or siohubd) against the peer contract
// bench/run relies on. Not a benchmark: a handful of clients, each check
// with a deadline.
//
//   node smoke.js socketio --port P --secret S --api-key K
//     alice's tab on WebSocket and her tab on polling, bob on WebSocket;
//     all send join-channels for channel "c1" (from their tokens' claims).
//     Checks: POST /api/v1/emit to {user: alice} reaches both her tabs and
//     not bob; POST /api/v1/chat-events reaches her tabs with {chat_id,
//     message_id, data}; emit to {room: "channel:c1"} reaches all three;
//     alice's "channel-events" typing reaches bob with user {id, name,
//     role}; a socket with a bad token gets nothing sent to alice.
//   node smoke.js raw-ws --port P [--sub-path /sub/bench] [--pub-path /pub/bench]
//     three plain WebSocket subscribers; a POSTed body reaches each as one
//     text frame, byte for byte, twice in a row.
//
// Needs socket.io-client and ws (tests/interop: `npm ci --prefix
// tests/interop`, then NODE_PATH=tests/interop/node_modules). Exits 0 when
// every check held, 1 otherwise (saying which), 2 on bad usage.
'use strict';
const crypto = require('crypto');

function usage(msg) {
  process.stderr.write(`smoke.js: ${msg}\nusage: smoke.js socketio|raw-ws --port P [--secret S --api-key K] ` +
    '[--path /ws/socket.io/] [--sub-path /sub/bench] [--pub-path /pub/bench]\n');
  process.exit(2);
}

const mode = process.argv[2];
function opt(name, def) {
  const i = process.argv.indexOf(name);
  return i > 2 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
}
const port = Number(opt('--port'));
if (!['socketio', 'raw-ws'].includes(mode)) usage('the first argument is socketio or raw-ws');
if (!(port > 0 && port < 65536)) usage('--port is required');
const base = `http://127.0.0.1:${port}`;
const TIMEOUT_MS = 5000;

function b64url(x) {
  return Buffer.from(x).toString('base64url');
}

// HS256, the claims bench tokens carry (siohub-bench mints the same shape).
function mint(secret, claims) {
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify({ exp: Math.floor(Date.now() / 1000) + 3600, role: 'user', ...claims }));
  const sig = crypto.createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

// Resolves with the first value pred(value) accepts among the events a
// collector records (past or future), rejects after TIMEOUT_MS.
function collector() {
  const seen = [];
  const waiters = [];
  return {
    seen,
    push(v) {
      seen.push(v);
      for (const w of waiters.splice(0)) if (!w.test()) waiters.push(w);
    },
    wait(what, pred) {
      return new Promise((resolve, reject) => {
        const w = {
          test() {
            const hit = seen.find(pred);
            if (hit === undefined) return false;
            clearTimeout(w.timer);
            resolve(hit);
            return true;
          },
        };
        if (w.test()) return;
        w.timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), TIMEOUT_MS);
        waiters.push(w);
      });
    },
  };
}

async function post(path, body, apiKey) {
  const headers = { 'Content-Type': 'application/json' };
  if (apiKey) headers.Authorization = `Bearer ${apiKey}`;
  const res = await fetch(base + path, { method: 'POST', headers, body });
  const text = await res.text();
  // nchan answers a publish 201 (no subscriber) or 202 (delivered).
  if (res.status < 200 || res.status > 299) throw new Error(`POST ${path} answered ${res.status}: ${text}`);
  return text;
}

const checks = [];
function check(ok, what) {
  checks.push({ ok, what });
  process.stdout.write(`${ok ? 'ok  ' : 'FAIL'} ${what}\n`);
}

async function socketioSmoke() {
  const { io } = require('socket.io-client');
  const secret = opt('--secret');
  const apiKey = opt('--api-key');
  if (!secret || !apiKey) usage('socketio needs --secret and --api-key');
  const path = opt('--path', '/ws/socket.io/');
  const clients = [];
  function connect(name, token, transports) {
    const events = collector();
    const s = io(base, { path, transports, auth: { token }, reconnection: false, forceNew: true });
    s.onAny((event, ...args) => events.push({ event, args }));
    clients.push(s);
    const up = new Promise((resolve, reject) => {
      s.on('connect', resolve);
      s.on('connect_error', (e) => reject(new Error(`${name}: connect_error ${e.message}`)));
      setTimeout(() => reject(new Error(`${name}: no connect within ${TIMEOUT_MS} ms`)), TIMEOUT_MS);
    });
    return { name, s, events, token, up };
  }
  const aliceToken = mint(secret, { id: 'alice', name: 'Alice', channels: ['c1'] });
  const bobToken = mint(secret, { id: 'bob', name: 'Bob', channels: ['c1'] });
  const alice1 = connect('alice/websocket', aliceToken, ['websocket']);
  const alice2 = connect('alice/polling', aliceToken, ['polling']);
  const bob = connect('bob/websocket', bobToken, ['websocket']);
  const intruder = connect('bad-token', mint('not the secret', { id: 'alice', name: 'Mallory' }), ['websocket']);
  const all = [alice1, alice2, bob];
  try {
    await Promise.all([...all, intruder].map((c) => c.up));
    check(true, 'four sockets connected (websocket and polling)');
    // Joining is asynchronous on the server and has no ack: join, then
    // prove the joins landed by an emit to the channel's room.
    for (const c of all) c.s.emit('join-channels', { auth: { token: c.token } });
    const probe = { probe: crypto.randomUUID() };
    const deadline = Date.now() + TIMEOUT_MS;
    let joined = [];
    while (Date.now() < deadline) {
      await post('/api/v1/emit', JSON.stringify({ event: 'joined?', data: probe, to: { room: 'channel:c1' } }), apiKey);
      await new Promise((r) => setTimeout(r, 100));
      joined = all.filter((c) => c.events.seen.some((e) => e.event === 'joined?'));
      if (joined.length === all.length) break;
    }
    check(joined.length === all.length, `join-channels: emit to room channel:c1 reached ${joined.length} of 3`);

    const hello = { seq: 1, pub: 0, t_ns: String(process.hrtime.bigint()), text: 'héllo' };
    const answer = JSON.parse(await post('/api/v1/emit', JSON.stringify({ event: 'bench', data: hello, to: { user: 'alice' } }), apiKey));
    check(answer.recipients === 2, `/api/v1/emit to user alice answered recipients=${answer.recipients} (want 2)`);
    for (const c of [alice1, alice2]) {
      const got = await c.events.wait(`${c.name} bench`, (e) => e.event === 'bench');
      check(JSON.stringify(got.args) === JSON.stringify([hello]), `${c.name} got the emit, data passed through`);
    }

    const chat = { user_id: 'alice', chat_id: 'chat1', message_id: 'm1', data: { type: 'message', data: { content: 'x' } } };
    await post('/api/v1/chat-events', JSON.stringify(chat), apiKey);
    for (const c of [alice1, alice2]) {
      const got = await c.events.wait(`${c.name} chat-events`, (e) => e.event === 'chat-events');
      const want = { chat_id: 'chat1', message_id: 'm1', data: chat.data };
      check(JSON.stringify(got.args[0]) === JSON.stringify(want), `${c.name} got chat-events {chat_id, message_id, data}`);
    }

    // A batch: an array of chat-events objects, in order, one answer each.
    const batch = [0, 1, 2].map((n) => ({ ...chat, chat_id: 'chat2', data: { type: 'message', data: { n } } }));
    const answers = JSON.parse(await post('/api/v1/chat-events', JSON.stringify([...batch, 7]), apiKey));
    check(Array.isArray(answers) && answers.length === 4 && answers.slice(0, 3).every((a) => a.recipients === 2) &&
      answers[3].status === 400, `/api/v1/chat-events with an array answered ${JSON.stringify(answers)}`);
    for (const c of [alice1, alice2]) {
      await c.events.wait(`${c.name} the batch`, () =>
        c.events.seen.filter((e) => e.event === 'chat-events' && e.args[0].chat_id === 'chat2').length === 3);
      const ns = c.events.seen.filter((e) => e.event === 'chat-events' && e.args[0].chat_id === 'chat2').map((e) => e.args[0].data.data.n);
      check(JSON.stringify(ns) === '[0,1,2]', `${c.name} got the batch in order: ${JSON.stringify(ns)}`);
    }

    const typing = { channel_id: 'c1', message_id: null, data: { type: 'typing', data: { typing: true } } };
    alice1.s.emit('channel-events', typing);
    const relayed = await bob.events.wait('bob channel-events', (e) => e.event === 'channel-events');
    const want = { channel_id: 'c1', message_id: null, data: typing.data, user: { id: 'alice', name: 'Alice', role: 'user' } };
    check(JSON.stringify(relayed.args[0]) === JSON.stringify(want),
      `typing relayed to bob as ${JSON.stringify(relayed.args[0])}`);

    // Everything sent to alice has had time to reach the intruder by now.
    await new Promise((r) => setTimeout(r, 200));
    const leaked = intruder.events.seen.filter((e) => e.event === 'bench' || e.event === 'chat-events');
    check(leaked.length === 0, 'a bad-token socket got none of alice\'s events');
    check(!bob.events.seen.some((e) => e.event === 'bench'), 'bob got none of alice\'s events');
  } finally {
    for (const c of clients) c.close();
  }
}

async function rawWsSmoke() {
  const WebSocket = require('ws');
  const subPath = opt('--sub-path', '/sub/bench');
  const pubPath = opt('--pub-path', '/pub/bench');
  const subs = [];
  for (let i = 0; i < 3; i++) {
    const frames = collector();
    const ws = new WebSocket(`ws://127.0.0.1:${port}${subPath}`);
    ws.on('message', (data, isBinary) => frames.push({ text: data.toString('utf8'), isBinary }));
    subs.push({ ws, frames });
  }
  try {
    await Promise.all(subs.map((s) => new Promise((resolve, reject) => {
      s.ws.on('open', resolve);
      s.ws.on('error', reject);
      setTimeout(() => reject(new Error('subscriber did not open')), TIMEOUT_MS);
    })));
    check(true, `3 WebSocket subscribers open on ${subPath}`);
    // nchan answers the upgrade before the subscriber is registered with
    // its channel; give it a moment.
    await new Promise((r) => setTimeout(r, 200));
    const bodies = [
      JSON.stringify({ seq: 1, pub: 0, t_ns: String(process.hrtime.bigint()), pad: 'é'.repeat(40) }),
      'x'.repeat(70000), // a 64-bit frame length
    ];
    for (const [i, body] of bodies.entries()) {
      await post(pubPath, body);
      for (const [j, s] of subs.entries()) {
        const got = await s.frames.wait(`subscriber ${j} message ${i}`, (f) => f.text === body);
        check(!got.isBinary, `subscriber ${j} got message ${i} (${Buffer.byteLength(body)} bytes) as one text frame`);
      }
    }
    check(subs.every((s) => s.frames.seen.length === bodies.length), 'no subscriber got anything else');
  } finally {
    for (const s of subs) s.ws.terminate();
  }
}

(mode === 'socketio' ? socketioSmoke() : rawWsSmoke()).then(
  () => {
    const failed = checks.filter((c) => !c.ok).length;
    process.stdout.write(failed ? `${failed} check(s) failed\n` : `all ${checks.length} checks held\n`);
    process.exit(failed ? 1 : 0);
  },
  (err) => {
    process.stdout.write(`FAIL ${err.message}\n`);
    process.exit(1);
  },
);
