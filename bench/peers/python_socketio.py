#!/usr/bin/python3
"""A bench peer: Open WebUI's realtime tier as it runs today, which is what
siohub replaces, serving the peer contract of bench/run.

python-socketio's AsyncServer as Open WebUI's backend/open_webui/socket/
main.py builds it: always_connect=True, cors_allowed_origins "*" (its
CORS_ALLOW_ORIGIN default), ping interval 25 s and timeout 20 s (its
WEBSOCKET_SERVER_PING_* defaults), Socket.IO at /ws/socket.io. Open WebUI
serves it through ASGI under uvicorn; Debian packages neither uvicorn nor
an ASGI server python-engineio supports, so this runs it on aiohttp
(Debian's python3-aiohttp), python-engineio's other asyncio driver, with the
same server object and handlers.

The handlers are Open WebUI's, minus its database: where Open WebUI reads
the user (Users.get_user_by_id) and the user's channels
(Channels.get_channels_by_user_id), this takes them from the token's own
claims ("id", "name", "role", "channels"), as siohubd's `directory =
claims` does. Every difference is in this peer's favour.

- CONNECT with auth {"token": JWT}: a token that verifies (HS256 with the
  secret, exp checked, as Open WebUI's decode_token) puts the socket in
  SESSION_POOL and in the room "user:<id>". Like Open WebUI (and siohubd),
  a CONNECT without a good token is accepted and joins nothing.
- "user-join" {auth: {token}}: the same, plus the channels; acks
  {id, name}.
- "join-channels" {auth: {token}}: joins "channel:<cid>" for each channel.
- "channel-events" (Open WebUI up to 0.6) and "events:channel" (later)
  {channel_id, message_id, data: {type: "typing", ...}} from a member of
  the channel: emitted under the same name to the channel's room with
  {channel_id, message_id, data, user: {id, name, role}}.
- POST /api/v1/emit (Authorization: Bearer <api key>) {event, data or
  args, to: {room | user | sid}}: emits; answers {"recipients": n}.
- POST /api/v1/chat-events {user_id, chat_id, message_id, data, optional
  session_id and event}: emits {chat_id, message_id, data} to "user:<id>"
  (and the session) as Open WebUI's get_event_emitter does; answers
  {"recipients": n}.
- Both API routes also take a JSON array of their objects, as siohubd
  does (the bench's chat scenario posts the tokens of a tick together):
  the items run in order and the answer is the array of their answers.

With --redis URL the server runs as one instance of an Open WebUI fleet
(WEBSOCKET_MANAGER=redis): python-socketio's AsyncRedisManager on
--redis-channel (socketio), so every emit, the API's and the handlers',
goes through Redis and comes back to be delivered, and emits other
processes publish there (Open WebUI's backend, siohub-bench --redis) are
delivered too. Needs Debian's python3-redis.

Usage: python_socketio.py --port P --secret S --api-key K
       [--host 127.0.0.1] [--transports polling,websocket]
       [--ping-interval 25] [--ping-timeout 20]
       [--redis redis://127.0.0.1:PORT/0 [--redis-channel socketio]]
--port 0 takes a free port. The secret and key may come from the
environment instead (WEBUI_SECRET_KEY, BENCH_API_KEY). Prints
"ready 127.0.0.1:PORT" on stdout once it accepts connections. Loopback
(127.0.0.0/8) only. SIGTERM or SIGINT stops it; it exits 0.
"""
import argparse
import asyncio
import inspect
import ipaddress
import os
import signal
import socket
import sys
from urllib.parse import urlparse

