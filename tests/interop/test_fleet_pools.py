# The pools in Redis, read with redis-py as Open WebUI's Python code reads
# them (HGET/HGETALL + json.loads): {prefix}:session_pool holds the user
# dict (id, name, email, role) plus last_seen_at, {prefix}:user_pool JSON
# lists of sids, {prefix}:usage_pool {sid: {"updated_at": int}} per model.
# Concurrent writes from two nodes (usage pings for one model, tabs of one
# user connecting at once) keep every sid: the read-modify-writes are
# atomic. Open WebUI's token revocation keys are honoured.
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from fleet import PREFIX, Fleet, user, wait_for  # noqa: E402
from harness import eq, run  # noqa: E402


def body(h):
    # A long usage timeout: entries must not expire while a case reads them.
    f = Fleet(h, nodes=2, args=["--usage-timeout", "120000"])
    A, B = f.nodes

    def shapes():
        t0 = int(time.time())
        tabs = [f.connect(A, "u1"), f.connect(A, "u1"), f.connect(B, "u1"), f.connect(B, "u2")]
        f.wait_in_pools(tabs)
        tabs[0].sio.emit("usage", {"model": "llama3:8b", "action": "chat", "chat_id": "chat-1"})
        tabs[3].sio.emit("usage", {"model": "llama3:8b"})
        tabs[2].sio.emit("usage", {"model": "gpt-4o"})
        wait_for(lambda: len(f.hash_json("usage_pool").get("llama3:8b", {})) == 2
                 and len(f.hash_json("usage_pool").get("gpt-4o", {})) == 1, 10,
                 lambda: f"usage_pool: {f.hash_json('usage_pool')}")
        t1 = int(time.time())
        p = f.pools()
        # session_pool: sid -> the user dict + last_seen_at.
        for t in tabs:
            entry = p["session_pool"].get(t.sid)
            if entry is None:
                raise AssertionError(f"{t.sid} not in session_pool: {p['session_pool']}")
            u = user(t.uid)
            for k in ("id", "name", "email", "role"):
                eq(entry.get(k), u[k], f"session_pool[{t.sid}].{k}")
            seen = entry.get("last_seen_at")
            if not isinstance(seen, int) or isinstance(seen, bool) or not t0 - 2 <= seen <= t1 + 2:
                raise AssertionError(f"last_seen_at {seen!r} is not an int near now ({t0}..{t1})")
            extra = set(entry) - {"id", "name", "email", "role", "last_seen_at", "siohub_node",
                                  "profile_image_url"}
            eq(extra, set(), "keys beyond Open WebUI's user dict and siohub's node tag")
        # user_pool: user id -> JSON list of sids.
        eq(sorted(p["user_pool"]["u1"]), sorted(t.sid for t in tabs[:3]), "user_pool[u1]")
        eq(p["user_pool"]["u2"], [tabs[3].sid], "user_pool[u2]")
        for uid, sids in p["user_pool"].items():
            if not isinstance(sids, list) or not all(isinstance(s, str) for s in sids):
                raise AssertionError(f"user_pool[{uid}] is not a list of sids: {sids!r}")
        # usage_pool: model -> {sid: {"updated_at": int}}.
        eq(sorted(p["usage_pool"]["llama3:8b"]), sorted([tabs[0].sid, tabs[3].sid]))
        eq(list(p["usage_pool"]["gpt-4o"]), [tabs[2].sid])
        for model, m in p["usage_pool"].items():
            for sid, v in m.items():
                eq(list(v), ["updated_at"], f"usage_pool[{model}][{sid}] keys")
                at = v["updated_at"]
                if not isinstance(at, int) or not t0 - 2 <= at <= t1 + 2:
                    raise AssertionError(f"updated_at {at!r} is not an int near now")
        # Leaving takes a session out of all three.
        gone = tabs[0]
        sid = gone.sid
        gone.disconnect()
        wait_for(lambda: sid not in f.hash_json("session_pool"), 10, "session_pool entry removed")
        p = f.pools()
        eq(sorted(p["user_pool"]["u1"]), sorted(t.sid for t in tabs[1:3]), "user_pool[u1] after one left")
        eq(list(p["usage_pool"]["llama3:8b"]), [tabs[3].sid], "usage entry removed")
        tabs[2].disconnect()
        tabs[1].disconnect()
        wait_for(lambda: "u1" not in f.hash_json("user_pool"), 10, "user u1 deleted when its list empties")
        wait_for(lambda: "gpt-4o" not in f.hash_json("usage_pool"), 10, "empty model deleted")
        tabs[3].disconnect()
        wait_for(lambda: f.pools() == {"session_pool": {}, "user_pool": {}, "usage_pool": {}}, 10,
                 lambda: f"pools not empty: {f.pools()}")

    def concurrent_usage():
        tabs = [f.connect(A, "u3"), f.connect(B, "u4"), f.connect(A, "u5"), f.connect(B, "u6")]
        f.wait_in_pools(tabs)
        go = threading.Event()

        def pinger(t):
            go.wait()
            for i in range(60):
                t.sio.emit("usage", {"model": "shared-model", "chat_id": f"c{i}"})
                if i % 3 == 0:
                    t.sio.emit("usage", {"model": f"other-{i % 4}"})
        threads = [threading.Thread(target=pinger, args=(t,), daemon=True) for t in tabs]
        for t in threads:
            t.start()
        go.set()
        for t in threads:
            t.join(20)
        want = sorted(t.sid for t in tabs)
        wait_for(lambda: sorted(f.hash_json("usage_pool").get("shared-model", {})) == want, 10,
                 lambda: f"usage_pool[shared-model]: {sorted(f.hash_json('usage_pool').get('shared-model', {}))}, want {want}")
        # Settle: every ping has landed, still all four.
        time.sleep(0.5)
        eq(sorted(f.hash_json("usage_pool")["shared-model"]), want, "after the burst")
        for t in tabs:
            t.disconnect()

    def concurrent_tabs():
        tabs = []
        lock = threading.Lock()
        errors = []

        def opener(node):
            try:
                t = f.connect(node, "u7")
                with lock:
                    tabs.append(t)
            except Exception as e:  # reported below
                errors.append(repr(e))
        threads = [threading.Thread(target=opener, args=(A if i % 2 else B,), daemon=True) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        eq(errors, [], "connects")
        eq(len(tabs), 8)
        f.wait_in_pools(tabs)
        eq(sorted(f.hash_json("user_pool")["u7"]), sorted(t.sid for t in tabs), "user_pool[u7] has every tab")
        # And leaving at once removes them all.
        threads = [threading.Thread(target=t.disconnect, daemon=True) for t in tabs]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        wait_for(lambda: "u7" not in f.hash_json("user_pool"), 10,
                 lambda: f"user_pool[u7]: {f.hash_json('user_pool').get('u7')}")

    def rich_user_dict():
        want = user("u10")
        tab = f.connect(A, "u10")
        f.wait_in_pools([tab])

        def check(entry, what):
            for k, v in want.items():
                eq(entry.get(k), v, f"{what}: session_pool entry's {k}")
        first = f.hash_json("session_pool")[tab.sid]
        check(first, "after connect")
        # A heartbeat rewrites last_seen_at (the entry's other fields must
        # come through untouched: [] stays [], {} stays {}, 64-bit ints
        # stay exact).
        time.sleep(1.1)
        tab.sio.emit("heartbeat", {})
        wait_for(lambda: f.hash_json("session_pool")[tab.sid]["last_seen_at"] > first["last_seen_at"], 10,
                 "last_seen_at refreshed")
        check(f.hash_json("session_pool")[tab.sid], "after a heartbeat")
        tab.disconnect()

    def revocation():
        import socketio
        now = int(time.time())
        # {prefix}:auth:user:{id}:revoked_at at or after the token's iat.
        f.r.set(f"{PREFIX}:auth:user:u8:revoked_at", str(now + 5))
        tok = f.sign({"id": "u8", "iat": now - 10, "exp": now + 3600})
        # {prefix}:auth:token:{jti}:revoked.
        f.r.set(f"{PREFIX}:auth:token:jti-revoked:revoked", "1")
        tok_jti = f.sign({"id": "u9", "iat": now - 10, "exp": now + 3600, "jti": "jti-revoked"})
        for node, token in ((A, tok), (B, tok_jti)):
            tab = f.connect(node, None, join=False)
            try:
                tab.sio.call("user-join", {"auth": {"token": token}}, timeout=1.5)
                raise AssertionError("user-join with a revoked token was acked")
            except socketio.exceptions.TimeoutError:
                pass
            time.sleep(0.2)
            if tab.sid in f.hash_json("session_pool"):
                raise AssertionError("a revoked token's socket is in session_pool")
            tab.disconnect()
        # Tokens issued after revoked_at, or with another jti, still work.
        ok1 = f.connect(A, "u8", token=f.sign({"id": "u8", "iat": now + 6, "exp": now + 3600}))
        ok2 = f.connect(B, "u9", token=f.sign({"id": "u9", "iat": now, "exp": now + 3600, "jti": "fine"}))
        eq(ok1.user_join, {"id": "u8", "name": user("u8")["name"]})
        eq(ok2.user_join, {"id": "u9", "name": user("u9")["name"]})
        f.wait_in_pools([ok1, ok2])
        ok1.disconnect()
        ok2.disconnect()

    h.case("session_pool, user_pool and usage_pool hold Open WebUI's JSON shapes", shapes, timeout=40)
    h.case("a user dict with lists, objects and big integers survives last_seen_at updates", rich_user_dict, timeout=30)
    h.case("concurrent usage pings from two nodes for one model keep every sid", concurrent_usage, timeout=40)
    h.case("Open WebUI's revocation keys ({prefix}:auth:user:ID:revoked_at, :auth:token:JTI:revoked)", revocation, timeout=30)
    h.case("tabs of one user connecting and leaving at once on two nodes: user_pool stays exact", concurrent_tabs, timeout=60)


run(body, timeout=200, case_timeout=40)
