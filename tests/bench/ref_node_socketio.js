#!/usr/bin/env node
// A second reference for siohub's benchmarks: Node's socket.io 4 with the
// same behaviour as ref_python_socketio.py. A client whose auth token
// verifies (HS256 with the shared secret) joins "user:<id>" on connect;
// POST /api/v1/chat-events (bearer key) emits {chat_id, message_id, data}
// to that room and answers {"recipients": n}.
//
// socket.io is not a dependency of siohub: run.sh --ref node uses it only
// when it is installed (NODE_PATH, e.g. `npm install --prefix /tmp/x
// socket.io@4` and NODE_PATH=/tmp/x/node_modules). Exit 77 when missing.
//
// Usage: node ref_node_socketio.js --secret S --api-key K [--port 0]
// Prints "listening on 127.0.0.1:PORT" on stderr; 127.0.0.1 only.
'use strict';
const http = require('http');
const crypto = require('crypto');

let Server;
try {
  ({ Server } = require('socket.io'));
} catch (e) {
  process.stderr.write('ref_node_socketio: the socket.io module is not installed (set NODE_PATH)\n');
  process.exit(77);
}

function arg(name, def) {
  const i = process.argv.indexOf(name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
}
const secret = arg('--secret');
const apiKey = arg('--api-key');
const port = Number(arg('--port', '0'));
if (!secret || !apiKey) {
  process.stderr.write('usage: ref_node_socketio.js --secret S --api-key K [--port P]\n');
  process.exit(2);
}

// HS256 only, as Open WebUI signs its tokens.
function verify(token) {
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
    return claims;
  } catch (e) {
    return null;
  }
}

function reply(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

const httpServer = http.createServer((req, res) => {
  if (req.method !== 'POST' || req.url !== '/api/v1/chat-events') return reply(res, 404, { error: 'not found' });
  if (req.headers.authorization !== 'Bearer ' + apiKey) return reply(res, 401, { error: 'missing or wrong API key' });
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    let body;
    try {
      body = JSON.parse(Buffer.concat(chunks));
    } catch (e) {
      return reply(res, 400, { error: 'body is not JSON' });
    }
    if (!body || !body.user_id || body.chat_id === undefined || body.message_id === undefined || body.data === undefined)
      return reply(res, 400, { error: 'user_id, chat_id, message_id and data are required' });
    const rooms = ['user:' + body.user_id];
    if (body.session_id) rooms.push(body.session_id);
    const ids = new Set();
    for (const r of rooms) for (const id of io.of('/').adapter.rooms.get(r) || []) ids.add(id);
    io.to(rooms).emit(body.event || 'chat-events', {
      chat_id: body.chat_id,
      message_id: body.message_id,
      data: body.data,
    });
    reply(res, 200, { recipients: ids.size });
  });
});
httpServer.keepAliveTimeout = 75000;

const io = new Server(httpServer, {
  path: '/ws/socket.io',
  cors: { origin: '*' },
  pingInterval: 25000,
  pingTimeout: 20000,
});
io.on('connection', (socket) => {
  const claims = verify(socket.handshake.auth && socket.handshake.auth.token);
  if (claims && claims.id) socket.join('user:' + claims.id);
});

httpServer.listen(port, '127.0.0.1', () => {
  process.stderr.write('listening on 127.0.0.1:' + httpServer.address().port + '\n');
});
for (const s of ['SIGTERM', 'SIGINT'])
  process.on(s, () => {
    io.close();
    httpServer.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 1000).unref();
  });