import jwt
import socketio
from aiohttp import web


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--secret", default=os.environ.get("WEBUI_SECRET_KEY"))
    ap.add_argument("--api-key", default=os.environ.get("BENCH_API_KEY"))
    ap.add_argument("--transports", default="polling,websocket",
                    help="Open WebUI offers websocket alone, or polling alone when "
                         "ENABLE_WEBSOCKET_SUPPORT is off (default: both)")
    ap.add_argument("--ping-interval", type=float, default=25)
    ap.add_argument("--ping-timeout", type=float, default=20)
    ap.add_argument("--redis", help="redis://127.x.x.x:PORT/DB: run as a fleet member")
    ap.add_argument("--redis-channel", default="socketio")
    args = ap.parse_args()
    if not args.secret or not args.api_key:
        ap.error("--secret and --api-key are required (or WEBUI_SECRET_KEY, BENCH_API_KEY)")
    if not ipaddress.ip_address(args.host).is_loopback:
        ap.error("--host must be a loopback address")
    if args.redis is not None:
        u = urlparse(args.redis)
        try:
            loopback = u.scheme == "redis" and ipaddress.ip_address(u.hostname or "").is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            ap.error("--redis is a redis://127.x.x.x:PORT/DB URL")
    transports = [t for t in args.transports.split(",") if t]
    if not transports or any(t not in ("polling", "websocket") for t in transports):
        ap.error("--transports is a list of polling and websocket")
    args.transports = transports
    return args


async def maybe_await(x):
    # enter_room is plain in python-socketio 5.7 and a coroutine from 5.8 on.
    if inspect.isawaitable(x):
        await x


