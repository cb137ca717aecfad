# tests/interop/lib/fleet.py — several siohubd nodes of the Open WebUI app
# on one redis-server, for the test_fleet_*.py files (the Python side of
# lib/fleet.js: the same users, channels, secret and key, plus u10).
#
#   f = Fleet(h, nodes=3, args=[...])
#   tab = f.connect(f.nodes[0], "u1")       # python-socketio client, user-join acked
#   f.api(f.nodes[1], "POST", "chat-events", {...})
#   f.pools()                               # HGETALL + json.loads, as Open WebUI reads
#
# Each node: WEBUI_SECRET_KEY=S siohubd --app openwebui --listen 127.0.0.1:PORT
#   --directory file:users.json --api-key KEY --websocket-manager redis
#   --redis-url redis://127.0.0.1:RPORT/0 [args]; ready at /healthz 200.

import json
import os
import queue
import subprocess
import threading
import time
import urllib.error
import urllib.request

from harness import HOST, skip

SECRET = "fleet-test-secret"
API_KEY = "fleet-test-key"
PREFIX = "open-webui"

USERS = [
    {"id": "u1", "name": "Ann Lee", "email": "ann@example.org", "role": "user"},
    {"id": "u2", "name": "Bob Ode", "email": "bob@example.org", "role": "admin"},
    {"id": "u3", "name": "Cy Ray", "email": "cy@example.org", "role": "user"},
    {"id": "u4", "name": "Di Fox", "email": "di@example.org", "role": "user"},
    {"id": "u5", "name": "Ed Tam", "email": "ed@example.org", "role": "user"},
    {"id": "u6", "name": "Flo Nu", "email": "flo@example.org", "role": "user"},
    {"id": "u7", "name": "Gus Li", "email": "gus@example.org", "role": "user"},
    {"id": "u8", "name": "Hal Oz", "email": "hal@example.org", "role": "user"},
    {"id": "u9", "name": "Ida Vo", "email": "ida@example.org", "role": "user"},
    # A user dict with more than strings (Open WebUI's info/settings):
    # empty lists and objects, a 64-bit integer, unicode.
    {"id": "u10", "name": "Jo Ümlaut ✓", "email": "jo@example.org", "role": "user",
     "info": {"groups": [], "prefs": {}, "quota": 12345678901234567, "tags": ["a", "b/c"]}},
]
CHANNELS = [
    {"id": "c1", "members": ["u1", "u2", "u3"]},
    {"id": "c2", "members": ["u4", "u5", "u6", "u7", "u8"]},
]


def user(uid):
    return next(u for u in USERS if u["id"] == uid)


def wait_for(pred, timeout, what):
    """Polls pred() every 20 ms; AssertionError after timeout s (what may
    be a callable, for a message showing the last state)."""
    deadline = time.monotonic() + timeout
    while True:
        if pred():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timeout after {timeout} s: {what() if callable(what) else what}")
        time.sleep(0.02)


class Recorder:
    """Thread-safe list of what one event brought (python-socketio's client
    runs every handler on a thread of its own)."""

    def __init__(self):
        self.items = []
        self.lock = threading.Lock()
        self.q = queue.Queue()

    def __call__(self, *args):
        with self.lock:
            self.items.append(list(args))
        self.q.put(list(args))

    def get(self, timeout=10.0):
        try:
            return self.q.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"nothing within {timeout} s") from None

    def snapshot(self):
        with self.lock:
            return list(self.items)


class Tab:
    """A python-socketio client connected to one node as a user."""

    def __init__(self, fleet, node, uid):
        import socketio
        self.fleet = fleet
        self.node = node
        self.uid = uid
        self.sio = socketio.Client(reconnection=False, handle_sigint=False)
        self.recorders = {}
        self.disconnected = threading.Event()
        self.sio.on("disconnect", self.disconnected.set)

    def record(self, event):
        """A Recorder of every `event` this tab receives (call before the
        event can arrive)."""
        rec = self.recorders.get(event)
        if rec is None:
            rec = self.recorders[event] = Recorder()
            self.sio.on(event, rec)
        return rec

    @property
    def sid(self):
        return self.sio.get_sid("/")

    def disconnect(self):
        try:
            self.sio.disconnect()
        except Exception:  # best effort
            pass


