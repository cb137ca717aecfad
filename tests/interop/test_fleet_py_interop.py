# python-socketio's Redis manager (Debian python3-socketio 5.7.2, the
# pickle era) and siohub nodes on one Redis: a write-only RedisManager's
# emits reach siohub-hosted clients (dict, tuple args, bytes, rooms,
# skip_sid); a python-socketio server node's call() to a siohub-hosted sid
# returns the client's ack; disconnect and close_room from Python act on
# siohub sockets; enter_room / leave_room in the >= 5.10 JSON shape and
# emits in the >= 5.14 JSON shapes (hand-written, with redis-py's publish)
# are delivered the same way; a pickle carrying GLOBAL/REDUCE is dropped,
# never executed, and the node keeps working.
import base64
import json
import os
import pickle
import secrets
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from fleet import Fleet, wait_for  # noqa: E402
from harness import eq, run  # noqa: E402

CHANNEL = "socketio"

# A python-socketio 5.7.2 server node (threading, RedisManager): waits until
# its listener is subscribed, calls the siohub-hosted sid, disconnects it,
# prints the results as JSON. argv: redis URL, sid, channel.
PY_NODE = r"""
import json, os, sys, time
import redis, socketio
url, sid, channel = sys.argv[1:4]
r = redis.Redis.from_url(url)
before = r.pubsub_numsub(channel)[0][1]
srv = socketio.Server(client_manager=socketio.RedisManager(url, channel=channel), async_mode="threading")
srv.manager_initialized = True
srv.manager.initialize()
deadline = time.monotonic() + 10
while r.pubsub_numsub(channel)[0][1] <= before:
    if time.monotonic() > deadline:
        sys.exit("the listener did not subscribe")
    time.sleep(0.02)
out = {"first": srv.call("ask", {"q": 1}, to=sid, namespace="/", timeout=10)}
several = srv.call("ask2", "x", to=sid, namespace="/", timeout=10)
out["several"] = list(several) if isinstance(several, tuple) else several
out["loop"] = [srv.call("ask", i, to=sid, namespace="/", timeout=10) for i in range(10)]
srv.disconnect(sid, namespace="/")
time.sleep(0.2)  # the publish is synchronous; let it flush anyway
print(json.dumps(out), flush=True)
os._exit(0)
"""


