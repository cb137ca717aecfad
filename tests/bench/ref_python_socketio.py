#!/usr/bin/env python3
"""The reference for siohub's benchmarks: Open WebUI's realtime tier as it is
today, reduced to what the fan-out benchmark touches.

python-socketio's AsyncServer on aiohttp at /ws/socket.io, as Open WebUI's
backend/open_webui/socket/main.py sets it up (Open WebUI runs it under
uvicorn/ASGI; Debian packages aiohttp, not uvicorn). On connect, a client
whose auth token verifies (HS256 with the shared secret, as Open WebUI's
decode_token) joins the room "user:<id>"; Open WebUI also reads the user
from its database there, which this app skips, in the reference's favour.

POST /api/v1/chat-events takes siohubd's body ({"user_id", "chat_id",
"message_id", "data", optional "session_id" and "event"}) with
"Authorization: Bearer <api key>", emits {"chat_id", "message_id", "data"}
to the user's room the way Open WebUI's get_event_emitter does
(sio.emit(..., room=f"user:{user_id}")) and answers {"recipients": n}, so
tests/bench/loadgen drives it unchanged.

Usage: ref_python_socketio.py --secret S --api-key K [--port 0]
Prints "listening on 127.0.0.1:PORT" on stderr once it serves. 127.0.0.1
only. SIGTERM or SIGINT stops it.
"""
import argparse
import asyncio
import inspect
import signal
import socket
import sys

import jwt
import socketio
from aiohttp import web


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--secret", required=True)
    ap.add_argument("--api-key", required=True)
    ap.add_argument("--ping-interval", type=float, default=25)
    ap.add_argument("--ping-timeout", type=float, default=20)
    args = ap.parse_args()

    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        cors_allowed_origins="*",
        always_connect=True,
        ping_interval=args.ping_interval,
        ping_timeout=args.ping_timeout,
        logger=False,
        engineio_logger=False,
    )
    app = web.Application(client_max_size=1024 * 1024)
    sio.attach(app, socketio_path="/ws/socket.io")

    async def maybe_await(x):
        if inspect.isawaitable(x):
            await x

    @sio.event
    async def connect(sid, environ, auth):
        token = auth.get("token") if isinstance(auth, dict) else None
        if not token:
            return
        try:
            data = jwt.decode(token, args.secret, algorithms=["HS256"])
        except jwt.PyJWTError:
            return
        if "id" in data:
            # enter_room is a coroutine in newer python-socketio releases
            await maybe_await(sio.enter_room(sid, f"user:{data['id']}"))

    def room_size(room):
        return len(sio.manager.rooms.get("/", {}).get(room, {}))

    async def chat_events(request):
        if request.headers.get("Authorization") != f"Bearer {args.api_key}":
            return web.json_response({"error": "missing or wrong API key"}, status=401)
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            return web.json_response({"error": "body is not JSON"}, status=400)
        if not isinstance(body, dict) or not all(
            k in body for k in ("user_id", "chat_id", "message_id", "data")
        ):
            return web.json_response({"error": "user_id, chat_id, message_id and data are required"},
                                     status=400)
        event = body.get("event") or "chat-events"
        rooms = [f"user:{body['user_id']}"]
        if body.get("session_id"):
            rooms.append(body["session_id"])
        n = sum(room_size(r) for r in rooms)
        await sio.emit(
            event,
            {"chat_id": body["chat_id"], "message_id": body["message_id"], "data": body["data"]},
            room=rooms if len(rooms) > 1 else rooms[0],
        )
        return web.json_response({"recipients": n})

    app.router.add_post("/api/v1/chat-events", chat_events)

    async def serve():
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", args.port))
        sock.listen(1024)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.SockSite(runner, sock, backlog=1024)
        await site.start()
        print(f"listening on 127.0.0.1:{sock.getsockname()[1]}", file=sys.stderr, flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for s in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(s, stop.set)
        await stop.wait()
        await runner.cleanup()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