class Fleet:
    def __init__(self, h, nodes=3, args=(), node_args=None, ping_interval=2000, ping_timeout=10000):
        if os.environ.get("SIOHUB_REFERENCE_SERVER"):
            skip("fleet mode is siohub's own (Redis, the Open WebUI app)")
        try:
            import socketio  # noqa: F401
        except ImportError:
            skip("python socketio is not importable (Debian: python3-socketio)")
        try:
            import redis
        except ImportError:
            skip("python redis is not importable (Debian: python3-redis)")
        self.h = h
        self.args = list(args)
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.tokens = {}
        self.tabs = []
        self.redis_server = h.redis()
        self.users_path = h.log_path("users.json")[: -len(".stderr")]
        with open(self.users_path, "w") as fp:
            json.dump({"users": USERS, "channels": CHANNELS}, fp, indent=1)
        self.r = redis.Redis(host=HOST, port=self.redis_server.port, db=0)
        h.defer(self._close)
        self.nodes = []
        node_args = node_args or []
        for i in range(nodes):
            self.add_node(node_args[i] if i < len(node_args) else ())

    def _close(self):
        for t in self.tabs:
            t.disconnect()
        try:
            self.r.close()
        except Exception:  # best effort
            pass

    def add_node(self, extra=()):
        args = ["--directory", f"file:{self.users_path}", "--api-key", API_KEY,
                "--websocket-manager", "redis", "--redis-url", self.redis_server.url(),
                "--presence-window", "100"] + self.args + list(extra)
        d = self.h.server(args, app="openwebui", env={"WEBUI_SECRET_KEY": SECRET}, healthz=True,
                          ping_interval=self.ping_interval, ping_timeout=self.ping_timeout)
        self.nodes.append(d)
        return d

    def token(self, uid):
        if uid not in self.tokens:
            daemon = os.environ.get("SIOHUBD") or os.path.join(
                os.environ.get("top_builddir", os.getcwd()), "siohubd")
            out = subprocess.run([daemon, "token", "--user", uid], capture_output=True, text=True,
                                 env=dict(os.environ, WEBUI_SECRET_KEY=SECRET), check=True)
            self.tokens[uid] = out.stdout.strip()
        return self.tokens[uid]

    def connect(self, node, uid, join=True, record=(), token=None):
        """A tab of user uid (None: anonymous) on node, over WebSocket, with
        auth {token} (token: another one than `siohubd token`'s) and, as
        Open WebUI's layout does, user-join (acked)."""
        tab = Tab(self, node, uid)
        for ev in record:
            tab.record(ev)
        self.tabs.append(tab)
        token = token or (self.token(uid) if uid else None)
        auth = {"token": token} if token else {}
        tab.sio.connect(node.url, socketio_path="ws/socket.io", transports=["websocket"],
                        auth=auth, wait_timeout=10)
        if token and join:
            tab.user_join = tab.sio.call("user-join", {"auth": {"token": token}}, timeout=10)
        return tab

    @staticmethod
    def sign(claims):
        """An HS256 JWT with the fleet's secret (for claims `siohubd token`
        does not write, such as jti)."""
        import base64
        import hashlib
        import hmac

        def b64(b):
            return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
        head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        body = b64(json.dumps(claims).encode())
        sig = hmac.new(SECRET.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
        return f"{head}.{body}.{b64(sig)}"

    def api(self, node, method, path, body=None, timeout=10.0):
        """(status, parsed JSON body) of one API request with the key; path
        is under /api/v1/ unless it starts with "/"."""
        url = f"http://{HOST}:{node.port}" + (path if path.startswith("/") else f"/api/v1/{path}")
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method, headers={
            "Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                status, text = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read()
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def node_id(self, node):
        return self.api(node, "GET", "/healthz")[1]["node"]

    def hash_json(self, name):
        return {k.decode(): json.loads(v) for k, v in self.r.hgetall(f"{PREFIX}:{name}").items()}

    def pools(self):
        return {name: self.hash_json(name) for name in ("session_pool", "user_pool", "usage_pool")}

    def wait_in_pools(self, tabs, timeout=10):
        last = {}

        def ok():
            last.update(self.pools())
            return all(last["session_pool"].get(t.sid, {}).get("id") == t.uid
                       and t.sid in last["user_pool"].get(t.uid, []) for t in tabs)
        wait_for(ok, timeout, lambda: f"not all in the pools: {[(t.uid, t.sid) for t in tabs]}: {last}")
