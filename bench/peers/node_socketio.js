#!/usr/bin/env node
// A bench peer: Node's socket.io 4 (npm, its default `ws` WebSocket
// engine), serving the same peer contract as python_socketio.py, whose
// header says what each handler does and why they look like Open WebUI's:
// a CONNECT whose auth token verifies (HS256 with the secret, exp checked)
// joins "user:<id>"; "user-join" and "join-channels" {auth: {token}} join
// "channel:<cid>" for each cid in the token's "channels" claim;
// "channel-events" / "events:channel" typing from a channel member goes to
// the channel's room with {channel_id, message_id, data, user: {id, name,
// role}}; POST /api/v1/emit {event, data|args, to: {room|user|sid}} and
// POST /api/v1/chat-events {user_id, chat_id, message_id, data} (Bearer
// <api key>) emit and answer {"recipients": n}; both also take a JSON array
// of such objects, run in order, and answer the array of their answers (an
// item's error with its "status"), as siohubd does.
//
// With --redis URL it also takes emits the way a python-socketio fleet
// passes them (what Open WebUI's backend publishes when it runs with
// WEBSOCKET_MANAGER=redis): it subscribes to --redis-channel (socketio) and
// runs each message {"method": "emit", event, data, namespace, room,
// skip_sid} in JSON as io.to(room).emit(event, data). Only emits, no
// callbacks; pickled messages (python-socketio's default before 5.14) are
// not read. Node's own Redis adapter speaks another format, so this is the
// subscriber a Node server would need behind Open WebUI.
//
// socket.io and the Redis client (node-redis) are pinned by
// bench/peers/package.json and package-lock.json:
// `npm ci --prefix bench/peers` (node_modules is never committed). Exits 77
// when it is not installed.
//
// Usage: node node_socketio.js --port P --secret S --api-key K [--host 127.0.0.1]
//        [--transports polling,websocket] [--ping-interval 25000] [--ping-timeout 20000]
//        [--redis redis://127.0.0.1:PORT/0 [--redis-channel socketio]]
// --port 0 takes a free port. The secret and key may come from the
// environment instead (WEBUI_SECRET_KEY, BENCH_API_KEY). Prints
// "ready 127.0.0.1:PORT" on stdout once it accepts connections. Loopback
// only. SIGTERM or SIGINT stops it; it exits 0.
'use strict';
const http = require('http');
const crypto = require('crypto');
const net = require('net');

// A package of bench/peers' lockfile, or exit 77 (skipped) without it.
function requireInstalled(name, what) {
  try {
    return require(name);
  } catch (e) {
    process.stderr.write(`node_socketio: ${what} is not installed: run \`npm ci --prefix bench/peers\`\n`);
    process.exit(77);
  }
}

const { Server } = requireInstalled('socket.io', 'socket.io');

function usage(msg) {
  process.stderr.write(`node_socketio: ${msg}\n` +
    'usage: node_socketio.js --port P --secret S --api-key K [--host 127.0.0.1] ' +
    '[--transports polling,websocket] [--ping-interval MS] [--ping-timeout MS] ' +
    '[--redis URL [--redis-channel NAME]]\n');
  process.exit(2);
}
function arg(name, def) {
  const i = process.argv.indexOf(name);
  return i > 1 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
}
const host = arg('--host', '127.0.0.1');
const port = Number(arg('--port'));
const secret = arg('--secret', process.env.WEBUI_SECRET_KEY);
const apiKey = arg('--api-key', process.env.BENCH_API_KEY);
const transports = arg('--transports', 'polling,websocket').split(',').filter(Boolean);
const pingInterval = Number(arg('--ping-interval', '25000'));
const pingTimeout = Number(arg('--ping-timeout', '20000'));
const redisUrl = arg('--redis');
const redisChannel = arg('--redis-channel', 'socketio');
if (!secret || !apiKey) usage('--secret and --api-key are required (or WEBUI_SECRET_KEY, BENCH_API_KEY)');
if (!Number.isInteger(port) || port < 0 || port > 65535) usage('--port is required');
if (!net.isIPv4(host) || !host.startsWith('127.')) usage('--host must be in 127.0.0.0/8');
if (redisUrl !== undefined) {
  let u = null;
  try {
    u = new URL(redisUrl);
  } catch (e) {}
  if (!u || u.protocol !== 'redis:' || !net.isIPv4(u.hostname) || !u.hostname.startsWith('127.'))
    usage('--redis is a redis://127.x.x.x:PORT/DB URL');
}
if (!transports.length || transports.some((t) => t !== 'polling' && t !== 'websocket'))
  usage('--transports is a list of polling and websocket');

