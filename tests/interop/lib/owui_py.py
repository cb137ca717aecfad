# tests/interop/lib/owui_py.py — the Open WebUI app scenarios with Debian's
# python3-socketio (5.7.2, sync socketio.Client) as the browser tabs; the
# same set as lib/owui_scenarios.js (see there). Tokens are HS256 JWTs
# built here with hmac; the HTTP API is driven with http.client.

import base64
import hashlib
import hmac
import http.client
import json
import logging
import os
import shutil
import tempfile
import threading
import time
import uuid

from harness import HOST, eq, run, skip, wait_until

SECRET = "siohub-interop-secret"
API_KEY = "interop-api-key-0123456789"

TRANSPORTS = {
    "websocket": ["websocket"],        # Open WebUI with ENABLE_WEBSOCKET_SUPPORT
    "upgrade": ["polling", "websocket"],  # polling first, then siohub's upgrade
}

USERS = [
    {"id": "u-ann", "name": "Ann", "email": "ann@example.org", "role": "user"},
    {"id": "u-bob", "name": "Bob", "email": "bob@example.org", "role": "admin"},
    {"id": "u-cat", "name": "Cat", "role": "user"},
    {"id": "u-dan", "name": "Dan", "role": "user"},
    {"id": "u-eve", "name": "Eve", "role": "user"},
    {"id": "u-fay", "name": "Fay", "role": "user"},
    {"id": "u-gus", "name": "Gus", "role": "user"},
    {"id": "u-hal", "name": "Hal", "role": "user"},
    {"id": "u-pen", "name": "Pen", "role": "pending"},
]
CHANNELS = [
    {"id": "ch-team", "members": ["u-ann", "u-bob"]},
    {"id": "ch-other", "members": ["u-bob", "u-cat"]},
]
CHAT_EVENTS = 1000

# ---------------------------------------------------------------- tokens