def build_app(args):
    # Open WebUI's socket/main.py: an AsyncRedisManager when
    # WEBSOCKET_MANAGER is "redis", else python-socketio's in-memory one.
    manager = None
    if args.redis:
        manager = socketio.AsyncRedisManager(args.redis, channel=args.redis_channel)
    sio = socketio.AsyncServer(
        client_manager=manager,
        async_mode="aiohttp",
        cors_allowed_origins="*",
        transports=args.transports,
        allow_upgrades="websocket" in args.transports,
        always_connect=True,
        ping_interval=args.ping_interval,
        ping_timeout=args.ping_timeout,
        logger=False,
        engineio_logger=False,
    )
    app = web.Application(client_max_size=1024 * 1024)
    sio.attach(app, socketio_path="/ws/socket.io")
    session_pool = {}  # sid -> {"id", "name", "role"}, Open WebUI's SESSION_POOL

    def decode_token(token):
        """Open WebUI's decode_token: the claims, or None."""
        if not isinstance(token, str):
            return None
        try:
            return jwt.decode(token, args.secret, algorithms=["HS256"])
        except jwt.PyJWTError:
            return None

    def user_of(data):
        """The user a token names (the claims stand in for Open WebUI's users table)."""
        if data is None or "id" not in data:
            return None
        return {"id": str(data["id"]), "name": data.get("name", ""), "role": data.get("role", "user")}

    def token_of(data):
        auth = data.get("auth") if isinstance(data, dict) else None
        return auth.get("token") if isinstance(auth, dict) else None

    async def join_channels(sid, claims):
        channels = claims.get("channels")
        for cid in channels if isinstance(channels, list) else []:
            await maybe_await(sio.enter_room(sid, f"channel:{cid}"))

    @sio.event
    async def connect(sid, environ, auth):
        token = auth.get("token") if isinstance(auth, dict) else None
        user = user_of(decode_token(token))
        if user:
            session_pool[sid] = user
            await maybe_await(sio.enter_room(sid, f"user:{user['id']}"))

    @sio.on("user-join")
    async def user_join(sid, data):
        claims = decode_token(token_of(data))
        user = user_of(claims)
        if not user:
            return None
        session_pool[sid] = user
        await maybe_await(sio.enter_room(sid, f"user:{user['id']}"))
        await join_channels(sid, claims)
        return {"id": user["id"], "name": user["name"]}

    @sio.on("join-channels")
    async def join_channels_event(sid, data):
        claims = decode_token(token_of(data))
        if user_of(claims):
            await join_channels(sid, claims)

    async def channel_event(event, sid, data):
        if not isinstance(data, dict) or not isinstance(data.get("data"), dict):
            return
        room = f"channel:{data.get('channel_id')}"
        # Open WebUI's membership check, a scan of the room's participants.
        sids = [s for s, _ in sio.manager.get_participants(namespace="/", room=room)]
        user = session_pool.get(sid)
        if sid not in sids or not user:
            return
        if data["data"].get("type") == "typing":
            await sio.emit(event, {
                "channel_id": data["channel_id"],
                "message_id": data.get("message_id"),
                "data": data["data"],
                "user": user,
            }, room=room)

    @sio.on("channel-events")
    async def channel_events(sid, data):
        await channel_event("channel-events", sid, data)

    @sio.on("events:channel")
    async def events_channel(sid, data):
        await channel_event("events:channel", sid, data)

    @sio.event
    async def disconnect(sid):
        session_pool.pop(sid, None)

    def room_size(room):
        return len(sio.manager.rooms.get("/", {}).get(room, {}))

    async def api_body(request):
        """The request's JSON object or array, or an error response."""
        if request.headers.get("Authorization") != f"Bearer {args.api_key}":
            return None, web.json_response({"error": "missing or wrong API key"}, status=401)
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            return None, web.json_response({"error": "body is not JSON"}, status=400)
        if not isinstance(body, (dict, list)):
            return None, web.json_response({"error": "body is not a JSON object"}, status=400)
        return body, None

    async def emit_one(body):
        event, to = body.get("event"), body.get("to")
        if not isinstance(event, str) or not event:
            return 400, {"error": '"event" (a non-empty string) is required'}
        targets = [to.get(k) for k in ("sid", "user", "room")] if isinstance(to, dict) else []
        named = [t for t in targets if isinstance(t, str)]
        if len(named) != 1:
            return 400, {"error": '"to" needs exactly one of sid, user, room'}
        room = f"user:{named[0]}" if isinstance(to.get("user"), str) else named[0]
        if isinstance(body.get("args"), list):
            data = tuple(body["args"])
        else:
            data = body.get("data")
        n = room_size(room)
        await sio.emit(event, data, room=room)
        return 200, {"recipients": n}

    async def chat_event_one(body):
        if not all(k in body for k in ("user_id", "chat_id", "message_id", "data")):
            return 400, {"error": "user_id, chat_id, message_id and data are required"}
        event = body.get("event") or "chat-events"
        rooms = [f"user:{body['user_id']}"]
        if body.get("session_id"):
            rooms.append(body["session_id"])
        n = sum(room_size(r) for r in rooms)
        await sio.emit(event, {
            "chat_id": body["chat_id"],
            "message_id": body["message_id"],
            "data": body["data"],
        }, room=rooms if len(rooms) > 1 else rooms[0])
        return 200, {"recipients": n}

    def api_route(one):
        """A handler for one object, or (as siohubd) a JSON array of them:
        each item in order, answered with the array of their answers (an
        item's error carries its status)."""
        async def handler(request):
            body, err = await api_body(request)
            if err:
                return err
            if isinstance(body, dict):
                status, answer = await one(body)
                return web.json_response(answer, status=status)
            answers = []
            for item in body:
                if not isinstance(item, dict):
                    answers.append({"error": "each item of the array must be an object",
                                    "status": 400})
                    continue
                status, answer = await one(item)
                answers.append(answer if status == 200 else {**answer, "status": status})
            return web.json_response(answers)
        return handler

    api_emit = api_route(emit_one)
    api_chat_events = api_route(chat_event_one)

    app.router.add_post("/api/v1/emit", api_emit)
    app.router.add_post("/api/v1/chat-events", api_chat_events)
    return app


async def serve(args, app):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(4096)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    # A WebSocket handler runs as long as its client stays: give them a
    # second to close instead of aiohttp's default minute.
    site = web.SockSite(runner, sock, shutdown_timeout=1.0, backlog=4096)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    host, port = sock.getsockname()[:2]
    print(f"ready {host}:{port}", flush=True)
    await stop.wait()
    await runner.cleanup()


def main():
    args = parse_args()
    asyncio.run(serve(args, build_app(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