// Open WebUI's decode_token: HS256 only, exp checked; the claims or null.
function decodeToken(token) {
  if (typeof token !== 'string') return null;
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  try {
    const header = JSON.parse(Buffer.from(parts[0], 'base64url'));
    if (header.alg !== 'HS256') return null;
    const want = crypto.createHmac('sha256', secret).update(parts[0] + '.' + parts[1]).digest();
    const got = Buffer.from(parts[2], 'base64url');
    if (got.length !== want.length || !crypto.timingSafeEqual(got, want)) return null;
    const claims = JSON.parse(Buffer.from(parts[1], 'base64url'));
    if (typeof claims.exp === 'number' && claims.exp < Date.now() / 1000) return null;
    return claims && typeof claims === 'object' ? claims : null;
  } catch (e) {
    return null;
  }
}

// The user a token names; the claims stand in for Open WebUI's users table.
function userOf(claims) {
  if (!claims || claims.id === undefined) return null;
  return { id: String(claims.id), name: claims.name || '', role: claims.role || 'user' };
}

function tokenOf(data) {
  return data && data.auth ? data.auth.token : undefined;
}

function joinChannels(socket, claims) {
  if (Array.isArray(claims.channels)) for (const cid of claims.channels) socket.join('channel:' + cid);
}

function reply(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function roomSize(room) {
  const members = io.of('/').adapter.rooms.get(room);
  return members ? members.size : 0;
}

function apiEmit(body) {
  if (typeof body.event !== 'string' || !body.event) return [400, { error: '"event" (a non-empty string) is required' }];
  const to = body.to && typeof body.to === 'object' ? body.to : {};
  const named = ['sid', 'user', 'room'].filter((k) => typeof to[k] === 'string');
  if (named.length !== 1) return [400, { error: '"to" needs exactly one of sid, user, room' }];
  // Every socket is in a room named by its id, as in python-socketio.
  const room = named[0] === 'user' ? 'user:' + to.user : to[named[0]];
  const args = Array.isArray(body.args) ? body.args : body.data === undefined ? [] : [body.data];
  const n = roomSize(room);
  io.to(room).emit(body.event, ...args);
  return [200, { recipients: n }];
}

function apiChatEvents(body) {
  if (!body.user_id || body.chat_id === undefined || body.message_id === undefined || body.data === undefined)
    return [400, { error: 'user_id, chat_id, message_id and data are required' }];
  const rooms = ['user:' + body.user_id];
  if (body.session_id) rooms.push(body.session_id);
  const ids = new Set();
  for (const r of rooms) for (const id of io.of('/').adapter.rooms.get(r) || []) ids.add(id);
  io.to(rooms).emit(body.event || 'chat-events', {
    chat_id: body.chat_id,
    message_id: body.message_id,
    data: body.data,
  });
  return [200, { recipients: ids.size }];
}

const routes = { '/api/v1/emit': apiEmit, '/api/v1/chat-events': apiChatEvents };
const httpServer = http.createServer((req, res) => {
  const route = routes[req.url];
  if (req.method !== 'POST' || !route) return reply(res, 404, { error: 'not found' });
  if (req.headers.authorization !== 'Bearer ' + apiKey) return reply(res, 401, { error: 'missing or wrong API key' });
  const chunks = [];
  let size = 0;
  req.on('data', (c) => {
    size += c.length;
    if (size <= 1 << 20) chunks.push(c);
  });
  req.on('end', () => {
    if (size > 1 << 20) return reply(res, 413, { error: 'body too large' });
    let body;
    try {
      body = JSON.parse(Buffer.concat(chunks));
    } catch (e) {
      return reply(res, 400, { error: 'body is not JSON' });
    }
    if (!body || typeof body !== 'object') return reply(res, 400, { error: 'body is not a JSON object' });
    if (!Array.isArray(body)) {
      const [status, answer] = route(body);
      return reply(res, status, answer);
    }
    // A batch: each item in order, one answer each.
    const answers = body.map((item) => {
      if (!item || typeof item !== 'object' || Array.isArray(item))
        return { error: 'each item of the array must be an object', status: 400 };
      const [status, answer] = route(item);
      return status === 200 ? answer : { ...answer, status };
    });
    reply(res, 200, answers);
  });
});
httpServer.keepAliveTimeout = 60000;

const io = new Server(httpServer, {
  path: '/ws/socket.io',
  cors: { origin: '*' },
  transports,
  allowUpgrades: transports.includes('websocket'),
  pingInterval,
  pingTimeout,
  maxHttpBufferSize: 1e6,
});

const sessionPool = new Map(); // socket id -> {id, name, role}, Open WebUI's SESSION_POOL

function channelEvent(socket, event, data) {
  if (!data || typeof data !== 'object' || !data.data || typeof data.data !== 'object') return;
  const room = 'channel:' + data.channel_id;
  const user = sessionPool.get(socket.id);
  if (!user || !socket.rooms.has(room)) return;
  if (data.data.type !== 'typing') return;
  io.to(room).emit(event, {
    channel_id: data.channel_id,
    message_id: data.message_id === undefined ? null : data.message_id,
    data: data.data,
    user,
  });
}

io.on('connection', (socket) => {
  // Open WebUI's always_connect: a bad token is connected but joins nothing.
  const user = userOf(decodeToken(socket.handshake.auth && socket.handshake.auth.token));
  if (user) {
    sessionPool.set(socket.id, user);
    socket.join('user:' + user.id);
  }
  socket.on('user-join', (data, ack) => {
    const claims = decodeToken(tokenOf(data));
    const u = userOf(claims);
    if (!u) return;
    sessionPool.set(socket.id, u);
    socket.join('user:' + u.id);
    joinChannels(socket, claims);
    if (typeof ack === 'function') ack({ id: u.id, name: u.name });
  });
  socket.on('join-channels', (data) => {
    const claims = decodeToken(tokenOf(data));
    if (userOf(claims)) joinChannels(socket, claims);
  });
  socket.on('channel-events', (data) => channelEvent(socket, 'channel-events', data));
  socket.on('events:channel', (data) => channelEvent(socket, 'events:channel', data));
  socket.on('disconnect', () => sessionPool.delete(socket.id));
});

// A python-socketio pub/sub emit, from Redis.
function pubsubMessage(text) {
  let m;
  try {
    m = JSON.parse(text);
  } catch (e) {
    return; // not JSON (a pickle): not ours
  }
  if (!m || m.method !== 'emit' || typeof m.event !== 'string') return;
  const nsp = io.of(m.namespace || '/');
  const target = m.room === undefined || m.room === null ? nsp : nsp.to(m.room);
  const skip = m.skip_sid ? (Array.isArray(m.skip_sid) ? m.skip_sid : [m.skip_sid]) : [];
  (skip.length ? target.except(skip) : target).emit(m.event, m.data);
}

async function subscribe() {
  if (!redisUrl) return null;
  const { createClient } = requireInstalled('redis', 'the redis client');
  const sub = createClient({ url: redisUrl });
  sub.on('error', (e) => process.stderr.write(`node_socketio: redis: ${e.message}\n`));
  await sub.connect();
  await sub.subscribe(redisChannel, pubsubMessage);
  return sub;
}

let subscriber = null;
subscribe()
  .then((sub) => {
    subscriber = sub;
    httpServer.listen({ port, host, backlog: 4096 }, () => {
      const a = httpServer.address();
      process.stdout.write(`ready ${a.address}:${a.port}\n`);
    });
  })
  .catch((e) => {
    process.stderr.write(`node_socketio: redis ${redisUrl}: ${e.message}\n`);
    process.exit(1);
  });
for (const s of ['SIGTERM', 'SIGINT'])
  process.on(s, () => {
    io.close();
    if (subscriber) subscriber.destroy();
    httpServer.closeAllConnections();
    httpServer.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 1000).unref();
  });