def metric(node, name, label):
    """The value of siohub_NAME{label} (label "": no labels) in node's
    /metrics."""
    import urllib.request
    prefix = f"{name}{{{label}}} " if label else f"{name} "
    with urllib.request.urlopen(f"{node.url}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(prefix):
                return float(line.split()[-1])
    raise AssertionError(f"no {name}{{{label}}} in /metrics of :{node.port}")


def body(h):
    import socketio
    f = Fleet(h, nodes=2)
    A, B = f.nodes
    url = f.redis_server.url()
    mgr = socketio.RedisManager(url, write_only=True)
    h.defer(lambda: mgr.redis.close())

    def barrier(tab):
        """Publishes a marker emit to tab's sid and waits for it: whatever
        was published before it has been acted on by then (one Redis
        connection's messages arrive in order; siohub handles them in
        order)."""
        rec = tab.record("barrier")
        token = secrets.token_hex(4)
        mgr.emit("barrier", token, room=tab.sid, namespace="/")
        wait_for(lambda: [token] in rec.snapshot(), 10, f"barrier {token} on {tab.uid}")

    def room_sids(node, room):
        status, got = f.api(node, "GET", f"rooms/{room}")
        eq(status, 200, f"GET rooms/{room}")
        return sorted(got["sids"])

    def emit_reaches():
        tab = f.connect(A, "u1", record=["py-ev"])
        rec = tab.recorders["py-ev"]
        mgr.emit("py-ev", {"a": 1, "nested": {"list": [1, "two", None, True, 2.5]}}, room=tab.sid,
                 namespace="/")
        eq(rec.get(), [{"a": 1, "nested": {"list": [1, "two", None, True, 2.5]}}], "dict argument")
        mgr.emit("py-ev", (1, "two", {"3": [3]}), room=tab.sid, namespace="/")
        eq(rec.get(), [1, "two", {"3": [3]}], "tuple: the argument list")
        blob = bytes(range(256))
        mgr.emit("py-ev", blob, room=tab.sid, namespace="/")
        eq(rec.get(), [blob], "bytes")
        mgr.emit("py-ev", ("text", b"\x00\x01\xfe\xff", {"inner": b"\xaa"}), room=tab.sid,
                 namespace="/")
        eq(rec.get(), ["text", b"\x00\x01\xfe\xff", {"inner": b"\xaa"}], "tuple with bytes")
        mgr.emit("py-ev", "héllo wörld — 🚀", room=tab.sid)  # namespace defaults to "/"
        eq(rec.get(), ["héllo wörld — 🚀"], "unicode string, no namespace given")
        time.sleep(0.2)
        eq(rec.snapshot()[5:], [], "each emit once")

    def async_emit_reaches():
        # Open WebUI's own manager class: AsyncRedisManager(write_only=True),
        # on redis-py's asyncio client, publishing pickle as 5.7.2 does.
        import asyncio
        tab = f.connect(B, "u1", record=["py-async"])
        rec = tab.recorders["py-async"]

        async def run():
            amgr = socketio.AsyncRedisManager(url, write_only=True)
            await amgr.emit("py-async", {"chat_id": "c", "data": {"type": "x"}}, room=tab.sid,
                            namespace="/")
            await amgr.emit("py-async", ("two", b"\x01"), room="user:u1", namespace="/")
        asyncio.run(run())
        eq(rec.get(), [{"chat_id": "c", "data": {"type": "x"}}], "dict argument")
        eq(rec.get(), ["two", b"\x01"], "tuple with bytes to the user room")
        tab.disconnect()

    def emit_rooms():
        a1 = f.connect(A, "u2", record=["room-ev"])
        b1 = f.connect(B, "u2", record=["room-ev"])
        b2 = f.connect(B, "u3", record=["room-ev"])
        f.wait_in_pools([a1, b1, b2])
        # The user room spans both nodes.
        mgr.emit("room-ev", "to-u2", room="user:u2", namespace="/")
        eq(a1.recorders["room-ev"].get(), ["to-u2"])
        eq(b1.recorders["room-ev"].get(), ["to-u2"])
        # The channel room, skipping one sid.
        mgr.emit("room-ev", "to-c1", room="channel:c1", skip_sid=b1.sid, namespace="/")
        eq(a1.recorders["room-ev"].get(), ["to-c1"])
        eq(b2.recorders["room-ev"].get(), ["to-c1"])
        # Everyone in "/".
        mgr.emit("room-ev", "all", namespace="/")
        for t in (a1, b1, b2):
            eq(t.recorders["room-ev"].get(), ["all"], f"broadcast to {t.uid} on :{t.node.port}")
        for t in (a1, b1, b2):
            barrier(t)
        eq(len(b1.recorders["room-ev"].snapshot()), 2, "u2's tab on B: skipped once")
        eq(len(b2.recorders["room-ev"].snapshot()), 2, "u3's tab: not in user:u2")
        eq(len(a1.recorders["room-ev"].snapshot()), 3)
        for t in (a1, b1, b2):
            t.disconnect()

    def server_call():
        tab = f.connect(B, "u1")
        tab.sio.on("ask", lambda q: {"answer": 42, "q": q})
        tab.sio.on("ask2", lambda q: (q, "second", [3]))
        f.wait_in_pools([tab])
        # The python-socketio node runs in a process of its own: 5.7.2's
        # listener unpickles whatever arrives on the channel, so it must be
        # gone before the evil-pickle case (which checks siohub alone).
        proc = subprocess.run([sys.executable, "-B", "-c", PY_NODE, url, tab.sid, CHANNEL],
                              capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            raise AssertionError(f"python node failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        got = json.loads(proc.stdout.strip().splitlines()[-1])
        eq(got["first"], {"answer": 42, "q": {"q": 1}}, "call() returns the ack")
        eq(got["several"], ["x", "second", [3]], "an ack with several arguments")
        eq(got["loop"], [{"answer": 42, "q": i} for i in range(10)], "ten calls in a row")
        # The node's disconnect() of a sid it does not host is published
        # (can_disconnect): siohub closes that socket.
        if not tab.disconnected.wait(10):
            raise AssertionError("python node's disconnect() did not reach the siohub-hosted client")

    def disconnect_and_close_room():
        t1 = f.connect(A, "u4")
        t2 = f.connect(B, "u5")
        keep = f.connect(A, "u6", record=["cr-ev"])
        # The write-only manager's disconnect.
        mgr.disconnect(t1.sid, namespace="/")
        if not t1.disconnected.wait(10):
            raise AssertionError("RedisManager.disconnect did not disconnect the siohub client")
        # close_room: put t2 and keep in a room on two nodes, then close it.
        for t in (t2, keep):
            status, got = f.api(t.node, "POST", "rooms/py-room/join", {"sids": [t.sid]})
            eq(status, 200, f"join: {got}")
        eq(room_sids(A, "py-room"), [keep.sid])
        eq(room_sids(B, "py-room"), [t2.sid])
        mgr.emit("cr-ev", "before", room="py-room", namespace="/")
        eq(keep.recorders["cr-ev"].get(), ["before"])
        mgr.close_room("py-room", namespace="/")
        wait_for(lambda: room_sids(A, "py-room") == [] and room_sids(B, "py-room") == [], 10,
                 "py-room empty on both nodes")
        mgr.emit("cr-ev", "after", room="py-room", namespace="/")
        barrier(keep)
        eq(keep.recorders["cr-ev"].snapshot(), [["before"]], "no emit to a closed room")
        time.sleep(0.3)
        if t2.disconnected.is_set() or keep.disconnected.is_set():
            raise AssertionError("close_room disconnected someone")

    def json_rooms():
        tab = f.connect(B, "u7", record=["jr-ev"])
        host = secrets.token_hex(16)

        def room_msg(method):
            return json.dumps({"method": method, "sid": tab.sid, "namespace": "/", "room": "jr",
                               "host_id": host})
        f.r.publish(CHANNEL, room_msg("enter_room"))
        wait_for(lambda: room_sids(B, "jr") == [tab.sid], 10, "enter_room joined")
        mgr.emit("jr-ev", "in", room="jr", namespace="/")
        eq(tab.recorders["jr-ev"].get(), ["in"])
        f.r.publish(CHANNEL, room_msg("leave_room"))
        wait_for(lambda: room_sids(B, "jr") == [], 10, "leave_room left")
        mgr.emit("jr-ev", "out", room="jr", namespace="/")
        barrier(tab)
        eq(tab.recorders["jr-ev"].snapshot(), [["in"]])

    def json_shapes():
        tab = f.connect(A, "u8", record=["js-ev"])
        rec = tab.recorders["js-ev"]
        host = secrets.token_hex(16)

        def emit(data, binary=None, **extra):
            m = {"method": "emit", "event": "js-ev", "data": data, "namespace": "/",
                 "room": tab.sid, "skip_sid": None, "callback": None, "host_id": host}
            if binary is not None:
                m["binary"] = binary
            m.update(extra)
            f.r.publish(CHANNEL, json.dumps(m))
        # 5.14.0: JSON, one argument as itself.
        emit({"k": "v"})
        eq(rec.get(), [{"k": "v"}], "5.14.0 dict")
        # 5.14.2: binary false.
        emit("plain", binary=False)
        eq(rec.get(), ["plain"], "5.14.2 binary:false")
        # 5.14.2: binary true, placeholders + base64 attachments.
        b0, b1 = b"\x00\xff\x10", bytes(range(40))
        emit([{"file": {"_placeholder": True, "num": 0}, "more": [{"_placeholder": True, "num": 1}]},
              base64.b64encode(b0).decode(), base64.b64encode(b1).decode()], binary=True)
        eq(rec.get(), [{"file": b0, "more": [b1]}], "5.14.2 binary:true")
        # >= 5.15.1: data always a list: the argument list.
        emit(["one", 2, {"three": 3}], binary=False)
        eq(rec.get(), ["one", 2, {"three": 3}], ">= 5.15.1 wrapped arguments")
        emit([[{"_placeholder": True, "num": 0}, "x"], base64.b64encode(b"\x07").decode()], binary=True)
        eq(rec.get(), [b"\x07", "x"], ">= 5.15.1 wrapped with an attachment")
        # room as a list, skip_sid as a list.
        emit("listed", binary=False, room=[tab.sid, "nobody"], skip_sid=["someone-else"])
        eq(rec.get(), ["listed"], "room and skip_sid as lists")
        # A JSON emit asking for an ack (a >= 5.14 node's call): the
        # callback comes back on the channel, in JSON, to our host_id.
        tab.sio.on("js-ask", lambda q: {"ok": q})
        ps = f.r.pubsub(ignore_subscribe_messages=True)
        try:
            got = listen_for_callback(ps, tab, host)
        finally:
            ps.close()
        eq({k: got.get(k) for k in ("method", "host_id", "sid", "namespace", "id", "args")},
           {"method": "callback", "host_id": host, "sid": tab.sid, "namespace": "/", "id": 77,
            "args": [{"ok": {"n": 5}}]}, "callback message")
        time.sleep(0.2)
        eq(rec.snapshot()[6:], [], "each once")

    def listen_for_callback(ps, tab, host):
        ps.subscribe(CHANNEL)
        wait_for(lambda: ps.get_message(timeout=0.05) is None and f.r.pubsub_numsub(CHANNEL)[0][1] >= 3,
                 10, "listener subscribed")
        f.r.publish(CHANNEL, json.dumps({"method": "emit", "event": "js-ask", "data": {"n": 5},
                                         "namespace": "/", "room": tab.sid, "skip_sid": None,
                                         "callback": [tab.sid, "/", 77], "host_id": host,
                                         "binary": False}))
        got = None
        deadline = time.monotonic() + 10
        while got is None and time.monotonic() < deadline:
            m = ps.get_message(timeout=0.5)
            if m and m["type"] == "message" and m["data"][:1] == b"{":
                d = json.loads(m["data"])
                if d.get("method") == "callback":
                    got = d
        if got is None:
            raise AssertionError("no callback message published")
        return got

    def no_member_no_decode():
        # Every node gets every emit; the one without the target reads a
        # 5.7.2 pickle's routing fields and steps over its data (64 KiB
        # here) without decoding it (siohub_pubsub_decoded_total).
        tab = f.connect(A, "u7", record=["quiet-ev"])
        f.wait_in_pools([tab])
        barrier(tab)
        time.sleep(0.3)  # the presence broadcasts of the connect are through
        decoded = {n.port: metric(n, "siohub_pubsub_decoded_total", "") for n in f.nodes}
        not_here = metric(B, "siohub_pubsub_messages_total", 'outcome="not_here"')
        blob = "x" * 65536
        for i in range(5):
            mgr.emit("quiet-ev", {"i": i, "blob": blob}, room=tab.sid, namespace="/")
            mgr.emit("quiet-ev", {"i": i, "blob": blob}, room="user:nobody", namespace="/")
        barrier(tab)
        eq([args[0]["i"] for args in tab.recorders["quiet-ev"].snapshot()], list(range(5)),
           "the tab got its five")
        eq(metric(B, "siohub_pubsub_decoded_total", "") - decoded[B.port], 0,
           "messages decoded on the node without a member")
        eq(metric(B, "siohub_pubsub_messages_total", 'outcome="not_here"') - not_here, 11,
           "messages skipped there after reading their routing fields")
        eq(metric(A, "siohub_pubsub_decoded_total", "") - decoded[A.port], 6,
           "messages decoded on the node with the member (five and the barrier)")
        tab.disconnect()

    def evil_pickle():
        tab = f.connect(A, "u9", record=["evil-ev", "ok-ev"])
        marker = os.path.join(tempfile.gettempdir(), f"PWNED-{secrets.token_hex(8)}")
        h.defer(lambda: os.path.exists(marker) and os.unlink(marker))

        class Evil:
            def __reduce__(self):
                return (os.system, (f"touch {marker}",))
        # Only the two siohub nodes may listen: a python-socketio <= 5.13
        # node would unpickle (and run) these itself.
        eq(f.r.pubsub_numsub(CHANNEL)[0][1], len(f.nodes), "subscribers of the channel")
        before = {n.port: metric(n, "siohub_pubsub_messages_total", 'outcome="dropped"') for n in f.nodes}
        sent = 0
        for proto in (2, 3, 4, 5):
            msg = {"method": "emit", "event": "evil-ev", "data": Evil(), "namespace": "/",
                   "room": tab.sid, "skip_sid": None, "callback": None, "host_id": "evil"}
            f.r.publish(CHANNEL, pickle.dumps(msg, protocol=proto))
            # The whole message a class instance (REDUCE at the top).
            f.r.publish(CHANNEL, pickle.dumps(Evil(), protocol=proto))
            sent += 2
        mgr.emit("ok-ev", "still here", room=tab.sid, namespace="/")
        eq(tab.recorders["ok-ev"].get(), ["still here"], "the node keeps delivering")
        time.sleep(0.5)
        if os.path.exists(marker):
            raise AssertionError(f"{marker} exists: a pickle was executed")
        eq(tab.recorders["evil-ev"].snapshot(), [], "nothing delivered from the evil pickles")
        for n in f.nodes:
            n.assert_alive()
            after = metric(n, "siohub_pubsub_messages_total", 'outcome="dropped"')
            eq(after - before[n.port], sent, f"dropped count on :{n.port}")
            with open(n.log_path, encoding="utf-8", errors="replace") as fp:
                if "dropped" not in fp.read():
                    raise AssertionError(f"no 'dropped' line in {n.log_path}")
        status, _ = f.api(A, "GET", "/healthz")
        eq(status, 200, "healthz after the evil pickles")

    h.case("RedisManager(write_only).emit(room=SID): dict, tuple args, bytes", emit_reaches, timeout=30)
    h.case("AsyncRedisManager(write_only).emit(room=SID) and to a user room", async_emit_reaches,
           timeout=30)
    h.case("RedisManager.emit to user and channel rooms across nodes, skip_sid, broadcast", emit_rooms, timeout=30)
    h.case("python-socketio server node: call() to a siohub-hosted sid returns the ack; disconnect()", server_call, timeout=40)
    h.case("RedisManager.disconnect and close_room act on siohub sockets", disconnect_and_close_room, timeout=30)
    h.case("enter_room / leave_room in the >= 5.10 JSON shape", json_rooms, timeout=30)
    h.case(">= 5.14 JSON emits (binary false/true, wrapped data) and a JSON call's callback", json_shapes, timeout=30)
    h.case("a node with no member of the room reads a pickle's routing fields, never its data",
           no_member_no_decode, timeout=30)
    h.case("a pickle with GLOBAL/REDUCE is dropped, never run; the node keeps working", evil_pickle, timeout=30)


run(body, timeout=240, case_timeout=30)