def b64url(x):
    raw = x if isinstance(x, bytes) else json.dumps(x, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def jwt(claims, secret=SECRET, header=None):
    header = header or {"alg": "HS256", "typ": "JWT"}
    signing = f"{b64url(header)}.{b64url(claims)}"
    if header["alg"] == "none":
        return signing + "."
    digest = hashlib.sha512 if header["alg"] == "HS512" else hashlib.sha256
    return signing + "." + b64url(hmac.new(secret.encode(), signing.encode(), digest).digest())


def token(uid, **extra):
    now = int(time.time())
    return jwt({"id": uid, "iat": now, "exp": now + 3600, "jti": str(uuid.uuid4()), **extra})


def hostile_tokens(uid, pending):
    now = int(time.time())
    good = token(uid)
    head, payload, sig = good.split(".")
    return {
        "alg none": jwt({"id": uid, "exp": now + 3600}, header={"alg": "none", "typ": "JWT"}),
        "alg none with the real signature": f"{b64url({'alg': 'none', 'typ': 'JWT'})}.{payload}.{sig}",
        "wrong secret": jwt({"id": uid, "exp": now + 3600}, secret="not-the-secret"),
        "expired an hour ago": jwt({"id": uid, "iat": now - 7200, "exp": now - 3600}),
        "HS512 (algorithm not configured)": jwt({"id": uid, "exp": now + 3600},
                                                header={"alg": "HS512", "typ": "JWT"}),
        "truncated signature": good[:-4],
        "sk- API key": "sk-" + os.urandom(16).hex(),
        "garbage": "garbage",
        "a number, not a string": 12345,
        "pending role in the directory": token(pending),
        "user not in the directory": token("u-not-in-directory"),
    }

# ---------------------------------------------------------------- the HTTP API


class Api:
    """The daemon's /api/v1 with the bearer key; one keep-alive connection
    per thread (requests on it go out, and are handled, in order)."""

    def __init__(self, port):
        self.port = port
        self.local = threading.local()

    def _conn(self):
        c = getattr(self.local, "conn", None)
        if c is None:
            c = self.local.conn = http.client.HTTPConnection(HOST, self.port, timeout=15)
        return c

    def __call__(self, method, path, body=None, key=API_KEY):
        headers = {}
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        data = None
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            headers["Content-Type"] = "application/json"
        for attempt in range(2):
            c = self._conn()
            try:
                c.request(method, path, body=data, headers=headers)
                r = c.getresponse()
                text = r.read().decode()
                break
            except (http.client.HTTPException, OSError):
                # A kept-alive connection the daemon closed (idle, restart).
                c.close()
                self.local.conn = None
                if attempt:
                    raise
        try:
            js = json.loads(text)
        except ValueError:
            js = None
        return r.status, js

    def get(self, path):
        status, js = self(method="GET", path=path)
        eq(status, 200, f"GET {path}")
        return js

# ---------------------------------------------------------------- tabs


class Tab:
    """A browser tab: socketio.Client with Open WebUI's options (path
    /ws/socket.io, auth {token}, reconnection 1..5 s, randomization 0.5).
    Records every event through a catch-all handler (.of(ev)) and, in wire
    order, every Socket.IO packet text that arrives (.wire): this client
    runs each event handler on a thread of its own, so only the Engine.IO
    read loop sees events in the order they came."""

    def __init__(self, server, mode, name="tab", tok=None, auth=None):
        import socketio
        import engineio.packet as eio_packet
        self.server = server
        self.mode = mode
        self.name = name
        self.token = tok
        self.auth = auth if auth is not None else ({"token": tok} if tok is not None else None)
        debug = bool(os.environ.get("SIOHUB_PY_DEBUG"))
        self.sio = socketio.Client(reconnection=True, reconnection_delay=1, reconnection_delay_max=5,
                                   randomization_factor=0.5, handle_sigint=False,
                                   logger=debug, engineio_logger=debug)
        self.lock = threading.Lock()
        self.events = []
        self.wire = []
        self.connects = 0
        self.disconnects = 0
        self.connect_errors = []
        self.sio.on("*", self._any)
        self.sio.on("connect", self._on_connect)
        self.sio.on("disconnect", self._on_disconnect)
        self.sio.on("connect_error", lambda *a: self.connect_errors.append(a))
        eio = self.sio.eio
        receive = eio._receive_packet

        def on_packet(pkt):
            if pkt.packet_type == eio_packet.MESSAGE and isinstance(pkt.data, str):
                with self.lock:
                    self.wire.append(pkt.data)
            receive(pkt)
        eio._receive_packet = on_packet

    def _any(self, event, *args):
        with self.lock:
            self.events.append((event, list(args)))

    def _on_connect(self):
        self.connects += 1

    def _on_disconnect(self):
        self.disconnects += 1

    def connect(self):
        self.sio.connect(self.server.url, auth=self.auth, transports=TRANSPORTS[self.mode],
                         socketio_path="/ws/socket.io", wait_timeout=10)
        assert self.sio.connected
        return self

    @property
    def sid(self):
        return self.sio.get_sid("/")

    def of(self, event):
        with self.lock:
            return [a for e, a in self.events if e == event]

    def last(self, event):
        got = self.of(event)
        return got[-1][0] if got else None

    def wire_events(self, event):
        """The first arguments of `event` packets, in wire order."""
        out = []
        with self.lock:
            wire = list(self.wire)
        prefix = f'2["{event}",'
        for text in wire:
            if text.startswith(prefix):
                out.append(json.loads(text[1:])[1])
        return out

    def call(self, event, data, timeout=5):
        return self.sio.call(event, data, timeout=timeout)

    def close(self):
        try:
            self.sio.disconnect()
        except Exception:  # best effort
            pass


def expect_none(tabs, event, secs, what):
    before = [len(t.of(event)) for t in tabs]
    time.sleep(secs)
    for t, n in zip(tabs, before):
        extra = t.of(event)[n:]
        assert not extra, f"{what}: {t.name} got {len(extra)} '{event}': {extra[0]!r}"


def run_owui_scenarios(mode):
    try:
        import socketio  # noqa: F401
    except ImportError:
        skip("python socketio is not importable (Debian: python3-socketio)")
    if os.environ.get("SIOHUB_PY_DEBUG"):
        logging.basicConfig(level=logging.INFO, format="%(relativeCreated)d %(name)s %(message)s")

    def body(h):
        tmp = tempfile.mkdtemp(prefix="siohub-owui-")
        h.defer(lambda: shutil.rmtree(tmp, ignore_errors=True))
        dir_file = os.path.join(tmp, "users.json")
        with open(dir_file, "w") as f:
            json.dump({"users": USERS, "channels": CHANNELS}, f)
        server = h.server(app="openwebui", env={"WEBUI_SECRET_KEY": SECRET},
                          ping_interval=2000, ping_timeout=5000,
                          args=["--directory", f"file:{dir_file}", "--api-key", API_KEY])
        api = Api(server.port)
        tabs = []

        def tab(name, tok=None, auth=None):
            t = Tab(server, mode, name=name, tok=tok, auth=auth)
            tabs.append(t)
            return t.connect()
        h.defer(lambda: [t.close() for t in tabs])

        def users():
            return api.get("/api/v1/users")["user_ids"]

        def room_sids(room):
            return sorted(api.get(f"/api/v1/rooms/{room}")["sids"])

        def user_list_has(t, uid):
            last = t.last("user-list")
            return last is not None and uid in last["user_ids"]

        observer = tab("observer")
        s = {}

        def connect_lists_user():
            s["ann1"] = tab("ann1", token("u-ann"))
            wait_until(lambda: user_list_has(observer, "u-ann"), 5,
                       lambda: f"observer's user-list: {observer.of('user-list')}")
            eq(observer.last("user-list"), {"user_ids": ["u-ann"]})
            wait_until(lambda: user_list_has(s["ann1"], "u-ann"), 5, "ann1 gets the broadcast too")
            wait_until(lambda: observer.of("usage"), 5, "a usage broadcast")
            eq(observer.last("usage"), {"models": []})
            eq(users(), ["u-ann"])
            status, js = api("GET", f"/api/v1/sessions/{s['ann1'].sid}")
            eq(status, 200)
            seen = js.pop("last_seen_at")
            eq(js, {"id": "u-ann", "name": "Ann", "email": "ann@example.org", "role": "user"})
            assert isinstance(seen, int) and abs(seen - time.time()) < 5, seen
            eq(api.get("/api/v1/rooms/user:u-ann"),
               {"room": "user:u-ann", "sids": [s["ann1"].sid], "user_ids": ["u-ann"]})
        h.case("CONNECT with auth {token}: user-list lists the user; SESSION_POOL and user:{id}",
               connect_lists_user)

        def transport():
            t = s["ann1"].sio
            # The handshake offered the upgrade exactly when polling came first.
            eq(list(t.eio.upgrades or []), ["websocket"] if mode == "upgrade" else [])
            wait_until(lambda: t.transport() == "websocket", 5, "websocket (after the upgrade)")
            time.sleep(0.2)
            eq(t.transport(), "websocket")
        h.case("transport is websocket" + (" after the upgrade" if mode == "upgrade" else ""), transport)

        def two_tabs():
            s["ann2"] = tab("ann2", token("u-ann"))
            wait_until(lambda: len(room_sids("user:u-ann")) == 2, 5, "both tabs in user:u-ann")
            eq(room_sids("user:u-ann"), sorted([s["ann1"].sid, s["ann2"].sid]))
            sid1 = s["ann1"].sid
            s["ann1"].close()
            wait_until(lambda: len(room_sids("user:u-ann")) == 1, 5, "one tab left")
            eq(room_sids("user:u-ann"), [s["ann2"].sid])
            eq(api("GET", f"/api/v1/sessions/{sid1}")[0], 404, "closed tab not in SESSION_POOL")
            eq(users(), ["u-ann"])
            time.sleep(0.6)
            assert user_list_has(observer, "u-ann"), observer.of("user-list")
            n = len(observer.of("user-list"))
            s["ann2"].close()
            wait_until(lambda: len(observer.of("user-list")) > n, 5, "a broadcast after the last tab")
            eq(observer.last("user-list"), {"user_ids": []})
            eq(users(), [])
        h.case("two tabs of one user: one closes (still listed), then both (gone, broadcast seen)", two_tabs)

        def user_join():
            s["bob"] = tab("bob", token("u-bob"))
            eq(s["bob"].call("user-join", {"auth": {"token": s["bob"].token}}), {"id": "u-bob", "name": "Bob"})
            eq(room_sids("channel:ch-team"), [s["bob"].sid])
            eq(room_sids("channel:ch-other"), [s["bob"].sid])
            s["cat"] = tab("cat")  # authenticated by user-join alone
            eq(s["cat"].call("user-join", {"auth": {"token": token("u-cat")}}), {"id": "u-cat", "name": "Cat"})
            eq(room_sids("channel:ch-other"), sorted([s["bob"].sid, s["cat"].sid]))
            eq(room_sids("channel:ch-team"), [s["bob"].sid])
            wait_until(lambda: user_list_has(observer, "u-cat"), 5, "user-list lists u-cat")
            eq(sorted(users()), ["u-bob", "u-cat"])
        h.case("user-join acks {id, name} and joins the user's channel rooms", user_join)

        def user_join_bad():
            import socketio
            t = tab("anon-join")
            bad = hostile_tokens("u-fay", "u-pen")["wrong secret"]
            try:
                t.call("user-join", {"auth": {"token": bad}}, timeout=1)
                raise AssertionError("user-join with a bad token was acked")
            except socketio.exceptions.TimeoutError:
                pass
            eq(api("GET", f"/api/v1/sessions/{t.sid}")[0], 404)
            assert "u-fay" not in users()
            assert t.sio.connected
        h.case("user-join with a bad token answers nothing and authenticates nobody", user_join_bad)

        def join_channels():
            s["ann3"] = tab("ann3", token("u-ann"))
            eq(room_sids("channel:ch-team"), [s["bob"].sid])
            s["ann3"].sio.emit("join-channels", {"auth": {"token": s["ann3"].token}})
            wait_until(lambda: s["ann3"].sid in room_sids("channel:ch-team"), 5, "ann3 in ch-team")
            eq(room_sids("channel:ch-team"), sorted([s["bob"].sid, s["ann3"].sid]))
        h.case("join-channels joins the rooms of a tab authenticated at CONNECT", join_channels)

        for event in ("channel-events", "events:channel"):
            def typing(event=event):
                ann, bob = s["ann3"], s["bob"]
                data = {"type": "typing", "data": {"typing": True}}
                n = [len(t.of(event)) for t in (ann, bob)]
                ann.sio.emit(event, {"channel_id": "ch-team", "message_id": "m-1", "data": data})
                want = {"channel_id": "ch-team", "message_id": "m-1", "data": data,
                        "user": {"id": "u-ann", "name": "Ann", "role": "user"}}
                for t, k in zip((ann, bob), n):
                    wait_until(lambda t=t, k=k: len(t.of(event)) > k, 5, f"{t.name} gets {event}")
                    eq(t.of(event)[k:], [[want]], t.name)
                bob.sio.emit(event, {"channel_id": "ch-team", "data": data})
                wait_until(lambda: len(ann.of(event)) > n[0] + 1, 5, "ann gets bob's typing")
                eq(ann.last(event), {"channel_id": "ch-team", "message_id": None, "data": data,
                                     "user": {"id": "u-bob", "name": "Bob", "role": "admin"}})
                expect_none([s["cat"], observer], event, 0.3, "a non-member")
            h.case(f"typing ({event}) reaches the channel's members, sender included, and nobody else", typing)

        def typing_dropped():
            data = {"type": "typing", "data": {"typing": True}}
            everyone = [s["ann3"], s["bob"], s["cat"], observer]
            s["cat"].sio.emit("channel-events", {"channel_id": "ch-team", "message_id": "m-2", "data": data})
            s["cat"].sio.emit("events:channel", {"channel_id": "ch-team", "data": data})
            observer.sio.emit("channel-events", {"channel_id": "ch-team", "data": data})
            s["ann3"].sio.emit("channel-events", {"channel_id": "ch-team", "data": {"type": "last_read_at"}})
            expect_none(everyone, "channel-events", 0.5, "dropped typing")
            expect_none(everyone, "events:channel", 0.1, "dropped typing")
        h.case("a non-member's typing is dropped, as is an anonymous tab's and a non-typing event", typing_dropped)

        def usage():
            observer.sio.emit("usage", {"model": "m-anonymous"})
            time.sleep(0.2)
            n = len(observer.of("usage"))
            t0 = time.monotonic()
            s["ann3"].sio.emit("usage", {"model": "m-llama", "action": "chat", "chat_id": "chat-9"})
            wait_until(lambda: any("m-llama" in u[0]["models"] for u in observer.of("usage")[n:]), 3,
                       "a usage broadcast with m-llama")
            eq(observer.last("usage"), {"models": ["m-llama"]})
            eq(api.get("/api/v1/usage"), {"models": ["m-llama"]})
            wait_until(lambda: observer.last("usage")["models"] == [], 10,
                       lambda: f"usage events: {observer.of('usage')}")
            took = time.monotonic() - t0
            assert 2.9 < took < 8.5, f"expired after {took:.2f} s"
            eq(api.get("/api/v1/usage"), {"models": []})
        h.case("usage: in a usage broadcast and GET /api/v1/usage, gone within ~7 s with a broadcast",
               usage, timeout=20)

        def chat_events(event):
            if "dan1" not in s:
                s["dan1"] = tab("dan1", token("u-dan"))
                s["dan2"] = tab("dan2", token("u-dan"))
                s["eve"] = tab("eve", token("u-eve"))
                wait_until(lambda: len(room_sids("user:u-dan")) == 2, 5, "dan's tabs")
            for i in range(CHAT_EVENTS):
                b = {"user_id": "u-dan", "chat_id": "chat-1", "message_id": "msg-1",
                     "data": {"type": "chat:completion", "data": {"seq": i, "content": f"token {i}"}}}
                if event != "chat-events" or i % 2:
                    b["event"] = event
                eq(api("POST", "/api/v1/chat-events", b), (200, {"recipients": 2}), f"POST #{i}")
            for t in (s["dan1"], s["dan2"]):
                wait_until(lambda t=t: len(t.wire_events(event)) >= CHAT_EVENTS, 20,
                           lambda t=t: f"{t.name}: {len(t.wire_events(event))} {event}")
                got = t.wire_events(event)
                eq(len(got), CHAT_EVENTS, t.name)
                for i, m in enumerate(got):
                    if m != {"chat_id": "chat-1", "message_id": "msg-1",
                             "data": {"type": "chat:completion", "data": {"seq": i, "content": f"token {i}"}}}:
                        raise AssertionError(f"{t.name}: {event} #{i} is {m!r}")
                wait_until(lambda t=t: len(t.of(event)) >= CHAT_EVENTS, 10, f"{t.name}: every handler ran")
                eq(len(t.of(event)), CHAT_EVENTS)
            expect_none([s["eve"], observer, s["ann3"], s["bob"]], event, 0.3, "another user's chat events")
            eq(len(s["eve"].wire_events(event)) + len(observer.wire_events(event)), 0)
        for event in ("chat-events", "events"):
            h.case(f"{CHAT_EVENTS} chat events ({event}) reach every tab of the user in order, and nobody else",
                   lambda event=event: chat_events(event), timeout=60)

        def session_id():
            def send(sid):
                return api("POST", "/api/v1/chat-events",
                           {"user_id": "u-dan", "session_id": sid, "chat_id": "chat-2", "message_id": "m",
                            "data": {"type": "status", "data": {"done": True}}})
            eq(send(observer.sid), (200, {"recipients": 3}))
            wait_until(lambda: observer.of("chat-events"), 5, "observer gets the session_id copy")
            eq(observer.last("chat-events"),
               {"chat_id": "chat-2", "message_id": "m", "data": {"type": "status", "data": {"done": True}}})
            eq(send(s["dan1"].sid), (200, {"recipients": 2}))
        h.case("chat events also reach the request's session_id, once", session_id)

        def call_answered():
            dan = s["dan1"]
            dan.sio.on("chat-events", lambda msg: {"confirmed": True, "echo": msg})
            dan.sio.on("events", lambda a, b: ("two args", a, b))
            envelope = {"chat_id": "chat-1", "message_id": "msg-2",
                        "data": {"type": "confirmation", "data": {"title": "Sure?"}}}
            eq(api("POST", "/api/v1/call", {"sid": dan.sid, "user_id": "u-dan", "data": envelope,
                                            "timeout_ms": 5000}),
               (200, {"args": [{"confirmed": True, "echo": envelope}]}))
            eq(api("POST", "/api/v1/call", {"sid": dan.sid, "event": "events", "args": [1, {"x": [2]}],
                                            "timeout_ms": 5000}),
               (200, {"args": ["two args", 1, {"x": [2]}]}))
        h.case("a call is answered by the client's ack", call_answered)

        def call_timeout():
            # python-socketio always acks: dan2's handler answers too late.
            dan = s["dan2"]
            answered = []

            def slow(msg):
                time.sleep(1.5)
                answered.append(msg)
                return {"late": True}
            dan.sio.on("chat-events", slow)
            t0 = time.monotonic()
            status, js = api("POST", "/api/v1/call", {"sid": dan.sid, "user_id": "u-dan", "data": {"q": 1},
                                                      "timeout_ms": 500})
            took = time.monotonic() - t0
            eq(status, 504, js)
            assert 0.45 <= took < 5, f"answered after {took:.2f} s"
            wait_until(lambda: answered, 5, "the late handler ran")
            time.sleep(0.3)  # the late ack reaches the daemon, which ignores it
            eq(api("GET", "/healthz")[0], 200)
            assert dan.sio.connected
        h.case("a call times out (504) when the client does not answer in time", call_timeout)

        def call_refused():
            refused = (404, {"error": "Client session disconnected."})
            for what, b in (("another user's sid", {"sid": s["dan1"].sid, "user_id": "u-eve", "data": {}}),
                            ("unknown sid", {"sid": "no-such-sid", "data": {}}),
                            ("anonymous sid", {"sid": observer.sid, "data": {}}),
                            ("eve's sid for dan", {"sid": s["eve"].sid, "user_id": "u-dan", "data": {}})):
                eq(api("POST", "/api/v1/call", dict(b, timeout_ms=2000)), refused, what)
        h.case("a call is refused (404) for another user's sid, an unknown sid and an anonymous one",
               call_refused)

        def hostile():
            bad = []
            try:
                for what, tok in hostile_tokens("u-fay", "u-pen").items():
                    t = Tab(server, mode, name=what, auth={"token": tok})
                    bad.append(t)
                    t.connect()
                    eq(t.connect_errors, [], f"{what}: no connect_error")
                    eq(api("GET", f"/api/v1/sessions/{t.sid}")[0], 404, f"{what}: not in SESSION_POOL")
                    eq(api.get(f"/api/v1/rooms/{t.sid}")["user_ids"], [], what)
                online = users()
                for u in ("u-fay", "u-pen", "u-not-in-directory"):
                    assert u not in online, (u, online)
                for u in ("u-fay", "u-pen"):
                    eq(room_sids(f"user:{u}"), [], f"nobody in user:{u}")
                eq(api("POST", "/api/v1/chat-events", {"user_id": "u-fay", "chat_id": "c", "message_id": "m",
                                                       "data": {}}), (200, {"recipients": 0}))
                assert all(t.sio.connected for t in bad)
            finally:
                for t in bad:
                    t.close()
        h.case("hostile tokens connect (always_connect, no connect_error) but are in no pool and no user room",
               hostile, timeout=30)

        def delete_sessions():
            g1 = tab("gus1", token("u-gus"))
            g2 = tab("gus2", token("u-gus"))
            wait_until(lambda: len(room_sids("user:u-gus")) == 2, 5, "gus's tabs")
            eq(api("DELETE", "/api/v1/users/u-gus/sessions"), (200, {"disconnected": 2}))
            wait_until(lambda: g1.disconnects and g2.disconnects, 5, "both gus tabs disconnected")
            wait_until(lambda: "u-gus" not in users(), 5, "u-gus offline")
            wait_until(lambda: not user_list_has(observer, "u-gus"), 5, "a user-list without u-gus")
            assert s["eve"].sio.connected and s["dan1"].sio.connected
            eq(api("POST", "/api/v1/chat-events", {"user_id": "u-eve", "chat_id": "c", "message_id": "m",
                                                   "data": {"n": 1}}), (200, {"recipients": 1}))
            wait_until(lambda: s["eve"].of("chat-events"), 5, "eve still gets chat events")
            time.sleep(1.5)  # a server disconnect is final: no reconnection
            assert not g1.sio.connected and not g2.sio.connected
            eq((g1.connects, g2.connects), (1, 1))
        h.case("DELETE /api/v1/users/ID/sessions disconnects every tab of that user, others stay",
               delete_sessions)

        def reconnect():
            hal = tab("hal", token("u-hal"))
            wait_until(lambda: "u-hal" in users(), 5, "u-hal online")
            server.stop()
            try:
                wait_until(lambda: hal.disconnects, 5, "hal saw the daemon go")
            finally:
                server.start()  # same port
            wait_until(lambda: hal.connects >= 2 and hal.sio.connected, 15,
                       lambda: f"hal reconnects ({hal.connects} connects)")
            wait_until(lambda: "u-hal" in users(), 5, "u-hal online again (auth sent on reconnect)")
            status, js = api("GET", f"/api/v1/sessions/{hal.sid}")
            eq((status, js["id"]), (200, "u-hal"))
        h.case("reconnection: after a daemon restart the tab comes back, authenticated again",
               reconnect, timeout=30)

    run(body, timeout=90, case_timeout=20)
